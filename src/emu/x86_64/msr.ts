// The MSR file of the embedded x86-64 machine (RDMSR/WRMSR), the task register (LTR/STR), LDTR
// (LLDT/SLDT), SMSW/LMSW, RDTSCP and RDPID.
//
// Per-VP platform state that has no words in the register file (vp-layout.ts is full: the x87
// registers end at word 195 and 196-199 are taken) lives in a VpPlatform object per (bus, VP),
// dropped by resetPlatform() when the machine resets. The debugger's register view does not
// show it.

import type { GuestBus } from "../bus.js";
import type { Cpu, OpFn } from "./cpu.js";
import * as cpuModelModule from "./cpu-model.js";
import * as faultModule from "./fault.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as operandsModule from "./operands.js";
import * as privilegeModule from "./privilege.js";
import * as vpLayoutModule from "./vp-layout.js";
import { Mnemonic } from "iced-x86";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { EFER_SUPPORTED } = cpuModelModule;
const { VEC_NP, fault, gp } = faultModule;
const { END_STOP, UnsupportedForm } = insnModule;
const { rd32, wr32 } = mmuModule;
const { reader, writer } = operandsModule;
const { requireCpl0, umipCheck } = privilegeModule;

const CR4_TSD = 0x4;
const { CR0, CR4, EFER, GDTR, GP, KERNEL_GS_BASE, SEG_BASE, SEG_SELECTOR, SREG_CS, SREG_FS, SREG_GS, segWord } = vpLayoutModule;

const RAX = GP;
const RCX = GP + 2;
const RDX = GP + 4;

export const MSR_TSC = 0x10;
export const MSR_APIC_BASE = 0x1b;
export const MSR_SYSENTER_CS = 0x174;
export const MSR_SYSENTER_ESP = 0x175;
export const MSR_SYSENTER_EIP = 0x176;
export const MSR_MCG_CAP = 0x179;
export const MSR_MCG_STATUS = 0x17a;
export const MSR_MISC_ENABLE = 0x1a0;
export const MSR_PAT = 0x277;
export const MSR_EFER = 0xc0000080;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_SFMASK = 0xc0000084;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_KERNEL_GS_BASE = 0xc0000102;
export const MSR_TSC_AUX = 0xc0000103;
/** AMD K7 performance counters and event selects (PERFEVTSEL0-3, PERFCTR0-3): read 0, writes ignored. */
export const MSR_K7_PERF_FIRST = 0xc0010000;
export const MSR_K7_PERF_LAST = 0xc0010007;

/** xAPIC base: the default page, the BSP flag (bit 8) and the global enable (bit 11). */
export const APIC_DEFAULT_BASE = 0xfee00000;
export const APIC_BASE_BSP = 0x100;
export const APIC_BASE_EN = 0x800;
export const APIC_BASE_EXTD = 0x400;

export const PAT_RESET_LO = 0x00070406;
export const PAT_RESET_HI = 0x00070406;
/** MISC_ENABLE at reset: fast strings (0); BTS (11) and PEBS (12) unavailable, read-only. */
const MISC_ENABLE_RESET = 0x1801;
/** MISC_ENABLE bits the guest cannot change: perfmon available (7), BTS/PEBS unavailable (11, 12). */
const MISC_ENABLE_RO = 0x1880;

const EFER_LME = 0x100;
const EFER_LMA = 0x400;
const EFER_NXE = 0x800;

