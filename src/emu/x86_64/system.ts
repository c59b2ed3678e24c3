// System instructions: MOV CRn/DRn/Sreg, LGDT LIDT SGDT SIDT INVLPG, RDMSR WRMSR SWAPGS CPUID
// RDTSC, HLT IN OUT (IOPL and the I/O bitmap), INT3 INT n INT1, CLTS, STAC CLAC, RDPKRU WRPKRU and
// the no-op family. Far transfers, IRETQ, SYSCALL and SYSRET are in transfers.ts.

import { Code, Mnemonic } from "iced-x86";
import * as cpuModule from "./cpu.js";
import * as cpuModelModule from "./cpu-model.js";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as guestDebugModule from "./guest-debug.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import "./apic.js"; // the xAPIC page: installs the MMIO handlers
import * as msrModule from "./msr.js";
import * as operandsModule from "./operands.js";
import type { Operand } from "./operands.js";
import * as privilegeModule from "./privilege.js";
import * as segmentsModule from "./segments.js";
import { offset, transferTranslators } from "./transfers.js";
import { SSE_CPUID } from "./sse.js";
import { XSAVE_CPUID, xsaveCpuidLeaf } from "./xsave.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { EXIT_HALT, EXIT_POWER_OFF, EXIT_RESET } = cpuModule;
const { CR0_SUPPORTED, CR4_SUPPORTED } = cpuModelModule;
const { VEC_BP, VEC_DB, fault, gp, softwareInterrupt, trap, ud } = faultModule;
const { CR4_DE, DR6_BD, DR7_ENABLES, DR7_GD, drHi, drLo, guestIoCheck, marks, setDr, setDr6, syncGuestWatch } = guestDebugModule;
const { AC, IOPL } = flagsModule;
const { END_STOP, UnsupportedForm } = insnModule;
const { probeWrite, rd16, rd64, wr16, wr64 } = mmuModule;
const { apicEnabled, canonicalBase, platformTranslators, rdmsrOp, tscValue, vpPlatform, wrmsrOp } = msrModule;
const { reader, regWriter, writer } = operandsModule;
const { loadDataSegment } = segmentsModule;
const { cpl, requireCpl0, supervisor, umipCheck } = privilegeModule;
const { CR0, CR2, CR3, CR4, CR8, DR6_FIXED, DR6_STATUS, DR7_FIXED, DR7_WRITABLE, GDTR, GP, GUEST_DR6, GUEST_DR7, HALTED, IDTR, KERNEL_GS_BASE, PKRU, RFLAGS, SEG_BASE, SEG_SELECTOR, SREG_CS, SREG_GS, SREG_SS, segWord } = vpLayoutModule;

const RAX = GP;
const RCX = GP + 2;
const RDX = GP + 4;
const RBX = GP + 6;

const CR0_PE = 0x1;
const CR0_TS = 0x8;
const CR0_ET = 0x10;
const CR0_NW = 0x20000000;
const CR0_CD = 0x40000000;
const CR0_PG = 0x80000000 | 0;
const CR4_PAE = 0x20;
const CR4_LA57 = 0x1000;
const CR4_TSD = 0x4;
const CR4_PKE = 0x400000;

export { MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE } from "./msr.js";

export const nopOp: OpFn = () => {};


// ------------------------------------------------------------------ control and debug registers

/**
 * MOV to or from CR0/2/3/4/8, and the guest's DR0–DR7 (guest-debug.ts). MOV DR checks, in
 * order: DR4/DR5 are #UD with CR4.DE set and otherwise DR6/DR7; DR7.GD raises #DB (a fault)
 * with DR6.BD set and GD cleared before the move. DR0–DR3 keep 64-bit addresses (see
 * guest-debug.ts for the bits kept), DR6 its status bits, DR7 its writable bits; bits 63:32 set
 * in a DR6/DR7 write are #GP. A write ends the block (the run loop looks at DR7 between blocks).
 */
