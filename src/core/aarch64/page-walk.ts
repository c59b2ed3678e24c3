// aarch64 stage-1 EL1 translation for debugger accesses: 4 KiB granule, TTBR0/TTBR1 by VA bit 55.
//
// Like the x86 walk, it ignores permissions and never updates Access flags. One walk:
// `walkAarch64Detailed` records every level (TranslateGva), `walkAarch64` (GVA accesses) sums it up.
import { type GvaTranslation, type WalkStep, summarizeTranslation } from "../translation";

/** The system registers that decide how an aarch64 VP translates addresses. */
export interface Aarch64PagingRegs {
  sctlrEl1: bigint;
  tcrEl1: bigint;
  ttbr0El1: bigint;
  ttbr1El1: bigint;
}

export type Aarch64WalkResult = { ok: true; gpa: bigint; pageSize: bigint } | { ok: false; detail: string };

const SCTLR_M = 1n;
const ADDR_MASK = 0x0000_ffff_ffff_f000n; // output address bits 47:12
const TTBR_BADDR = 0x0000_ffff_ffff_fffen; // BADDR 47:1 (CnP in bit 0, ASID above 47)

function bits(value: bigint, lo: number, width: number): number {
  return Number((value >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));
}

/**
 * Translates `gva` with the VP's EL1 translation registers, reading descriptors (u64, little
 * endian) through `readEntry`, which returns undefined for a GPA that is not RAM.
 */
export function walkAarch64(
  regs: Aarch64PagingRegs,
  gva: bigint,
  readEntry: (gpa: bigint) => bigint | undefined,
): Aarch64WalkResult {
  const t = summarizeTranslation(walkAarch64Detailed(regs, gva, readEntry));
  return t.ok ? t : { ok: false, detail: t.detail };
}

/** TCR_EL1.TG0 / TG1 encodings, as the granule's name. */
const TG0 = ["4k", "64k", "16k", "?k"];
const TG1 = ["?k", "16k", "4k", "64k"];
const AP_RO = 1n << 7n; // AP[2]: read-only
const AP_EL0 = 1n << 6n; // AP[1]: EL0 may access
const PXN = 1n << 53n;
const UXN = 1n << 54n;
const PXN_TABLE = 1n << 59n;
const UXN_TABLE = 1n << 60n;
const AP_TABLE_NO_EL0 = 1n << 61n;
const AP_TABLE_RO = 1n << 62n;

/**
 * The same walk with every descriptor it read (L0..L3), the permissions the leaf grants (with
 * the hierarchical APTable / XNTable limits of the tables above it), and why it failed.
 */