/** Platform state of one VP that is not in the register file. */
export class VpPlatform {
  tscOffset = 0;
  tscAux = 0;
  sysenterCs = 0;
  sysenterEspLo = 0;
  sysenterEspHi = 0;
  sysenterEipLo = 0;
  sysenterEipHi = 0;
  miscEnable = MISC_ENABLE_RESET;
  /** MISC_ENABLE's high word (bit 34, XD disable, is its bit 2). */
  miscEnableHi = 0;
  patLo = PAT_RESET_LO;
  patHi = PAT_RESET_HI;
  starLo = 0;
  starHi = 0;
  lstarLo = 0;
  lstarHi = 0;
  cstarLo = 0;
  cstarHi = 0;
  sfmask = 0;
  /** IA32_APIC_BASE low word (the high word is 0: the base stays below 4 GiB). */
  apicBase: number;
  /** The task register: selector, base (lo, hi), limit, attributes (OpenVMM packing). */
  trSelector = 0;
  trBaseLo = 0;
  trBaseHi = 0;
  trLimit = 0xffff;
  trAttributes = 0x8b; // a busy 64-bit TSS, present, as after reset
  /** LDTR: selector, base (lo, hi), limit, attributes; selector 0 and attributes 0 when unusable. */
  ldtrSelector = 0;
  ldtrBaseLo = 0;
  ldtrBaseHi = 0;
  ldtrLimit = 0;
  ldtrAttributes = 0;
  /** The xAPIC's registers (see apic.ts). */
  readonly apic: ApicState;

  constructor(readonly vp: number) {
    this.apicBase = (APIC_DEFAULT_BASE | APIC_BASE_EN | (vp === 0 ? APIC_BASE_BSP : 0)) | 0;
    this.apic = new ApicState(vp);
  }
}

/** The xAPIC registers of one VP (semantics in apic.ts). */
export class ApicState {
  tpr = 0;
  ldr = 0;
  dfr = 0xffffffff | 0;
  svr = 0xff;
  icrLo = 0;
  icrHi = 0;
  esr = 0;
  /** LVT entries: timer, thermal, perf, LINT0, LINT1, error (masked at reset). */
  readonly lvt = new Int32Array([0x10000, 0x10000, 0x10000, 0x10000, 0x10000, 0x10000]);
  timerInitial = 0;
  timerDivide = 0;
  /** The instruction count (Cpu.retired) at which the timer's current period started. */
  timerStart = 0;
  /** The timer counts (an expired one-shot timer, or an initial count of 0, stops it). */
  timerRunning = false;
  /**
   * Cpu.retired from which the run loop must look at this APIC (interrupts.ts): 0 while a
   * request waits in IRR or an NMI is pending, the timer's next expiry, or Infinity.
   */
  eventAt = Infinity;
  /** An NMI was accepted and not yet delivered; NMIs are blocked from an NMI's delivery to the next IRETQ. */
  nmiPending = false;
  nmiBlocked = false;
  /** 256-bit ISR, TMR and IRR (8 words each). */
  readonly isr = new Int32Array(8);
  readonly tmr = new Int32Array(8);
  readonly irr = new Int32Array(8);
  constructor(public id: number) {}
}

const platforms = new WeakMap<GuestBus, VpPlatform[]>();

/** The platform state of the VP `c` runs (created at its reset values on first use). */
export function vpPlatform(c: Cpu): VpPlatform {
  let list = platforms.get(c.bus);
  if (list === undefined) {
    list = [];
    platforms.set(c.bus, list);
  }
  let p = list[c.vp];
  if (p === undefined) {
    p = new VpPlatform(c.vp);
    list[c.vp] = p;
  }
  return p;
}

/** IA32_APIC_BASE.EN of the VP `c` runs: its xAPIC page answers (and CPUID.1:EDX.APIC is set). */
export function apicEnabled(c: Cpu): boolean {
  return (vpPlatform(c).apicBase & APIC_BASE_EN) !== 0;
}

/** Machine reset: every VP of `bus` goes back to its reset MSR, TR and APIC state. */
export function resetPlatform(bus: GuestBus): void {
  platforms.delete(bus);
}

/**
 * The canonical check of an address loaded into an MSR or a descriptor-table base: against the
 * widest linear address the processor supports (57 bits: CPUID advertises 5-level paging),
 * whatever CR4.LA57 says, as on processors with LA57 (and KVM).
 */
export function canonicalBase(hi: number): boolean {
  const top = hi >> 24;
  return top === 0 || top === -1;
}