export function movControl(d: Insn): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind === "dr" || src.kind === "dr") {
    const n = dst.kind === "dr" ? dst.n : src.kind === "dr" ? src.n : -1;
    if (n > 7 || n < 0) throw new UnsupportedForm();
    if (dst.kind === "dr") {
      if (src.kind !== "reg") throw new UnsupportedForm();
      const s = src.slot;
      d.end = END_STOP;
      return (c) => {
        const r = c.r;
        const k = drAccess(c, n);
        const lo = r[s];
        const hi = r[s + 1];
        if (k === 6) {
          if (hi !== 0) gp(c, 0);
          r[GUEST_DR6] = lo & DR6_STATUS;
          return;
        }
        if (k === 7) {
          if (hi !== 0) gp(c, 0);
          r[GUEST_DR7] = lo & DR7_WRITABLE;
        } else {
          setDr(r, k, lo, hi);
        }
        syncGuestWatch(c);
      };
    }
    if (dst.kind !== "reg") throw new UnsupportedForm();
    const s = dst.slot;
    return (c) => {
      const r = c.r;
      const k = drAccess(c, n);
      if (k === 6 || k === 7) {
        r[s] = k === 6 ? r[GUEST_DR6] | DR6_FIXED : r[GUEST_DR7] | DR7_FIXED;
        r[s + 1] = 0;
      } else {
        r[s] = drLo(r, k);
        r[s + 1] = drHi(r, k);
      }
    };
  }
  if (src.kind === "cr") {
    if (dst.kind !== "reg") throw new UnsupportedForm();
    const w = crWord(src.n);
    const s = dst.slot;
    return (c) => {
      requireCpl0(c);
      const r = c.r;
      r[s] = r[w];
      r[s + 1] = r[w + 1];
    };
  }
  if (dst.kind !== "cr" || src.kind !== "reg") throw new UnsupportedForm();
  const n = dst.n;
  crWord(n);
  const s = src.slot;
  d.end = END_STOP;
  return (c) => {
    requireCpl0(c);
    writeCr(c, n, c.r[s], c.r[s + 1]);
  };
}

function crWord(n: number): number {
  switch (n) {
    case 0: return CR0;
    case 2: return CR2;
    case 3: return CR3;
    case 4: return CR4;
    case 8: return CR8;
    default: throw new UnsupportedForm();
  }
}

/**
 * The checks of a MOV to or from DRn (SDM, MOV—Move to/from Debug Registers): #GP(0) outside
 * CPL 0; DR4/DR5 #UD when CR4.DE is set, else they name DR6/DR7; then DR7.GD: #DB (fault) with
 * DR6.BD, GD cleared so the handler may use the registers. Returns the register the move uses.
 */
function drAccess(c: Cpu, n: number): number {
  const r = c.r;
  if ((r[segWord(SREG_CS, SEG_SELECTOR)] & 3) !== 0) gp(c, 0);
  if (n === 4 || n === 5) {
    if ((r[CR4] & CR4_DE) !== 0) ud(c);
    n += 2;
  }
  if ((r[GUEST_DR7] & DR7_GD) !== 0) {
    setDr6(r, DR6_BD);
    fault(c, VEC_DB);
  }
  return n;
}

function writeCr(c: Cpu, n: number, lo: number, hi: number): void {
  const r = c.r;
  switch (n) {
    case 0:
      // Long mode needs PE and PG; compatibility and real mode are not supported.
      if (hi !== 0 || (lo & ~CR0_SUPPORTED) !== 0 || (lo & CR0_PE) === 0 || (lo & CR0_PG) === 0) gp(c, 0);
      if ((lo & CR0_NW) !== 0 && (lo & CR0_CD) === 0) gp(c, 0);
      r[CR0] = lo | CR0_ET;
      r[CR0 + 1] = 0;
      c.flushTlb();
      return;
    case 2:
      r[CR2] = lo;
      r[CR2 + 1] = hi;
      return;
    case 3:
      if ((hi & 0xfff00000) !== 0) gp(c, 0);
      r[CR3] = lo;
      r[CR3 + 1] = hi;
      c.flushTlb();
      return;
    case 4:
      if (hi !== 0 || (lo & ~CR4_SUPPORTED) !== 0 || (lo & CR4_PAE) === 0 || ((lo ^ r[CR4]) & CR4_LA57) !== 0) gp(c, 0);
      r[CR4] = lo;
      r[CR4 + 1] = 0;
      c.flushTlb();
      return;
    default:
      if (hi !== 0 || (lo & ~0xf) !== 0) gp(c, 0);
      r[CR8] = lo;
      r[CR8 + 1] = 0;
  }
}

