import { checkedLength, translateRange, VmmError, walkX86, x86PagingMode } from "../../../src/core";

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
    expect(walkX86({ ...regs, cr0: 0x11n, efer: 0n }, 0x1234n, mem)).toEqual({ ok: true, gpa: 0x1234n, pageSize: 4096n });
  });

  it("takes the low 32 bits of an address outside long mode (linear addresses have 32 bits there, as in QEMU's view)", () => {
    expect(walkX86({ ...regs, cr0: 0x11n, efer: 0n }, 0xffff_ffff_8000_1234n, mem)).toEqual({ ok: true, gpa: 0x8000_1234n, pageSize: 4096n });
    const pae = memoryOf({ "1018": 0x2001n, "2000": 0x3003n, "3008": 0x7_7003n });
    expect(walkX86({ ...regs, efer: 0n }, 0x1_c000_1234n, pae)).toEqual({ ok: true, gpa: 0x77234n, pageSize: 4096n });
  });

  it("refuses what the CPU refuses with a reserved-bit fault: XD without EFER.NXE, misaligned large pages", () => {
    const xd = memoryOf({ "1ff8": 0x8000_0000_0000_2003n, "2ff0": 0x3003n, "3000": 0x4003n, "4008": 0x7_7001n });
    expect(walkX86(regs, 0xffff_ffff_8000_1234n, xd)).toMatchObject({ ok: true, gpa: 0x77234n });
    expect(walkX86({ ...regs, efer: 0x500n }, 0xffff_ffff_8000_1234n, xd)).toMatchObject({ ok: false, detail: expect.stringMatching(/PML4E .*execute-disable.*reserved/) });
    const misaligned = memoryOf({ "1ff8": 0x2003n, "2ff0": 0x3003n, "3008": 0x0060_2083n, "2000": 0x4010_0083n });
    expect(walkX86(regs, 0xffff_ffff_8020_0010n, misaligned)).toMatchObject({ ok: false, detail: expect.stringMatching(/PDE .*2 MiB.*reserved/) });
    expect(walkX86(regs, 0xffff_ff80_0000_0005n, misaligned)).toMatchObject({ ok: false, detail: expect.stringMatching(/PDPTE .*1 GiB.*reserved/) });
  });
});

describe("x86PagingMode", () => {
  it("decides the mode from CR0.PG, EFER.LMA, CR4.PAE and CR4.LA57", () => {
    expect(x86PagingMode({ cr0: 0x11n, cr4: 0x20n, efer: 0x500n })).toBe("off");
    expect(x86PagingMode({ cr0: 0x8000_0011n, cr4: 0n, efer: 0n })).toBe("32-bit");
    expect(x86PagingMode({ cr0: 0x8000_0011n, cr4: 0x20n, efer: 0x100n })).toBe("pae");
    expect(x86PagingMode({ cr0: 0x8000_0011n, cr4: 0x20n, efer: 0x500n })).toBe("4-level");
    expect(x86PagingMode({ cr0: 0x8000_0011n, cr4: 0x1020n, efer: 0x500n })).toBe("5-level");
    expect(x86PagingMode({ cr0: 0x8000_0011n, cr4: 0x1020n, efer: 0n })).toBe("pae"); // LA57 counts only in long mode
  });
});

describe("walkX86 outside long mode", () => {
  it("walks 32-bit paging: 4-byte entries, 4 KiB pages, 4 MiB pages with CR4.PSE (PSE-36 high bits)", () => {
    // PD at 0x1000: PDE 0 -> PT 0x2000; PDE 1 a 4 MiB page at 0x3_0080_0000 (bits 39:32 = 3 in PDE bits 20:13).
    const mem = memoryOf({ "1000": 0xdead_beef_0000_2003n, "1004": 0x0080_6083n, "2014": 0x0005_5003n });
    const paging32 = { cr0: 0x8000_0011n, cr3: 0x1000n, cr4: 0n, efer: 0n };
    expect(walkX86(paging32, 0x5678n, mem)).toEqual({ ok: true, gpa: 0x55678n, pageSize: 4096n });
    expect(walkX86({ ...paging32, cr4: 0x10n }, 0x0040_1234n, mem)).toEqual({ ok: true, gpa: 0x3_0080_1234n, pageSize: 0x40_0000n });
    // Without CR4.PSE the PS bit is ignored: the PDE points at a page table (here outside RAM).
    expect(walkX86(paging32, 0x0040_1234n, mem)).toEqual({ ok: false, detail: "PTE at GPA 0x806004 is outside guest RAM" });
  });

  it("walks PAE paging: four PDPTEs at CR3 (32-byte aligned), 2 MiB and 4 KiB pages", () => {
    // PDPT at 0x1020; PDPTE 3 -> PD 0x2000; PDE 0 -> PT 0x3000; PDE 1 a 2 MiB page at 0x60_0000.
    const mem = memoryOf({ "1038": 0x2001n, "2000": 0x3003n, "2008": 0x0060_0083n, "3008": 0x7_7003n });
    const pae = { cr0: 0x8000_0011n, cr3: 0x1020n, cr4: 0x20n, efer: 0n };
    expect(walkX86(pae, 0xc000_1234n, mem)).toEqual({ ok: true, gpa: 0x77234n, pageSize: 4096n });
    expect(walkX86(pae, 0xc020_0010n, mem)).toEqual({ ok: true, gpa: 0x60_0010n, pageSize: 0x20_0000n });
    expect(walkX86(pae, 0x4000_0000n, mem)).toMatchObject({ ok: false, detail: expect.stringMatching(/PDPTE 1 .* not present/) });
    const reservedPdpte = memoryOf({ "1038": 0x2003n });
    expect(walkX86(pae, 0xc000_1234n, reservedPdpte)).toMatchObject({ ok: false, detail: expect.stringMatching(/PDPTE 3 .*reserved/) });
  });
});

describe("checkedLength", () => {
  it("checks a zero-length access as one byte and any other length as itself", () => {
    expect([checkedLength(0), checkedLength(1), checkedLength(4096)]).toEqual([1, 1, 4096]);
  });
});

describe("translateRange", () => {
  it("translates a zero-length range as its first byte: one empty piece there, or that byte's error", () => {
    const t = (gva: bigint) =>
      gva >= 0x2000n ? { ok: false as const, detail: "PTE not present" } : { ok: true as const, gpa: gva + 0x10000n, pageSize: 4096n };
    expect(translateRange(0, 0x1ffcn, 0, t)).toEqual([{ gpa: 0x11ffcn, length: 0 }]);
    expect(() => translateRange(0, 0x2000n, 0, t)).toThrow(expect.objectContaining({ reason: "GVA_NOT_MAPPED" }));
    const canonical = (gva: bigint) => ({ ok: false as const, detail: "not canonical", nonCanonical: gva > 0n });
    expect(() => translateRange(0, 0x8000_0000_0000n, 0, canonical)).toThrow(expect.objectContaining({ reason: "GVA_NON_CANONICAL" }));
  });

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
