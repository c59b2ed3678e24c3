// XMM0-15, MXCSR and the x87 state through GetVpState / SetVpState on the embedded machine, over
// both session transports: reset values, round trips, ST(i) against TOP, the tag word, leaving
// fp unset, and refusals that change nothing.
import { Status } from "nice-grpc";
import {
  x87FromNumber,
  x87ToNumber,
  xmmFromBigint,
  xmmToBigint,
  type DebuggerVpState,
  type Session,
  type X86FpState,
  type X86VpState,
} from "../../src/client";
import { expectRpcError, startHarness, type Harness } from "./harness";
import * as L from "../../src/emu/x86_64/vp-layout";

const VM = "demo";

function fpOf(s: DebuggerVpState): X86FpState {
  if (s.arch !== "x86_64") throw new Error("not x86_64");
  if (!s.state.fp) throw new Error("GetVpState left fp unset");
  return s.state.fp;
}

function withFp(s: DebuggerVpState, fp: X86FpState | undefined): DebuggerVpState {
  if (s.arch !== "x86_64") throw new Error("not x86_64");
  const state: X86VpState = { ...s.state, gp: [...s.state.gp] };
  if (fp) state.fp = fp;
  else delete state.fp;
  return { arch: "x86_64", state };
}

function copyFp(fp: X86FpState): X86FpState {
  return { ...fp, xmm: fp.xmm.map((b) => b.slice()), st: fp.st.map((b) => b.slice()) };
}

/** A state with every FP field changed: distinct XMM patterns, three values on the stack with TOP = 5. */
function sampleFp(base: X86FpState): X86FpState {
  const fp = copyFp(base);
  fp.xmm = Array.from({ length: 16 }, (_, n) => xmmFromBigint((BigInt(n + 1) << 120n) | (0x0123456789abcdefn << 32n) | BigInt(n * 0x1111)));
  fp.mxcsr = 0x9fc0; // FZ | all masks | DAZ, round toward zero
  fp.fcw = 0x027f; // double precision
  fp.fsw = (5 << 11) | 0x0020; // TOP = 5, PE
  fp.st = [1.5, -2.25, 0, 3, 4, 5, 6, 7].map((v) => x87FromNumber(v));
  // ST(0)..ST(2) are R5, R6, R7 and hold values; R0..R4 are empty. The classes are recomputed.
  fp.ftw = 0x03ff;
  fp.fop = 0x1e8;
  fp.fip = 0xffff_ffff_8010_1234n;
  fp.fdp = 0xffff_ffff_8020_0000n;
  return fp;
}