const ctsOp: OpFn = (c) => {
  requireCpl0(c);
  c.r[CR0] &= ~CR0_TS;
};

// ------------------------------------------------------------------ segment registers

/** MOV Sreg, r/m16 and MOV r/m, Sreg. */
export function movSegment(d: Insn): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind === "sreg") {
    if (dst.index === SREG_CS || (src.kind !== "reg" && src.kind !== "mem")) throw new UnsupportedForm();
    const rd = reader({ ...src, size: 2 });
    const sreg = dst.index;
    if (sreg === SREG_SS) {
      // MOV SS: debug traps it raises wait until after the next instruction (vp.ts).
      return (c) => {
        loadDataSegment(c, SREG_SS, rd(c));
        marks.movSs = true;
      };
    }
    return (c) => loadDataSegment(c, sreg, rd(c));
  }
  if (src.kind !== "sreg" || (dst.kind !== "reg" && dst.kind !== "mem")) throw new UnsupportedForm();
  const w = segWord(src.index, SEG_SELECTOR);
  if (dst.kind === "mem") {
    const wr = writer({ ...dst, size: 2 });
    return (c) => wr(c, c.r[w] & 0xffff);
  }
  if (dst.size === 2) {
    const wr = regWriter(dst);
    return (c) => wr(c, c.r[w]);
  }
  const s = dst.slot;
  return (c) => {
    const r = c.r;
    r[s] = r[w] & 0xffff;
    r[s + 1] = 0;
  };
}

// ------------------------------------------------------------------ descriptor tables, TLB

const hiOut = new Int32Array(1);

function translateLoadTable(d: Insn, word: number): OpFn {
  const m = d.ops[0];
  if (m.kind !== "mem") throw new UnsupportedForm();
  const ea = m.ea;
  return (c) => {
    requireCpl0(c);
    const lo = ea(c);
    const hi = c.ahi;
    const limit = rd16(c, lo, hi);
    const bl = rd64(c, offset(lo, hi, 2, hiOut), hiOut[0]);
    const bh = c.mhi;
    if (!canonicalBase(bh)) gp(c, 0); // a non-canonical base is #GP(0), checked at 57 bits
    const r = c.r;
    r[word] = bl;
    r[word + 1] = bh;
    r[word + 2] = limit;
  };
}

function translateStoreTable(d: Insn, word: number): OpFn {
  const m = d.ops[0];
  if (m.kind !== "mem") throw new UnsupportedForm();
  const ea = m.ea;
  return (c) => {
    umipCheck(c);
    const lo = ea(c);
    const hi = c.ahi;
    probeWrite(c, lo, hi, 10);
    const r = c.r;
    wr16(c, lo, hi, r[word + 2] & 0xffff);
    wr64(c, offset(lo, hi, 2, hiOut), hiOut[0], r[word], r[word + 1]);
  };
}

/**
 * INVLPG m: drops the TLB entry of the page holding m (everything once a large page was cached:
 * the TLB keeps 4 KiB pieces of large pages). The operand is an address, not an access: it never faults.
 */
function translateInvlpg(d: Insn): OpFn {
  const m = d.ops[0];
  if (m.kind !== "mem") throw new UnsupportedForm();
  d.end = END_STOP;
  const ea = m.ea;
  return (c) => {
    requireCpl0(c);
    const lo = ea(c);
    c.invalidatePage(lo, c.ahi);
  };
}


// ------------------------------------------------------------------ MSRs, CPUID, TSC

const swapgsOp: OpFn = (c) => {
  requireCpl0(c);
  const r = c.r;
  const w = segWord(SREG_GS, SEG_BASE);
  const lo = r[w];
  const hi = r[w + 1];
  r[w] = r[KERNEL_GS_BASE];
  r[w + 1] = r[KERNEL_GS_BASE + 1];
  r[KERNEL_GS_BASE] = lo;
  r[KERNEL_GS_BASE + 1] = hi;
};

function text4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) | 0;
}

const VENDOR = "VmmDebugEmu ";
const BRAND = "vmm-debug emulated x86-64 processor".padEnd(48, "\0");

/**
 * CPUID leaves: only what the interpreter implements is advertised (no x87/SSE/APIC).
 * Returns [eax, ebx, ecx, edx].
 */
