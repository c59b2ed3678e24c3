// The local xAPIC register page of each VP (at IA32_APIC_BASE, 0xFEE00000 after reset), and the
// memory-mapped I/O path for guest physical addresses that are not RAM.
//
// Implemented: ID (VP index << 24), version 0x50014 (6 LVT entries), TPR (bits 7:4 are CR8)/PPR,
// EOI (clears the highest in-service vector), LDR, DFR, the spurious-vector register (bit 8
// clear: every LVT entry masked), ISR/TMR/IRR, ESR (illegal
// vectors 0-15), ICR low/high (delivery status never busy; a fixed IPI or an NMI to itself: self
// shorthand, all-including-self, or its own physical ID), the LVT entries and the timer
// (initial/current count, divide configuration, one-shot and periodic, counting retired
// instructions; a mode change keeps the count). Delivery to the guest is interrupts.ts's.
import type { Cpu } from "./cpu.js";
import * as mmuModule from "./mmu.js";
import * as msrModule from "./msr.js";
import type { ApicState } from "./msr.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { setMmioHandlers } = mmuModule;
const { APIC_BASE_EN, vpPlatform } = msrModule;
const { CR8 } = vpLayoutModule;

export const APIC_VERSION = 0x00050014;

const REG_ID = 0x20;
const REG_VERSION = 0x30;
const REG_TPR = 0x80;
const REG_APR = 0x90;
const REG_PPR = 0xa0;
const REG_EOI = 0xb0;
const REG_LDR = 0xd0;
const REG_DFR = 0xe0;
const REG_SVR = 0xf0;
const REG_ISR = 0x100;
const REG_TMR = 0x180;
const REG_IRR = 0x200;
const REG_ESR = 0x280;
const REG_ICR_LO = 0x300;
const REG_ICR_HI = 0x310;
const REG_LVT_TIMER = 0x320;
const REG_LVT_ERROR = 0x370;
const REG_TIMER_INITIAL = 0x380;
const REG_TIMER_CURRENT = 0x390;
const REG_TIMER_DIVIDE = 0x3e0;

export const LVT_MASKED = 0x10000;
const LVT_TIMER_PERIODIC = 0x20000;
/** Writable bits of each LVT entry (timer, thermal, perf, LINT0, LINT1, error). */
const LVT_WRITABLE = [0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff];
/** SVR bit 8: the APIC is software-enabled. */
export const SVR_ENABLE = 0x100;
/** ESR: send illegal vector (5), receive illegal vector (6). */
const ESR_SEND_ILLEGAL = 0x20;
const ESR_RECEIVE_ILLEGAL = 0x40;

/** The timer's divisor for a divide-configuration value (bits 0, 1 and 3). */
function divisor(dcr: number): number {
  const v = ((dcr & 0x3) | ((dcr & 0x8) >> 1)) & 0x7;
  return v === 7 ? 1 : 2 << v;
}

function setBit(words: Int32Array, vector: number): void {
  words[vector >>> 5] |= 1 << (vector & 31);
}

/** The highest vector set in a 256-bit register, or -1. */
export function highestBit(words: Int32Array): number {
  for (let w = 7; w >= 0; w--) if (words[w] !== 0) return w * 32 + (31 - Math.clz32(words[w]));
  return -1;
}

/** TPR: bits 7:4 are CR8 (a MOV to CR8 sets them and clears bits 3:0). */
export function tprOf(c: Cpu, a: ApicState): number {
  const hi = c.r[CR8] & 0xf;
  if (a.tpr >>> 4 !== hi) a.tpr = hi << 4;
  return a.tpr;
}

/** PPR: TPR, or the class of the highest in-service vector when that is higher. */
export function pprOf(c: Cpu, a: ApicState): number {
  const tpr = tprOf(c, a);
  const isr = highestBit(a.isr);
  const isrClass = isr < 0 ? 0 : isr & 0xf0;
  return (tpr & 0xf0) >= isrClass ? tpr : isrClass;
}

/**
 * When the run loop must look at the APIC again (ApicState.eventAt), after any change: at once
 * while IRR holds a request or an NMI is pending or blocked (the loops then watch for IRETQ).
 */
export function refreshEvent(a: ApicState): void {
  let any = a.nmiPending || a.nmiBlocked;
  if (!any) for (let w = 0; w < 8; w++) if (a.irr[w] !== 0) any = true;
  if (any) a.eventAt = 0;
  else if (a.timerRunning && (a.lvt[0] & LVT_MASKED) === 0) a.eventAt = timerExpiry(a);
  else a.eventAt = Infinity;
}

