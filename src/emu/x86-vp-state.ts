// Converts between a VP's shared register words and the domain's X86VpState (bigint), and
// numbers the words for batched-step register deltas.
import { Code, VmmError, hex, x86PagingMode, x86Fp, type SegmentRegister, type X86FpState, type X86VpState } from "../core";
import { CR0_SUPPORTED, CR4_SUPPORTED, EFER_SUPPORTED } from "./x86_64/cpu-model";
import * as L from "./x86_64/vp-layout";

const SREGS = ["es", "cs", "ss", "ds", "fs", "gs"] as const;
const CR0_PG = 0x8000_0000n;
const EFER_LMA = 0x400n;
const ATTR_L = 0x2000;
const ATTR_DB = 0x4000;
/** Register number of ES.base; each segment register takes 4 numbers (base, limit, selector, attributes). */
const FIRST_SEGMENT_REGISTER = 25;

function get64(w: Uint32Array, i: number): bigint {
  return (BigInt(w[i + 1]) << 32n) | BigInt(w[i]);
}

function set64(w: Uint32Array, i: number, v: bigint): void {
  w[i] = Number(v & 0xffff_ffffn);
  w[i + 1] = Number((v >> 32n) & 0xffff_ffffn);
}

/** How one register number (REGISTER_COUNT numbering) is stored: its first word and its kind. */
interface RegisterSlot {
  word: number;
  kind: "u64" | "rflags" | "u32" | "u16";
}

/** Register number → where it lives in a VP's words (the numbering of core's flattenVpState). */
const REGISTER_SLOTS: readonly RegisterSlot[] = [
  ...Array.from({ length: 16 }, (_, n): RegisterSlot => ({ word: L.GP + 2 * n, kind: "u64" })),
  { word: L.RIP, kind: "u64" },
  { word: L.RFLAGS, kind: "rflags" },
  ...[L.CR0, L.CR2, L.CR3, L.CR4, L.CR8, L.EFER, L.KERNEL_GS_BASE].map((word): RegisterSlot => ({ word, kind: "u64" })),
  ...SREGS.flatMap((_, sreg): RegisterSlot[] => [
    { word: L.segWord(sreg, L.SEG_BASE), kind: "u64" },
    { word: L.segWord(sreg, L.SEG_LIMIT), kind: "u32" },
    { word: L.segWord(sreg, L.SEG_SELECTOR), kind: "u16" },
    { word: L.segWord(sreg, L.SEG_ATTRIBUTES), kind: "u16" },
  ]),
];

/** The leading words of a VP that hold numbered registers (GDTR, IDTR and HALTED come after). */
export const X86_REGISTER_WORDS = L.SEG + SREGS.length * L.SEG_WORDS;

/** Word index → the register number stored there (-1: none). */
export const X86_REGISTER_OF_WORD: Int32Array = (() => {
  const of = new Int32Array(X86_REGISTER_WORDS).fill(-1);
  REGISTER_SLOTS.forEach((slot, n) => {
    of[slot.word] = n;
    if (slot.kind === "u64" || slot.kind === "rflags") of[slot.word + 1] = n;
  });
  return of;
})();

/** Register number `n` of VP `vp` as GetVpState reports it (RFLAGS bit 1 set; selector and attributes 16 bits). */
export function readX86Register(regs: Uint32Array, vp: number, n: number): bigint {
  const slot = REGISTER_SLOTS[n];
  const i = vp * L.VP_WORDS + slot.word;
  switch (slot.kind) {
    case "u64":
      return get64(regs, i);
    case "rflags":
      return get64(regs, i) | 2n;
    case "u32":
      return BigInt(regs[i]);
    case "u16":
      return BigInt(regs[i] & 0xffff);
  }
}

export function readX86VpState(regs: Uint32Array, vp: number): X86VpState {
  const reg = (n: number) => readX86Register(regs, vp, n);
  const seg = (sreg: number): SegmentRegister => {
    const n = FIRST_SEGMENT_REGISTER + 4 * sreg;
    return { base: reg(n), limit: Number(reg(n + 1)), selector: Number(reg(n + 2)), attributes: Number(reg(n + 3)) };
  };
  return {
    gp: Array.from({ length: 16 }, (_, n) => reg(n)),
    rip: reg(16),
    rflags: reg(17),
    cr0: reg(18),
    cr2: reg(19),
    cr3: reg(20),
    cr4: reg(21),
    cr8: reg(22),
    efer: reg(23),
    kernelGsBase: reg(24),
    es: seg(L.SREG_ES),
    cs: seg(L.SREG_CS),
    ss: seg(L.SREG_SS),
    ds: seg(L.SREG_DS),
    fs: seg(L.SREG_FS),
    gs: seg(L.SREG_GS),
    fp: readX86FpState(regs, vp),
  };
}

