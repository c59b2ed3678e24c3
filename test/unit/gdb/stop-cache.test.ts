// The gdb bridge's stop cache: a step's register delta applied to the registers before it gives
// the registers after it (both architectures, every register number), and reads answer only
// ranges this stop has read, until forget().
import type { DebuggerVpState } from "../../../src/client";
import { diffRegisters, flattenVpState } from "../../../src/core/register-numbering";
import { applyRegisterDelta } from "../../../src/core/register-numbering";
import { StopCache } from "../../../src/gdb/stop-cache";

const seg = (n: bigint) => ({ base: n * 0x1000n, limit: Number(n) * 7, selector: Number(n) * 8, attributes: 0xa09b + Number(n) });

function x86(k: bigint): DebuggerVpState {
  return {
    arch: "x86_64",
    state: {
      gp: Array.from({ length: 16 }, (_, i) => BigInt(i + 1) * k),
      rip: 0xffff_ffff_8010_1000n + k,
      rflags: 0x246n + k,
      cr0: 0x8000_0011n + k,
      cr2: k,
      cr3: 0x1000n * k,
      cr4: 0x20n + k,
      cr8: k & 0xfn,
      efer: 0x500n + k,
      kernelGsBase: 0x77n * k,
      es: seg(k),
      cs: seg(k + 1n),
      ss: seg(k + 2n),
      ds: seg(k + 3n),
      fs: seg(k + 4n),
      gs: seg(k + 5n),
    },
  };
}

function aarch64(k: bigint): DebuggerVpState {
  return {
    arch: "aarch64",
    state: {
      x: Array.from({ length: 31 }, (_, i) => BigInt(i + 1) * k),
      spEl0: 0x10n * k,
      spEl1: 0x20n * k,
      pc: 0x4000_0000n + k,
      cpsr: 0x3c5n + k,
      sctlrEl1: k,
      tcrEl1: 2n * k,
      ttbr0El1: 3n * k,
      ttbr1El1: 4n * k,
    },
  };
}

describe("applyRegisterDelta", () => {
  it.each([
    ["x86_64", x86],
    ["aarch64", aarch64],
  ] as const)("turns the registers before a step into the ones after it on %s, for every register number", (_, make) => {
    const before = make(3n);
    const after = make(5n);
    const delta = diffRegisters(flattenVpState(before), flattenVpState(after));
    expect(delta.registers.length).toBe(flattenVpState(before).length); // every number changed
    expect(applyRegisterDelta(before, delta)).toEqual(after);
    expect(before).toEqual(make(3n)); // the state it started from is left alone
    // One register: only that one moves.
    const one = applyRegisterDelta(before, { registers: [2], values: [0x99n] })!;
    expect(flattenVpState(one)).toEqual(flattenVpState(before).map((v, i) => (i === 2 ? 0x99n : v)));
    expect(applyRegisterDelta(before, { registers: [], values: [] })).toEqual(before);
  });

  it("refuses a number it does not know, or a delta whose lists differ in length", () => {
    expect(applyRegisterDelta(x86(1n), { registers: [49], values: [1n] })).toBeUndefined();
    expect(applyRegisterDelta(aarch64(1n), { registers: [39], values: [1n] })).toBeUndefined();
    expect(applyRegisterDelta(x86(1n), { registers: [-1], values: [1n] })).toBeUndefined();
    expect(applyRegisterDelta(x86(1n), { registers: [1, 2], values: [1n] })).toBeUndefined();
  });
});

describe("StopCache", () => {
  it("answers reads inside a range it kept for the same VP, and nothing after forget()", async () => {
    const cache = new StopCache();
    cache.keep(0, 0x1000n, Uint8Array.of(1, 2, 3, 4));
    expect(await cache.memory(0, 0x1001n, 2)).toEqual(Uint8Array.of(2, 3));
    expect(await cache.memory(0, 0x1000n, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(await cache.memory(0, 0x1002n, 4)).toBeUndefined(); // runs past it
    expect(await cache.memory(1, 0x1000n, 1)).toBeUndefined(); // another VP
    cache.keepRegisters(0, x86(1n));
    expect(cache.registersOf(0)).toEqual(x86(1n));
    cache.forget();
    expect(await cache.memory(0, 0x1000n, 1)).toBeUndefined();
    expect(cache.registersOf(0)).toBeUndefined();
  });
});