/** Cpu.retired at which the timer's current period ends. */
function timerExpiry(a: ApicState): number {
  return a.timerStart + (a.timerInitial >>> 0) * divisor(a.timerDivide);
}

/**
 * A fixed interrupt `vector` arrives (timer, IPI): into IRR (also while the APIC is
 * software-disabled: the SDM holds what is pending then); vectors 0-15 are illegal (ESR).
 * Callers then refreshEvent.
 */
export function acceptFixed(a: ApicState, vector: number): void {
  if (vector < 16) {
    a.esr |= ESR_RECEIVE_ILLEGAL;
    return;
  }
  setBit(a.irr, vector);
}

/** An NMI arrives: pending until delivered (one is remembered while NMIs are blocked). */
export function acceptNmi(a: ApicState): void {
  a.nmiPending = true;
}

/**
 * Bring the timer up to the current instruction count: a period that ended raises its LVT
 * vector (once, however many periods passed) and stops a one-shot timer or starts the next
 * period of a periodic one.
 */
export function timerUpdate(c: Cpu, a: ApicState): void {
  if (!a.timerRunning) return;
  const end = timerExpiry(a);
  if (c.retired < end) return;
  if ((a.lvt[0] & LVT_TIMER_PERIODIC) !== 0) {
    const period = (a.timerInitial >>> 0) * divisor(a.timerDivide);
    a.timerStart += Math.floor((c.retired - a.timerStart) / period) * period;
  } else {
    a.timerRunning = false;
  }
  if ((a.lvt[0] & LVT_MASKED) === 0) acceptFixed(a, a.lvt[0] & 0xff);
  refreshEvent(a);
}

/** The timer's current count at the VP's current instruction count. */
export function timerCurrent(c: Cpu, a: ApicState): number {
  timerUpdate(c, a);
  if (!a.timerRunning) return 0;
  const ticks = Math.floor((c.retired - a.timerStart) / divisor(a.timerDivide));
  return (a.timerInitial >>> 0) - ticks;
}

/**
 * Instructions until the timer raises an interrupt (its LVT entry unmasked), or Infinity: how
 * far a halted VP's time may jump.
 */
export function timerWait(c: Cpu, a: ApicState): number {
  if (!a.timerRunning || (a.lvt[0] & LVT_MASKED) !== 0) return Infinity;
  return Math.max(0, timerExpiry(a) - c.retired);
}

/** EOI: the highest in-service vector is done. */
function eoi(a: ApicState): void {
  const v0 = highestBit(a.isr);
  if (v0 >= 0) a.isr[v0 >>> 5] &= ~(1 << (v0 & 31));
  refreshEvent(a);
}

/** Reads the 32-bit register at page offset `off` (a multiple of 16). */
export function apicRead(c: Cpu, a: ApicState, off: number): number {
  switch (off) {
    case REG_ID: return a.id << 24;
    case REG_VERSION: return APIC_VERSION;
    case REG_TPR: return tprOf(c, a);
    case REG_APR: return 0;
    case REG_PPR: return pprOf(c, a);
    case REG_LDR: return a.ldr;
    case REG_DFR: return a.dfr;
    case REG_SVR: return a.svr;
    case REG_ESR: return a.esr;
    case REG_ICR_LO: return a.icrLo & ~0x1000; // delivery status: idle
    case REG_ICR_HI: return a.icrHi;
    case REG_TIMER_INITIAL: return a.timerInitial;
    case REG_TIMER_CURRENT: return timerCurrent(c, a) | 0;
    case REG_TIMER_DIVIDE: return a.timerDivide;
    default:
      if (off >= REG_ISR && off < REG_ISR + 0x80) return a.isr[(off - REG_ISR) >> 4];
      if (off >= REG_TMR && off < REG_TMR + 0x80) return a.tmr[(off - REG_TMR) >> 4];
      if (off >= REG_IRR && off < REG_IRR + 0x80) { timerUpdate(c, a); return a.irr[(off - REG_IRR) >> 4]; }
      if (off >= REG_LVT_TIMER && off <= REG_LVT_ERROR) return a.lvt[(off - REG_LVT_TIMER) >> 4];
      return 0;
  }
}

