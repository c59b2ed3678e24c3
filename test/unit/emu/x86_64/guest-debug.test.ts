// The guest's own debug registers (Intel SDM vol. 3, ch. 18), as kvm-unit-tests' x86/debug.c
// checks them: DR0–DR3, DR4/DR5 aliasing under CR4.DE, DR7.GD, execute breakpoints (fault, RF),
// data and I/O breakpoints (trap, LEN, REP iterations), DR6 B0–B3/BS/BD, TF with the POPF delay and the
// MOV SS shadow, ICEBP, and the debugger's slots winning and staying invisible to the guest.
//
// The guest programs were assembled with GNU as (Intel syntax); each comment gives the source.
import type { X86Breakpoint, X86VpDebug } from "../../../../src/emu/x86_64/index.js";
import { CR4, GUEST_DR6, GUEST_DR7 } from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, HANDLERS, STACK_TOP, TestMachine } from "./harness.js";

const DATA = 0x180000;
const DB_HANDLER = 0x4000;
const RIPS = 0x190000;
const DR6S = 0x191000;
const FLAGS = 0x192000;
const RCXS = FLAGS + 0x800;
const RF = 0x10000;
const TF = 0x100;
const DR6_FIXED = 0xffff0ff0;
/** DR6 as MOV reads it: `bits` with the fixed ones (unsigned). */
const dr6 = (bits: number): number => (DR6_FIXED | bits) >>> 0;
const BS = 0x4000;
const BD = 0x2000;

/**
 * Vector 1 → a handler like debug.c's handle_db: R15 counts #DBs; entry n records the frame's
 * RIP at RIPS[n], RFLAGS at FLAGS[n], RCX at RCXS[n] and DR6 at DR6S[n] (DR6 is not cleared);
 * when DR6 & R11 is nonzero it sets RF in the frame; from the 10th on it clears TF in the frame
 * and DR7 (so a runaway test ends).
 *
 *   push rax; inc r15; mov rax, [rsp+8]; mov [r14+r15*8], rax; mov rax, [rsp+24]
 *   mov [r12+r15*8], rax; mov [r12+r15*8+0x800], rcx; mov rax, dr6; mov [r13+r15*8], rax
 *   test rax, r11; jz 1f; or qword ptr [rsp+24], 0x10000
 *   1: cmp r15, 10; jb 2f; and qword ptr [rsp+24], ~0x100; mov eax, 0x400; mov dr7, rax
 *   2: pop rax; iretq
 */
const HANDLER =
  "50 49 ff c7 48 8b 44 24 08 4b 89 04 fe 48 8b 44 24 18 4b 89 04 fc 4b 89 8c fc 00 08 00 00 0f 21 f0 4b 89 44 fd 00" +
  " 4c 85 d8 74 09 48 81 4c 24 18 00 00 01 00 49 83 ff 0a 72 11 48 81 64 24 18 ff fe ff ff b8 00 04 00 00 0f 23 f8 58 48 cf";

interface Db {
  rip: number;
  dr6: number;
  rflags: number;
  rcx: number;
}

function machine(rfMask = 0): TestMachine {
  const m = new TestMachine();
  m.installIdt();
  m.load(DB_HANDLER, HANDLER);
  const h = BigInt(DB_HANDLER);
  m.write64(0x1000 + 16, (h & 0xffffn) | (0x08n << 16n) | (0x8en << 40n) | (((h >> 16n) & 0xffffn) << 48n));
  m.setReg("r15", 0n);
  m.setReg("r14", BigInt(RIPS));
  m.setReg("r13", BigInt(DR6S));
  m.setReg("r12", BigInt(FLAGS));
  m.setReg("r11", BigInt(rfMask));
  return m;
}

