import { VmmError, validateVpState, type Aarch64VpState, type SegmentRegister, type X86VpState } from "../../../src/core";

const seg = (selector: number, attributes: number, base = 0n, limit = 0xffff_ffff): SegmentRegister => ({ base, limit, selector, attributes });

/** The embedded machine's boot state: 64-bit mode, 4-level paging, higher-half RIP. */
const longMode: X86VpState = {
  gp: Array<bigint>(16).fill(0n),
  rip: 0xffff_ffff_8010_1000n,
  rflags: 0x2n,
  cr0: 0x8001_0033n,
  cr2: 0n,
  cr3: 0x1000n,
  cr4: 0x20n,
  cr8: 0n,
  efer: 0xd00n,
  kernelGsBase: 0n,
  es: seg(0x10, 0xc093),
  cs: seg(0x08, 0xa09b),
  ss: seg(0x10, 0xc093),
  ds: seg(0x10, 0xc093),
  fs: seg(0x10, 0xc093),
  gs: seg(0x10, 0xc093),
};

/** An x86 processor after reset (as QEMU reports it): real mode at F000:FFF0. */
const reset: X86VpState = {
  ...longMode,
  rip: 0xfff0n,
  cr0: 0x6000_0010n,
  cr3: 0n,
  cr4: 0n,
  efer: 0n,
  cs: seg(0xf000, 0x9b, 0xffff_0000n, 0xffff),
  ss: seg(0, 0x93, 0n, 0xffff),
};

function refusal(state: X86VpState): { reason: string; field: string } | "accepted" {
  try {
    validateVpState({ arch: "x86_64", state });
    return "accepted";
  } catch (e) {
    if (!(e instanceof VmmError)) throw e;
    expect(e.code).toBe(3); // INVALID_ARGUMENT
    expect(e.metadata.rule).toBeTruthy();
    return { reason: e.reason, field: e.metadata.field };
  }
}

const invalid = (register: string) => ({ reason: "VP_STATE_INVALID", field: `state.x86_64.${register}` });