/** Physical x87 register R(i) as its 10 bytes (significand little-endian, then sign|exponent). */
function readPhysical(regs: Uint32Array, b: number, i: number): Uint8Array {
  const w = b + L.FPR + i * L.FPR_WORDS;
  const out = new Uint8Array(x86Fp.ST_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, regs[w], true);
  dv.setUint32(4, regs[w + 1], true);
  dv.setUint16(8, regs[w + 2] & 0xffff, true);
  return out;
}

function writePhysical(regs: Uint32Array, b: number, i: number, value: Uint8Array): void {
  const w = b + L.FPR + i * L.FPR_WORDS;
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  regs[w] = dv.getUint32(0, true);
  regs[w + 1] = dv.getUint32(4, true);
  regs[w + 2] = dv.getUint16(8, true);
}

/** The VP's x87/SSE words as X86FpState: ST(i) from R((TOP + i) & 7), the tag word as stored (full form). */
export function readX86FpState(regs: Uint32Array, vp: number): X86FpState {
  const b = vp * L.VP_WORDS;
  const fsw = regs[b + L.FSW] & 0xffff;
  const physical = Array.from({ length: x86Fp.ST_COUNT }, (_, i) => readPhysical(regs, b, i));
  return {
    xmm: Array.from({ length: x86Fp.XMM_COUNT }, (_, n) => {
      const out = new Uint8Array(x86Fp.XMM_BYTES);
      const dv = new DataView(out.buffer);
      for (let k = 0; k < 4; k++) dv.setUint32(4 * k, regs[b + L.XMM + 4 * n + k], true);
      return out;
    }),
    mxcsr: regs[b + L.MXCSR] >>> 0,
    st: x86Fp.physicalToStack(physical, fsw),
    fcw: regs[b + L.FCW] & 0xffff,
    fsw,
    ftw: regs[b + L.FTW] & 0xffff,
    fop: regs[b + L.FOP] & x86Fp.FOP_MASK,
    fip: get64(regs, b + L.FIP),
    fdp: get64(regs, b + L.FDP),
    xcr0: get64(regs, b + L.XCR0),
  };
}

/**
 * Refuses (FAILED_PRECONDITION / UNSUPPORTED_REGISTER) an XCR0 other than the VP's: it is
 * read-only to the debugger (the guest's XSETBV sets it, with its own checks).
 */
function checkXcr0(regs: Uint32Array, vp: number, fp: X86FpState): void {
  if (fp.xcr0 === undefined) return;
  const current = get64(regs, vp * L.VP_WORDS + L.XCR0);
  if (fp.xcr0 === current) return;
  throw new VmmError(
    Code.FailedPrecondition,
    "UNSUPPORTED_REGISTER",
    `fp.xcr0 is read-only (the guest sets it with XSETBV): VP ${vp} has ${hex(current)}, the state sent ${hex(fp.xcr0)}; nothing was written (leave xcr0 unset or send the current value)`,
    { vp: String(vp), field: "fp.xcr0", value: hex(fp.xcr0) },
  );
}

/**
 * Writes an FP state (already validated): ST(i) into R((TOP + i) & 7) with the new FSW's TOP,
 * the tag word keeping its empty registers and recomputing the others' tags from their contents.
 */
function writeX86FpState(regs: Uint32Array, vp: number, fp: X86FpState): void {
  const b = vp * L.VP_WORDS;
  fp.xmm.forEach((bytes, n) => {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let k = 0; k < 4; k++) regs[b + L.XMM + 4 * n + k] = dv.getUint32(4 * k, true);
  });
  regs[b + L.MXCSR] = fp.mxcsr >>> 0;
  const physical = x86Fp.stackToPhysical(fp.st, fp.fsw);
  physical.forEach((value, i) => writePhysical(regs, b, i, value));
  regs[b + L.FCW] = fp.fcw & 0xffff;
  regs[b + L.FSW] = fp.fsw & 0xffff;
  regs[b + L.FTW] = x86Fp.normalizeTagWord(fp.ftw, physical);
  regs[b + L.FOP] = fp.fop & x86Fp.FOP_MASK;
  set64(regs, b + L.FIP, fp.fip);
  set64(regs, b + L.FDP, fp.fdp);
}