/** A PAT entry may be UC (0), WC (1), WT (4), WP (5), WB (6) or UC- (7). */
function patValid(w: number): boolean {
  for (let k = 0; k < 4; k++) {
    const t = (w >>> (8 * k)) & 0xff;
    if (t === 2 || t === 3 || t > 7) return false;
  }
  return true;
}

/** The TSC: instructions retired by this VP plus the offset a WRMSR to IA32_TSC set. */
export function tscValue(c: Cpu, extra: number): number {
  return c.retired + extra + vpPlatform(c).tscOffset;
}

/** Reads MSR `idx` into [lo, hi]; returns false for an MSR that does not exist (#GP). */
export function readMsr(c: Cpu, idx: number, out: Int32Array): boolean {
  const r = c.r;
  let lo = 0;
  let hi = 0;
  if (idx >= MSR_K7_PERF_FIRST && idx <= MSR_K7_PERF_LAST) {
    out[0] = 0;
    out[1] = 0;
    return true;
  }
  switch (idx) {
    case MSR_EFER: lo = r[EFER]; hi = r[EFER + 1]; break;
    case MSR_FS_BASE: lo = r[segWord(SREG_FS, SEG_BASE)]; hi = r[segWord(SREG_FS, SEG_BASE) + 1]; break;
    case MSR_GS_BASE: lo = r[segWord(SREG_GS, SEG_BASE)]; hi = r[segWord(SREG_GS, SEG_BASE) + 1]; break;
    case MSR_KERNEL_GS_BASE: lo = r[KERNEL_GS_BASE]; hi = r[KERNEL_GS_BASE + 1]; break;
    default: {
      const p = vpPlatform(c);
      switch (idx) {
        case MSR_TSC: {
          const t = tscValue(c, 0);
          lo = t % 4294967296 | 0;
          hi = Math.floor(t / 4294967296) | 0;
          break;
        }
        case MSR_APIC_BASE: lo = p.apicBase; break;
        case MSR_SYSENTER_CS: lo = p.sysenterCs; break;
        case MSR_SYSENTER_ESP: lo = p.sysenterEspLo; hi = p.sysenterEspHi; break;
        case MSR_SYSENTER_EIP: lo = p.sysenterEipLo; hi = p.sysenterEipHi; break;
        case MSR_MCG_CAP: break; // no machine-check banks
        case MSR_MCG_STATUS: break;
        case MSR_MISC_ENABLE: lo = p.miscEnable; hi = p.miscEnableHi; break;
        case MSR_PAT: lo = p.patLo; hi = p.patHi; break;
        case MSR_STAR: lo = p.starLo; hi = p.starHi; break;
        case MSR_LSTAR: lo = p.lstarLo; hi = p.lstarHi; break;
        case MSR_CSTAR: lo = p.cstarLo; hi = p.cstarHi; break;
        case MSR_SFMASK: lo = p.sfmask; break;
        case MSR_TSC_AUX: lo = p.tscAux; break;
        default: return false;
      }
    }
  }
  out[0] = lo;
  out[1] = hi;
  return true;
}

/** Writes MSR `idx`; raises #GP for an MSR that does not exist or a value it does not take. */
export function writeMsr(c: Cpu, idx: number, lo: number, hi: number): void {
  const r = c.r;
  if (idx >= MSR_K7_PERF_FIRST && idx <= MSR_K7_PERF_LAST) return;
  let w: number;
  switch (idx) {
    case MSR_EFER: {
      // LME must stay on (long mode only); LMA is read-only.
      if (hi !== 0 || (lo & ~EFER_SUPPORTED) !== 0 || (lo & EFER_LME) === 0) gp(c, 0);
      const old = r[EFER];
      r[EFER] = (lo & ~EFER_LMA) | (old & EFER_LMA);
      r[EFER + 1] = 0;
      if ((old ^ lo) & EFER_NXE) c.flushTlb();
      return;
    }
    case MSR_FS_BASE: w = segWord(SREG_FS, SEG_BASE); break;
    case MSR_GS_BASE: w = segWord(SREG_GS, SEG_BASE); break;
    case MSR_KERNEL_GS_BASE: w = KERNEL_GS_BASE; break;
    default: {
      writePlatformMsr(c, idx, lo, hi);
      return;
    }
  }
  if (!canonicalBase(hi)) gp(c, 0);
  r[w] = lo;
  r[w + 1] = hi;
}

