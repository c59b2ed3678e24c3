// When x87, SSE and XSAVE instructions may run: CR0.EM/TS/MP and CR4.OSFXSR/OSXMMEXCPT/OSXSAVE
// as the SDM gives them (#NM, #UD), and the vectors the FP families raise.

import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { fault } = faultModule;
const { CR0, CR4, FSW } = vpLayoutModule;

/** Device not available (#NM). */
export const VEC_NM = 7;
/** x87 floating-point error (#MF). */
export const VEC_MF = 16;
/** SIMD floating-point exception (#XM). */
export const VEC_XM = 19;

export const CR0_MP = 0x2;
export const CR0_EM = 0x4;
export const CR0_TS = 0x8;
export const CR0_NE = 0x20;
export const CR4_OSFXSR = 0x200;
export const CR4_OSXMMEXCPT = 0x400;
export const CR4_OSXSAVE = 0x40000;

/** x87 instructions: #NM when CR0.EM or CR0.TS is set. */
export function x87Gate(c: Cpu): void {
  if ((c.r[CR0] & (CR0_EM | CR0_TS)) !== 0) fault(c, VEC_NM);
}

/** WAIT/FWAIT: #NM only when CR0.TS and CR0.MP are both set. */
export function waitGate(c: Cpu): void {
  if ((c.r[CR0] & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) fault(c, VEC_NM);
}

/** SSE/SSE2/… instructions: #UD when CR0.EM is set or CR4.OSFXSR is clear, then #NM when CR0.TS is set. */
export function sseGate(c: Cpu): void {
  const r = c.r;
  if ((r[CR0] & CR0_EM) !== 0 || (r[CR4] & CR4_OSFXSR) === 0) fault(c, 6);
  if ((r[CR0] & CR0_TS) !== 0) fault(c, VEC_NM);
}

/** x87 status word ES (exception summary): an unmasked exception is pending. */
const SW_ES = 0x80;

/**
 * MMX instructions (and EMMS): #UD when CR0.EM is set, #NM when CR0.TS is set, then #MF when an
 * unmasked x87 exception is pending (with CR0.NE = 1; without it nothing is raised, as for x87).
 * CR4.OSFXSR does not matter for the MMX-register forms.
 */
export function mmxGate(c: Cpu): void {
  const r = c.r;
  const cr0 = r[CR0];
  if ((cr0 & (CR0_EM | CR0_TS)) !== 0) fault(c, (cr0 & CR0_EM) !== 0 ? 6 : VEC_NM);
  if ((r[FSW] & SW_ES) !== 0 && (cr0 & CR0_NE) !== 0) fault(c, VEC_MF);
}

/** SSE instructions with an MMX register operand (MOVQ2DQ, CVTPI2PS, …): sseGate's checks, then a pending x87 exception as #MF. */
export function sseMmxGate(c: Cpu): void {
  sseGate(c);
  if ((c.r[FSW] & SW_ES) !== 0 && (c.r[CR0] & CR0_NE) !== 0) fault(c, VEC_MF);
}

/** FXSAVE/FXRSTOR: #NM when CR0.EM or CR0.TS is set. */
export function fxsaveGate(c: Cpu): void {
  if ((c.r[CR0] & (CR0_EM | CR0_TS)) !== 0) fault(c, VEC_NM);
}

/** XSAVE/XRSTOR: #UD when CR4.OSXSAVE is clear, then #NM when CR0.TS is set. XGETBV/XSETBV: only the #UD. */
export function xsaveGate(c: Cpu, checkTs: boolean): void {
  if ((c.r[CR4] & CR4_OSXSAVE) === 0) fault(c, 6);
  if (checkTs && (c.r[CR0] & CR0_TS) !== 0) fault(c, VEC_NM);
}
