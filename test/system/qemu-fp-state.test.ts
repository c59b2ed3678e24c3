// XMM0-15, MXCSR and the x87 state on QEMU through the server and SDK: GetVpState against QEMU's
// own monitor, SetVpState read back and seen by the guest (instructions planted at RIP and
// stepped), ST(i) against TOP (QEMU's gdbstub numbers the physical registers), and the fields
// QEMU cannot set refused with nothing written.
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
import type { QemuVm } from "../../src/qemu";
import { expectRpcError } from "../integration/harness";
import { describeWithQemu, startQemuHarness, type QemuHarness } from "./qemu-harness";

const CR4_OSFXSR = 1n << 9n;

function x86Of(s: DebuggerVpState): X86VpState {
  if (s.arch !== "x86_64") throw new Error("not x86_64");
  return s.state;
}

function fpOf(s: DebuggerVpState): X86FpState {
  const fp = x86Of(s).fp;
  if (!fp) throw new Error("GetVpState left fp unset");
  return fp;
}

function copyState(s: DebuggerVpState): X86VpState {
  const x = x86Of(s);
  return { ...x, gp: [...x.gp], fp: x.fp && { ...x.fp, xmm: x.fp.xmm.map((b) => b.slice()), st: x.fp.st.map((b) => b.slice()) } };
}

/** QEMU's monitor view: `XMMnn=hi lo` and `FPRn=significand exponent` (physical registers), FTW and FSW. */
async function monitorFp(vm: QemuVm): Promise<{ xmm: bigint[]; fpr: bigint[]; ftw: number; fsw: number; mxcsr: number }> {
  const text = await vm.humanMonitorCommand("info registers");
  const xmm: bigint[] = [];
  for (const m of text.matchAll(/XMM(\d\d)=([0-9a-f]{16}) ([0-9a-f]{16})/g)) xmm[Number(m[1])] = BigInt(`0x${m[2]}${m[3]}`);
  const fpr: bigint[] = [];
  for (const m of text.matchAll(/FPR(\d)=([0-9a-f]{16}) ([0-9a-f]{4})/g)) fpr[Number(m[1])] = BigInt(`0x${m[3]}${m[2]}`);
  const f = /FSW=([0-9a-f]{4}) .*FTW=([0-9a-f]{2}) MXCSR=([0-9a-f]{8})/.exec(text);
  if (!f) throw new Error(`no FSW/FTW/MXCSR in:\n${text}`);
  return { xmm, fpr, fsw: parseInt(f[1], 16), ftw: parseInt(f[2], 16), mxcsr: parseInt(f[3], 16) };
}