for (const transport of ["unary", "stream"] as const) {
  describe(`FP state on the embedded machine (${transport} session)`, () => {
    let h: Harness;
    let session: Session;

    beforeAll(async () => {
      h = await startHarness({ vpCount: 2 });
      session = await h.client.attach(VM, { transport });
      await session.break();
    });
    afterAll(async () => {
      await session?.detach().catch(() => undefined);
      await h.close();
    });

    it("GetVpState fills fp with the reset state: MXCSR 0x1f80, FCW 0x037f, an empty stack, XCR0 1", async () => {
      const fp = fpOf(await session.getVpState(1));
      expect(fp.xmm).toHaveLength(16);
      expect(fp.st).toHaveLength(8);
      for (const x of fp.xmm) expect(x).toHaveLength(16);
      for (const s of fp.st) expect(s).toHaveLength(10);
      expect({ mxcsr: fp.mxcsr, fcw: fp.fcw, fsw: fp.fsw, ftw: fp.ftw, fop: fp.fop, xcr0: fp.xcr0 }).toEqual({
        mxcsr: 0x1f80,
        fcw: 0x037f,
        fsw: 0,
        ftw: 0xffff,
        fop: 0,
        xcr0: 1n,
      });
      // The unary RPC (no session) and GetVpStates answer the same.
      expect(fpOf(await h.client.getVpState(VM, 1))).toEqual(fp);
      const all = await session.getVpStates();
      expect(all.map((e) => e.vp)).toEqual([0, 1]);
      expect(fpOf(all[1].state)).toEqual(fp);
    });

    it("writes every FP field and reads it back; the tag word keeps the empty registers and recomputes the rest", async () => {
      const before = await session.getVpState(0);
      const fp = sampleFp(fpOf(before));
      await session.setVpState(0, withFp(before, fp));
      const after = await session.getVpState(0);
      const got = fpOf(after);
      expect(got.xmm.map(xmmToBigint)).toEqual(fp.xmm.map(xmmToBigint));
      expect(got.st.map(x87ToNumber)).toEqual([1.5, -2.25, 0, 3, 4, 5, 6, 7]);
      expect(got.st).toEqual(fp.st);
      // R5 (1.5) valid, R6 (-2.25) valid, R7 (+0) zero; R0-R4 empty.
      expect(got.ftw).toBe(0x03ff | (0b01 << 14));
      expect({ mxcsr: got.mxcsr, fcw: got.fcw, fsw: got.fsw, fop: got.fop, fip: got.fip, fdp: got.fdp, xcr0: got.xcr0 }).toEqual({
        mxcsr: fp.mxcsr,
        fcw: fp.fcw,
        fsw: fp.fsw,
        fop: fp.fop,
        fip: fp.fip,
        fdp: fp.fdp,
        xcr0: 1n,
      });
      // The rest of the state is as it was.
      expect(withFp(after, undefined)).toEqual(withFp(before, undefined));
      // The other VP's FP state did not move.
      expect(fpOf(await session.getVpState(1)).xmm.map(xmmToBigint)).toEqual(Array(16).fill(0n));
    });

    it("stores ST(i) in physical register (TOP + i) mod 8, the words the interpreter runs on", async () => {
      const before = await session.getVpState(0);
      const fp = copyFp(fpOf(before));
      fp.fsw = 6 << 11; // TOP = 6: ST(0) = R6, ST(1) = R7, ST(2) = R0
      fp.st = [10, 11, 12, 13, 14, 15, 16, 17].map((v) => x87FromNumber(v));
      fp.ftw = 0xffff;
      await session.setVpState(0, withFp(before, fp));
      // The register words the interpreter uses (src/emu/x86_64/vp-layout.ts): R6 holds ST(0).
      const regs = (h.vms[0] as unknown as { regs: Uint32Array }).regs;
      const word = (r: number, k: number) => regs[0 * L.VP_WORDS + L.FPR + r * L.FPR_WORDS + k];
      expect([word(6, 1), word(6, 2)]).toEqual([0xa000_0000, 0x4002]); // 10 = 1.25 * 2^3
      expect([word(0, 1), word(0, 2)]).toEqual([0xc000_0000, 0x4002]); // ST(2) = 12 = 1.5 * 2^3
      expect(regs[L.FTW]).toBe(0xffff);
      // And XMM words least-significant first.
      fp.xmm[3] = xmmFromBigint(0x0f0e0d0c_0b0a0908_07060504_03020100n);
      await session.setVpState(0, withFp(before, fp));
      expect(Array.from(regs.subarray(L.XMM + 12, L.XMM + 16))).toEqual([0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c]);
    });

    it("leaves the FP state as it is when fp is unset (clients that predate it)", async () => {
      const before = await session.getVpState(0);
      const fpBefore = fpOf(before);
      const rax = (before.state as X86VpState).gp[0];
      const changed = withFp(before, undefined);
      (changed.state as X86VpState).gp[0] = rax ^ 0x5a5an;
      await session.setVpState(0, changed);
      const after = await session.getVpState(0);
      expect((after.state as X86VpState).gp[0]).toBe(rax ^ 0x5a5an);
      expect(fpOf(after)).toEqual(fpBefore);
      (changed.state as X86VpState).gp[0] = rax;
      await session.setVpState(0, changed);
    });

    describe("refusals change nothing", () => {
      const cases: [string, (fp: X86FpState) => void, Status, string, Record<string, string>][] = [
        ["15 XMM registers", (fp) => void fp.xmm.pop(), Status.INVALID_ARGUMENT, "INVALID_ARRAY_LENGTH", { field: "state.x86_64.fp.xmm", length: "15", expected: "16" }],
        ["17 XMM registers", (fp) => void fp.xmm.push(new Uint8Array(16)), Status.INVALID_ARGUMENT, "INVALID_ARRAY_LENGTH", { field: "state.x86_64.fp.xmm" }],
        ["an 8-byte XMM5", (fp) => void (fp.xmm[5] = new Uint8Array(8)), Status.INVALID_ARGUMENT, "INVALID_ARRAY_LENGTH", { field: "state.x86_64.fp.xmm[5]", length: "8", expected: "16" }],
        ["7 stack registers", (fp) => void fp.st.pop(), Status.INVALID_ARGUMENT, "INVALID_ARRAY_LENGTH", { field: "state.x86_64.fp.st", expected: "8" }],
        ["an 8-byte ST(3)", (fp) => void (fp.st[3] = new Uint8Array(8)), Status.INVALID_ARGUMENT, "INVALID_ARRAY_LENGTH", { field: "state.x86_64.fp.st[3]", expected: "10" }],
        ["MXCSR bit 16", (fp) => void (fp.mxcsr = 0x1_1f80), Status.INVALID_ARGUMENT, "VP_STATE_INVALID", { field: "state.x86_64.fp.mxcsr", value: "0x11f80" }],
        ["MXCSR bit 31", (fp) => void (fp.mxcsr = 0x8000_1f80), Status.INVALID_ARGUMENT, "VP_STATE_INVALID", { field: "state.x86_64.fp.mxcsr" }],
        ["a 17-bit FCW", (fp) => void (fp.fcw = 0x1_037f), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE", { field: "state.x86_64.fp.fcw", max: "0xffff" }],
        ["a 17-bit FSW", (fp) => void (fp.fsw = 0x1_0000), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE", { field: "state.x86_64.fp.fsw" }],
        ["a 17-bit tag word", (fp) => void (fp.ftw = 0x1_ffff), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE", { field: "state.x86_64.fp.ftw" }],
        ["a 12-bit FOP", (fp) => void (fp.fop = 0x800), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE", { field: "state.x86_64.fp.fop", max: "0x7ff" }],
        ["a new XCR0", (fp) => void (fp.xcr0 = 3n), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER", { field: "fp.xcr0", value: "0x3" }],
      ];
      it.each(cases)("%s", async (_what, spoil, code, reason, metadata) => {
        const before = await session.getVpState(0);
        const fp = sampleFp(fpOf(before));
        spoil(fp);
        // Other fields change too: none of them may be written either.
        const state = withFp(before, fp);
        (state.state as X86VpState).gp[3] ^= 0xffn;
        const err = await expectRpcError(session.setVpState(0, state), code, reason, metadata);
        expect(err.message).toMatch(/fp\.(xmm|st|mxcsr|fcw|fsw|ftw|fop|xcr0)/);
        expect(await session.getVpState(0)).toEqual(before);
      });

      it("XCR0 sent with its current value, or unset, is accepted", async () => {
        const before = await session.getVpState(0);
        const fp = sampleFp(fpOf(before));
        await session.setVpState(0, withFp(before, { ...fp, xcr0: 1n }));
        const { xcr0: _xcr0, ...noXcr0 } = fp;
        await session.setVpState(0, withFp(before, noXcr0));
        expect(fpOf(await session.getVpState(0)).xcr0).toBe(1n);
      });
    });
  });
}

describe("the guest runs on the FP state SetVpState writes (embedded machine)", () => {
  let h: Harness;
  let session: Session;
  let saved: DebuggerVpState;
  let savedCode: Uint8Array;
  let rip: bigint;
  const CR4_OSFXSR = 1n << 9n;

  beforeAll(async () => {
    h = await startHarness({ vpCount: 1 });
    session = await h.client.attach(VM);
    await session.break();
    saved = await session.getVpState(0);
    rip = (saved.state as X86VpState).rip;
    savedCode = await session.readMemory({ gva: rip, vp: 0 }, 16);
  });
  afterAll(async () => {
    await session?.writeMemory({ gva: rip, vp: 0 }, savedCode).catch(() => undefined);
    await session?.setVpState(0, saved).catch(() => undefined);
    await session?.detach().catch(() => undefined);
    await h?.close();
  });

  /** Plants `code` at the saved RIP from `state`, runs `steps` instructions, answers the registers after. */
  async function run(state: X86VpState, code: number[], steps: number): Promise<X86VpState> {
    await session.writeMemory({ gva: rip, vp: 0 }, Uint8Array.from(code));
    await session.setVpState(0, { arch: "x86_64", state: { ...state, rip } });
    const r = await session.step(0, { count: steps });
    if ("stop" in r && r.stop) throw new Error(`stopped early: ${JSON.stringify(r.stop)}`);
    return (await session.getVpState(0)).state as X86VpState;
  }

  it("MOVQ RAX, XMM3 reads the XMM3 written; CVTSD2SI rounds by the MXCSR written", async () => {
    const state: X86VpState = { ...(saved.state as X86VpState), gp: [...(saved.state as X86VpState).gp], cr4: (saved.state as X86VpState).cr4 | CR4_OSFXSR };
    const fp = copyFp(fpOf(saved));
    fp.xmm[3] = xmmFromBigint((0xa5n << 120n) | 0x1122_3344_5566_7788n);
    fp.xmm[0] = xmmFromBigint(0x4004_0000_0000_0000n); // 2.5
    state.fp = fp;
    const movq = await run(state, [0x66, 0x48, 0x0f, 0x7e, 0xd8], 1); // movq rax, xmm3
    expect(movq.gp[0]).toBe(0x1122_3344_5566_7788n);
    expect(movq.rip).toBe(rip + 5n);
    const cvt = [0xf2, 0x48, 0x0f, 0x2d, 0xc0]; // cvtsd2si rax, xmm0
    expect((await run({ ...state, fp: { ...fp, mxcsr: 0x1f80 } }, cvt, 1)).gp[0]).toBe(2n); // nearest even
    expect((await run({ ...state, fp: { ...fp, mxcsr: 0x5f80 } }, cvt, 1)).gp[0]).toBe(3n); // toward +inf
    const after = fpOf(await session.getVpState(0));
    expect(after.mxcsr & 0x3f).toBe(0x20); // PE: 2.5 is not an integer
  });

  it("FLD1; FLDPI leave ST(0) = pi, ST(1) = 1 (TOP 6); a written ST(1) is what FXCH brings to ST(0); FNINIT empties the stack", async () => {
    const state: X86VpState = { ...(saved.state as X86VpState), gp: [...(saved.state as X86VpState).gp] };
    delete state.fp;
    // fld1; fldpi; fxch; fninit
    const code = [0xd9, 0xe8, 0xd9, 0xeb, 0xd9, 0xc9, 0xdb, 0xe3];
    const loaded = await run(state, code, 2);
    const fp = loaded.fp!;
    expect((fp.fsw >> 11) & 7).toBe(6);
    expect(fp.st.slice(0, 2).map(x87ToNumber)).toEqual([Math.PI, 1]);
    expect(fp.ftw).toBe(0x0fff);
    const written: X86VpState = { ...loaded, fp: { ...copyFp(fp), st: [fp.st[0], x87FromNumber(2.5), ...fp.st.slice(2)] } };
    await session.setVpState(0, { arch: "x86_64", state: written });
    const r = await session.step(0, { count: 1 }); // fxch
    expect("stop" in r && r.stop).toBeFalsy();
    expect(fpOf(await session.getVpState(0)).st.slice(0, 2).map(x87ToNumber)).toEqual([2.5, Math.PI]);
    await session.step(0, { count: 1 }); // fninit
    const reset = fpOf(await session.getVpState(0));
    expect({ fsw: reset.fsw, ftw: reset.ftw, fcw: reset.fcw }).toEqual({ fsw: 0, ftw: 0xffff, fcw: 0x037f });
  });
});
