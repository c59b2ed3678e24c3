// Word layout of one x86-64 VP's registers inside a shared Uint32Array (lo/hi pairs for u64).
//
// The register file lives in a SharedArrayBuffer so the server thread can read and write a
// stopped VP's registers without a round trip to the worker that runs it. 64-bit values are
// two u32 words, low word first, so the interpreter's hot path never touches bigint.

/** General-purpose register n (x86 encoding order, RAX=0 … R15=15): words GP + 2n (lo), GP + 2n + 1 (hi). */
export const GP = 0;
export const RIP = 32;
/** RFLAGS: only the low word is used; the high word stays 0. */
export const RFLAGS = 34;
export const CR0 = 36;
export const CR2 = 38;
export const CR3 = 40;
export const CR4 = 42;
export const CR8 = 44;
export const EFER = 46;
export const KERNEL_GS_BASE = 48;
/** Six segment registers ES CS SS DS FS GS (x86 sreg encoding order), SEG_WORDS words each. */
export const SEG = 50;
export const SEG_WORDS = 5;
/** Offsets inside one segment record. */
export const SEG_BASE = 0; // lo, hi
export const SEG_LIMIT = 2;
export const SEG_SELECTOR = 3;
export const SEG_ATTRIBUTES = 4; // OpenVMM packing: type|S<<4|DPL<<5|P<<7|AVL<<12|L<<13|DB<<14|G<<15
export const SREG_ES = 0;
export const SREG_CS = 1;
export const SREG_SS = 2;
export const SREG_DS = 3;
export const SREG_FS = 4;
export const SREG_GS = 5;
/** GDTR and IDTR: base (lo, hi) then limit. */
export const GDTR = 80;
export const IDTR = 83;
/** 1 while the VP sits in HLT waiting for an interrupt. */
export const HALTED = 86;
/**
 * The guest's own DR6 status bits (B0–B3, BD, BS, BT: mask 0xe00f; reads add the fixed ones,
 * 0xffff0ff0) and DR7 (low word; bit 10 reads as 1). 0 is the reset state. The debugger's
 * single-step and slots never change them.
 */
export const GUEST_DR6 = 87;
export const GUEST_DR7 = 88;
/** DR6: the status bits kept (B0–B3, BD, BS, BT), BS (single-step), and the bits that always read as 1. */
export const DR6_STATUS = 0xe00f;
export const DR6_BS = 0x4000;
export const DR6_FIXED = 0xffff0ff0 | 0;
/** DR7: the bits a write keeps (L0–G3, LE GE, GD, R/W and LEN fields) and bit 10, read as 1. */
export const DR7_WRITABLE = 0xffff23ff | 0;
export const DR7_FIXED = 0x400;
/**
 * The guest's DR0–DR3 (see guest-debug.ts): words GUEST_DR_LO + n hold the low words and
 * GUEST_DR_HI + n the high words (after the FP state). 0 is the reset state.
 */
export const GUEST_DR_LO = 89;
export const GUEST_DR_HI = 196;
/**
 * 1 while the interrupt shadow of a STI (that set IF) or a MOV SS holds external interrupts
 * until the instruction at RIP completes (interrupts.ts); 0 otherwise and at reset. Kept here so
 * a debugger stop between the two instructions keeps it.
 */
export const INT_SHADOW = 93;
/** PKRU, the protection-key rights of user pages (RDPKRU/WRPKRU, see mmu.ts); 0 at reset. Word 95 is free. */
export const PKRU = 94;
// ------------------------------------------------------------------ x87, SSE and XSAVE state
//
// Words 96 on. The FXSAVE image is derived from these words (and written back into them); no
// other copy of the state exists, so the server thread can read and write it between runs.

/** XMM0–XMM15: four words each, least significant word first (XMMn word k = bits 32k..32k+31). */
export const XMM = 96;
/** MXCSR (reset 0x1f80). */
export const MXCSR = 160;
/** x87 control word (reset 0x037f after FNINIT; 0x0040 after RESET as the SDM gives, we use 0x037f like QEMU's reset). */
export const FCW = 161;
/** x87 status word with TOP in bits 11–13 as the guest reads it. */
export const FSW = 162;
/**
 * x87 tag word, full form (two bits per physical register R0–R7: 00 valid, 01 zero, 10 special,
 * 11 empty). 0xffff = all empty. FXSAVE stores the abridged byte derived from it.
 */
export const FTW = 163;
/** Last x87 opcode (11 bits). */
export const FOP = 164;
/** Last x87 instruction pointer and data pointer (64-bit each: lo, hi). */
export const FIP = 165;
export const FDP = 167;
/** XCR0 (lo, hi); reset 1 (x87 only). */
export const XCR0 = 169;
/**
 * x87 physical registers R0–R7, three words each: significand low word, significand high word
 * (bit 31 = the explicit integer bit), then sign << 15 | biased exponent (15 bits) in the low 16
 * bits. ST(i) is physical register (TOP + i) & 7.
 */
export const FPR = 172;
export const FPR_WORDS = 3;
/** Reset values of the FP state. */
export const MXCSR_RESET = 0x1f80;
export const FCW_RESET = 0x037f;

/** Words per VP; VP n's registers start at word n * VP_WORDS (even, so f64 views of XMM stay aligned). */
export const VP_WORDS = 200;

/** Index of segment register `sreg` (SREG_*) field `field` (SEG_*) inside one VP's words. */
export function segWord(sreg: number, field: number): number {
  return SEG + sreg * SEG_WORDS + field;
}