export function cpuidLeaf(leaf: number, sub: number, vp: number): [number, number, number, number] {
  switch (leaf >>> 0) {
    case 0:
      return [0xd, text4(VENDOR.slice(0, 4)), text4(VENDOR.slice(8, 12)), text4(VENDOR.slice(4, 8))];
    case 1: {
      // Family 6, model 1, stepping 1. EDX: PSE TSC MSR PAE CX8 PGE CMOV. ECX: CX16 MOVBE POPCNT hypervisor.
      const edx = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 13) | (1 << 15);
      const ecx = (1 << 13) | (1 << 22) | (1 << 23) | (1 << 31);
      return [0x611, ((vp & 0xff) << 24) | (8 << 8), (ecx | SSE_CPUID.leaf1Ecx | XSAVE_CPUID.leaf1Ecx) | 0, (edx | SSE_CPUID.leaf1Edx | XSAVE_CPUID.leaf1Edx) | 0];
    }
    case 7:
      // EBX: BMI1 (3), SMEP (7), BMI2 (8), ADX (19), SMAP (20). ECX: UMIP (2), PKU (3), 5-level paging (16), RDPID (22).
      return sub === 0 ? [0, (1 << 3) | (1 << 7) | (1 << 8) | (1 << 19) | (1 << 20), (1 << 2) | (1 << 3) | (1 << 16) | (1 << 22), 0] : [0, 0, 0, 0];
    case 0xd:
      return xsaveCpuidLeaf(sub);
    case 0x80000000:
      return [0x80000008 | 0, 0, 0, 0];
    case 0x80000001:
      // ECX: LAHF/SAHF, ABM (LZCNT). EDX: SYSCALL/SYSRET, NX, 1 GiB pages, RDTSCP, long mode.
      return [0, 0, (1 << 0) | (1 << 5), (1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29)];
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const base = ((leaf >>> 0) - 0x80000002) * 16;
      return [0, 1, 2, 3].map((i) => text4(BRAND.slice(base + 4 * i, base + 4 * i + 4))) as [number, number, number, number];
    }
    case 0x80000008:
      // 52 physical, 57 linear address bits.
      return [0x3934, 0, 0, 0];
    default:
      return [0, 0, 0, 0];
  }
}

const cpuidOp: OpFn = (c) => {
  const r = c.r;
  const [a, b, cx0, d] = cpuidLeaf(r[RAX], r[RCX], c.vp);
  // Leaf 1 ECX bit 27 (OSXSAVE) mirrors CR4.OSXSAVE; leaf 7 ECX bit 4 (OSPKE) mirrors CR4.PKE.
  let cx = r[RAX] === 1 && (r[CR4] & 0x40000) !== 0 && (XSAVE_CPUID.leaf1Ecx & (1 << 26)) !== 0 ? cx0 | (1 << 27) : cx0;
  if (r[RAX] === 7 && r[RCX] === 0 && (r[CR4] & CR4_PKE) !== 0) cx |= 1 << 4;
  // Leaf 1 EDX bit 9 (APIC) mirrors IA32_APIC_BASE.EN (the xAPIC page, see apic.ts).
  const dx = r[RAX] === 1 && apicEnabled(c) ? d | (1 << 9) : d;
  r[RAX] = a; r[RAX + 1] = 0;
  r[RBX] = b; r[RBX + 1] = 0;
  r[RCX] = cx; r[RCX + 1] = 0;
  r[RDX] = dx; r[RDX + 1] = 0;
};

/**
 * RDTSC reads the retired-instruction count (the count at block start plus the position in it)
 * plus the offset a WRMSR to IA32_TSC set.
 */
function translateRdtsc(d: Insn): OpFn {
  const k = d.index;
  return (c) => {
    if ((c.r[CR4] & CR4_TSD) !== 0) requireCpl0(c);
    const t = tscValue(c, k);
    const r = c.r;
    r[RAX] = t % 4294967296 | 0;
    r[RAX + 1] = 0;
    r[RDX] = Math.floor(t / 4294967296) | 0;
    r[RDX + 1] = 0;
  };
}

// ------------------------------------------------------------------ HLT, port I/O, software interrupts

const hltOp: OpFn = (c) => {
  requireCpl0(c);
  c.r[HALTED] = 1;
  c.exit = EXIT_HALT;
};

