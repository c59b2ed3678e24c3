// x86 page walk for debugger accesses: every paging mode (none, 32-bit, PAE, 4- and 5-level),
// 4 KiB / 2 MiB / 4 MiB / 1 GiB pages.
//
// Unlike the CPU's own walk this one never sets Accessed/Dirty bits and ignores the
// permission bits: a debugger may read and write any mapped page. It does refuse what the CPU
// refuses with a reserved-bit page fault, so it maps exactly the pages the CPU maps.
//
// One walk: `walkX86Detailed` records every level (TranslateGva answers it), and `walkX86`, which
// GVA reads and writes use, is that walk summed up.
import { type GvaTranslation, type WalkStep, summarizeTranslation } from "../translation";

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

/**
 * How a VP translates linear addresses (Intel SDM vol. 3A ch. 4): paging off (CR0.PG = 0),
 * 32-bit paging (CR4.PAE = 0), PAE paging (EFER.LMA = 0), or 4-/5-level paging (CR4.LA57).
 */
export type X86PagingMode = "off" | "32-bit" | "pae" | "4-level" | "5-level";

const CR0_PG = 1n << 31n;
const CR4_PSE = 1n << 4n;
const CR4_PAE = 1n << 5n;
const CR4_LA57 = 1n << 12n;
const EFER_LMA = 1n << 10n;
const EFER_NXE = 1n << 11n;
const PTE_P = 1n;
const PTE_RW = 2n;
const PTE_US = 4n;
const PTE_PS = 1n << 7n;
const PTE_XD = 1n << 63n;
/** Physical-address bits 12..51 of an entry. */
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
/** Bits of a PAE PDPTE that must be 0 (1, 2, 5–8, and XD): the CPU refuses to load the PDPTE. */
const PDPTE_RESERVED = 0x1e6n | PTE_XD;
const LEVEL_NAMES = ["PTE", "PDE", "PDPTE", "PML4E", "PML5E"];
const U32_MAX = 0xffff_ffffn;

/**
 * The paging mode CR0, CR4 and EFER select. The one place this is decided: the debugger's walk
 * uses it, and the embedded machine accepts only register states for which it says "4-level" or
 * "5-level", the modes its interpreter implements (src/emu/x86-vp-state.ts).
 */
export function x86PagingMode(regs: Pick<X86PagingRegs, "cr0" | "cr4" | "efer">): X86PagingMode {
  if ((regs.cr0 & CR0_PG) === 0n) return "off";
  if ((regs.efer & EFER_LMA) !== 0n) return (regs.cr4 & CR4_LA57) !== 0n ? "5-level" : "4-level";
  return (regs.cr4 & CR4_PAE) !== 0n ? "pae" : "32-bit";
}

/** Whether `gva` is canonical for 4-level (48-bit) or 5-level (57-bit) paging: bits 63..N-1 all equal. */
export function isCanonicalX86(gva: bigint, fiveLevel: boolean): boolean {
  const vaBits = fiveLevel ? 57n : 48n;
  const top = (gva & 0xffff_ffff_ffff_ffffn) >> (vaBits - 1n);
  return top === 0n || top === (1n << (65n - vaBits)) - 1n;
}

/**
 * Translates `gva` with the VP's paging registers, reading page-table entries (u64, little
 * endian; 32-bit paging uses the low half) through `readEntry`, which returns undefined for a
 * GPA that is not RAM.
 */
export function walkX86(
  regs: X86PagingRegs,
  address: bigint,
  readEntry: (gpa: bigint) => bigint | undefined,
): X86WalkResult {
  return summarizeTranslation(walkX86Detailed(regs, address, readEntry));
}

/**
 * The same walk with every entry it read (level 5 PML5E down to 1 PTE), the permissions the
 * levels grant together, and why it failed.
 */
