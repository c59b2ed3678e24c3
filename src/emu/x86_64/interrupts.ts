// External interrupt delivery from the local xAPIC (apic.ts) to the guest, at instruction
// boundaries (SDM vol. 3, 6.8.3, 6.9, 10.8):
//
// - An NMI pending (ICR delivery mode NMI to itself) is delivered whatever RFLAGS.IF says, unless
//   NMIs are blocked (from an NMI's delivery to the next IRETQ that completes; one more NMI is
//   remembered). While they are, the run loops look at the APIC after every block (afterOp).
// - Otherwise, with RFLAGS.IF set and IA32_APIC_BASE.EN, the highest vector in IRR is delivered
//   when its priority class is above PPR's (TPR and the highest in-service vector): its IRR bit
//   moves to ISR, and it is delivered through the IDT like a trap (RIP: where execution goes on).
// - The interrupt shadow (word INT_SHADOW): after a STI that set IF, and after a MOV SS, nothing
//   is delivered before the next instruction completes. STI sets the word; a MOV SS run in a
//   block is seen through guest-debug's `marks.movSs` (conservatively: a block that ran a MOV SS
//   runs one more instruction before an interrupt is delivered).
//
// The run loops (vp.ts) call pollInterrupts only when Cpu.retired has reached ApicState.eventAt
// (0 while something waits in IRR or an NMI is pending, else the timer's next expiry): the
// common case costs one comparison per block.

import type { Cpu, OpFn } from "./cpu.js";
import * as apicModule from "./apic.js";
import * as exceptionsModule from "./exceptions.js";
import * as flagsModule from "./flags.js";
import * as guestDebugModule from "./guest-debug.js";
import * as msrModule from "./msr.js";
import type { ApicState, VpPlatform } from "./msr.js";
import * as systemModule from "./system.js";
import * as vpLayoutModule from "./vp-layout.js";
import { Mnemonic } from "iced-x86";
import type { Insn } from "./insn.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { highestBit, pprOf, refreshEvent, timerUpdate, timerWait } = apicModule;
const { deliverExternalInterrupt } = exceptionsModule;
const { IF } = flagsModule;
const { marks } = guestDebugModule;
const { APIC_BASE_EN, vpPlatform } = msrModule;
const { HALTED, INT_SHADOW, RFLAGS } = vpLayoutModule;
const { systemTranslators } = systemModule;

export const VEC_NMI = 2;

/** pollInterrupts: nothing to deliver now. */
export const IRQ_NONE = 0;
/** pollInterrupts: an interrupt was delivered (RIP is at its handler). */
export const IRQ_DELIVERED = 1;
/** pollInterrupts: one is deliverable, but the interrupt shadow holds it for one more instruction. */
export const IRQ_SHADOW = 2;
/** pollInterrupts: delivering it triple-faulted. */
export const IRQ_TRIPLE_FAULT = 3;

/**
 * The interrupt the VP would take now (its vector, VEC_NMI for an NMI), ignoring the interrupt
 * shadow, or -1.
 */
export function nextInterrupt(c: Cpu, p: VpPlatform): number {
  const a = p.apic;
  if (a.nmiPending && !a.nmiBlocked) return VEC_NMI;
  if ((c.r[RFLAGS] & IF) === 0 || (p.apicBase & APIC_BASE_EN) === 0) return -1;
  const v = highestBit(a.irr);
  if (v < 0 || (v & 0xf0) <= (pprOf(c, a) & 0xf0)) return -1;
  return v;
}

/** Take interrupt `v` (from nextInterrupt) out of the APIC and deliver it; false on a triple fault. */
function take(c: Cpu, a: ApicState, v: number): boolean {
  if (v === VEC_NMI && a.nmiPending && !a.nmiBlocked) {
    a.nmiPending = false;
    a.nmiBlocked = true;
  } else {
    a.irr[v >>> 5] &= ~(1 << (v & 31));
    a.isr[v >>> 5] |= 1 << (v & 31);
  }
  refreshEvent(a);
  c.r[INT_SHADOW] = 0;
  return deliverExternalInterrupt(c, v);
}

