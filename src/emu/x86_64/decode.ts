// Decoding with iced-x86 into blocks of op closures, dispatched by mnemonic to the family files.
//
// iced objects live only while a block is decoded: each instruction is copied into a plain
// `Insn` (numbers only), translated into a closure, and the decoder is freed.

import { Code, Decoder, DecoderError, DecoderOptions, Instruction, MemorySizeExt, Mnemonic, OpKind, Register } from "iced-x86";
import { arithTranslators } from "./arith.js";
import { bitTranslators } from "./bt.js";
import { bmiTranslators } from "./bmi.js";
import { branchTranslators } from "./branch.js";
import { addBlock, Block, chunkMask, markCode } from "./code-cache.js";
import type { CodePage } from "./code-cache.js";
import { condTranslators } from "./cond.js";
import type { Cpu, OpFn } from "./cpu.js";
import { ud } from "./fault.js";
import { END_JUMP, END_NONE, END_STOP, UnsupportedForm } from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import { fetchPage } from "./mmu.js";
import { mmxTranslators } from "./mmx.js";
import { movTranslators } from "./mov.js";
import { muldivTranslators } from "./muldiv.js";
import { buildEa, gprSlot } from "./operands.js";
import type { Operand } from "./operands.js";
import { repTranslators } from "./rep.js";
import { rflagsTranslators } from "./rflags.js";
import { shiftRotateTranslators } from "./shift-rotate.js";
import { sseSharedTranslators, sseTranslators } from "./sse.js";
import { stackTranslators } from "./stack.js";
import { systemTranslators } from "./system.js";
import { SREG_FS, SREG_GS } from "./vp-layout.js";
import { x87Translators } from "./x87.js";
import { xsaveTranslators } from "./xsave.js";

/** Instructions per block at most (blocks also end at branches, system instructions and page ends). */
const MAX_BLOCK = 64;

const translators = new Map<Mnemonic, Translator>();
const families = [
  arithTranslators, bitTranslators, bmiTranslators, branchTranslators, condTranslators, movTranslators, muldivTranslators, repTranslators,
  rflagsTranslators, shiftRotateTranslators, stackTranslators, systemTranslators, sseTranslators, x87Translators, xsaveTranslators,
];
for (const list of families) {
  for (const [m, t] of list) {
    if (translators.has(m)) throw new Error(`two translators for mnemonic ${Mnemonic[m]}`);
    translators.set(m, t);
  }
}
// MOVSD and CMPSD: the string instructions (rep.ts) or, with an XMM operand, SSE2's scalar forms.
for (const [m, sse] of sseSharedTranslators) {
  const string = translators.get(m);
  if (string === undefined) throw new Error(`no string translator for ${Mnemonic[m]}`);
  translators.set(m, (d) => (d.ops.some((o) => o.kind === "xmm") ? sse(d) : string(d)));
}
// MMX: the MMX-register forms of SSE mnemonics go to mmx.ts, the others stay with sse.ts.
for (const [m, mmx] of mmxTranslators) {
  const other = translators.get(m);
  translators.set(m, other === undefined ? mmx : (d) => (d.ops.some((o) => o.kind === "mm") ? mmx(d) : other(d)));
}

/** Raises #UD: instructions the interpreter does not implement, and invalid encodings. */
export const udOp: OpFn = (c) => ud(c);

function split(v: bigint): [number, number] {
  const u = BigInt.asUintN(64, v);
  return [Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0];
}

/** GPR number, size and high-byte flag of an iced register, or null. */
function gpr(reg: Register): { n: number; size: number; high8: boolean } | null {
  if (reg >= Register.AL && reg <= Register.BL) return { n: reg - Register.AL, size: 1, high8: false };
  if (reg >= Register.AH && reg <= Register.BH) return { n: reg - Register.AH, size: 1, high8: true };
  if (reg >= Register.SPL && reg <= Register.R15L) return { n: reg - Register.SPL + 4, size: 1, high8: false };
  if (reg >= Register.AX && reg <= Register.R15W) return { n: reg - Register.AX, size: 2, high8: false };
  if (reg >= Register.EAX && reg <= Register.R15D) return { n: reg - Register.EAX, size: 4, high8: false };
  if (reg >= Register.RAX && reg <= Register.R15) return { n: reg - Register.RAX, size: 8, high8: false };
  return null;
}

function sregOf(reg: Register): number {
  return reg >= Register.ES && reg <= Register.GS ? reg - Register.ES : -1;
}

function immSize(kind: OpKind): number {
  switch (kind) {
    case OpKind.Immediate8: case OpKind.Immediate8_2nd: return 1;
    case OpKind.Immediate16: case OpKind.Immediate8to16: return 2;
    case OpKind.Immediate32: case OpKind.Immediate8to32: return 4;
    default: return 8;
  }
}

