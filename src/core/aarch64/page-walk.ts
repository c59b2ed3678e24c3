// aarch64 stage-1 EL1 translation for debugger accesses: 4 KiB granule, TTBR0/TTBR1 by VA bit 55.
//
// Like the x86 walk, it ignores permissions and never updates Access flags.

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
  if ((regs.sctlrEl1 & SCTLR_M) === 0n) return { ok: true, gpa: gva, pageSize: 4096n };
  const upper = ((gva >> 55n) & 1n) === 1n;
  const tcr = regs.tcrEl1;
  const txsz = upper ? bits(tcr, 16, 6) : bits(tcr, 0, 6);
  const epd = upper ? bits(tcr, 23, 1) : bits(tcr, 7, 1);
  const tbi = upper ? bits(tcr, 38, 1) : bits(tcr, 37, 1);
  const granuleOk = upper ? bits(tcr, 30, 2) === 2 : bits(tcr, 14, 2) === 0;
  const range = upper ? "TTBR1" : "TTBR0";
  if (epd) return { ok: false, detail: `${range} walks are disabled (TCR_EL1.EPD${upper ? 1 : 0})` };
  if (!granuleOk) return { ok: false, detail: `${range} does not use the 4 KiB granule; only 4 KiB is supported` };
  const inputBits = 64 - txsz;
  if (inputBits < 25 || inputBits > 48) return { ok: false, detail: `T${upper ? 1 : 0}SZ=${txsz} is outside 16..39` };
  // Bits above the input size must be all 0 (TTBR0) or all 1 (TTBR1); the top byte is ignored with TBI.
  const topBit = tbi ? 56 : 64;
  const high = (gva >> BigInt(inputBits)) & ((1n << BigInt(topBit - inputBits)) - 1n);
  const want = upper ? (1n << BigInt(topBit - inputBits)) - 1n : 0n;
  if (high !== want) return { ok: false, detail: `address is outside the ${inputBits}-bit ${range} range` };

  let table = (upper ? regs.ttbr1El1 : regs.ttbr0El1) & TTBR_BADDR & ~0xfffn;
  // 4 KiB granule: 9 bits per level above the 12-bit page offset.
  const startLevel = 4 - Math.ceil((inputBits - 12) / 9);
  for (let level = startLevel; level <= 3; level++) {
    const shift = BigInt(12 + 9 * (3 - level));
    // The first level resolves whatever input bits remain above the lower levels' 9 each.
    const indexBits = level === startLevel ? inputBits - Number(shift) : 9;
    const index = (gva >> shift) & ((1n << BigInt(indexBits)) - 1n);
    const entryGpa = table + index * 8n;
    const entry = readEntry(entryGpa);
    if (entry === undefined) return { ok: false, detail: `level ${level} descriptor at GPA 0x${entryGpa.toString(16)} is outside guest RAM` };
    const type = entry & 3n;
    if ((type & 1n) === 0n) {
      return { ok: false, detail: `level ${level} descriptor ${index} at GPA 0x${entryGpa.toString(16)} is invalid` };
    }
    if (level === 3) {
      if (type !== 3n) return { ok: false, detail: `level 3 descriptor ${index} is reserved (type 01)` };
      return { ok: true, gpa: (entry & ADDR_MASK) | (gva & 0xfffn), pageSize: 4096n };
    }
    if (type === 1n) {
      if (level === 0) return { ok: false, detail: "level 0 block descriptors do not exist with a 4 KiB granule" };
      const pageSize = 1n << shift;
      return { ok: true, gpa: (entry & ADDR_MASK & ~(pageSize - 1n)) | (gva & (pageSize - 1n)), pageSize };
    }
    table = entry & ADDR_MASK;
  }
  return { ok: false, detail: "unreachable" };
}
