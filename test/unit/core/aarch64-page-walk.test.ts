import { walkAarch64 } from "../../../src/core";

// TCR: T0SZ = T1SZ = 16 (48-bit), TG0 = 4 KiB (00), TG1 = 4 KiB (10).
const TCR = 16n | (16n << 16n) | (2n << 30n);
const memoryOf = (entries: Record<string, bigint>) => (gpa: bigint) =>
  gpa >= 0x4000_0000n && gpa < 0x4800_0000n ? (entries[gpa.toString(16)] ?? 0n) : undefined;

describe("walkAarch64", () => {
  // TTBR1 = 0x40010000: L0[0] -> L1 0x40011000; L1[1] -> L2 0x40012000; L2[0] -> L3 0x40013000;
  // L3[5] page -> 0x40005000; L2[1] is a 2 MiB block at 0x40200000; L1[2] a 1 GiB block at 0x80000000.
  const mem = memoryOf({
    "40010000": 0x4001_1003n,
    "40011008": 0x4001_2003n,
    "40011010": 0x8000_0401n,
    "40012000": 0x4001_3003n,
    "40012008": 0x4020_0401n,
    "40013028": 0x4000_5403n,
    "40020000": 0x4001_1003n, // TTBR0 root shares the L1 table
  });
  const regs = { sctlrEl1: 1n, tcrEl1: TCR, ttbr0El1: 0x4002_0000n, ttbr1El1: 0x4001_0000n };

  it("translates a 4 KiB page through TTBR1 for an upper-range address", () => {
    expect(walkAarch64(regs, 0xffff_0000_4000_5abcn, mem)).toEqual({ ok: true, gpa: 0x4000_5abcn, pageSize: 4096n });
  });

  it("translates a 2 MiB block", () => {
    expect(walkAarch64(regs, 0xffff_0000_4020_0010n, mem)).toEqual({ ok: true, gpa: 0x4020_0010n, pageSize: 0x20_0000n });
  });

  it("translates a 1 GiB block", () => {
    expect(walkAarch64(regs, 0xffff_0000_8000_0008n, mem)).toEqual({ ok: true, gpa: 0x8000_0008n, pageSize: 0x4000_0000n });
  });

  it("uses TTBR0 when VA bit 55 is clear", () => {
    expect(walkAarch64(regs, 0x0000_0000_4000_5004n, mem)).toEqual({ ok: true, gpa: 0x4000_5004n, pageSize: 4096n });
  });

  it("reports an invalid descriptor with its level", () => {
    const r = walkAarch64(regs, 0xffff_0000_4000_6000n, mem);
    expect(r).toMatchObject({ ok: false });
    if (!r.ok) expect(r.detail).toMatch(/level 3 descriptor 6/);
  });

  it("refuses an address outside the configured range", () => {
    expect(walkAarch64(regs, 0x0001_0000_0000_0000n, mem)).toMatchObject({ ok: false });
  });

  it("uses the address as is with the MMU off", () => {
    expect(walkAarch64({ ...regs, sctlrEl1: 0n }, 0x4000_1234n, mem)).toEqual({ ok: true, gpa: 0x4000_1234n, pageSize: 4096n });
  });
});
