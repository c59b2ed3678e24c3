// The guest's own debug registers (Intel SDM vol. 3, ch. 18): DR0–DR3 storage, DR7 decoding,
// execute- and data-breakpoint matching, and the marks the per-instruction loop reads after an
// instruction (MOV SS, ICEBP).
//
// Everything here is the guest's: the debugger's four slots live in vp.ts (execute) and in the
// Cpu's watch* arrays (data), and its hits are c.dataHit bits 0–3. Guest data-breakpoint hits
// are c.dataHit bits 4–7 (DR0–DR3), recorded by the memory slow paths (mmu.ts) while
// c.watching is set, and by port I/O (system.ts) for I/O breakpoints; the per-instruction loop
// (vp.ts stepInstruction) turns them, TF and the guest's execute breakpoints into #DB. While
// DR7 enables any slot the VP runs one instruction at a time (the fast loop hands over).
//
// DR0–DR3 live in the register file (vp-layout.ts GUEST_DR_LO, GUEST_DR_HI), all 64 bits.

import type { Cpu } from "./cpu.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { CR4, GUEST_DR6, GUEST_DR7, GUEST_DR_HI, GUEST_DR_LO } = vpLayoutModule;

/** DR7.GD (general detect) and DR6.BD (a MOV DR hit it). */
export const DR7_GD = 0x2000;
export const DR6_BD = 0x2000;
/** DR6.B0–B3. */
export const DR6_BN = 0xf;
/** DR7: the L0/G0 … L3/G3 enable bits. */
export const DR7_ENABLES = 0xff;
/** CR4.DE: DR4/DR5 are reserved (#UD) instead of aliasing DR6/DR7. */
export const CR4_DE = 0x8;

/** DRn (n 0–3) low word. */
export function drLo(r: Int32Array, n: number): number {
  return r[GUEST_DR_LO + n];
}

/** DRn (n 0–3) high word. */
export function drHi(r: Int32Array, n: number): number {
  return r[GUEST_DR_HI + n];
}

/** Store DRn (n 0–3). */
export function setDr(r: Int32Array, n: number, lo: number, hi: number): void {
  r[GUEST_DR_LO + n] = lo;
  r[GUEST_DR_HI + n] = hi;
}

/** DR7 LENn → bytes (00 1, 01 2, 10 8, 11 4). */
const LEN_BYTES = [1, 2, 8, 4];

/** DR7 R/Wn of slot n (0 execute, 1 write, 2 I/O, 3 read or write). */
function rwOf(dr7: number, n: number): number {
  return (dr7 >>> (16 + 4 * n)) & 3;
}

/** Whether DR7 enables a data slot (R/W 01 or 11). */
export function guestDataArmed(r: Int32Array): boolean {
  const dr7 = r[GUEST_DR7];
  if ((dr7 & DR7_ENABLES) === 0) return false;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) !== 0 && (rwOf(dr7, n) & 1) !== 0) return true;
  }
  return false;
}

/** B bits (DR6 B0–B3) of the enabled execute slots whose address is lo:hi. */
export function guestExecHits(r: Int32Array, lo: number, hi: number): number {
  const dr7 = r[GUEST_DR7];
  let bits = 0;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0 || rwOf(dr7, n) !== 0) continue;
    if (r[GUEST_DR_LO + n] === lo && drHi(r, n) === hi) bits |= 1 << n;
  }
  return bits;
}

/**
 * Guest data slots that an access of `size` bytes at lo:hi (inside one page) matches: their
 * bits go to c.dataHit bits 4–7. A slot covers its LEN bytes from DRn rounded down to LEN
 * (the SDM: the low address bits below the length are ignored).
 */
export function guestWatchCheck(c: Cpu, lo: number, hi: number, size: number, write: boolean): void {
  const r = c.r;
  const dr7 = r[GUEST_DR7];
  if ((dr7 & DR7_ENABLES) === 0) return;
  const off = lo & 0xfff;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0) continue;
    const rw = rwOf(dr7, n);
    if (rw === 0 || rw === 2 || (rw === 1 && !write)) continue;
    const len = LEN_BYTES[(dr7 >>> (18 + 4 * n)) & 3];
    const wlo = r[GUEST_DR_LO + n] & -len;
    if (drHi(r, n) !== hi || (wlo & -4096) !== (lo & -4096)) continue;
    const wo = wlo & 0xfff;
    if (off < wo + len && wo < off + size) c.dataHit |= 1 << (4 + n);
  }
}

/**
 * Guest I/O breakpoints (R/W 10, defined only while CR4.DE is set): an IN/OUT/INS/OUTS of `size`
 * bytes at `port` matching DRn's port rounded down to LEN sets c.dataHit bit 4 + n (a trap after
 * the instruction or REP iteration, like a data breakpoint).
 */
export function guestIoCheck(c: Cpu, port: number, size: number): void {
  const r = c.r;
  const dr7 = r[GUEST_DR7];
  if ((dr7 & DR7_ENABLES) === 0 || (r[CR4] & CR4_DE) === 0) return;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0 || rwOf(dr7, n) !== 2) continue;
    const lo = r[GUEST_DR_LO + n];
    if ((lo & ~0xffff) !== 0 || drHi(r, n) !== 0) continue;
    const len = LEN_BYTES[(dr7 >>> (18 + 4 * n)) & 3];
    const base = lo & -len;
    if (port < base + len && base < port + size) c.dataHit |= 1 << (4 + n);
  }
}

/** Whether a guest data slot watches a byte of page pageLo:hi for accesses of kind `write`. */
export function guestPageWatched(c: Cpu, pageLo: number, hi: number, write: boolean): boolean {
  const r = c.r;
  const dr7 = r[GUEST_DR7];
  if ((dr7 & DR7_ENABLES) === 0) return false;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0) continue;
    const rw = rwOf(dr7, n);
    if (rw === 0 || rw === 2 || (rw === 1 && !write)) continue;
    if (drHi(r, n) === hi && (r[GUEST_DR_LO + n] & -4096) === pageLo) return true;
  }
  return false;
}

/**
 * After the guest's DR0–DR3 or DR7 changed (or the debugger's slots): c.watching covers the
 * debugger's data slots and the guest's, and the TLB loses entries a slot may now cover.
 */
export function syncGuestWatch(c: Cpu): void {
  const w = c.watchType;
  const want = w[0] !== 0 || w[1] !== 0 || w[2] !== 0 || w[3] !== 0 || guestDataArmed(c.r);
  // Nothing watched before or after: the TLB has nothing to lose.
  if (!want && !c.watching) return;
  c.watching = want;
  c.flushTlb();
}

/**
 * A #DB raised by a debug condition: DR6 B0–B3 become `bits & 0xf`, BS/BD are added, the rest
 * stays; DR7.GD is cleared as the handler is entered (SDM 18.2.4), so it may use the registers.
 */
export function setDr6(r: Int32Array, bits: number): void {
  r[GUEST_DR6] = (r[GUEST_DR6] & ~DR6_BN) | bits;
  r[GUEST_DR7] &= ~DR7_GD;
}

/**
 * Marks the ops set for the per-instruction loop, which clears them before each instruction:
 * `movSs` after a MOV SS (its debug traps wait for the next instruction), `icebp` as INT1
 * raises its #DB, `tfAtEnd` after SYSCALL and SYSRET (their single-step trap follows TF as they
 * end, not as they start).
 */
export const marks = { movSs: false, icebp: false, tfAtEnd: false };