export function walkAarch64Detailed(
  regs: Aarch64PagingRegs,
  gva: bigint,
  readEntry: (gpa: bigint) => bigint | undefined,
): GvaTranslation {
  const steps: WalkStep[] = [];
  const base: GvaTranslation = { gva, pagingMode: "off", rootGpa: 0n, levels: steps, mapped: false, writable: false, user: false, executable: false };
  if ((regs.sctlrEl1 & SCTLR_M) === 0n) return { ...base, mapped: true, gpa: gva, pageSize: 4096n, writable: true, user: true, executable: true };
  const upper = ((gva >> 55n) & 1n) === 1n;
  const tcr = regs.tcrEl1;
  const txsz = upper ? bits(tcr, 16, 6) : bits(tcr, 0, 6);
  const epd = upper ? bits(tcr, 23, 1) : bits(tcr, 7, 1);
  const tbi = upper ? bits(tcr, 38, 1) : bits(tcr, 37, 1);
  const granule = upper ? TG1[bits(tcr, 30, 2)] : TG0[bits(tcr, 14, 2)];
  const range = upper ? "TTBR1" : "TTBR0";
  const rootGpa = (upper ? regs.ttbr1El1 : regs.ttbr0El1) & TTBR_BADDR & ~0xfffn;
  const result: GvaTranslation = { ...base, pagingMode: `${granule}-${range.toLowerCase()}`, rootGpa };
  const fail = (fault: GvaTranslation["fault"], faultLevel: number, faultDetail: string): GvaTranslation => ({ ...result, fault, faultLevel, faultDetail });
  if (epd) return fail("unsupported", 0, `${range} walks are disabled (TCR_EL1.EPD${upper ? 1 : 0})`);
  if (granule !== "4k") return fail("unsupported", 0, `${range} does not use the 4 KiB granule; only 4 KiB is supported`);
  const inputBits = 64 - txsz;
  if (inputBits < 25 || inputBits > 48) return fail("unsupported", 0, `T${upper ? 1 : 0}SZ=${txsz} is outside 16..39`);
  // Bits above the input size must be all 0 (TTBR0) or all 1 (TTBR1); the top byte is ignored with TBI.
  const topBit = tbi ? 56 : 64;
  const high = (gva >> BigInt(inputBits)) & ((1n << BigInt(topBit - inputBits)) - 1n);
  const want = upper ? (1n << BigInt(topBit - inputBits)) - 1n : 0n;
  if (high !== want) return fail("nonCanonical", 0, `address is outside the ${inputBits}-bit ${range} range`);

  let table = rootGpa;
  let writable = true;
  let el0 = true;
  let uxn = false;
  let pxn = false;
  // 4 KiB granule: 9 bits per level above the 12-bit page offset.
  const startLevel = 4 - Math.ceil((inputBits - 12) / 9);
  for (let level = startLevel; level <= 3; level++) {
    const shift = BigInt(12 + 9 * (3 - level));
    // The first level resolves whatever input bits remain above the lower levels' 9 each.
    const indexBits = level === startLevel ? inputBits - Number(shift) : 9;
    const index = (gva >> shift) & ((1n << BigInt(indexBits)) - 1n);
    const entryGpa = table + index * 8n;
    const entry = readEntry(entryGpa);
    if (entry === undefined) return fail("tableOutsideRam", level, `level ${level} descriptor at GPA 0x${entryGpa.toString(16)} is outside guest RAM`);
    const step: WalkStep = { level, name: `L${level}`, entryGpa, entry, decision: "table" };
    steps.push(step);
    const type = entry & 3n;
    if ((type & 1n) === 0n) {
      step.decision = "notPresent";
      return fail("notPresent", level, `level ${level} descriptor ${index} at GPA 0x${entryGpa.toString(16)} is invalid`);
    }
    const leaf = (pageSize: bigint): GvaTranslation => {
      step.decision = "page";
      writable &&= (entry & AP_RO) === 0n;
      el0 &&= (entry & AP_EL0) !== 0n;
      uxn ||= (entry & UXN) !== 0n;
      pxn ||= (entry & PXN) !== 0n;
      const gpa = (entry & ADDR_MASK & ~(pageSize - 1n)) | (gva & (pageSize - 1n));
      return { ...result, mapped: true, gpa, pageSize, writable, user: el0, executable: el0 ? !uxn : !pxn };
    };
    if (level === 3) {
      if (type !== 3n) {
        step.decision = "reserved";
        return fail("reserved", level, `level 3 descriptor ${index} is reserved (type 01)`);
      }
      return leaf(4096n);
    }
    if (type === 1n) {
      if (level === 0) {
        step.decision = "reserved";
        return fail("reserved", level, "level 0 block descriptors do not exist with a 4 KiB granule");
      }
      return leaf(1n << shift);
    }
    // A table descriptor limits everything below it (APTable, UXNTable, PXNTable).
    if ((entry & AP_TABLE_RO) !== 0n) writable = false;
    if ((entry & AP_TABLE_NO_EL0) !== 0n) el0 = false;
    if ((entry & UXN_TABLE) !== 0n) uxn = true;
    if ((entry & PXN_TABLE) !== 0n) pxn = true;
    table = entry & ADDR_MASK;
  }
  return fail("unsupported", 0, "unreachable");
}
