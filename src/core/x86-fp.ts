// The x87/SSE part of an x86-64 VP state (X86FpState): its shape, the tag word and stack-order
// helpers every backend shares (the embedded machine's words and QEMU's gdbstub registers both
// hold the x87 registers in physical order R0–R7, the debugger sees ST(0)–ST(7)).
import type { X86FpState } from "./types";

export const XMM_COUNT = 16;
export const XMM_BYTES = 16;
export const ST_COUNT = 8;
export const ST_BYTES = 10;
/** MXCSR bits 31:16 are reserved (MXCSR_MASK 0xFFFF: DAZ included); LDMXCSR faults on them. */
export const MXCSR_RESERVED = 0xffff_0000;
export const FOP_MASK = 0x7ff;
export const MXCSR_RESET = 0x1f80;
export const FCW_RESET = 0x037f;
/** Full tag word with every register empty. */
export const FTW_EMPTY = 0xffff;

/** x87 tags (two bits per physical register in the full tag word). */
export const TAG_VALID = 0;
export const TAG_ZERO = 1;
export const TAG_SPECIAL = 2;
export const TAG_EMPTY = 3;

/** TOP (the physical register that is ST(0)) from the status word. */
export function x87Top(fsw: number): number {
  return (fsw >> 11) & 7;
}

/** The tag an 80-bit value (10 bytes, little-endian) gets when it is not empty, as FXRSTOR and FLD derive it. */
export function x87TagOf(value: Uint8Array): number {
  const exponent = (value[8] | (value[9] << 8)) & 0x7fff;
  let significandZero = true;
  for (let i = 0; i < 8; i++) if (value[i] !== 0) significandZero = false;
  if (exponent === 0x7fff) return TAG_SPECIAL; // infinity, NaN
  if (exponent === 0) return significandZero ? TAG_ZERO : TAG_SPECIAL; // zero, denormal
  return value[7] & 0x80 ? TAG_VALID : TAG_SPECIAL; // normal, unnormal (integer bit clear)
}

/**
 * The full tag word for physical registers `physical` (R0–R7) where `empty(i)` says which are
 * empty: the empty ones tag 3, the others the class of their contents.
 */
export function fullTagWord(physical: readonly Uint8Array[], empty: (i: number) => boolean): number {
  let ftw = 0;
  for (let i = 0; i < ST_COUNT; i++) ftw |= (empty(i) ? TAG_EMPTY : x87TagOf(physical[i])) << (2 * i);
  return ftw;
}

/** A full tag word recomputed from its empty bits and the register contents (what SetVpState stores). */
export function normalizeTagWord(ftw: number, physical: readonly Uint8Array[]): number {
  return fullTagWord(physical, (i) => ((ftw >> (2 * i)) & 3) === TAG_EMPTY);
}

/** Bit i set: physical register R(i) is not empty (the abridged tag FXSAVE stores). */
export function abridgedTag(ftw: number): number {
  let out = 0;
  for (let i = 0; i < ST_COUNT; i++) if (((ftw >> (2 * i)) & 3) !== TAG_EMPTY) out |= 1 << i;
  return out;
}

/** ST(0)–ST(7) (stack order) as the physical registers R0–R7 for status word `fsw`. */
export function stackToPhysical(st: readonly Uint8Array[], fsw: number): Uint8Array[] {
  const top = x87Top(fsw);
  const out: Uint8Array[] = new Array(ST_COUNT);
  for (let i = 0; i < ST_COUNT; i++) out[(top + i) & 7] = st[i];
  return out;
}

/** R0–R7 as ST(0)–ST(7) for status word `fsw`. */
export function physicalToStack(physical: readonly Uint8Array[], fsw: number): Uint8Array[] {
  const top = x87Top(fsw);
  return Array.from({ length: ST_COUNT }, (_, i) => physical[(top + i) & 7]);
}

/** An 80-bit value as a bigint (bits 79:0) and back: gdb's st registers and QEMU's. */
export function x87ToBigint(value: Uint8Array): bigint {
  let v = 0n;
  for (let i = value.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(value[i]);
  return v;
}

/** `bytes` little-endian bytes of `v` (truncated to them). */
export function bigintToBytes(v: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Little-endian bytes as an unsigned bigint. */
export const bytesToBigint = x87ToBigint;

/** The FP state after reset (what a VP starts with): MXCSR 0x1F80, FCW 0x037F, an empty stack, XCR0 1. */
export function resetFpState(): X86FpState {
  return {
    xmm: Array.from({ length: XMM_COUNT }, () => new Uint8Array(XMM_BYTES)),
    mxcsr: MXCSR_RESET,
    st: Array.from({ length: ST_COUNT }, () => new Uint8Array(ST_BYTES)),
    fcw: FCW_RESET,
    fsw: 0,
    ftw: FTW_EMPTY,
    fop: 0,
    fip: 0n,
    fdp: 0n,
    xcr0: 1n,
  };
}

/** A deep copy (the byte arrays are copied too). */
export function cloneFpState(fp: X86FpState): X86FpState {
  return { ...fp, xmm: fp.xmm.map((b) => Uint8Array.from(b)), st: fp.st.map((b) => Uint8Array.from(b)) };
}

/** Same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
