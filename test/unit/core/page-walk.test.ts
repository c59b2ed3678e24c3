import { translateRange, VmmError, walkX86 } from "../../../src/core";

/** A sparse physical memory of u64 entries for page-table tests. */
function memoryOf(entries: Record<string, bigint>) {
  return (gpa: bigint) => (gpa < 0x100000n ? (entries[gpa.toString(16)] ?? 0n) : undefined);
}

const LONG_MODE = { cr0: 0x80010033n, cr4: 0x20n, efer: 0xd00n };

describe("walkX86", () => {
  // PML4 at 0x1000; PML4[511] -> PDPT 0x2000; PDPT[510] -> PD 0x3000; PD[0] -> PT 0x4000, PD[1] 2 MiB page.
  const mem = memoryOf({
    "1ff8": 0x2003n,
    "2ff0": 0x3003n,
    "3000": 0x4003n,
    "3008": 0x0060_0083n,
    "4008": 0x0007_7001n, // 4 KiB page, read-only: 0xffffffff80001000 -> 0x77000
    "2000": 0x4000_0083n, // PDPT[0] of the same PDPT: 1 GiB page -> 0x40000000 (for the 1 GiB case below)
  });
  const regs = { ...LONG_MODE, cr3: 0x1000n };

  it("translates a 4 KiB page and keeps the page offset", () => {
    expect(walkX86(regs, 0xffff_ffff_8000_1234n, mem)).toEqual({ ok: true, gpa: 0x77234n, pageSize: 4096n });
  });

  it("translates a 2 MiB page", () => {
    expect(walkX86(regs, 0xffff_ffff_8020_0010n, mem)).toEqual({ ok: true, gpa: 0x60_0010n, pageSize: 0x20_0000n });
  });

  it("translates a 1 GiB page", () => {
    expect(walkX86(regs, 0xffff_ff80_0000_0005n, mem)).toEqual({ ok: true, gpa: 0x4000_0005n, pageSize: 0x4000_0000n });
  });

  it("reports the level that is not present", () => {
    const r = walkX86(regs, 0xffff_ffff_8000_2000n, mem);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.detail).toMatch(/PTE 2 .* not present/);
  });

  it("flags a non-canonical address", () => {
    const r = walkX86(regs, 0x0000_8000_0000_0000n, mem);
    expect(r).toMatchObject({ ok: false, nonCanonical: true });
  });

  it("uses the address as is when paging is off", () => {
    expect(walkX86({ ...regs, cr0: 0x11n }, 0x1234n, mem)).toEqual({ ok: true, gpa: 0x1234n, pageSize: 4096n });
  });
});

describe("translateRange", () => {
  it("splits a range at page boundaries and merges physically contiguous pages", () => {
    // Page 0 -> 0x10000, page 1 -> 0x5000, page 2 -> 0x6000 (contiguous with page 1).
    const bases: Record<string, bigint> = { "0": 0x10000n, "1000": 0x5000n, "2000": 0x6000n };
    const t = (gva: bigint) => ({ ok: true as const, gpa: bases[(gva & ~0xfffn).toString(16)] + (gva & 0xfffn), pageSize: 4096n });
    expect(translateRange(0, 0xff0n, 0x1020, t)).toEqual([
      { gpa: 0x10ff0n, length: 0x10 },
      { gpa: 0x5000n, length: 0x1010 },
    ]);
  });

  it("names the first unmapped address before any access", () => {
    const t = (gva: bigint) =>
      gva >= 0x2000n ? { ok: false as const, detail: "PTE not present" } : { ok: true as const, gpa: gva, pageSize: 4096n };
    try {
      translateRange(1, 0x1ff8n, 16, t);
      throw new Error("did not throw");
    } catch (e) {
      expect(e).toBeInstanceOf(VmmError);
      expect((e as VmmError).reason).toBe("GVA_NOT_MAPPED");
      expect((e as VmmError).metadata.gva).toBe("0x2000");
      expect((e as VmmError).metadata.vp).toBe("1");
    }
  });
});