/** The #DBs the handler recorded (RIP relative to CODE). */
function dbs(m: TestMachine): Db[] {
  const n = Number(m.reg("r15"));
  return Array.from({ length: n }, (_, i) => ({
    rip: Number(m.read64(RIPS + 8 * (i + 1))) - CODE,
    dr6: Number(m.read64(DR6S + 8 * (i + 1))),
    rflags: Number(m.read64(FLAGS + 8 * (i + 1))),
    rcx: Number(m.read64(RCXS + 8 * (i + 1))),
  }));
}

const ripsOf = (m: TestMachine) => dbs(m).map((d) => d.rip);
const dr6Of = (m: TestMachine) => dbs(m).map((d) => d.dr6);

function load(m: TestMachine, hex: string): void {
  m.load(CODE, hex);
  m.vp.invalidateCode(CODE, hex.length);
  m.rip = BigInt(CODE);
}

// mov dr6, rdx; mov dr2, rbx; mov dr7, rcx; nop; bp: nop; mov eax, 1; hlt      (bp = 10)
const EXEC = "0f 23 f2 0f 23 d3 0f 23 f9 90 90 b8 01 00 00 00 f4";
const EXEC_BP = 10;
// mov dr1, rbx; mov dr6, rdx; mov dr7, rcx; mov eax, 42; mov [rbx], rax; wp: mov rax, [rbx]; rd: hlt
const DATA_PROGRAM = "0f 23 cb 0f 23 f2 0f 23 f9 b8 2a 00 00 00 48 89 03 48 8b 03 f4";
const WP = 17;
const RD = 20;

describe("DR0–DR7 as MOV DR sees them", () => {
  it("DR0–DR3 keep 64-bit addresses; DR4/DR5 alias DR6/DR7 while CR4.DE is clear", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xffff8000_12345678n);
    m.setReg("rbx", 0x00007fff_fffff000n);
    m.setReg("rcx", 0xff80_0000_0000_0008n);
    m.setReg("rdx", 0x00ff_0000_0000_1234n); // not canonical: MOV DR keeps all 64 bits
    m.setReg("rsi", 0x4002n); // → DR6 through DR4
    m.setReg("rdi", 0x000d0402n); // → DR7 through DR5 (G0, DR0 a 2-byte write slot)
    // mov dr0..dr3, rax rbx rcx rdx; mov r8..r11, dr0..dr3; mov dr4, rsi; mov r12, dr6; mov r13, dr4
    // mov dr5, rdi; mov r14, dr7; mov r15, dr5; hlt
    m.runCode(
      "0f 23 c0 0f 23 cb 0f 23 d1 0f 23 da 41 0f 21 c0 41 0f 21 c9 41 0f 21 d2 41 0f 21 db 0f 23 e6 41 0f 21 f4 41 0f 21 e5" +
        " 0f 23 ef 41 0f 21 fe 41 0f 21 ef f4",
    );
    expect([m.reg("r8"), m.reg("r9"), m.reg("r10"), m.reg("r11")]).toEqual([
      0xffff8000_12345678n, 0x00007fff_fffff000n, 0xff80_0000_0000_0008n, 0x00ff_0000_0000_1234n,
    ]);
    expect([m.reg("r12"), m.reg("r13")]).toEqual([0xffff4ff2n, 0xffff4ff2n]);
    expect([m.reg("r14"), m.reg("r15")]).toEqual([0x000d0402n, 0x000d0402n]);
    expect(m.vectors()).toEqual([]);
  });

  it("DR4 and DR5 are #UD while CR4.DE is set", () => {
    for (const code of ["0f 21 e0 f4", "0f 23 e8 f4"]) { // mov rax, dr4 / mov dr5, rax
      const m = new TestMachine();
      m.installIdt();
      m.regs[CR4] |= 0x8;
      m.runCode(code);
      expect(m.vectors()).toEqual([6]);
      expect(m.read64(STACK_TOP - 40)).toBe(BigInt(CODE));
    }
  });

  it("DR7.GD: a MOV DR raises #DB (fault, RF pushed) with DR6.BD and GD cleared, then runs after IRETQ", () => {
    const m = machine();
    m.setReg("rdx", 0x2000n);
    m.setReg("rbx", 0x55n);
    // mov dr7, rdx; mov dr0, rbx; hlt
    m.runCode("0f 23 fa 0f 23 c3 f4");
    expect(dbs(m)).toEqual([{ rip: 3, dr6: dr6(BD), rflags: 0x10002, rcx: 0 }]);
    expect(m.word(GUEST_DR7)).toBe(0);
    m.setReg("r8", 0n);
    m.runCode("41 0f 21 c0 f4"); // mov r8, dr0 (GD is clear now)
    expect(m.reg("r8")).toBe(0x55n);
  });
  it("any #DB from a debug condition clears DR7.GD as its handler is entered", () => {
    const m = machine(0x2);
    m.setReg("rdx", 0x2000n | 0x4n); // GD, L1
    m.setReg("rbx", BigInt(CODE + 6));
    // mov dr1, rbx; mov dr7, rdx; bp: nop; hlt   (the handler reads DR6 with GD clear: no BD)
    m.runCode("0f 23 cb 0f 23 fa 90 f4");
    expect(dbs(m)).toEqual([{ rip: 6, dr6: dr6(0x2), rflags: 0x2, rcx: 0 }]);
    expect(m.word(GUEST_DR7)).toBe(0x4);
  });
});