/** Writes the 32-bit register at page offset `off`. */
export function apicWrite(c: Cpu, a: ApicState, off: number, v: number): void {
  switch (off) {
    case REG_ID: a.id = v >>> 24; return; // as KVM: the xAPIC ID is writable
    case REG_TPR:
      a.tpr = v & 0xff;
      c.r[CR8] = (v >>> 4) & 0xf;
      c.r[CR8 + 1] = 0;
      return;
    case REG_EOI: eoi(a); return;
    case REG_LDR: a.ldr = v & 0xff000000; return;
    case REG_DFR: a.dfr = v | 0x0fffffff; return;
    case REG_SVR:
      timerUpdate(c, a);
      a.svr = v & 0x13ff;
      // Software-disabling the APIC masks every LVT entry.
      if ((v & SVR_ENABLE) === 0) for (let k = 0; k < 6; k++) a.lvt[k] |= LVT_MASKED;
      refreshEvent(a);
      return;
    case REG_ESR: a.esr = 0; return;
    case REG_ICR_HI: a.icrHi = v & 0xff000000; return;
    case REG_ICR_LO: {
      a.icrLo = v & 0x000ccfff;
      const mode = (v >>> 8) & 7;
      const shorthand = (v >>> 18) & 3;
      const vector = v & 0xff;
      // Self, all including self, or a physical destination that is this APIC's ID (0xff: broadcast).
      const dest = a.icrHi >>> 24;
      const toSelf = shorthand === 1 || shorthand === 2 || (shorthand === 0 && (v & 0x800) === 0 && (dest === a.id || dest === 0xff));
      if (!toSelf) return;
      if (mode === 0) {
        if (vector < 16) a.esr |= ESR_SEND_ILLEGAL;
        acceptFixed(a, vector);
      } else if (mode === 4 && shorthand !== 1) {
        acceptNmi(a);
      }
      refreshEvent(a);
      return;
    }
    case REG_TIMER_INITIAL:
      a.timerInitial = v;
      a.timerStart = c.retired;
      a.timerRunning = v !== 0;
      refreshEvent(a);
      return;
    case REG_TIMER_DIVIDE: {
      // Keep the count where it is: restart the clock at the current count with the new divisor.
      const cur = timerCurrent(c, a);
      a.timerDivide = v & 0xb;
      if (a.timerRunning) a.timerStart = c.retired - ((a.timerInitial >>> 0) - cur) * divisor(a.timerDivide);
      refreshEvent(a);
      return;
    }
    default:
      if (off >= REG_LVT_TIMER && off <= REG_LVT_ERROR) {
        const k = (off - REG_LVT_TIMER) >> 4;
        // The timer runs to now under its old mode first (a mode change keeps the count).
        if (k === 0) timerUpdate(c, a);
        let w = v & LVT_WRITABLE[k];
        if ((a.svr & SVR_ENABLE) === 0) w |= LVT_MASKED;
        a.lvt[k] = w;
        if (k === 0) refreshEvent(a);
      }
      // Read-only registers ignore writes.
  }
}

/** The APIC page of the VP if `gpa` is in it (and the APIC is enabled), else -1. */
function apicOffset(c: Cpu, gpa: number): number {
  const p = vpPlatform(c);
  if ((p.apicBase & APIC_BASE_EN) === 0) return -1;
  const base = (p.apicBase & -4096) >>> 0;
  return gpa >= base && gpa < base + 4096 ? gpa - base : -1;
}

function mmioRead(c: Cpu, gpa: number, size: number): number {
  const off = apicOffset(c, gpa);
  if (off >= 0) {
    const v = apicRead(c, vpPlatform(c).apic, off & 0xff0) >>> (8 * (off & 3));
    return size === 4 ? v | 0 : v & (size === 2 ? 0xffff : 0xff);
  }
  const bus = c.bus;
  if (bus.mmioRead !== undefined) {
    const v = bus.mmioRead(gpa, size, c.vp);
    if (v !== undefined) return size === 4 ? v | 0 : v & (size === 2 ? 0xffff : 0xff);
  }
  return size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
}

function mmioWrite(c: Cpu, gpa: number, size: number, value: number): void {
  const off = apicOffset(c, gpa);
  if (off >= 0) {
    // Only aligned 32-bit accesses reach a register (as on hardware, narrower writes are lost).
    if (size === 4 && (off & 0xf) === 0) apicWrite(c, vpPlatform(c).apic, off, value);
    return;
  }
  c.bus.mmioWrite?.(gpa, size, value >>> 0, c.vp);
}

setMmioHandlers(mmioRead, mmioWrite);