describe("validateVpState (x86-64)", () => {
  it("accepts the states a processor can be in, whatever their mode", () => {
    expect(refusal(longMode)).toBe("accepted");
    expect(refusal(reset)).toBe("accepted");
    // 32-bit protected mode, paging off; then 32-bit paging; then PAE paging (no long mode).
    const protectedMode = { ...reset, cr0: 0x11n, rip: 0x10_0000n, cs: seg(0x08, 0xc09b) };
    expect(refusal(protectedMode)).toBe("accepted");
    expect(refusal({ ...protectedMode, cr0: 0x8000_0011n })).toBe("accepted");
    expect(refusal({ ...protectedMode, cr0: 0x8000_0011n, cr4: 0x20n })).toBe("accepted");
    // Long mode with LME set but paging still off (before the switch).
    expect(refusal({ ...protectedMode, cr4: 0x20n, efer: 0x100n })).toBe("accepted");
    // 5-level paging takes 57-bit canonical addresses.
    expect(refusal({ ...longMode, cr4: 0x1020n, rip: 0xff00_0000_0000_0000n })).toBe("accepted");
    // Compatibility mode (long mode, CS.L = 0) with a 32-bit RIP.
    expect(refusal({ ...longMode, rip: 0x1000n, cs: seg(0x18, 0xc09b) })).toBe("accepted");
  });

  it("refuses the finding's CR0 = 0 (long mode without paging) and EFER = 0 with a higher-half RIP", () => {
    expect(refusal({ ...longMode, cr0: 0n })).toEqual(invalid("cr0"));
    expect(refusal({ ...longMode, efer: 0n })).toEqual(invalid("rip"));
    // EFER = 0 with a RIP below 4 GiB is PAE-paging protected mode: a state the processor can be in.
    expect(refusal({ ...longMode, efer: 0n, rip: 0x1000n })).toBe("accepted");
  });

  it.each<[string, Partial<X86VpState>, string]>([
    ["CR0.PG without CR0.PE", { cr0: 0x8001_0032n }, "cr0"],
    ["CR0.NW without CR0.CD", { cr0: 0xa001_0033n }, "cr0"],
    ["a reserved CR0 bit (8)", { cr0: 0x8001_0133n }, "cr0"],
    ["CR0 bit 32", { cr0: 0x1_8001_0033n }, "cr0"],
    ["CR0.PG cleared while EFER.LMA = 1", { cr0: 0x0001_0033n }, "cr0"],
    ["EFER.LMA = 0 with CR0.PG and EFER.LME", { efer: 0x900n }, "efer"],
    ["EFER.LMA = 1 without EFER.LME", { efer: 0xc00n }, "efer"],
    ["a reserved EFER bit (9)", { efer: 0xf00n }, "efer"],
    ["CR4.PAE = 0 in long mode", { cr4: 0n }, "cr4"],
    ["CR4 bit 32", { cr4: 0x1_0000_0020n }, "cr4"],
    ["CR3 bit 52", { cr3: 1n << 52n }, "cr3"],
    ["RFLAGS bit 1 clear", { rflags: 0n }, "rflags"],
    ["RFLAGS bit 3", { rflags: 0xan }, "rflags"],
    ["RFLAGS bit 22", { rflags: 0x40_0002n }, "rflags"],
    ["RFLAGS.VM in long mode", { rflags: 0x2_0002n }, "rflags"],
    ["CS.L and CS.D in long mode", { cs: seg(0x08, 0xe09b) }, "cs.attributes"],
    ["a non-canonical RIP (4-level)", { rip: 0x0000_8000_0000_0000n }, "rip"],
    ["a non-canonical RIP (5-level)", { cr4: 0x1020n, rip: 0x0100_0000_0000_0000n }, "rip"],
    ["a RIP above 4 GiB in compatibility mode", { cs: seg(0x18, 0xc09b) }, "rip"],
  ])("refuses %s", (_name, edit, register) => {
    expect(refusal({ ...longMode, ...edit })).toEqual(invalid(register));
  });

  it("refuses what cannot exist outside long mode", () => {
    expect(refusal({ ...reset, cr4: 1n << 17n })).toEqual(invalid("cr4")); // PCIDE
    expect(refusal({ ...reset, cr3: 0x1_0000_0000n })).toEqual(invalid("cr3"));
    expect(refusal({ ...reset, rflags: 0x2_0002n })).toEqual(invalid("rflags")); // VM in real mode
    expect(refusal({ ...reset, cr0: 0x11n, rflags: 0x2_0002n, rip: 0x100n })).toBe("accepted"); // virtual-8086 mode
  });

  it("names the field under the prefix it is given, and says the rule", () => {
    try {
      validateVpState({ arch: "x86_64", state: { ...longMode, cr0: 0n } }, "states[2]");
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(VmmError);
      const err = e as VmmError;
      expect(err.metadata).toEqual({ field: "states[2].x86_64.cr0", value: "0x0", rule: expect.stringContaining("EFER.LMA") });
      expect(err.message).toMatch(/^states\[2\]\.x86_64\.cr0 = 0x0 is a state the processor cannot be in: /);
    }
  });
});

describe("validateVpState (aarch64)", () => {
  const a64: Aarch64VpState = {
    x: Array<bigint>(31).fill(0n),
    spEl0: 0n,
    spEl1: 0n,
    pc: 0x4008_0000n,
    cpsr: 0x3c5n,
    sctlrEl1: 0x30d0_1805n,
    tcrEl1: 0n,
    ttbr0El1: 0n,
    ttbr1El1: 0n,
  };
  const check = (state: Aarch64VpState) => () => validateVpState({ arch: "aarch64", state });

  it("accepts every AArch64 mode, and a misaligned PC (the fetch takes a PC alignment fault, as on hardware)", () => {
    for (const m of [0b0000n, 0b0100n, 0b0101n, 0b1000n, 0b1001n, 0b1100n, 0b1101n]) expect(check({ ...a64, cpsr: 0x3c0n | m })).not.toThrow();
    expect(check({ ...a64, pc: 0x4008_0002n })).not.toThrow();
  });

  it("refuses a PSTATE.M that is no AArch64 mode", () => {
    for (const m of [0b0001n, 0b0010n, 0b0111n, 0b1111n]) {
      expect(check({ ...a64, cpsr: 0x3c0n | m })).toThrow(expect.objectContaining({ reason: "VP_STATE_INVALID", metadata: expect.objectContaining({ field: "state.aarch64.cpsr" }) }));
    }
  });
});
