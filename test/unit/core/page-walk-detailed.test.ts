// The detailed page walks (TranslateGva's answer): every level read, its decision, the
// permissions, the fault and its level; and that the plain walks GVA accesses use are exactly
// their summary.
import {
  PartialReadBuilder,
  summarizeTranslation,
  translateRangePartial,
  walkAarch64,
  walkAarch64Detailed,
  walkX86,
  walkX86Detailed,
  type GvaTranslation,
} from "../../../src/core";

const x86Memory = (entries: Record<string, bigint>) => (gpa: bigint) => (gpa < 0x100000n ? (entries[gpa.toString(16)] ?? 0n) : undefined);
const LONG_MODE = { cr0: 0x80010033n, cr4: 0x20n, efer: 0xd00n }; // LME, LMA, NXE
const FIVE_LEVEL = { ...LONG_MODE, cr4: 0x1020n };

const shape = (t: GvaTranslation) => t.levels.map((l) => [l.level, l.name, l.entryGpa, l.entry, l.decision]);

describe("walkX86Detailed, 4-level", () => {
  // PML4 0x1000: [511] -> PDPT 0x2000; PDPT[510] -> PD 0x3000; PD[0] -> PT 0x4000; PD[1] a 2 MiB page;
  // PT[1] a read-only supervisor page, PT[2] not present, PT[3] a user, writable, no-execute page.
  // PDPT[0] a 1 GiB page; PDPT[1] with the PS bit misaligned; PML4[1] with PS (reserved at level 4).
  const entries = {
    "1ff8": 0x2007n,
    "1008": 0x2083n,
    "2ff0": 0x3007n,
    "2000": 0x4000_0083n,
    "2008": 0x4010_0083n,
    "3000": 0x4007n,
    "3008": 0x0060_0083n,
    "3010": 0x8_0000_5007n, // PD[2] -> a page table outside RAM
    "4008": 0x0007_7001n,
    "4018": 0x8000_0000_0007_8007n,
  };
  const mem = x86Memory(entries);
  const regs = { ...LONG_MODE, cr3: 0x1000n };

  it("records every level of a 4 KiB page, top down, with the permissions the levels grant together", () => {
    const t = walkX86Detailed(regs, 0xffff_ffff_8000_1234n, mem);
    expect(t).toMatchObject({ pagingMode: "4-level", rootGpa: 0x1000n, mapped: true, gpa: 0x77234n, pageSize: 4096n, writable: false, user: false, executable: true });
    expect(shape(t)).toEqual([
      [4, "PML4E", 0x1ff8n, 0x2007n, "table"],
      [3, "PDPTE", 0x2ff0n, 0x3007n, "table"],
      [2, "PDE", 0x3000n, 0x4007n, "table"],
      [1, "PTE", 0x4008n, 0x7_7001n, "page"],
    ]);
    expect(t.fault).toBeUndefined();
    const user = walkX86Detailed(regs, 0xffff_ffff_8000_3000n, mem);
    expect(user).toMatchObject({ mapped: true, gpa: 0x78000n, writable: true, user: true, executable: false });
    // Without EFER.NXE the XD bit is reserved: the same entry ends the walk.
    const noNx = walkX86Detailed({ ...regs, efer: 0x500n }, 0xffff_ffff_8000_3000n, mem);
    expect(noNx).toMatchObject({ mapped: false, fault: "reserved", faultLevel: 1 });
    expect(noNx.levels[3].decision).toBe("reserved");
  });

  it("ends at a 2 MiB PDE and a 1 GiB PDPTE", () => {
    const two = walkX86Detailed(regs, 0xffff_ffff_8020_0010n, mem);
    expect(two).toMatchObject({ mapped: true, gpa: 0x60_0010n, pageSize: 0x20_0000n, writable: true, user: false });
    expect(two.levels.map((l) => l.decision)).toEqual(["table", "table", "page"]);
    const one = walkX86Detailed(regs, 0xffff_ff80_0000_0005n, mem);
    expect(one).toMatchObject({ mapped: true, gpa: 0x4000_0005n, pageSize: 0x4000_0000n });
    expect(shape(one)).toEqual([
      [4, "PML4E", 0x1ff8n, 0x2007n, "table"],
      [3, "PDPTE", 0x2000n, 0x4000_0083n, "page"],
    ]);
  });

  it("names the level that is not present, at each level", () => {
    const cases: [bigint, number][] = [
      [0x0000_0100_0000_0000n, 4], // PML4[2]
      [0xffff_ff80_8000_0000n, 3], // PDPT[2]
      [0xffff_ffff_80a0_0000n, 2], // PD[5]
      [0xffff_ffff_8000_2000n, 1], // PT[2]
    ];
    for (const [gva, level] of cases) {
      const t = walkX86Detailed(regs, gva, mem);
      expect({ gva, mapped: t.mapped, fault: t.fault, faultLevel: t.faultLevel, levels: t.levels.length }).toEqual({ gva, mapped: false, fault: "notPresent", faultLevel: level, levels: 5 - level });
      expect(t.levels[t.levels.length - 1]).toMatchObject({ level, entry: 0n, decision: "notPresent" });
      expect(t.faultDetail).toMatch(/is not present$/);
      expect(t.gpa).toBeUndefined();
    }
  });

  it("reserved bits: PS in a PML4E, a misaligned 1 GiB page", () => {
    const ps = walkX86Detailed(regs, 0x0000_0080_0000_0000n, mem);
    expect(ps).toMatchObject({ mapped: false, fault: "reserved", faultLevel: 4, faultDetail: expect.stringMatching(/page-size bit/) });
    expect(shape(ps)).toEqual([[4, "PML4E", 0x1008n, 0x2083n, "reserved"]]);
    const misaligned = walkX86Detailed(regs, 0xffff_ff80_4000_0000n, mem);
    expect(misaligned).toMatchObject({ fault: "reserved", faultLevel: 3 });
  });

  it("a table outside RAM ends the walk at the level whose entry could not be read", () => {
    const t = walkX86Detailed(regs, 0xffff_ffff_8040_0000n, mem);
    expect(t).toMatchObject({ mapped: false, fault: "tableOutsideRam", faultLevel: 1 });
    expect(t.levels.map((l) => l.decision)).toEqual(["table", "table", "table"]);
  });

  it("a non-canonical address reads nothing (level 0)", () => {
    const t = walkX86Detailed(regs, 0x0000_8000_0000_0000n, mem);
    expect(t).toMatchObject({ mapped: false, fault: "nonCanonical", faultLevel: 0, levels: [] });
  });

  it("paging off: the address itself, no levels, everything allowed", () => {
    expect(walkX86Detailed({ ...regs, cr0: 0x11n, efer: 0n }, 0x1234n, mem)).toEqual({
      gva: 0x1234n,
      pagingMode: "off",
      rootGpa: 0n,
      levels: [],
      mapped: true,
      gpa: 0x1234n,
      pageSize: 4096n,
      writable: true,
      user: true,
      executable: true,
    });
  });
});