function writePlatformMsr(c: Cpu, idx: number, lo: number, hi: number): void {
  const p = vpPlatform(c);
  switch (idx) {
    case MSR_TSC:
      p.tscOffset = ((hi >>> 0) * 4294967296 + (lo >>> 0)) - c.retired;
      return;
    case MSR_APIC_BASE: {
      // Bits 12-35 the base, 11 enable, 10 x2APIC (not supported), 8 BSP (read-only).
      if (hi !== 0 || (lo & 0x6ff) !== 0) gp(c, 0);
      p.apicBase = ((lo & ~APIC_BASE_BSP) | (p.apicBase & APIC_BASE_BSP)) | 0;
      return;
    }
    case MSR_SYSENTER_CS: p.sysenterCs = lo; return;
    case MSR_SYSENTER_ESP:
      if (!canonicalBase(hi)) gp(c, 0);
      p.sysenterEspLo = lo; p.sysenterEspHi = hi;
      return;
    case MSR_SYSENTER_EIP:
      if (!canonicalBase(hi)) gp(c, 0);
      p.sysenterEipLo = lo; p.sysenterEipHi = hi;
      return;
    case MSR_MCG_STATUS:
      if (lo !== 0 || hi !== 0) gp(c, 0);
      return;
    case MSR_MISC_ENABLE: {
      // Writable: fast strings (0), thermal control (3), enhanced SpeedStep (16), MONITOR (18),
      // limit CPUID maxval (22), xTPR disable (23), XD disable (34); the rest reserved or read-only.
      const writableLo = 0x1 | 0x8 | 0x10000 | 0x40000 | 0x400000 | 0x800000;
      const writableHi = 0x4;
      if ((lo & ~(writableLo | MISC_ENABLE_RO)) !== 0 || (hi & ~writableHi) !== 0) gp(c, 0);
      p.miscEnable = ((lo & writableLo) | (p.miscEnable & MISC_ENABLE_RO)) | 0;
      p.miscEnableHi = hi & writableHi;
      return;
    }
    case MSR_PAT:
      if (!patValid(lo) || !patValid(hi)) gp(c, 0);
      p.patLo = lo; p.patHi = hi;
      return;
    case MSR_STAR: p.starLo = lo; p.starHi = hi; return;
    case MSR_LSTAR:
      if (!canonicalBase(hi)) gp(c, 0);
      p.lstarLo = lo; p.lstarHi = hi;
      return;
    case MSR_CSTAR:
      if (!canonicalBase(hi)) gp(c, 0);
      p.cstarLo = lo; p.cstarHi = hi;
      return;
    case MSR_SFMASK:
      if (hi !== 0) gp(c, 0);
      p.sfmask = lo;
      return;
    case MSR_TSC_AUX:
      if (hi !== 0) gp(c, 0);
      p.tscAux = lo;
      return;
    default:
      gp(c, 0);
  }
}

const msrOut = new Int32Array(2);

export const rdmsrOp: OpFn = (c) => {
  const r = c.r;
  if ((r[segWord(SREG_CS, SEG_SELECTOR)] & 3) !== 0) gp(c, 0);
  if (!readMsr(c, r[RCX] >>> 0, msrOut)) gp(c, 0);
  r[RAX] = msrOut[0];
  r[RAX + 1] = 0;
  r[RDX] = msrOut[1];
  r[RDX + 1] = 0;
};

export const wrmsrOp: OpFn = (c) => {
  const r = c.r;
  if ((r[segWord(SREG_CS, SEG_SELECTOR)] & 3) !== 0) gp(c, 0);
  writeMsr(c, r[RCX] >>> 0, r[RAX], r[RDX]);
};

// ------------------------------------------------------------------ LTR, STR, LLDT, SLDT

