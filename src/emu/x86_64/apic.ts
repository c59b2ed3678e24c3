// The local xAPIC register page of each VP (at IA32_APIC_BASE, 0xFEE00000 after reset), and the
// memory-mapped I/O path for guest physical addresses that are not RAM.
//
// Implemented: ID (VP index << 24), version 0x50014 (6 LVT entries), TPR/PPR, EOI (clears the
// highest in-service vector), LDR, DFR, the spurious-vector register, ISR/TMR/IRR, ESR, ICR
// low/high (delivery status never busy; a fixed IPI to itself or a self IPI sets the vector in
// IRR), the LVT entries and the timer (initial/current count, divide configuration, one-shot and
// periodic, counting retired instructions). The machine has no external-interrupt delivery path
// yet, so a vector set in IRR (by the timer or an IPI) is never delivered to the guest.

import type { Cpu } from "./cpu.js";
import * as mmuModule from "./mmu.js";
import * as msrModule from "./msr.js";
import type { ApicState } from "./msr.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { setMmioHandlers } = mmuModule;
const { APIC_BASE_EN, vpPlatform } = msrModule;

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

const LVT_MASKED = 0x10000;
const LVT_TIMER_PERIODIC = 0x20000;
/** Writable bits of each LVT entry (timer, thermal, perf, LINT0, LINT1, error). */
const LVT_WRITABLE = [0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff];

/** The timer's divisor for a divide-configuration value (bits 0, 1 and 3). */
function divisor(dcr: number): number {
  const v = ((dcr & 0x3) | ((dcr & 0x8) >> 1)) & 0x7;
  return v === 7 ? 1 : 2 << v;
}

/** The timer's current count at the VP's current instruction count. */
export function timerCurrent(c: Cpu, a: ApicState): number {
  if (a.timerInitial === 0) return 0;
  const ticks = Math.floor((c.retired - a.timerStart) / divisor(a.timerDivide));
  const init = a.timerInitial >>> 0;
  if ((a.lvt[0] & LVT_TIMER_PERIODIC) !== 0) return init - (ticks % init);
  return ticks >= init ? 0 : init - ticks;
}

function setBit(words: Int32Array, vector: number): void {
  words[vector >>> 5] |= 1 << (vector & 31);
}

function highestBit(words: Int32Array): number {
  for (let w = 7; w >= 0; w--) if (words[w] !== 0) return w * 32 + (31 - Math.clz32(words[w]));
  return -1;
}

/** Reads the 32-bit register at page offset `off` (a multiple of 16). */
export function apicRead(c: Cpu, a: ApicState, off: number): number {
  switch (off) {
    case REG_ID: return a.id << 24;
    case REG_VERSION: return APIC_VERSION;
    case REG_TPR: return a.tpr;
    case REG_APR: return 0;
    case REG_PPR: {
      const isr = highestBit(a.isr);
      const isrClass = isr < 0 ? 0 : isr & 0xf0;
      return (a.tpr & 0xf0) >= isrClass ? a.tpr : isrClass;
    }
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
      if (off >= REG_IRR && off < REG_IRR + 0x80) return a.irr[(off - REG_IRR) >> 4];
      if (off >= REG_LVT_TIMER && off <= REG_LVT_ERROR) return a.lvt[(off - REG_LVT_TIMER) >> 4];
      return 0;
  }
}

/** Writes the 32-bit register at page offset `off`. */
export function apicWrite(c: Cpu, a: ApicState, off: number, v: number): void {
  switch (off) {
    case REG_ID: a.id = v >>> 24; return; // as KVM: the xAPIC ID is writable
    case REG_TPR: a.tpr = v & 0xff; return;
    case REG_EOI: {
      const v0 = highestBit(a.isr);
      if (v0 >= 0) a.isr[v0 >>> 5] &= ~(1 << (v0 & 31));
      return;
    }
    case REG_LDR: a.ldr = v & 0xff000000; return;
    case REG_DFR: a.dfr = v | 0x0fffffff; return;
    case REG_SVR:
      a.svr = v & 0x13ff;
      // Software-disabling the APIC masks every LVT entry.
      if ((v & 0x100) === 0) for (let k = 0; k < 6; k++) a.lvt[k] |= LVT_MASKED;
      return;
    case REG_ESR: a.esr = 0; return;
    case REG_ICR_HI: a.icrHi = v & 0xff000000; return;
    case REG_ICR_LO: {
      a.icrLo = v & 0x000ccfff;
      const mode = (v >>> 8) & 7;
      const shorthand = (v >>> 18) & 3;
      const vector = v & 0xff;
      const toSelf = shorthand === 1 || shorthand === 2 || (shorthand === 0 && (v & 0x800) === 0 && (a.icrHi >>> 24) === a.id);
      if (mode === 0 && toSelf && vector >= 16) setBit(a.irr, vector);
      return;
    }
    case REG_TIMER_INITIAL:
      a.timerInitial = v;
      a.timerStart = c.retired;
      return;
    case REG_TIMER_DIVIDE: {
      // Keep the count where it is: restart the clock at the current count with the new divisor.
      const cur = timerCurrent(c, a);
      a.timerDivide = v & 0xb;
      if (a.timerInitial !== 0 && cur !== 0) a.timerStart = c.retired - ((a.timerInitial >>> 0) - cur) * divisor(a.timerDivide);
      return;
    }
    default:
      if (off >= REG_LVT_TIMER && off <= REG_LVT_ERROR) {
        const k = (off - REG_LVT_TIMER) >> 4;
        let w = v & LVT_WRITABLE[k];
        if ((a.svr & 0x100) === 0) w |= LVT_MASKED;
        a.lvt[k] = w;
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
