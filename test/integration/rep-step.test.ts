// Architectural stepping of a REP string instruction through the real server and SDK on the
// embedded machine: a 1 KiB `rep movsq` is 128 steps, RIP staying on it until the last.
import type { Session, X86VpState } from "../../src/client";
import { startHarness, type Harness } from "./harness";

// Unused RAM of the demo guest, mapped by its kernel page tables (2 MiB pages from GPA 2 MiB at
// 0xffffffff80000000 + GPA, writable and executable).
const KERNEL_VMA = 0xffff_ffff_8000_0000n;
const CODE_GPA = 0x40_0000n;
const SRC_GPA = 0x41_0000n;
const DST_GPA = 0x41_1000n;
const CODE = KERNEL_VMA + CODE_GPA;
const SRC = KERNEL_VMA + SRC_GPA;
const DST = KERNEL_VMA + DST_GPA;

// rep movsq; mov eax, 1; mov ebx, 2; jmp $
const PROGRAM = Uint8Array.of(0xf3, 0x48, 0xa5, 0xb8, 1, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0xeb, 0xfe);
const AFTER_REP = CODE + 3n;
const JMP = CODE + 13n;
const RCX = 1;
const RSI = 6;
const RDI = 7;

const SOURCE = Uint8Array.from({ length: 1024 }, (_, i) => (i * 37 + 11) & 0xff);

describe("a REP MOVSQ of 1 KiB, stepped through the server", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 1 });
  });
  afterAll(async () => {
    await h.close();
  });

  async function x86(s: Session): Promise<X86VpState> {
    const v = await s.getVpState(0);
    if (v.arch !== "x86_64") throw new Error("x86 expected");
    return v.state;
  }

  /** Writes the program and its data, and points VP 0 at it with RCX = 128 (other registers as `saved`). */
  async function setUp(s: Session, saved: X86VpState): Promise<void> {
    await s.writeMemory({ gpa: CODE_GPA }, PROGRAM);
    await s.writeMemory({ gpa: SRC_GPA }, SOURCE);
    await s.writeMemory({ gpa: DST_GPA }, new Uint8Array(1024));
    const gp = [...saved.gp];
    gp[RCX] = 128n;
    gp[RSI] = SRC;
    gp[RDI] = DST;
    gp[0] = 0n;
    gp[3] = 0n;
    // DF clear, TF clear.
    await s.setVpState(0, { arch: "x86_64", state: { ...saved, gp, rip: CODE, rflags: 0x2n } });
  }

  it("Step count=1, 128 times: RCX falls by one per step and RIP moves past only after the 128th", async () => {
    const s = await h.client.attach("demo");
    await s.break();
    const saved = await x86(s);
    try {
      await setUp(s, saved);
      for (let i = 1; i <= 128; i++) {
        const r = await s.step(0, { count: 1 });
        expect({ executed: r.executed, stop: r.stop, halted: r.halted }).toEqual({ executed: 1, stop: undefined, halted: false });
        const st = await x86(s);
        const got = { rcx: st.gp[RCX], rsi: st.gp[RSI], rdi: st.gp[RDI], rip: st.rip };
        expect(got).toEqual({ rcx: BigInt(128 - i), rsi: SRC + BigInt(8 * i), rdi: DST + BigInt(8 * i), rip: i < 128 ? CODE : AFTER_REP });
        if (i === 64) {
          // Half-way: exactly the first 512 bytes are copied.
          const half = await s.readMemory({ gpa: DST_GPA }, 1024);
          expect(half.subarray(0, 512)).toEqual(SOURCE.subarray(0, 512));
          expect(half.subarray(512).every((b) => b === 0)).toBe(true);
        }
      }
      expect(await s.readMemory({ gpa: DST_GPA }, 1024)).toEqual(SOURCE);
    } finally {
      await s.setVpState(0, { arch: "x86_64", state: saved });
      await s.detach();
    }
  });

  it("one Step of count 200 reports the 128 iterations, then the instructions after", async () => {
    const s = await h.client.attach("demo");
    await s.break();
    const saved = await x86(s);
    try {
      await setUp(s, saved);
      const r = await s.step(0, { count: 200, trace: "pc" });
      expect({ executed: r.executed, stop: r.stop, halted: r.halted }).toEqual({ executed: 200, stop: undefined, halted: false });
      const pcs = Array.from(r.pcs);
      // 127 iterations leave RIP on the REP, the 128th moves it on, then mov, mov and the jmp loop.
      expect(pcs.slice(0, 127).every((pc) => pc === CODE)).toBe(true);
      expect(pcs.slice(127, 130)).toEqual([AFTER_REP, CODE + 8n, JMP]);
      expect(pcs.slice(130).every((pc) => pc === JMP)).toBe(true);
      const st = await x86(s);
      expect({ rcx: st.gp[RCX], rax: st.gp[0], rbx: st.gp[3], rip: st.rip }).toEqual({ rcx: 0n, rax: 1n, rbx: 2n, rip: JMP });
      expect(await s.readMemory({ gpa: DST_GPA }, 1024)).toEqual(SOURCE);
    } finally {
      await s.setVpState(0, { arch: "x86_64", state: saved });
      await s.detach();
    }
  });

  it("unary single-steps and a write watchpoint stop between iterations; resuming finishes the copy", async () => {
    const s = await h.client.attach("demo", { transport: "unary" });
    await s.break();
    expect(await s.resume()).toEqual({ kind: "break" }); // the break's stop, reported without running
    const saved = await x86(s);
    try {
      await setUp(s, saved);
      for (let i = 1; i <= 3; i++) {
        expect(await s.step(0)).toEqual({ kind: "singleStep", vp: 0 });
        const st = await x86(s);
        expect([st.gp[RCX], st.rip]).toEqual([BigInt(128 - i), CODE]);
      }
      // A watchpoint on element 100 of the destination: the stop comes after that iteration.
      await s.setWatchpoint(0, { address: DST + 800n, type: "write", size: 8 });
      expect(await s.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0 });
      const st = await x86(s);
      expect({ rcx: st.gp[RCX], rsi: st.gp[RSI], rdi: st.gp[RDI], rip: st.rip }).toEqual({ rcx: 27n, rsi: SRC + 808n, rdi: DST + 808n, rip: CODE });
      await s.clearBreakpoint(0, 0);
      // Resuming (no single-step, no data slot) finishes the REP and runs to an execute breakpoint after it.
      await s.setBreakpoint(0, JMP);
      expect(await s.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0 });
      const end = await x86(s);
      expect({ rcx: end.gp[RCX], rax: end.gp[0], rip: end.rip }).toEqual({ rcx: 0n, rax: 1n, rip: JMP });
      await s.clearBreakpoint(0, 0);
      expect(await s.readMemory({ gpa: DST_GPA }, 1024)).toEqual(SOURCE);
    } finally {
      await s.setVpState(0, { arch: "x86_64", state: saved });
      await s.detach();
    }
  });
});