describe("walkX86Detailed, 5-level, PAE and 32-bit paging", () => {
  it("walks five levels from a PML5E", () => {
    // PML5 0x1000 [1] -> PML4 0x2000 [2] -> PDPT 0x3000 [3] -> PD 0x4000 [4] -> PT 0x5000 [5] -> 0x9000.
    const mem = x86Memory({ "1008": 0x2003n, "2010": 0x3003n, "3018": 0x4003n, "4020": 0x5003n, "5028": 0x9003n });
    const gva = (1n << 48n) | (2n << 39n) | (3n << 30n) | (4n << 21n) | (5n << 12n) | 0x12n;
    const t = walkX86Detailed({ ...FIVE_LEVEL, cr3: 0x1000n }, gva, mem);
    expect(t).toMatchObject({ pagingMode: "5-level", mapped: true, gpa: 0x9012n, writable: true, user: false, executable: true });
    expect(t.levels.map((l) => [l.level, l.name])).toEqual([
      [5, "PML5E"],
      [4, "PML4E"],
      [3, "PDPTE"],
      [2, "PDE"],
      [1, "PTE"],
    ]);
    expect(walkX86Detailed({ ...FIVE_LEVEL, cr3: 0x1000n }, 2n << 48n, mem)).toMatchObject({ fault: "notPresent", faultLevel: 5 });
    // Canonical for 4-level paging is not enough for an address with bits 56:48 in use.
    expect(walkX86Detailed({ ...LONG_MODE, cr3: 0x1000n }, gva, mem)).toMatchObject({ fault: "nonCanonical" });
    expect(walkX86Detailed({ ...FIVE_LEVEL, cr3: 0x1000n }, 1n << 57n, mem)).toMatchObject({ fault: "nonCanonical", levels: [] });
  });

  it("PAE: the PDPTE (no permission bits) is a table; 32-bit: a 4 MiB page ends at the PDE", () => {
    const pae = x86Memory({ "1038": 0x2001n, "2000": 0x3003n, "3008": 0x7_7005n });
    const t = walkX86Detailed({ cr0: 0x8000_0011n, cr3: 0x1020n, cr4: 0x20n, efer: 0n }, 0xc000_1234n, pae);
    expect(t).toMatchObject({ pagingMode: "pae", rootGpa: 0x1020n, mapped: true, gpa: 0x77234n, writable: false, user: false });
    expect(shape(t)).toEqual([
      [3, "PDPTE", 0x1038n, 0x2001n, "table"],
      [2, "PDE", 0x2000n, 0x3003n, "table"],
      [1, "PTE", 0x3008n, 0x7_7005n, "page"],
    ]);
    const paging32 = x86Memory({ "1004": 0x0080_6087n });
    const big = walkX86Detailed({ cr0: 0x8000_0011n, cr3: 0x1000n, cr4: 0x10n, efer: 0n }, 0x0040_1234n, paging32);
    expect(big).toMatchObject({ pagingMode: "32-bit", mapped: true, gpa: 0x3_0080_1234n, pageSize: 0x40_0000n, user: true, writable: true });
    expect(shape(big)).toEqual([[2, "PDE", 0x1004n, 0x0080_6087n, "page"]]);
  });
});