const TSS_AVAILABLE = 0x9;
const TSS_BUSY = 0xb;
const LDT_TYPE = 0x2;

/** LTR r/m16: loads TR from a 16-byte available 64-bit TSS descriptor in the GDT and marks it busy. */
function translateLtr(d: Insn): OpFn {
  const src = reader(d.ops[0]);
  d.end = END_STOP;
  return (c) => {
    const r = c.r;
    if ((r[segWord(SREG_CS, SEG_SELECTOR)] & 3) !== 0) gp(c, 0);
    const sel = src(c) & 0xffff;
    const err = sel & 0xfffc;
    if ((sel & 0xfffc) === 0 || (sel & 4) !== 0) gp(c, err);
    const idx = sel & 0xfff8;
    if (idx + 15 > (r[GDTR + 2] & 0xffff)) gp(c, err);
    const s = (r[GDTR] >>> 0) + idx;
    const lo = s | 0;
    const hi = s > 0xffffffff ? (r[GDTR + 1] + 1) | 0 : r[GDTR + 1];
    const w0 = rd32(c, lo, hi);
    const w1 = rd32(c, (lo + 4) | 0, hi);
    const w2 = rd32(c, (lo + 8) | 0, hi);
    const w3 = rd32(c, (lo + 12) | 0, hi);
    const type = (w1 >>> 8) & 0x1f; // with S
    if (type !== TSS_AVAILABLE || ((w3 >>> 8) & 0x1f) !== 0) gp(c, err);
    if ((w1 & 0x8000) === 0) fault(c, VEC_NP, err);
    const baseLo = ((w0 >>> 16) | ((w1 & 0xff) << 16) | (w1 & 0xff000000)) | 0;
    if (!canonicalBase(w2)) gp(c, err);
    let limit = (w0 & 0xffff) | (w1 & 0xf0000);
    if (w1 & 0x800000) limit = ((limit << 12) | 0xfff) >>> 0;
    wr32(c, (lo + 4) | 0, hi, w1 | (TSS_BUSY << 8)); // busy
    const p = vpPlatform(c);
    p.trSelector = sel;
    p.trBaseLo = baseLo;
    p.trBaseHi = w2;
    p.trLimit = limit | 0;
    p.trAttributes = ((w1 >>> 8) & 0xff) | TSS_BUSY | (((w1 >>> 20) & 0xf) << 12);
  };
}

/**
 * LLDT r/m16: a null selector leaves LDTR unusable; otherwise loads a 16-byte LDT descriptor
 * (type 2) from the GDT. Segment loads still do not look in the LDT (TI=1 selectors are #GP).
 */
function translateLldt(d: Insn): OpFn {
  const src = reader(d.ops[0]);
  d.end = END_STOP;
  return (c) => {
    const r = c.r;
    if ((r[segWord(SREG_CS, SEG_SELECTOR)] & 3) !== 0) gp(c, 0);
    const sel = src(c) & 0xffff;
    const p = vpPlatform(c);
    if ((sel & 0xfffc) === 0) {
      p.ldtrSelector = sel;
      p.ldtrBaseLo = p.ldtrBaseHi = 0;
      p.ldtrLimit = 0;
      p.ldtrAttributes = 0;
      return;
    }
    const err = sel & 0xfffc;
    if ((sel & 4) !== 0) gp(c, err);
    const idx = sel & 0xfff8;
    if (idx + 15 > (r[GDTR + 2] & 0xffff)) gp(c, err);
    const s = (r[GDTR] >>> 0) + idx;
    const lo = s | 0;
    const hi = s > 0xffffffff ? (r[GDTR + 1] + 1) | 0 : r[GDTR + 1];
    const w0 = rd32(c, lo, hi);
    const w1 = rd32(c, (lo + 4) | 0, hi);
    const w2 = rd32(c, (lo + 8) | 0, hi);
    const w3 = rd32(c, (lo + 12) | 0, hi);
    if (((w1 >>> 8) & 0x1f) !== LDT_TYPE || ((w3 >>> 8) & 0x1f) !== 0) gp(c, err);
    if ((w1 & 0x8000) === 0) fault(c, VEC_NP, err);
    if (!canonicalBase(w2)) gp(c, err);
    let limit = (w0 & 0xffff) | (w1 & 0xf0000);
    if (w1 & 0x800000) limit = ((limit << 12) | 0xfff) >>> 0;
    p.ldtrSelector = sel;
    p.ldtrBaseLo = ((w0 >>> 16) | ((w1 & 0xff) << 16) | (w1 & 0xff000000)) | 0;
    p.ldtrBaseHi = w2;
    p.ldtrLimit = limit | 0;
    p.ldtrAttributes = ((w1 >>> 8) & 0xff) | (((w1 >>> 20) & 0xf) << 12);
  };
}

