// PUSH POP LEAVE ENTER and the stack helpers other families use (CALL, RET, exceptions).

import { Code, Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as operandsModule from "./operands.js";
import type { Operand } from "./operands.js";
import * as segmentsModule from "./segments.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { UnsupportedForm } = insnModule;
const { probeWrite, rd16, rd64, wr16, wr64 } = mmuModule;
const { reader, reader64, regWriter, writer, writer64 } = operandsModule;
const { loadDataSegment } = segmentsModule;
const { GP, SEG_SELECTOR, segWord } = vpLayoutModule;

const RSP = GP + 8;
const RBP = GP + 10;

/** Push a 64-bit value (the store happens before RSP changes, so a fault leaves RSP alone). */
export function push64(c: Cpu, lo: number, hi: number): void {
  const r = c.r;
  const sl = r[RSP];
  const nlo = (sl - 8) | 0;
  const nhi = (sl >>> 0) < 8 ? (r[RSP + 1] - 1) | 0 : r[RSP + 1];
  wr64(c, nlo, nhi, lo, hi);
  r[RSP] = nlo;
  r[RSP + 1] = nhi;
}

/** Pop a 64-bit value: returns the low word, the high word in c.mhi. */
export function pop64(c: Cpu): number {
  const r = c.r;
  const sl = r[RSP];
  const v = rd64(c, sl, r[RSP + 1]);
  addRsp(c, 8);
  return v;
}

/** RSP += n (n >= 0). */
export function addRsp(c: Cpu, n: number): void {
  const r = c.r;
  const s = (r[RSP] >>> 0) + n;
  r[RSP] = s | 0;
  if (s > 0xffffffff) r[RSP + 1] = (r[RSP + 1] + 1) | 0;
}

function push16(c: Cpu, v: number): void {
  const r = c.r;
  const sl = r[RSP];
  const nlo = (sl - 2) | 0;
  const nhi = (sl >>> 0) < 2 ? (r[RSP + 1] - 1) | 0 : r[RSP + 1];
  wr16(c, nlo, nhi, v);
  r[RSP] = nlo;
  r[RSP + 1] = nhi;
}

function pop16(c: Cpu): number {
  const r = c.r;
  const v = rd16(c, r[RSP], r[RSP + 1]);
  addRsp(c, 2);
  return v;
}

function translatePush(d: Insn): OpFn {
  const src = d.ops[0];
  if (src.kind === "sreg") {
    const w = segWord(src.index, SEG_SELECTOR);
    return (c) => push64(c, c.r[w] & 0xffff, 0);
  }
  if (src.kind === "imm") {
    if (src.size === 2) return (c) => push16(c, src.lo & 0xffff);
    const lo = src.lo | 0;
    const hi = src.hi | 0;
    return (c) => push64(c, lo, hi);
  }
  if (src.kind !== "reg" && src.kind !== "mem") throw new UnsupportedForm();
  if (src.size === 2) {
    const rd = reader(src);
    return (c) => push16(c, rd(c));
  }
  if (src.kind === "reg") {
    const s = src.slot;
    return (c) => push64(c, c.r[s], c.r[s + 1]);
  }
  const rd = reader64(src);
  return (c) => {
    const lo = rd(c);
    push64(c, lo, c.mhi);
  };
}

/** POP into a memory operand addressed through RSP uses RSP after the pop (as the SDM says). */
function popToMemory(dst: Operand, size: number): OpFn {
  if (size === 2) {
    const wr = writer(dst);
    return (c) => {
      const r = c.r;
      const lo = r[RSP];
      const hi = r[RSP + 1];
      const v = pop16(c);
      try {
        wr(c, v);
      } catch (e) {
        r[RSP] = lo;
        r[RSP + 1] = hi;
        throw e;
      }
    };
  }
  const wr = writer64(dst);
  return (c) => {
    const r = c.r;
    const lo = r[RSP];
    const hi = r[RSP + 1];
    const vl = pop64(c);
    const vh = c.mhi;
    try {
      wr(c, vl, vh);
    } catch (e) {
      r[RSP] = lo;
      r[RSP + 1] = hi;
      throw e;
    }
  };
}

function translatePop(d: Insn): OpFn {
  const dst = d.ops[0];
  if (dst.kind === "sreg") {
    const s = dst.index;
    return (c) => {
      const r = c.r;
      const v = rd16(c, r[RSP], r[RSP + 1]);
      loadDataSegment(c, s, v);
      addRsp(c, 8);
    };
  }
  if (dst.kind === "mem") return popToMemory(dst, dst.size);
  if (dst.kind !== "reg") throw new UnsupportedForm();
  if (dst.size === 2) {
    const wr = regWriter(dst);
    return (c) => wr(c, pop16(c));
  }
  const s = dst.slot;
  return (c) => {
    const lo = pop64(c);
    const r = c.r;
    r[s] = lo;
    r[s + 1] = c.mhi;
  };
}

/** LEAVE: RSP = RBP, then pop RBP. */
const leaveOp: OpFn = (c) => {
  const r = c.r;
  const lo = rd64(c, r[RBP], r[RBP + 1]);
  const hi = c.mhi;
  const s = (r[RBP] >>> 0) + 8;
  r[RSP] = s | 0;
  r[RSP + 1] = s > 0xffffffff ? (r[RBP + 1] + 1) | 0 : r[RBP + 1];
  r[RBP] = lo;
  r[RBP + 1] = hi;
};

/** ENTER size, level (64-bit operand size). */
function translateEnter(d: Insn): OpFn {
  const a = d.ops[0];
  const b = d.ops[1];
  if (d.code !== Code.Enterq_imm16_imm8 || a.kind !== "imm" || b.kind !== "imm") throw new UnsupportedForm();
  const size = a.lo & 0xffff;
  const level = b.lo & 31;
  return (c) => {
    const r = c.r;
    const rspLo = r[RSP];
    const rspHi = r[RSP + 1];
    // Probe the whole frame first so a fault changes nothing.
    const total = 8 + 8 * level + size;
    const lowLo = (rspLo - total) | 0;
    const lowHi = (rspLo >>> 0) < total ? (rspHi - 1) | 0 : rspHi;
    if (total > 8) probeWrite(c, lowLo, lowHi, Math.min(total - 8, 4096));
    push64(c, r[RBP], r[RBP + 1]);
    const frameLo = r[RSP];
    const frameHi = r[RSP + 1];
    for (let i = 1; i < level; i++) {
      const bl = (r[RBP] - 8 * i) | 0;
      const bh = (r[RBP] >>> 0) < 8 * i ? (r[RBP + 1] - 1) | 0 : r[RBP + 1];
      const vl = rd64(c, bl, bh);
      push64(c, vl, c.mhi);
    }
    if (level > 0) push64(c, frameLo, frameHi);
    r[RBP] = frameLo;
    r[RBP + 1] = frameHi;
    const s = (r[RSP] >>> 0) - size;
    r[RSP] = s | 0;
    if (s < 0) r[RSP + 1] = (r[RSP + 1] - 1) | 0;
  };
}

export const stackTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Push, translatePush],
  [Mnemonic.Pop, translatePop],
  [Mnemonic.Leave, (d) => {
    if (d.code !== Code.Leaveq) throw new UnsupportedForm();
    return leaveOp;
  }],
  [Mnemonic.Enter, translateEnter],
];