// TCR: T0SZ = T1SZ = 16 (48-bit), TG0 = 4 KiB (00), TG1 = 4 KiB (10).
const TCR = 16n | (16n << 16n) | (2n << 30n);
const armMemory = (entries: Record<string, bigint>) => (gpa: bigint) =>
  gpa >= 0x4000_0000n && gpa < 0x4800_0000n ? (entries[gpa.toString(16)] ?? 0n) : undefined;

describe("walkAarch64Detailed", () => {
  // TTBR1 0x40010000: L0[0] -> L1 0x40011000; L1[1] -> L2 0x40012000 (APTable read-only on L1[3] -> same L2);
  // L2[0] -> L3 0x40013000; L3[5] a kernel page (UXN); L3[6] invalid; L3[7] reserved (type 01);
  // L3[8] a user read-only page (AP = 11), PXN; L2[1] a 2 MiB block; L1[2] a 1 GiB block.
  const mem = armMemory({
    "40010000": 0x4001_1003n,
    "40011008": 0x4001_2003n,
    "40011010": 0x8000_0401n,
    "40011018": (1n << 62n) | 0x4001_2003n,
    "40012000": 0x4001_3003n,
    "40012008": 0x4020_0401n,
    "40013028": (1n << 54n) | 0x4000_5403n,
    "40013038": 0x4000_7401n,
    "40013040": (1n << 53n) | 0x4000_84c3n,
    "40020000": 0x4001_1003n,
  });
  const regs = { sctlrEl1: 1n, tcrEl1: TCR, ttbr0El1: 0x4002_0000n, ttbr1El1: 0x4001_0000n };

  it("TTBR1 for an upper address: L0..L3 with entries and decisions, kernel page permissions", () => {
    const t = walkAarch64Detailed(regs, 0xffff_0000_4000_5abcn, mem);
    expect(t).toMatchObject({ pagingMode: "4k-ttbr1", rootGpa: 0x4001_0000n, mapped: true, gpa: 0x4000_5abcn, pageSize: 4096n, writable: true, user: false, executable: true });
    expect(shape(t)).toEqual([
      [0, "L0", 0x4001_0000n, 0x4001_1003n, "table"],
      [1, "L1", 0x4001_1008n, 0x4001_2003n, "table"],
      [2, "L2", 0x4001_2000n, 0x4001_3003n, "table"],
      [3, "L3", 0x4001_3028n, (1n << 54n) | 0x4000_5403n, "page"],
    ]);
  });

  it("TTBR0 when bit 55 is clear; a user read-only page; APTable limits what the tables below grant", () => {
    expect(walkAarch64Detailed(regs, 0x0000_0000_4000_5004n, mem)).toMatchObject({ pagingMode: "4k-ttbr0", rootGpa: 0x4002_0000n, mapped: true, gpa: 0x4000_5004n });
    expect(walkAarch64Detailed(regs, 0xffff_0000_4000_8000n, mem)).toMatchObject({ mapped: true, writable: false, user: true, executable: true });
    // Same L2 reached through L1[3], whose APTable[1] makes everything below read-only.
    expect(walkAarch64Detailed(regs, 0xffff_0000_c000_5000n, mem)).toMatchObject({ mapped: true, gpa: 0x4000_5000n, writable: false });
  });

  it("blocks end the walk at L2 (2 MiB) and L1 (1 GiB)", () => {
    const two = walkAarch64Detailed(regs, 0xffff_0000_4020_0010n, mem);
    expect(two).toMatchObject({ mapped: true, gpa: 0x4020_0010n, pageSize: 0x20_0000n });
    expect(two.levels.map((l) => l.decision)).toEqual(["table", "table", "page"]);
    const one = walkAarch64Detailed(regs, 0xffff_0000_8000_0008n, mem);
    expect(one).toMatchObject({ mapped: true, gpa: 0x8000_0008n, pageSize: 0x4000_0000n });
    expect(one.levels.map((l) => [l.level, l.decision])).toEqual([
      [0, "table"],
      [1, "page"],
    ]);
  });

  it("invalid and reserved descriptors, an address between the ranges, walks it does not model", () => {
    const invalid = walkAarch64Detailed(regs, 0xffff_0000_4000_6000n, mem);
    expect(invalid).toMatchObject({ mapped: false, fault: "notPresent", faultLevel: 3 });
    expect(invalid.levels[3]).toMatchObject({ name: "L3", entry: 0n, decision: "notPresent" });
    const reserved = walkAarch64Detailed(regs, 0xffff_0000_4000_7000n, mem);
    expect(reserved).toMatchObject({ fault: "reserved", faultLevel: 3 });
    expect(reserved.levels[3].decision).toBe("reserved");
    expect(walkAarch64Detailed(regs, 0xffff_0000_0000_0000n + (5n << 39n), mem)).toMatchObject({ fault: "notPresent", faultLevel: 0 });
    expect(walkAarch64Detailed(regs, 0x0001_0000_0000_0000n, mem)).toMatchObject({ fault: "nonCanonical", faultLevel: 0, levels: [] });
    expect(walkAarch64Detailed({ ...regs, tcrEl1: TCR | (1n << 7n) }, 0x1000n, mem)).toMatchObject({ fault: "unsupported", pagingMode: "4k-ttbr0" });
    expect(walkAarch64Detailed({ ...regs, tcrEl1: TCR | (1n << 14n) }, 0x1000n, mem)).toMatchObject({ fault: "unsupported", pagingMode: "64k-ttbr0" });
    expect(walkAarch64Detailed({ ...regs, sctlrEl1: 0n }, 0x4000_1234n, mem)).toMatchObject({ pagingMode: "off", mapped: true, gpa: 0x4000_1234n, levels: [] });
  });

  it("walkAarch64 is the detailed walk summed up", () => {
    for (const gva of [0xffff_0000_4000_5abcn, 0xffff_0000_4000_6000n, 0xffff_0000_4000_7000n, 0x0001_0000_0000_0000n, 0x0000_0000_4000_5004n]) {
      const t = walkAarch64Detailed(regs, gva, mem);
      const s = summarizeTranslation(t);
      expect(walkAarch64(regs, gva, mem)).toEqual(s.ok ? s : { ok: false, detail: s.detail });
    }
  });
});