describe("execute breakpoints", () => {
  it("raise #DB before the instruction with DR6.Bn (B0–B3 replaced, BS kept) and RF 0 pushed; RF set by the handler lets it run", () => {
    const m = machine(0x4);
    m.setReg("rdx", 0x4002n); // DR6: BS and B1 set beforehand
    m.setReg("rbx", BigInt(CODE + EXEC_BP));
    m.setReg("rcx", 0x420n); // G2
    m.runCode(EXEC);
    expect(dbs(m)).toEqual([{ rip: EXEC_BP, dr6: dr6(BS | 0x4), rflags: 0x2, rcx: 0x420 }]);
    expect(m.reg("rax")).toBe(1n);
    expect(m.rip).toBe(BigInt(CODE + 17));
    expect(m.rflags & RF).toBe(0);
  });

  it("fire again on every return while the handler leaves RF clear", () => {
    const m = machine(0);
    m.setReg("rbx", BigInt(CODE + EXEC_BP));
    m.setReg("rcx", 0x410n); // L2
    m.runCode(EXEC);
    // The handler gives up (clears DR7) at the 10th.
    expect(ripsOf(m)).toEqual(Array(10).fill(EXEC_BP));
    expect(m.reg("rax")).toBe(1n);
  });

  it("do not fire for a slot DR7 does not enable, nor for an enabled slot of another type", () => {
    for (const dr7 of [0x400, 0x01000420]) { // nothing enabled; G2 as a write slot
      const m = machine(0x4);
      m.setReg("rbx", BigInt(CODE + EXEC_BP));
      m.setReg("rcx", BigInt(dr7));
      m.runCode(EXEC);
      expect(dbs(m)).toEqual([]);
      expect(m.reg("rax")).toBe(1n);
    }
  });
});