function memoryOperand(ins: Instruction): Operand {
  const baseReg = ins.memoryBase;
  const indexReg = ins.memoryIndex;
  let base = -1;
  let index = -1;
  let addr32 = false;
  let [dispLo, dispHi] = split(ins.memoryDisplacement);
  if (baseReg === Register.RIP || baseReg === Register.EIP) {
    // iced has already made the displacement absolute.
    addr32 = baseReg === Register.EIP;
  } else if (baseReg !== Register.None) {
    const g = gpr(baseReg);
    if (g === null) return { kind: "other" };
    base = g.n;
    addr32 = g.size === 4;
  }
  if (indexReg !== Register.None) {
    const g = gpr(indexReg);
    if (g === null) return { kind: "other" };
    if (g.size === 1) return { kind: "string", size: 1 }; // XLATB's [rbx+al]
    index = g.n;
    addr32 = g.size === 4;
  }
  if (baseReg === Register.None && indexReg === Register.None && ins.memoryDisplSize === 4) addr32 = true;
  if (addr32) dispHi = 0;
  const sreg = sregOf(ins.memorySegment);
  const parts = {
    base, index, scale: ins.memoryIndexScale, dispLo, dispHi, addr32,
    seg: sreg === SREG_FS || sreg === SREG_GS ? sreg : -1,
  };
  return { kind: "mem", size: MemorySizeExt.size(ins.memorySize), ea: buildEa(parts, true), offset: buildEa(parts, false) };
}

/** MASKMOVQ / MASKMOVDQU's implicit [rdi] (DS or a segment override), as a memory operand. */
function implicitRdi(ins: Instruction, addr32: boolean): Operand {
  const sreg = sregOf(ins.memorySegment);
  const parts = { base: 7, index: -1, scale: 1, dispLo: 0, dispHi: 0, addr32, seg: sreg === SREG_FS || sreg === SREG_GS ? sreg : -1 };
  return { kind: "mem", size: MemorySizeExt.size(ins.memorySize), ea: buildEa(parts, true), offset: buildEa(parts, false) };
}

function operand(ins: Instruction, i: number): Operand {
  const kind = ins.opKind(i);
  switch (kind) {
    case OpKind.Register: {
      const reg = ins.opRegister(i);
      const g = gpr(reg);
      if (g !== null) return { kind: "reg", size: g.size, slot: gprSlot(g.n), high8: g.high8 };
      const s = sregOf(reg);
      if (s >= 0) return { kind: "sreg", index: s };
      if (reg >= Register.CR0 && reg <= Register.CR15) return { kind: "cr", n: reg - Register.CR0 };
      if (reg >= Register.DR0 && reg <= Register.DR15) return { kind: "dr", n: reg - Register.DR0 };
      if (reg >= Register.XMM0 && reg <= Register.XMM15) return { kind: "xmm", n: reg - Register.XMM0 };
      if (reg >= Register.MM0 && reg <= Register.MM7) return { kind: "mm", n: reg - Register.MM0 };
      if (reg >= Register.ST0 && reg <= Register.ST7) return { kind: "st", i: reg - Register.ST0 };
      return { kind: "other" };
    }
    case OpKind.NearBranch64: {
      const [lo, hi] = split(ins.nearBranch64);
      return { kind: "branch", lo, hi };
    }
    case OpKind.Immediate8: case OpKind.Immediate8_2nd: case OpKind.Immediate16: case OpKind.Immediate32:
    case OpKind.Immediate64: case OpKind.Immediate8to16: case OpKind.Immediate8to32: case OpKind.Immediate8to64:
    case OpKind.Immediate32to64: {
      const [lo, hi] = split(ins.immediate(i));
      return { kind: "imm", size: immSize(kind), lo, hi };
    }
    case OpKind.Memory:
      return memoryOperand(ins);
    case OpKind.MemorySegRSI: case OpKind.MemorySegESI: case OpKind.MemoryESRDI: case OpKind.MemoryESEDI:
      return { kind: "string", size: MemorySizeExt.size(ins.memorySize) };
    case OpKind.MemorySegRDI: case OpKind.MemorySegEDI:
      return implicitRdi(ins, kind === OpKind.MemorySegEDI);
    default:
      return { kind: "other" };
  }
}

function addressSize32(ins: Instruction): boolean {
  for (let i = 0; i < ins.opCount; i++) {
    const k = ins.opKind(i);
    if (k === OpKind.MemorySegESI || k === OpKind.MemoryESEDI) return true;
    if (k === OpKind.MemorySegRSI || k === OpKind.MemoryESRDI) return false;
  }
  switch (ins.code) {
    case Code.Loop_rel8_64_ECX: case Code.Loope_rel8_64_ECX: case Code.Loopne_rel8_64_ECX: case Code.Jecxz_rel8_64:
      return true;
  }
  return false;
}