describe("walkX86 is the detailed walk summed up", () => {
  it("for mapped, unmapped, reserved and non-canonical addresses", () => {
    const mem = x86Memory({ "1ff8": 0x2003n, "2ff0": 0x3003n, "3000": 0x4003n, "4008": 0x7_7001n, "1008": 0x2083n });
    const regs = { ...LONG_MODE, cr3: 0x1000n };
    for (const gva of [0xffff_ffff_8000_1234n, 0xffff_ffff_8000_2000n, 0x0000_0080_0000_0000n, 0x0000_8000_0000_0000n]) {
      expect(walkX86(regs, gva, mem)).toEqual(summarizeTranslation(walkX86Detailed(regs, gva, mem)));
    }
  });
});

describe("translateRangePartial and PartialReadBuilder", () => {
  const translate = (gva: bigint) =>
    gva >= 0x2000n && gva < 0x4000n ? { ok: false as const, detail: "PTE not present" } : gva >= 0x8000n ? { ok: false as const, detail: "x", nonCanonical: true } : { ok: true as const, gpa: gva + 0x10000n, pageSize: 4096n };

  it("turns pages that do not translate into unreadable pieces with the error a read gives", () => {
    const pieces = translateRangePartial(3, 0x1800n, 0x7000, translate);
    expect(pieces.map((p) => ("error" in p ? [p.length, p.error.reason, p.error.metadata.gva] : [p.length, p.gpa]))).toEqual([
      [0x800, 0x11800n],
      [0x1000, "GVA_NOT_MAPPED", "0x2000"],
      [0x1000, "GVA_NOT_MAPPED", "0x3000"],
      [0x4000, 0x14000n],
      [0x800, "GVA_NON_CANONICAL", "0x8000"],
    ]);
  });

  it("merges adjacent ranges with the same reason; GPA_UNMAPPED only when the physical ranges meet", () => {
    const b = new PartialReadBuilder(0x40);
    b.put(new Uint8Array(8).fill(1));
    const pieces = translateRangePartial(0, 0x2000n, 0x20, translate);
    const error = "error" in pieces[0] ? pieces[0].error : undefined;
    b.skip(8, error!);
    b.skip(8, error!);
    b.skipGpa(0x100n, 8);
    b.skipGpa(0x108n, 8);
    b.skipGpa(0x200n, 8);
    b.view(16).fill(2);
    b.advance(16);
    const r = b.result();
    expect(r.unreadable.map((u) => [u.offset, u.length, u.error.reason, u.error.metadata])).toEqual([
      [8, 16, "GVA_NOT_MAPPED", { vp: "0", gva: "0x2000" }],
      [24, 16, "GPA_UNMAPPED", { gpa: "0x100", length: "16" }],
      [40, 8, "GPA_UNMAPPED", { gpa: "0x200", length: "8" }],
    ]);
    expect(Array.from(r.data.subarray(0, 8))).toEqual(Array(8).fill(1));
    expect(Array.from(r.data.subarray(8, 48))).toEqual(Array(40).fill(0));
    expect(Array.from(r.data.subarray(48))).toEqual(Array(16).fill(2));
  });
});