describe("data breakpoints", () => {
  it("a write slot traps after the store with DR6.Bn, keeping BS the guest left set (debug.c hw_wp1)", () => {
    const m = machine();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rdx", BigInt(BS));
    m.setReg("rcx", 0x00d00408n); // G1, DR1: write, 4 bytes
    m.runCode(DATA_PROGRAM);
    expect(dbs(m)).toEqual([{ rip: WP, dr6: dr6(BS | 0x2), rflags: 0x2, rcx: 0x00d00408 }]);
    expect(m.rip).toBe(BigInt(CODE + RD + 1));
  });

  it("a write slot ignores loads; a read-or-write slot traps on both", () => {
    const m = machine();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rdx", 0n);
    m.setReg("rcx", 0x00f00408n); // G1, DR1: read or write, 4 bytes
    m.runCode(DATA_PROGRAM);
    expect(ripsOf(m)).toEqual([WP, RD]);
    expect(dr6Of(m)).toEqual([dr6(0x2), dr6(0x2)]);
  });

  // mov dr0, rbx; mov dr7, rdx; mov [rsi], al; hlt
  const STORE = "0f 23 c3 0f 23 fa 88 06 f4";
  const lenBits = { 1: 0, 2: 1, 8: 2, 4: 3 } as const;
  const cases: [len: 1 | 2 | 4 | 8, dr0: number, offsets: number[], hits: boolean[]][] = [
    [1, 5, [4, 5, 6], [false, true, false]],
    [2, 4, [3, 4, 5, 6], [false, true, true, false]],
    [4, 8, [7, 8, 11, 12], [false, true, true, false]],
    [8, 8, [7, 8, 15, 16], [false, true, true, false]],
    // The address is rounded down to the length: DR0 = 13 with LEN 8 covers 8–15.
    [8, 13, [7, 8, 15, 16], [false, true, true, false]],
  ];
  it.each(cases)("LEN %i at DATA + %i covers the aligned bytes only", (len, dr0, offsets, hits) => {
    const got = offsets.map((off) => {
      const m = machine();
      m.setReg("rbx", BigInt(DATA + dr0));
      m.setReg("rdx", BigInt(0x400 | 0x2 | ((1 | (lenBits[len] << 2)) << 16)));
      m.setReg("rsi", BigInt(DATA + off));
      m.runCode(STORE);
      return dbs(m).length === 1;
    });
    expect(got).toEqual(hits);
  });

  it("inside REP STOSB: the trap follows the iteration that wrote the byte, RIP on the REP and RF pushed", () => {
    const m = machine();
    m.setReg("rbx", BigInt(DATA + 3));
    m.setReg("rdx", 0x00010402n); // G0, DR0: 1-byte write
    m.setReg("rdi", BigInt(DATA));
    m.setReg("rcx", 8n);
    m.setReg("rax", 0xaan);
    m.runCode("0f 23 c3 0f 23 fa f3 aa f4"); // mov dr0, rbx; mov dr7, rdx; rep stosb; hlt
    expect(dbs(m)).toEqual([{ rip: 6, dr6: dr6(0x1), rflags: RF | 0x2, rcx: 4 }]);
    expect(m.reg("rcx")).toBe(0n);
    expect(Buffer.from(m.ram.subarray(DATA, DATA + 9)).toString("hex")).toBe("aaaaaaaaaaaaaaaa00");
  });
});