/**
 * Writes every field; RFLAGS bit 1 is forced on and CR8 keeps its 4 defined bits. Without `fp`
 * the FP state stays as it is; an XCR0 other than the VP's is refused before anything is written.
 */
export function writeX86VpState(regs: Uint32Array, vp: number, s: X86VpState): void {
  if (s.fp) checkXcr0(regs, vp, s.fp);
  const b = vp * L.VP_WORDS;
  s.gp.forEach((v, n) => set64(regs, b + L.GP + 2 * n, v));
  set64(regs, b + L.RIP, s.rip);
  set64(regs, b + L.RFLAGS, (s.rflags & 0xffff_ffffn) | 2n);
  set64(regs, b + L.CR0, s.cr0);
  set64(regs, b + L.CR2, s.cr2);
  set64(regs, b + L.CR3, s.cr3);
  set64(regs, b + L.CR4, s.cr4);
  set64(regs, b + L.CR8, s.cr8 & 0xfn);
  set64(regs, b + L.EFER, s.efer);
  set64(regs, b + L.KERNEL_GS_BASE, s.kernelGsBase);
  SREGS.forEach((name, sreg) => {
    const seg = s[name];
    set64(regs, b + L.segWord(sreg, L.SEG_BASE), seg.base);
    regs[b + L.segWord(sreg, L.SEG_LIMIT)] = seg.limit >>> 0;
    regs[b + L.segWord(sreg, L.SEG_SELECTOR)] = seg.selector & 0xffff;
    regs[b + L.segWord(sreg, L.SEG_ATTRIBUTES)] = seg.attributes & 0xffff;
  });
  if (s.fp) writeX86FpState(regs, vp, s.fp);
}

/** The registers a GVA translation depends on. */
export function readX86PagingRegs(regs: Uint32Array, vp: number) {
  const b = vp * L.VP_WORDS;
  return {
    cr0: get64(regs, b + L.CR0),
    cr3: get64(regs, b + L.CR3),
    cr4: get64(regs, b + L.CR4),
    efer: get64(regs, b + L.EFER),
  };
}

/**
 * Throws FAILED_PRECONDITION / UNSUPPORTED_REGISTER unless the interpreter runs `s` exactly as the
 * architecture would: 64-bit mode with 4- or 5-level paging (x86PagingMode, the function the
 * debugger's GVA walk uses, so the two never disagree on how addresses translate), at any CPL,
 * with only the control-register and EFER bits the interpreter implements. The architecture's own
 * rules (validateVpState) are the server's to check before this.
 */
export function checkRunnableX86State(vp: number, s: X86VpState): void {
  const refuse = (field: string, value: bigint, why: string): never => {
    throw new VmmError(
      Code.FailedPrecondition,
      "UNSUPPORTED_REGISTER",
      `the embedded machine cannot run VP ${vp} with ${field} = ${hex(value)}: ${why}; nothing was written (the QEMU backend runs every mode)`,
      { vp: String(vp), field, value: hex(value) },
    );
  };
  const mode = x86PagingMode(s);
  if (mode !== "4-level" && mode !== "5-level") {
    const why = `it runs only 64-bit long mode with paging (CR0.PE, CR0.PG, CR4.PAE, EFER.LME and EFER.LMA set), and this state selects paging mode "${mode}"`;
    if ((s.cr0 & CR0_PG) === 0n) refuse("cr0", s.cr0, why);
    if ((s.efer & EFER_LMA) === 0n) refuse("efer", s.efer, why);
    refuse("cr4", s.cr4, why);
  }
  if ((s.cs.attributes & ATTR_L) === 0 || (s.cs.attributes & ATTR_DB) !== 0) {
    refuse("cs.attributes", BigInt(s.cs.attributes), "it runs only 64-bit code (CS.L = 1, CS.D = 0), not compatibility mode");
  }
  const unsupported = (value: bigint, supported: number) => value & ~BigInt(supported >>> 0) & 0xffff_ffff_ffff_ffffn;
  if (unsupported(s.cr0, CR0_SUPPORTED) !== 0n) refuse("cr0", s.cr0, `bits ${hex(unsupported(s.cr0, CR0_SUPPORTED))} are not implemented`);
  if (unsupported(s.cr4, CR4_SUPPORTED) !== 0n) refuse("cr4", s.cr4, `bits ${hex(unsupported(s.cr4, CR4_SUPPORTED))} are not implemented`);
  if (unsupported(s.efer, EFER_SUPPORTED) !== 0n) refuse("efer", s.efer, `bits ${hex(unsupported(s.efer, EFER_SUPPORTED))} are not implemented`);
}