/**
 * At an instruction boundary (Cpu.retired >= ApicState.eventAt): fire the timer if due, then
 * deliver what can be delivered. IRQ_SHADOW asks the caller to run exactly one instruction, clear
 * INT_SHADOW and poll again.
 */
export function pollInterrupts(c: Cpu, p: VpPlatform): number {
  const a = p.apic;
  const r = c.r;
  timerUpdate(c, a);
  const movSs = marks.movSs;
  marks.movSs = false;
  const v = nextInterrupt(c, p);
  if (v < 0) {
    r[INT_SHADOW] = 0;
    refreshEvent(a);
    return IRQ_NONE;
  }
  if (r[INT_SHADOW] !== 0 || movSs) {
    r[INT_SHADOW] = 1;
    return IRQ_SHADOW;
  }
  return take(c, a, v) ? IRQ_DELIVERED : IRQ_TRIPLE_FAULT;
}

/**
 * A VP in HLT: wakes when an interrupt can be delivered (it is, RIP after the HLT). With IF set
 * and the timer armed (LVT unmasked) but nothing else to wake it, the VP's time jumps to the
 * timer's expiry: the TSC (VpPlatform.tscOffset) and the timer move on by the instructions the
 * VP would have waited, so a HLT costs no host time. Returns IRQ_NONE when it stays halted.
 */
export function wakeFromHalt(c: Cpu, p: VpPlatform): number {
  const a = p.apic;
  const r = c.r;
  // HLT completed: a shadow before it is over.
  r[INT_SHADOW] = 0;
  marks.movSs = false;
  timerUpdate(c, a);
  let v = nextInterrupt(c, p);
  if (v < 0 && (r[RFLAGS] & IF) !== 0) {
    const wait = timerWait(c, a);
    if (wait !== Infinity) {
      // Jump: the timer's period start and the TSC move with the skipped instructions.
      a.timerStart -= wait;
      p.tscOffset += wait;
      timerUpdate(c, a);
      v = nextInterrupt(c, p);
    }
  }
  if (v < 0) return IRQ_NONE;
  r[HALTED] = 0;
  return take(c, a, v) ? IRQ_DELIVERED : IRQ_TRIPLE_FAULT;
}

let iretq: OpFn | null | undefined;

/**
 * The op IRETQ decodes to (system.ts's translator hands out one function for every IRETQ), so the
 * run loops can tell a block that ended with IRETQ; null if that ever stops being one function.
 */
export function iretqOp(): OpFn | null {
  if (iretq !== undefined) return iretq;
  iretq = null;
  try {
    const entry = systemTranslators.find(([m]) => m === Mnemonic.Iretq);
    if (entry !== undefined) {
      const a = entry[1]({ end: 0 } as Insn);
      const b = entry[1]({ end: 0 } as Insn);
      if (a === b) iretq = a;
    }
  } catch {
    iretq = null;
  }
  return iretq;
}

/** After an instruction (the last op of a block) `op` completed: an IRETQ ends NMI blocking. */
export function afterOp(p: VpPlatform, op: OpFn): void {
  const a = p.apic;
  if (!a.nmiBlocked) return;
  const iret = iretqOp();
  if (iret !== null && op !== iret) return;
  a.nmiBlocked = false;
  refreshEvent(a);
}

/**
 * STI: sets IF; when IF was clear, nothing is delivered before the next instruction completes
 * (INT_SHADOW), and the run loop looks at the APIC after it (the op ends its block).
 */
export const stiOp: OpFn = (c) => {
  const r = c.r;
  const f = r[RFLAGS];
  if ((f & IF) !== 0) return;
  r[RFLAGS] = f | IF;
  r[INT_SHADOW] = 1;
  vpPlatform(c).apic.eventAt = 0;
};