/**
 * Port I/O above IOPL is allowed only where the TSS I/O permission bitmap has a clear bit for
 * every byte of the access (SDM vol. 1, 19.5.2); otherwise #GP(0). The bitmap's offset is the
 * word at TSS + 0x66, and bits past the TSS limit count as set.
 */
export function ioPermission(c: Cpu, port: number, size: number): void {
  const r = c.r;
  const level = r[segWord(SREG_CS, SEG_SELECTOR)] & 3;
  if (level <= ((r[RFLAGS] & IOPL) >>> 12)) return;
  const p = vpPlatform(c);
  const limit = p.trLimit >>> 0;
  if ((p.trSelector & 0xfffc) === 0 || limit < 0x67) gp(c, 0);
  const allowed = supervisor(c, () => {
    const base = p.trBaseLo >>> 0;
    const at = (k: number): [number, number] => {
      const s = base + k;
      return [s | 0, s > 0xffffffff ? (p.trBaseHi + 1) | 0 : p.trBaseHi];
    };
    const [ol, oh] = at(0x66);
    const mapOffset = rd16(c, ol, oh);
    const first = mapOffset + (port >>> 3);
    const last = mapOffset + ((port + size - 1) >>> 3);
    // The processor reads the bitmap a word at a time (SDM vol. 1, 19.5.2: the byte after the
    // last one of the map must lie within the TSS limit): both bytes of the word at `first` must
    // be within the limit, even for a one-byte access. QEMU (check_io) and Bochs check the same;
    // found by the usermode corpus guest (TSS limit at port 0x80's byte: #GP on QEMU).
    if (first + 1 > limit || last > limit) return false;
    const [bl, bh] = at(first);
    let bits = rd16(c, bl, bh);
    if (last === first) bits &= 0xff;
    const mask = ((1 << size) - 1) << (port & 7);
    return (bits & mask) === 0;
  });
  if (!allowed) gp(c, 0);
}

export function portIn(c: Cpu, port: number, size: number): number {
  ioPermission(c, port, size);
  if ((c.r[GUEST_DR7] & DR7_ENABLES) !== 0) guestIoCheck(c, port, size);
  const v = c.bus.portIn(port, size, c.vp);
  return size === 4 ? v | 0 : v & (size === 2 ? 0xffff : 0xff);
}

export function portOut(c: Cpu, port: number, size: number, value: number): void {
  const v = size === 4 ? value >>> 0 : value & (size === 2 ? 0xffff : 0xff);
  ioPermission(c, port, size);
  if ((c.r[GUEST_DR7] & DR7_ENABLES) !== 0) guestIoCheck(c, port, size);
  const req = c.bus.portOut(port, size, v, c.vp);
  if (req === "reset") c.exit = EXIT_RESET;
  else if (req === "powerOff" && c.exit !== EXIT_RESET) c.exit = EXIT_POWER_OFF;
}

function portOf(op: Operand): ((c: Cpu) => number) | null {
  if (op.kind === "imm") {
    const p = op.lo & 0xff;
    return () => p;
  }
  if (op.kind === "reg" && op.slot === RDX && op.size === 2) return (c) => c.r[RDX] & 0xffff;
  return null;
}

function translateIn(d: Insn): OpFn {
  const [dst, src] = d.ops;
  const port = portOf(src);
  if (port === null || dst.kind !== "reg" || dst.slot !== RAX) throw new UnsupportedForm();
  d.end = END_STOP;
  const size = dst.size;
  const wr = regWriter(dst);
  return (c) => wr(c, portIn(c, port(c), size));
}

function translateOut(d: Insn): OpFn {
  const [dst, src] = d.ops;
  const port = portOf(dst);
  if (port === null || src.kind !== "reg" || src.slot !== RAX) throw new UnsupportedForm();
  d.end = END_STOP;
  const size = src.size;
  return (c) => portOut(c, port(c), size, c.r[RAX]);
}

