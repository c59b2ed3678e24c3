import {
  type Aarch64VpState,
  MAX_STEP_COUNT,
  REGISTER_COUNT,
  VmmError,
  type X86VpState,
  checkStepCount,
  diffRegisters,
  flattenVpState,
} from "../../../src/core";

const seg = (n: number) => ({ base: BigInt(n) * 0x1000n, limit: n + 1, selector: n + 2, attributes: n + 3 });

function x86State(): X86VpState {
  return {
    gp: Array.from({ length: 16 }, (_, i) => BigInt(100 + i)),
    rip: 116n,
    rflags: 117n,
    cr0: 118n,
    cr2: 119n,
    cr3: 120n,
    cr4: 121n,
    cr8: 122n,
    efer: 123n,
    kernelGsBase: 124n,
    es: seg(10),
    cs: seg(20),
    ss: seg(30),
    ds: seg(40),
    fs: seg(50),
    gs: seg(60),
  };
}

function aarch64State(): Aarch64VpState {
  return {
    x: Array.from({ length: 31 }, (_, i) => BigInt(i)),
    spEl0: 31n,
    spEl1: 32n,
    pc: 33n,
    cpsr: 34n,
    sctlrEl1: 35n,
    tcrEl1: 36n,
    ttbr0El1: 37n,
    ttbr1El1: 38n,
  };
}

describe("flattenVpState", () => {
  it("numbers x86-64 registers as REGISTER_COUNT documents: gp, rip … kernel_gs_base, then 4 numbers per segment", () => {
    const flat = flattenVpState({ arch: "x86_64", state: x86State() });
    expect(flat).toHaveLength(REGISTER_COUNT.x86_64);
    expect(flat.slice(0, 25)).toEqual(Array.from({ length: 25 }, (_, i) => BigInt(100 + i)));
    expect(flat.slice(25, 29)).toEqual([0xa000n, 11n, 12n, 13n]); // es
    expect(flat.slice(29, 33)).toEqual([0x14000n, 21n, 22n, 23n]); // cs
    expect(flat.slice(45, 49)).toEqual([0x3c000n, 61n, 62n, 63n]); // gs
  });

  it("numbers aarch64 registers x0-x30, sp_el0, sp_el1, pc, cpsr, then the paging system registers", () => {
    const flat = flattenVpState({ arch: "aarch64", state: aarch64State() });
    expect(flat).toHaveLength(REGISTER_COUNT.aarch64);
    expect(flat).toEqual(Array.from({ length: 39 }, (_, i) => BigInt(i)));
  });
});

describe("diffRegisters", () => {
  it("lists the changed registers in number order with their new values", () => {
    const before = flattenVpState({ arch: "x86_64", state: x86State() });
    const next = x86State();
    next.gp[0] = 7n;
    next.rip = 0xffff_ffff_8010_1000n;
    next.ss = { ...next.ss, selector: 0x18 };
    const after = flattenVpState({ arch: "x86_64", state: next });
    expect(diffRegisters(before, after)).toEqual({ registers: [0, 16, 35], values: [7n, 0xffff_ffff_8010_1000n, 0x18n] });
  });

  it("is empty for equal states", () => {
    const flat = flattenVpState({ arch: "aarch64", state: aarch64State() });
    expect(diffRegisters(flat, [...flat])).toEqual({ registers: [], values: [] });
  });

  it("refuses states of different lengths", () => {
    expect(() => diffRegisters([1n], [1n, 2n])).toThrow(RangeError);
  });
});

describe("checkStepCount", () => {
  it("accepts 1..MAX_STEP_COUNT", () => {
    expect(() => checkStepCount(1)).not.toThrow();
    expect(() => checkStepCount(MAX_STEP_COUNT)).not.toThrow();
  });

  it.each([0, -1, MAX_STEP_COUNT + 1, 1.5, Number.NaN])("refuses %p as INVALID_ARGUMENT VALUE_OUT_OF_RANGE", (count) => {
    try {
      checkStepCount(count);
      throw new Error("did not throw");
    } catch (e) {
      expect(e).toBeInstanceOf(VmmError);
      expect((e as VmmError).code).toBe(3);
      expect((e as VmmError).reason).toBe("VALUE_OUT_OF_RANGE");
    }
  });
});
