// x86-64 page walk for debugger accesses (4- and 5-level paging, 4 KiB / 2 MiB / 1 GiB pages).
//
// Unlike the CPU's own walk this one never sets Accessed/Dirty bits and ignores the
// permission bits: a debugger may read and write any mapped page.

/** The registers that decide how a VP translates addresses. */
export interface X86PagingRegs {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

export type X86WalkResult =
  | { ok: true; gpa: bigint; pageSize: bigint }
  | { ok: false; detail: string; nonCanonical?: boolean };

const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const CR4_LA57 = 1n << 12n;
const EFER_LMA = 1n << 10n;
const PTE_P = 1n;
const PTE_PS = 1n << 7n;
/** Physical-address bits 12..51 of an entry. */
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const LEVEL_NAMES = ["PTE", "PDE", "PDPTE", "PML4E", "PML5E"];

/**
 * Translates `gva` with the VP's paging registers, reading page-table entries (u64, little
 * endian) through `readEntry`, which returns undefined for a GPA that is not RAM.
 */
export function walkX86(
  regs: X86PagingRegs,
  gva: bigint,
  readEntry: (gpa: bigint) => bigint | undefined,
): X86WalkResult {
  if ((regs.cr0 & CR0_PG) === 0n) return { ok: true, gpa: gva & 0xffff_ffffn, pageSize: 4096n };
  if ((regs.efer & EFER_LMA) === 0n || (regs.cr4 & CR4_PAE) === 0n) {
    return { ok: false, detail: "only 64-bit long-mode paging is supported" };
  }
  const levels = (regs.cr4 & CR4_LA57) !== 0n ? 5 : 4;
  const vaBits = BigInt(12 + 9 * levels);
  // Canonical: bits 63..vaBits-1 all equal.
  const top = gva >> (vaBits - 1n);
  if (top !== 0n && top !== (1n << (65n - vaBits)) - 1n) {
    return { ok: false, detail: `address is not canonical for ${levels}-level paging`, nonCanonical: true };
  }
  let table = regs.cr3 & ADDR_MASK;
  for (let level = levels - 1; level >= 0; level--) {
    const shift = BigInt(12 + 9 * level);
    const index = (gva >> shift) & 0x1ffn;
    const entryGpa = table + index * 8n;
    const entry = readEntry(entryGpa);
    const name = LEVEL_NAMES[level];
    if (entry === undefined) {
      return { ok: false, detail: `${name} at GPA 0x${entryGpa.toString(16)} is outside guest RAM` };
    }
    if ((entry & PTE_P) === 0n) {
      return { ok: false, detail: `${name} ${index} at GPA 0x${entryGpa.toString(16)} is not present` };
    }
    const large = level > 0 && (entry & PTE_PS) !== 0n;
    if (large && level > 2) {
      return { ok: false, detail: `${name} has the page-size bit set, which is reserved at this level` };
    }
    if (level === 0 || large) {
      const pageSize = 1n << shift;
      const base = entry & ADDR_MASK & ~(pageSize - 1n);
      return { ok: true, gpa: base + (gva & (pageSize - 1n)), pageSize };
    }
    table = entry & ADDR_MASK;
  }
  return { ok: false, detail: "unreachable" };
}