function translateInt(d: Insn): OpFn {
  d.end = END_STOP;
  switch (d.code) {
    case Code.Int3: {
      const len = d.length;
      return (c) => softwareInterrupt(c, VEC_BP, len);
    }
    // ICEBP: a trap-class #DB that leaves DR6 as it is (the run loop tells it from INT 1 by the mark).
    case Code.Int1: return (c) => {
      marks.icebp = true;
      trap(c, VEC_DB);
    };
    case Code.Int_imm8: {
      const op = d.ops[0];
      const v = op.kind === "imm" ? op.lo & 0xff : 0;
      const len = d.length;
      return (c) => softwareInterrupt(c, v, len);
    }
    default: throw new UnsupportedForm();
  }
}

function stop(op: OpFn): Translator {
  return (d) => {
    d.end = END_STOP;
    return op;
  };
}

const nopMnemonics = [
  Mnemonic.Nop, Mnemonic.Pause, Mnemonic.Endbr64, Mnemonic.Endbr32, Mnemonic.Lfence, Mnemonic.Mfence, Mnemonic.Sfence,
  Mnemonic.Clflush, Mnemonic.Clflushopt, Mnemonic.Prefetchnta, Mnemonic.Prefetcht0, Mnemonic.Prefetcht1, Mnemonic.Prefetcht2,
  Mnemonic.Prefetchw,
];

/** STAC and CLAC set and clear RFLAGS.AC (SMAP's override); #UD above CPL 0. */
function setAc(value: number): OpFn {
  return (c) => {
    if (cpl(c) !== 0) ud(c);
    const r = c.r;
    r[RFLAGS] = (r[RFLAGS] & ~AC) | value;
  };
}

/** RDPKRU: EAX = PKRU, EDX = 0 (#UD without CR4.PKE, #GP(0) unless ECX = 0). */
const rdpkruOp: OpFn = (c) => {
  const r = c.r;
  if ((r[CR4] & CR4_PKE) === 0) ud(c);
  if (r[RCX] !== 0) gp(c, 0);
  r[RAX] = r[PKRU];
  r[RAX + 1] = 0;
  r[RDX] = 0;
  r[RDX + 1] = 0;
};

/** WRPKRU: PKRU = EAX, at any CPL (#UD without CR4.PKE, #GP(0) unless ECX = EDX = 0); the TLB holds rights by key, so it is dropped. */
const wrpkruOp: OpFn = (c) => {
  const r = c.r;
  if ((r[CR4] & CR4_PKE) === 0) ud(c);
  if (r[RCX] !== 0 || r[RDX] !== 0) gp(c, 0);
  r[PKRU] = r[RAX];
  c.flushTlb();
};

/** WBINVD and INVD: nothing to do (no caches are modelled), but #GP(0) above CPL 0. */
const privilegedNopOp: OpFn = (c) => requireCpl0(c);

export const systemTranslators: [Mnemonic, Translator][] = [
  ...nopMnemonics.map((m): [Mnemonic, Translator] => [m, () => nopOp]),
  [Mnemonic.Rdpkru, () => rdpkruOp],
  [Mnemonic.Wrpkru, stop(wrpkruOp)],
  [Mnemonic.Stac, () => setAc(AC)],
  [Mnemonic.Clac, () => setAc(0)],
  [Mnemonic.Wbinvd, () => privilegedNopOp],
  [Mnemonic.Invd, () => privilegedNopOp],
  [Mnemonic.Hlt, stop(hltOp)],
  [Mnemonic.In, translateIn],
  [Mnemonic.Out, translateOut],
  [Mnemonic.Int3, translateInt],
  [Mnemonic.Int1, translateInt],
  [Mnemonic.Int, translateInt],
  [Mnemonic.Ud2, stop((c) => ud(c))],
  [Mnemonic.Lgdt, (d) => translateLoadTable(d, GDTR)],
  [Mnemonic.Lidt, (d) => translateLoadTable(d, IDTR)],
  [Mnemonic.Sgdt, (d) => translateStoreTable(d, GDTR)],
  [Mnemonic.Sidt, (d) => translateStoreTable(d, IDTR)],
  [Mnemonic.Invlpg, translateInvlpg],
  [Mnemonic.Rdmsr, () => rdmsrOp],
  [Mnemonic.Wrmsr, stop(wrmsrOp)],
  [Mnemonic.Swapgs, () => swapgsOp],
  [Mnemonic.Cpuid, () => cpuidOp],
  [Mnemonic.Rdtsc, translateRdtsc],
  [Mnemonic.Clts, () => ctsOp],
  ...platformTranslators,
  ...transferTranslators,
];