/** Copy an iced instruction into an Insn. */
function toInsn(ins: Instruction, index: number): Insn {
  const [ripLo, ripHi] = split(ins.ip);
  const [nextLo, nextHi] = split(ins.nextIP);
  const ops: Operand[] = [];
  for (let i = 0; i < ins.opCount; i++) ops.push(operand(ins, i));
  const hasMem = ops.some((o) => o.kind === "mem" || o.kind === "string");
  const cc = ins.conditionCode;
  return {
    code: ins.code,
    mnemonic: ins.mnemonic,
    length: ins.length,
    ripLo, ripHi, nextLo, nextHi,
    ops,
    rep: ins.hasRepPrefix || ins.hasRepePrefix,
    repne: ins.hasRepnePrefix,
    addr32: ops.some((o) => o.kind === "mem") ? false : addressSize32(ins),
    seg: hasMem ? sregOf(ins.memorySegment) : -1,
    cc32: cc === 0 ? -1 : (cc - 1) * 32,
    index,
    end: END_NONE,
  };
}

/** Translate one instruction; anything unknown or with unsupported operands becomes #UD. */
export function translate(d: Insn): OpFn {
  const t = translators.get(d.mnemonic);
  if (t === undefined || d.ops.some((o) => o.kind === "other")) {
    d.end = END_STOP;
    return udOp;
  }
  try {
    return t(d);
  } catch (e) {
    if (e instanceof UnsupportedForm) {
      d.end = END_STOP;
      return udOp;
    }
    throw e;
  }
}

function bigAddress(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function pageBytes(c: Cpu, ppn: number, from: number, to: number): Uint8Array {
  const gpa = ppn * 4096;
  const region = c.bus.regionAt(gpa);
  if (region === undefined) return new Uint8Array(to - from).fill(0xff);
  const o = gpa - region.gpa;
  return region.bytes.subarray(o + from, o + to);
}

/**
 * Decode the block at linear (lo, hi), whose first byte is in `page`, and cache it. `max` caps
 * the instruction count (1 for the debug loop). May raise #PF when the first instruction
 * continues into a page that cannot be fetched.
 */
export function decodeBlock(c: Cpu, page: CodePage, lo: number, hi: number, max: number): Block {
  const off = lo & 0xfff;
  const decoder = new Decoder(64, pageBytes(c, page.ppn, off, 4096), DecoderOptions.None);
  const ins = new Instruction();
  const ops: OpFn[] = [];
  const insns: Insn[] = [];
  const offs: number[] = [0];
  let lastSetsRip = false;
  let lastEnd = END_NONE;
  let limit = 0;
  let crossing = false;
  try {
    decoder.ip = bigAddress(lo, hi);
    limit = Math.min(max, MAX_BLOCK);
    while (ops.length < limit && decoder.canDecode) {
      decoder.decodeOut(ins);
      if (ins.code === Code.INVALID && decoder.lastError === DecoderError.NoMoreBytes) {
        crossing = ops.length === 0;
        break;
      }
      const d = toInsn(ins, ops.length);
      const op = ins.code === Code.INVALID ? udOp : translate(d);
      if (op === udOp) d.end = END_STOP;
      ops.push(op);
      insns.push(d);
      offs.push(offs[offs.length - 1] + d.length);
      lastEnd = d.end;
      if (d.end !== END_NONE) {
        lastSetsRip = d.end === END_JUMP;
        break;
      }
    }
  } finally {
    decoder.free();
    ins.free();
  }
  if (crossing) return decodeCrossing(c, page, lo, hi);
  const end = offs[offs.length - 1];
  const blk = new Block(page, lo, hi, ops, Int32Array.from(offs), lastSetsRip, limit < MAX_BLOCK && ops.length === limit && lastEnd === END_NONE, -1);
  blk.insns = insns;
  addBlock(c, page, off, blk, chunkMask(off, Math.min(off + end, 4096)));
  return blk;
}

/** A block of one instruction whose bytes continue in the next page. */
function decodeCrossing(c: Cpu, page: CodePage, lo: number, hi: number): Block {
  const off = lo & 0xfff;
  const n1 = 4096 - off;
  const lo2 = (lo + n1) | 0;
  const hi2 = (lo >>> 0) + n1 > 0xffffffff ? (hi + 1) | 0 : hi;
  const next = fetchPage(c, lo2, hi2);
  const bytes = new Uint8Array(n1 + 15);
  bytes.set(pageBytes(c, page.ppn, off, 4096), 0);
  bytes.set(pageBytes(c, next.ppn, 0, 15), n1);
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  const ins = new Instruction();
  let op: OpFn;
  let d: Insn;
  try {
    decoder.ip = bigAddress(lo, hi);
    decoder.decodeOut(ins);
    d = toInsn(ins, 0);
    op = ins.code === Code.INVALID ? udOp : translate(d);
    if (op === udOp) d.end = END_STOP;
  } finally {
    decoder.free();
    ins.free();
  }
  const blk = new Block(page, lo, hi, [op], Int32Array.from([0, d.length]), d.end === END_JUMP, false, next.ppn);
  addBlock(c, page, off, blk, chunkMask(off, 4096));
  next.crossers.push(blk);
  markCode(c, next, chunkMask(0, Math.max(1, d.length - n1)));
  return blk;
}