describeWithQemu("x86_64")("x86 FP state on QEMU", () => {
  let h: QemuHarness;
  let s: Session;
  let vm: QemuVm;
  let saved: DebuggerVpState;
  let savedCode: Uint8Array;
  let rip: bigint;

  /** Runs `code` planted at the saved RIP, one instruction per step (the caller counts them). */
  async function run(code: number[], steps: number): Promise<void> {
    await s.writeMemory({ gva: rip, vp: 0 }, Uint8Array.from(code));
    for (let i = 0; i < steps; i++) {
      const r = await s.step(0, { count: 1 });
      if ("stop" in r && r.stop) throw new Error(`the step stopped with ${JSON.stringify(r.stop)}`);
    }
  }

  beforeAll(async () => {
    h = await startQemuHarness("x86_64", { id: "qemu-fp" });
    vm = h.vms[0] as QemuVm;
    s = await h.client.attach("qemu-fp");
    await s.break();
    saved = await s.getVpState(0);
    rip = x86Of(saved).rip;
    savedCode = await s.readMemory({ gva: rip, vp: 0 }, 16);
  }, 60_000);
  afterAll(async () => {
    if (s && savedCode) {
      await s.writeMemory({ gva: rip, vp: 0 }, savedCode).catch(() => undefined);
      const back = copyState(saved);
      delete back.fp; // the x87 tags cannot be written back: FNINIT below empties the stack instead
      await s.setVpState(0, { arch: "x86_64", state: back }).catch(() => undefined);
    }
    await s?.detach().catch(() => undefined);
    await h?.close();
  });

  it("reads the FP state QEMU's monitor shows: MXCSR, FCW, an empty stack, no XCR0", async () => {
    const fp = fpOf(saved);
    const mon = await monitorFp(vm);
    expect(fp.xmm.map(xmmToBigint)).toEqual(mon.xmm);
    expect({ mxcsr: fp.mxcsr, fsw: fp.fsw, ftw: fp.ftw, fop: fp.fop, fip: fp.fip, fdp: fp.fdp }).toEqual({
      mxcsr: mon.mxcsr,
      fsw: mon.fsw,
      ftw: 0xffff,
      fop: 0,
      fip: 0n,
      fdp: 0n,
    });
    expect(mon.ftw).toBe(0); // abridged: no register in use
    expect(fp.fcw).toBe(0x037f);
    expect(fp.xcr0).toBeUndefined();
  });

  it("writes XMM0-15 and MXCSR, which QEMU's monitor and the guest (MOVQ RAX, XMM3) then see", async () => {
    const state = copyState(saved);
    state.fp!.xmm = Array.from({ length: 16 }, (_, n) => xmmFromBigint((0xa5n << 120n) | (BigInt(n) << 64n) | (0x1122_3344_0000_0000n + BigInt(n))));
    state.fp!.mxcsr = 0x1fc0; // DAZ on
    state.cr4 |= CR4_OSFXSR; // SSE instructions need it
    await s.setVpState(0, { arch: "x86_64", state });
    const fp = fpOf(await s.getVpState(0));
    expect(fp.xmm.map(xmmToBigint)).toEqual(state.fp!.xmm.map(xmmToBigint));
    expect(fp.mxcsr).toBe(0x1fc0);
    const mon = await monitorFp(vm);
    expect(mon.xmm).toEqual(state.fp!.xmm.map(xmmToBigint));
    expect(mon.mxcsr).toBe(0x1fc0);

    await run([0x66, 0x48, 0x0f, 0x7e, 0xd8], 1); // movq rax, xmm3
    const after = x86Of(await s.getVpState(0));
    expect(after.gp[0]).toBe(0x1122_3344_0000_0003n);
    expect(after.rip).toBe(rip + 5n);
  });

  it("shows ST(i) in stack order (QEMU numbers physical registers), and a written ST(1) is what FXCH brings to ST(0)", async () => {
    const back = copyState(saved);
    delete back.fp;
    await s.setVpState(0, { arch: "x86_64", state: back });
    // fld1; fldpi; fxch; fninit
    await s.writeMemory({ gva: rip, vp: 0 }, Uint8Array.from([0xd9, 0xe8, 0xd9, 0xeb, 0xd9, 0xc9, 0xdb, 0xe3]));
    await s.step(0, { count: 1 });
    await s.step(0, { count: 1 });
    const loaded = await s.getVpState(0);
    const fp = fpOf(loaded);
    expect((fp.fsw >> 11) & 7).toBe(6);
    expect(x87ToNumber(fp.st[0])).toBe(Math.PI);
    expect(x87ToNumber(fp.st[1])).toBe(1);
    // R6 and R7 valid, the rest empty.
    expect(fp.ftw).toBe(0x0fff);
    const mon = await monitorFp(vm);
    expect(mon.ftw).toBe(0xc0);
    expect(mon.fpr[7]).toBe(0x3fff_8000_0000_0000_0000n);

    // ST(1) is R7: write 2.5 there, FXCH swaps it into ST(0).
    const state = copyState(loaded);
    state.fp!.st[1] = x87FromNumber(2.5);
    await s.setVpState(0, { arch: "x86_64", state });
    expect((await monitorFp(vm)).fpr[7]).toBe(0x4000_a000_0000_0000_0000n);
    expect(fpOf(await s.getVpState(0)).st.slice(0, 2).map(x87ToNumber)).toEqual([Math.PI, 2.5]);
    await s.step(0, { count: 1 }); // fxch
    const swapped = fpOf(await s.getVpState(0));
    expect(swapped.st.slice(0, 2).map(x87ToNumber)).toEqual([2.5, Math.PI]);
    await s.step(0, { count: 1 }); // fninit
    const reset = fpOf(await s.getVpState(0));
    expect({ fsw: reset.fsw, ftw: reset.ftw, fcw: reset.fcw }).toEqual({ fsw: 0, ftw: 0xffff, fcw: 0x037f });
  });

  it("writes FCW and FSW (TOP moves the stack view)", async () => {
    const before = await s.getVpState(0);
    const state = copyState(before);
    state.fp!.fcw = 0x027f;
    state.fp!.fsw = 3 << 11;
    // The physical registers stay: ST(0) is now R3.
    const physical = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => fpOf(before).st[(i - ((fpOf(before).fsw >> 11) & 7) + 8) & 7]);
    state.fp!.st = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => physical[(3 + i) & 7]);
    await s.setVpState(0, { arch: "x86_64", state });
    const fp = fpOf(await s.getVpState(0));
    expect({ fcw: fp.fcw, fsw: fp.fsw }).toEqual({ fcw: 0x027f, fsw: 3 << 11 });
    expect(fp.st).toEqual(state.fp!.st);
    const mon = await monitorFp(vm);
    expect(mon.fsw).toBe(3 << 11);
    state.fp!.fcw = 0x037f;
    state.fp!.fsw = 0;
    state.fp!.st = physical;
    await s.setVpState(0, { arch: "x86_64", state });
  });

  describe("refuses what QEMU cannot set, writing nothing", () => {
    const cases: [string, (fp: X86FpState) => void, Status, string][] = [
      ["a tag word that fills an empty register", (fp) => void (fp.ftw = 0xfffc), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER"],
      ["a new FOP", (fp) => void (fp.fop = 0x1e8), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER"],
      ["a new FIP", (fp) => void (fp.fip = 0x1000n), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER"],
      ["a new FDP", (fp) => void (fp.fdp = 0x1000n), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER"],
      ["any XCR0", (fp) => void (fp.xcr0 = 1n), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER"],
      ["MXCSR reserved bits", (fp) => void (fp.mxcsr = 0x10000), Status.INVALID_ARGUMENT, "VP_STATE_INVALID"],
      ["9 stack registers", (fp) => void fp.st.push(new Uint8Array(10)), Status.INVALID_ARGUMENT, "INVALID_ARRAY_LENGTH"],
    ];
    it.each(cases)("%s", async (_what, spoil, code, reason) => {
      const before = await s.getVpState(0);
      const state = copyState(before);
      state.gp[1] ^= 0xffn;
      state.fp!.xmm[7] = xmmFromBigint(0xdeadn);
      spoil(state.fp!);
      const err = await expectRpcError(s.setVpState(0, { arch: "x86_64", state }), code, reason);
      expect(err.message).toMatch(/fp\./);
      expect(await s.getVpState(0)).toEqual(before);
    });
  });
});