/** SLDT r/m16 (a register destination gets the selector zero-extended). */
function translateSldt(d: Insn): OpFn {
  const wr = writer(d.ops[0]);
  return (c) => {
    umipCheck(c);
    wr(c, vpPlatform(c).ldtrSelector);
  };
}

/** STR r/m16 (a register destination gets the selector zero-extended). */
function translateStr(d: Insn): OpFn {
  const op = d.ops[0];
  const wr = writer(op);
  return (c) => {
    umipCheck(c);
    wr(c, vpPlatform(c).trSelector);
  };
}

// ------------------------------------------------------------------ SMSW, LMSW

/** SMSW: CR0's low bits (16 for a memory destination; the register's width for a register). */
function translateSmsw(d: Insn): OpFn {
  const op = d.ops[0];
  if (op.kind === "reg" && op.size === 8) {
    const s = op.slot;
    return (c) => {
      umipCheck(c);
      c.r[s] = c.r[CR0];
      c.r[s + 1] = c.r[CR0 + 1];
    };
  }
  const wr = writer(op);
  return (c) => {
    umipCheck(c);
    wr(c, c.r[CR0]);
  };
}

/** LMSW r/m16: loads CR0.PE/MP/EM/TS (PE cannot be cleared); #GP outside CPL 0. */
function translateLmsw(d: Insn): OpFn {
  const src = reader(d.ops[0]);
  d.end = END_STOP;
  return (c) => {
    const r = c.r;
    if ((r[segWord(SREG_CS, SEG_SELECTOR)] & 3) !== 0) gp(c, 0);
    const v = src(c) & 0xf;
    r[CR0] = (r[CR0] & ~0xe) | v | (r[CR0] & 1);
  };
}

// ------------------------------------------------------------------ RDTSCP, RDPID

/** RDTSCP: EDX:EAX the TSC (as RDTSC, at this instruction's position in its block), ECX TSC_AUX; #GP(0) above CPL 0 with CR4.TSD. */
function translateRdtscp(d: Insn): OpFn {
  const k = d.index;
  return (c) => {
    if ((c.r[CR4] & CR4_TSD) !== 0) requireCpl0(c);
    const t = tscValue(c, k);
    const r = c.r;
    r[RAX] = t % 4294967296 | 0;
    r[RAX + 1] = 0;
    r[RDX] = Math.floor(t / 4294967296) | 0;
    r[RDX + 1] = 0;
    r[RCX] = vpPlatform(c).tscAux;
    r[RCX + 1] = 0;
  };
}

/** RDPID r64: TSC_AUX, zero-extended. */
function translateRdpid(d: Insn): OpFn {
  const op = d.ops[0];
  if (op.kind !== "reg") throw new UnsupportedForm();
  const s = op.slot;
  return (c) => {
    c.r[s] = vpPlatform(c).tscAux;
    c.r[s + 1] = 0;
  };
}

export const platformTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Rdtscp, translateRdtscp],
  [Mnemonic.Rdpid, translateRdpid],
  [Mnemonic.Ltr, translateLtr],
  [Mnemonic.Lldt, translateLldt],
  [Mnemonic.Sldt, translateSldt],
  [Mnemonic.Str, translateStr],
  [Mnemonic.Smsw, translateSmsw],
  [Mnemonic.Lmsw, translateLmsw],
];