describe("TF single-step", () => {
  it("POPF setting TF traps after the next instruction; the POPF clearing it still traps (debug.c singlestep_basic)", () => {
    const m = machine();
    // pushfq; pop rax; or rax, 0x100; push rax; popfq; and rax, ~0x100; s: push rax; popfq; hlt
    m.runCode("9c 58 48 0d 00 01 00 00 50 9d 48 25 ff fe ff ff 50 9d f4");
    expect(ripsOf(m)).toEqual([16, 17, 18]);
    expect(dr6Of(m)).toEqual([dr6(BS), dr6(BS), dr6(BS)]);
  });

  it("STI does not hold back the single-step trap (debug.c singlestep_with_sti_blocking)", () => {
    const m = machine();
    // cli; pushfq; pop rax; or rax, 0x100; push rax; popfq; sti; s: and rax, ~0x100; push rax; popfq; hlt
    m.runCode("fa 9c 58 48 0d 00 01 00 00 50 9d fb 48 25 ff fe ff ff 50 9d f4");
    expect(ripsOf(m)).toEqual([12, 18, 19, 20]);
  });

  it("MOV SS holds the trap for one instruction (debug.c singlestep_with_movss_blocking)", () => {
    const m = machine();
    // pushfq; pop rax; or rax, 0x100; push rax; mov ax, ss; popfq; mov ss, ax; and rax, ~0x100
    // s: push rax; popfq; hlt
    m.runCode("9c 58 48 0d 00 01 00 00 50 66 8c d0 9d 8e d0 48 25 ff fe ff ff 50 9d f4");
    expect(ripsOf(m)).toEqual([21, 22, 23]);
    expect(dr6Of(m)).toEqual(Array(3).fill(dr6(BS)));
  });

  it("ICEBP after MOV SS: two ICEBP #DBs without BS, then single-steps (debug.c …movss_blocking_and_icebp)", () => {
    const m = machine();
    // … popfq; mov ss, ax; icebp; s: icebp; and rax, ~0x100; push rax; popfq; hlt
    m.runCode("9c 58 48 0d 00 01 00 00 50 66 8c d0 9d 8e d0 f1 f1 48 25 ff fe ff ff 50 9d f4");
    expect(ripsOf(m)).toEqual([16, 17, 23, 24, 25]);
    expect(dr6Of(m)).toEqual([DR6_FIXED, DR6_FIXED, dr6(BS), dr6(BS), dr6(BS)]);
  });

  it("DR7.GD after MOV SS: the #DB with BD comes first, the held single-step does not (debug.c …movss_blocking_and_dr7_gd)", () => {
    const m = machine();
    m.setReg("rdx", 0x2000n);
    // mov dr7, rdx; xor ecx, ecx; pushfq; pop rax; or rax, 0x100; push rax; mov ax, ss; popfq; mov ss, ax
    // s: mov dr6, rcx; and rax, ~0x100; push rax; popfq; hlt
    m.runCode("0f 23 fa 31 c9 9c 58 48 0d 00 01 00 00 50 66 8c d0 9d 8e d0 0f 23 f1 48 25 ff fe ff ff 50 9d f4");
    expect(ripsOf(m)).toEqual([20, 23, 29, 30, 31]);
    expect(dr6Of(m)).toEqual([dr6(BD), dr6(BS), dr6(BS), dr6(BS), dr6(BS)]);
    expect((dbs(m)[0].rflags & RF) !== 0).toBe(true);
  });
});

describe("I/O breakpoints (R/W 10)", () => {
  // mov dr0, rbx; mov dr7, rcx; out 0x80, al; in al, 0x81; hlt
  const IO = "0f 23 c3 0f 23 f9 e6 80 e4 81 f4";
  const cases: [what: string, de: boolean, dr7: number, rips: number[]][] = [
    ["1 byte, CR4.DE set: OUT 0x80 traps, IN 0x81 does not", true, 0x00020002, [8]],
    ["2 bytes, CR4.DE set: both trap, after the instruction", true, 0x00060002, [8, 10]],
    ["CR4.DE clear: undefined by the SDM, nothing here", false, 0x00060002, []],
  ];
  it.each(cases)("%s", (_what, de, dr7, rips) => {
    const m = machine();
    if (de) m.regs[CR4] |= 0x8;
    m.setReg("rbx", 0x80n);
    m.setReg("rcx", BigInt(dr7));
    m.runCode(IO);
    expect(ripsOf(m)).toEqual(rips);
    expect(dr6Of(m)).toEqual(rips.map(() => dr6(0x1)));
  });
});

describe("TF and data breakpoints together", () => {
  it("one #DB carries BS and Bn; the next trap has BS alone (B0–B3 replaced each time)", () => {
    const m = machine();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rcx", 0x00d00408n); // G1, DR1: 4-byte write
    // mov dr1, rbx; mov dr7, rcx; pushfq; or qword ptr [rsp], 0x100; popfq; mov [rbx], eax
    // pushfq; and qword ptr [rsp], ~0x100; popfq; hlt
    m.runCode("0f 23 cb 0f 23 f9 9c 48 81 0c 24 00 01 00 00 9d 89 03 9c 48 81 24 24 ff fe ff ff 9d f4");
    expect(ripsOf(m)).toEqual([18, 19, 27, 28]);
    expect(dr6Of(m)).toEqual([dr6(BS | 0x2), dr6(BS), dr6(BS), dr6(BS)]);
  });
});