export function walkX86Detailed(
  regs: X86PagingRegs,
  address: bigint,
  readEntry: (gpa: bigint) => bigint | undefined,
): GvaTranslation {
  const mode = x86PagingMode(regs);
  // Outside long mode linear addresses have 32 bits and wrap (QEMU's own view truncates the same way).
  const gva = mode === "4-level" || mode === "5-level" ? address : address & U32_MAX;
  const steps: WalkStep[] = [];
  const root = mode === "off" ? 0n : mode === "32-bit" ? regs.cr3 & 0xffff_f000n : mode === "pae" ? regs.cr3 & 0xffff_ffe0n : regs.cr3 & ADDR_MASK;
  const result: GvaTranslation = { gva: address, pagingMode: mode, rootGpa: root, levels: steps, mapped: false, writable: false, user: false, executable: false };
  if (mode === "off") return { ...result, mapped: true, gpa: gva, pageSize: 4096n, writable: true, user: true, executable: true };
  if ((mode === "4-level" || mode === "5-level") && !isCanonicalX86(gva, mode === "5-level")) {
    return { ...result, fault: "nonCanonical", faultLevel: 0, faultDetail: `address is not canonical for ${mode} paging` };
  }
  const wide = mode !== "32-bit"; // 8-byte entries, 9 index bits per level
  const nxe = (regs.efer & EFER_NXE) !== 0n;
  const levels = mode === "32-bit" ? 2 : mode === "pae" ? 3 : mode === "4-level" ? 4 : 5;
  let table = root;
  let writable = true;
  let user = true;
  let executable = true;
  for (let level = levels - 1; level >= 0; level--) {
    const shift = BigInt(wide ? 12 + 9 * level : 12 + 10 * level);
    const indexBits = mode === "pae" && level === 2 ? 2n : wide ? 9n : 10n;
    const index = (gva >> shift) & ((1n << indexBits) - 1n);
    const entryGpa = table + index * (wide ? 8n : 4n);
    const raw = readEntry(entryGpa);
    const name = LEVEL_NAMES[level];
    const fail = (fault: GvaTranslation["fault"], faultDetail: string): GvaTranslation => ({ ...result, fault, faultLevel: level + 1, faultDetail });
    if (raw === undefined) {
      return fail("tableOutsideRam", `${name} at GPA 0x${entryGpa.toString(16)} is outside guest RAM`);
    }
    const entry = wide ? raw : raw & U32_MAX;
    const step: WalkStep = { level: level + 1, name, entryGpa, entry, decision: "table" };
    steps.push(step);
    if ((entry & PTE_P) === 0n) {
      step.decision = "notPresent";
      return fail("notPresent", `${name} ${index} at GPA 0x${entryGpa.toString(16)} is not present`);
    }
    const reserved = (why: string): GvaTranslation => {
      step.decision = "reserved";
      return fail("reserved", `${name} ${index} at GPA 0x${entryGpa.toString(16)} ${why} (reserved)`);
    };
    if (mode === "pae" && level === 2) {
      // A PAE PDPTE has no R/W, U/S or XD bits: it grants everything.
      if ((entry & PDPTE_RESERVED) !== 0n) return reserved("has bits 1, 2, 5-8 or 63 set");
      table = entry & ADDR_MASK;
      continue;
    }
    if (wide && (entry & PTE_XD) !== 0n && !nxe) return reserved("has the execute-disable bit set while EFER.NXE is 0");
    const large = level > 0 && (entry & PTE_PS) !== 0n && (wide || (regs.cr4 & CR4_PSE) !== 0n);
    if (large && level > 2) return reserved("has the page-size bit set");
    if (large && wide) {
      // A 2 MiB or 1 GiB page: the address bits below the page size (above bit 12) must be 0.
      const low = entry & ((1n << shift) - 1n) & ~0x1fffn;
      if (low !== 0n) return reserved(`maps a ${level === 2 ? "1 GiB" : "2 MiB"} page with address bits below its alignment`);
    }
    writable &&= (entry & PTE_RW) !== 0n;
    user &&= (entry & PTE_US) !== 0n;
    if (wide && nxe && (entry & PTE_XD) !== 0n) executable = false;
    if (level === 0 || large) {
      step.decision = "page";
      const pageSize = 1n << shift;
      // A 4 MiB page of 32-bit paging takes physical bits 39:32 from entry bits 20:13 (PSE-36).
      const base = wide ? entry & ADDR_MASK & ~(pageSize - 1n) : large ? (entry & 0xffc0_0000n) | (((entry >> 13n) & 0xffn) << 32n) : entry & 0xffff_f000n;
      return { ...result, mapped: true, gpa: base + (gva & (pageSize - 1n)), pageSize, writable, user, executable };
    }
    table = wide ? entry & ADDR_MASK : entry & 0xffff_f000n;
  }
  return { ...result, fault: "unsupported", faultLevel: 0, faultDetail: "unreachable" };
}
