// Guest exceptions raised by instruction semantics, and the signals the run loop catches.
//
// Semantics throw one preallocated object (no stack trace, no allocation); the details of the
// pending exception travel on the Cpu so the run loop can deliver it through the IDT.

import type { Cpu } from "./cpu.js";

export const VEC_DE = 0;
export const VEC_DB = 1;
export const VEC_BP = 3;
export const VEC_UD = 6;
export const VEC_DF = 8;
export const VEC_TS = 10;
export const VEC_NP = 11;
export const VEC_SS = 12;
export const VEC_GP = 13;
export const VEC_PF = 14;

/** `Cpu.ferr` value meaning "this exception pushes no error code". */
export const NO_ERROR_CODE = -1;

/** Thrown by semantics when a guest exception is pending (details on the Cpu). */
export const GUEST_FAULT: unique symbol = Symbol("x86 guest fault");
/** Thrown by an op of a block whose code was overwritten while it ran: re-decode from here. */
export const BLOCK_ABORT: unique symbol = Symbol("x86 block abort");

/** Raise a fault: RIP is reported at the start of the faulting instruction. */
export function fault(c: Cpu, vector: number, errorCode: number = NO_ERROR_CODE): never {
  c.fvec = vector;
  c.ferr = errorCode;
  c.ftrap = false;
  c.fsoft = 0;
  c.ncan = false;
  throw GUEST_FAULT;
}

/**
 * #GP(0) for a data access to a non-canonical address. The exception is #SS(0) when the access
 * goes through SS (an RSP- or RBP-based operand, PUSH, POP …): exceptions.ts decides, from the
 * instruction at RIP, when it delivers it.
 */
export function nonCanonical(c: Cpu): never {
  c.fvec = VEC_GP;
  c.ferr = 0;
  c.ftrap = false;
  c.fsoft = 0;
  c.ncan = true;
  throw GUEST_FAULT;
}

/** Raise a trap (INT3, INT n): the instruction retires and RIP is reported after it. */
export function trap(c: Cpu, vector: number): never {
  c.fvec = vector;
  c.ferr = NO_ERROR_CODE;
  c.ftrap = true;
  c.fsoft = 0;
  c.ncan = false;
  throw GUEST_FAULT;
}

/**
 * INT n, INT3 and INTO (`length` bytes long): a trap whose delivery checks the gate's DPL against
 * the CPL (a gate the CPL may not use is #GP(vector * 8 + 2), a fault reported at the
 * instruction); ICEBP and exceptions skip that check.
 */
export function softwareInterrupt(c: Cpu, vector: number, length: number): never {
  c.fvec = vector;
  c.ferr = NO_ERROR_CODE;
  c.ftrap = true;
  c.fsoft = length;
  c.ncan = false;
  throw GUEST_FAULT;
}

export function gp(c: Cpu, errorCode = 0): never {
  return fault(c, VEC_GP, errorCode);
}

export function ud(c: Cpu): never {
  return fault(c, VEC_UD);
}