describe("batched steps (the Step RPC)", () => {
  it("step onto a guest execute breakpoint: the next step delivers its #DB and lands on the handler", () => {
    const m = machine(0x4);
    m.setReg("rdx", 0n);
    m.setReg("rbx", BigInt(CODE + EXEC_BP));
    m.setReg("rcx", 0x420n);
    load(m, EXEC);
    expect(m.vp.stepBatch(4, null, null, () => false).executed).toBe(4);
    expect(m.rip).toBe(BigInt(CODE + EXEC_BP));
    const out = m.vp.stepBatch(1, null, null, () => false);
    expect(out.executed).toBe(1);
    expect(m.rip).toBe(BigInt(DB_HANDLER));
    expect(m.word(GUEST_DR6)).toBe(0x4);
    expect(m.vp.run(1000)).toEqual({ kind: "halted" });
    expect(ripsOf(m)).toEqual([EXEC_BP]);
    expect(m.reg("rax")).toBe(1n);
  });
});

describe("ICEBP, INT 1 and INT3", () => {
  it("ICEBP raises a trap-class #DB that leaves DR6 as it is", () => {
    for (const preset of [0, BS | 0x2]) {
      const m = machine();
      m.setReg("rdx", BigInt(preset));
      m.runCode("0f 23 f2 f1 f4"); // mov dr6, rdx; icebp; s: hlt
      expect(dbs(m)).toEqual([{ rip: 4, dr6: dr6(preset), rflags: 0x2, rcx: 0 }]);
      expect(m.rip).toBe(BigInt(CODE + 5));
    }
  });

  /** A watched selector for MOV SS: DR1 read-or-write at DATA, which holds 0x10. */
  function watchedSs(): TestMachine {
    const m = machine();
    m.write64(DATA, 0x10n);
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rdx", 0x00f00408n);
    return m;
  }

  it("MOV SS hitting a data breakpoint, then ICEBP: one #DB (debug.c 'MOV SS + watchpoint + ICEBP')", () => {
    const m = watchedSs();
    m.runCode("0f 23 cb 0f 23 fa 8e 13 2e 2e f1 f4"); // mov dr1, rbx; mov dr7, rdx; mov ss, [rbx]; cs cs icebp; hlt
    expect(ripsOf(m)).toEqual([11]);
  });

  it("MOV SS hitting a data breakpoint, then INT 1: the software interrupt and the held #DB both run", () => {
    const m = watchedSs();
    m.runCode("0f 23 cb 0f 23 fa 8e 13 cd 01 f4"); // … mov ss, [rbx]; int 1; hlt
    // The held #DB is taken at the first instruction of the INT 1 handler, which then runs for INT 1.
    expect(ripsOf(m)).toEqual([DB_HANDLER - CODE, 10]);
    expect(dr6Of(m)[0]).toBe(dr6(0x2));
  });

  it("MOV SS hitting a data breakpoint, then INT3: #DB and #BP both delivered", () => {
    const m = watchedSs();
    m.runCode("0f 23 cb 0f 23 fa 8e 13 cc f4"); // … mov ss, [rbx]; int3; hlt
    expect(ripsOf(m)).toEqual([HANDLERS + 16 * 3 - CODE]);
    expect(m.vectors()).toEqual([3]);
    expect(m.read64(STACK_TOP - 40)).toBe(BigInt(CODE + 9)); // the #BP frame: RIP after INT3
  });
});

describe("RF in exception frames", () => {
  it("faults push RF set, traps and software interrupts push it clear", () => {
    const f = new TestMachine();
    f.installIdt();
    f.runCode("0f 0b"); // ud2
    expect(f.vectors()).toEqual([6]);
    expect(f.read64(STACK_TOP - 24)).toBe(BigInt(RF | 0x2));
    const t = new TestMachine();
    t.installIdt();
    t.runCode("cc"); // int3
    expect(t.vectors()).toEqual([3]);
    expect(t.read64(STACK_TOP - 24)).toBe(0x2n);
  });
});

describe("the debugger's slots and the guest's", () => {
  const none: (X86Breakpoint | null)[] = [null, null, null, null];
  function debuggerSlot(i: number, b: X86Breakpoint): X86VpDebug {
    const slots = none.slice();
    slots[i] = b;
    return { singleStep: false, slots };
  }

  it("an execute breakpoint of both at one address: the debugger stops first; resumed, the guest's #DB has only its own bit", () => {
    const m = machine(0x4);
    m.setReg("rbx", BigInt(CODE + EXEC_BP));
    m.setReg("rcx", 0x420n); // guest DR2
    m.setReg("rdx", 0n);
    m.vp.setDebug(debuggerSlot(1, { addressLo: CODE + EXEC_BP, addressHi: 0, type: 0, length: 1 }));
    load(m, EXEC);
    expect(m.vp.run(1000)).toEqual({ kind: "hwBreakpoint", slot: 1 });
    expect(m.rip).toBe(BigInt(CODE + EXEC_BP));
    expect(dbs(m)).toEqual([]);
    expect(m.word(GUEST_DR6)).toBe(0);
    expect(m.vp.run(1000)).toEqual({ kind: "halted" });
    expect(dbs(m)).toEqual([{ rip: EXEC_BP, dr6: dr6(0x4), rflags: 0x2, rcx: 0x420 }]);
    expect(m.reg("rax")).toBe(1n);
  });

  it("a data breakpoint of both on one store: the debugger stops after it; resumed, the guest's #DB comes first", () => {
    const m = machine();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rdx", 0n);
    m.setReg("rcx", 0x00d00408n); // guest DR1: 4-byte write
    m.vp.setDebug(debuggerSlot(3, { addressLo: DATA, addressHi: 0, type: 2, length: 8 }));
    load(m, DATA_PROGRAM);
    expect(m.vp.run(1000)).toEqual({ kind: "hwBreakpoint", slot: 3 });
    expect(m.rip).toBe(BigInt(CODE + WP));
    expect(dbs(m)).toEqual([]);
    expect(m.word(GUEST_DR6) & 0xf).toBe(0);
    // Single-stepping on: the next step is the guest's #DB delivery, landing on its handler.
    m.vp.setDebug({ singleStep: true, slots: [null, null, null, { addressLo: DATA, addressHi: 0, type: 2, length: 8 }] });
    expect(m.vp.run(1000)).toEqual({ kind: "singleStep" });
    expect(m.rip).toBe(BigInt(DB_HANDLER));
    m.vp.setDebug({ singleStep: false, slots: none });
    expect(m.vp.run(1000)).toEqual({ kind: "halted" });
    expect(dbs(m)).toEqual([{ rip: WP, dr6: dr6(0x2), rflags: 0x2, rcx: 0x00d00408 }]);
  });

  it("guest breakpoints never stop the debugger, and the debugger's hits never reach the guest's DR6", () => {
    const m = machine();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rdx", 0n);
    m.setReg("rcx", 0x00f00408n);
    load(m, DATA_PROGRAM);
    expect(m.vp.run(1000)).toEqual({ kind: "halted" });
    expect(ripsOf(m)).toEqual([WP, RD]);
    const n = machine();
    n.vp.setDebug(debuggerSlot(0, { addressLo: DATA, addressHi: 0, type: 3, length: 8 }));
    n.setReg("rbx", BigInt(DATA));
    n.setReg("rdx", 0n);
    n.setReg("rcx", 0x400n);
    load(n, DATA_PROGRAM);
    expect(n.vp.run(1000)).toEqual({ kind: "hwBreakpoint", slot: 0 });
    expect(n.vp.run(1000)).toEqual({ kind: "hwBreakpoint", slot: 0 });
    expect(n.vp.run(1000)).toEqual({ kind: "halted" });
    expect(n.word(GUEST_DR6)).toBe(0);
    expect(dbs(n)).toEqual([]);
    expect(n.rflags & (TF | RF)).toBe(0);
  });
});
