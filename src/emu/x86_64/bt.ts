// BT BTS BTR BTC (register and bit-string memory forms), BSF BSR TZCNT LZCNT POPCNT.

import { Mnemonic } from "iced-x86";
import * as arithModule from "./arith.js";
import type { Cpu, OpFn } from "./cpu.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as operandsModule from "./operands.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { setFlags } = arithModule;
const { ARITH, CF, ZF } = flagsModule;
const { UnsupportedForm } = insnModule;
const { rd16, rd32, rd64, rdw16, rdw32, rdw64, wr16, wr32, wr64 } = mmuModule;
const { reader, reader64, regWriter } = operandsModule;

const BT = 0, BTS = 1, BTR = 2, BTC = 3;

/** Apply `kind` to bit `bit` of word `v`; sets CF to the old bit and returns the new word. */
function bitOp(c: Cpu, kind: number, v: number, bit: number): number {
  const m = 1 << bit;
  setFlags(c, CF, (v & m) !== 0 ? CF : 0);
  return kind === BT ? v : kind === BTS ? v | m : kind === BTR ? v & ~m : v ^ m;
}

function translateBt(d: Insn, kind: number): OpFn {
  const [dst, off] = d.ops;
  if ((dst.kind !== "reg" && dst.kind !== "mem") || (off.kind !== "reg" && off.kind !== "imm")) throw new UnsupportedForm();
  const size = dst.size;
  const bits = size * 8;
  if (dst.kind === "reg") {
    const s = dst.slot;
    const ro = off.kind === "reg" ? reader(off.size === 8 ? { ...off, size: 4 } : off) : null;
    const immBit = off.kind === "imm" ? off.lo & (bits - 1) : 0;
    const rdOff = (c: Cpu) => (ro === null ? immBit : ro(c) & (bits - 1));
    if (size === 8) {
      return (c) => {
        const b = rdOff(c);
        const r = c.r;
        if (b < 32) r[s] = bitOp(c, kind, r[s], b);
        else r[s + 1] = bitOp(c, kind, r[s + 1], b - 32);
      };
    }
    const rd = reader(dst);
    const wr = regWriter(dst);
    return (c) => {
      const v = bitOp(c, kind, rd(c), rdOff(c));
      if (kind !== BT) wr(c, v);
    };
  }
  const ea = dst.ea;
  // Bit-string addressing: a register offset is signed and may reach outside the operand.
  const offLo = off.kind === "reg" ? (off.size === 8 ? reader64(off) : reader(off)) : null;
  const offSize = off.kind === "reg" ? off.size : 0;
  const imm = off.kind === "imm" ? off.lo & (bits - 1) : 0;
  return (c) => {
    let lo = ea(c);
    let hi = c.ahi;
    let bit = imm;
    if (offLo !== null) {
      let ol = offLo(c);
      let oh: number;
      if (offSize === 8) oh = c.mhi;
      else {
        ol = offSize === 2 ? (ol << 16) >> 16 : ol;
        oh = ol >> 31;
      }
      bit = ol & (bits - 1);
      // byte displacement = (offset >> lg) * size = (offset >> 3) & ~(size - 1)
      const dl = ((ol >>> 3) | (oh << 29)) & ~(size - 1);
      const dh = oh >> 3;
      const s = (lo >>> 0) + (dl >>> 0);
      hi = (hi + dh + (s > 0xffffffff ? 1 : 0)) | 0;
      lo = s | 0;
    }
    if (size === 8) {
      const vl = kind === BT ? rd64(c, lo, hi) : rdw64(c, lo, hi);
      let vh = c.mhi;
      let nl = vl;
      if (bit < 32) nl = bitOp(c, kind, vl, bit);
      else vh = bitOp(c, kind, vh, bit - 32);
      if (kind !== BT) wr64(c, lo, hi, nl, vh);
      return;
    }
    if (size === 4) {
      const v = kind === BT ? rd32(c, lo, hi) : rdw32(c, lo, hi);
      const nv = bitOp(c, kind, v, bit);
      if (kind !== BT) wr32(c, lo, hi, nv);
      return;
    }
    const v = kind === BT ? rd16(c, lo, hi) : rdw16(c, lo, hi);
    const nv = bitOp(c, kind, v, bit);
    if (kind !== BT) wr16(c, lo, hi, nv & 0xffff);
  };
}

function ctz32(v: number): number {
  return v === 0 ? 32 : 31 - Math.clz32(v & -v);
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

const BSF = 0, BSR = 1, TZCNT = 2, LZCNT = 3, POPCNT = 4;

/** Count of the operand (lo, hi) for `kind`, given its size in bits; -1 for BSF/BSR of zero. */
function count(kind: number, lo: number, hi: number, bits: number): number {
  if (bits < 32) lo &= (1 << bits) - 1;
  switch (kind) {
    case BSF:
    case TZCNT:
      if (lo !== 0) return ctz32(lo);
      if (bits === 64 && hi !== 0) return 32 + ctz32(hi);
      return kind === BSF ? -1 : bits;
    case BSR:
    case LZCNT: {
      let lz: number;
      if (bits === 64) lz = hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
      else lz = Math.clz32(lo) - (32 - bits);
      if (lz === bits) return kind === BSR ? -1 : bits;
      return kind === BSR ? bits - 1 - lz : lz;
    }
    default:
      return popcount32(lo) + (bits === 64 ? popcount32(hi) : 0);
  }
}

function translateCount(d: Insn, kind: number): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind !== "reg" || (src.kind !== "reg" && src.kind !== "mem")) throw new UnsupportedForm();
  const bits = dst.size * 8;
  const rd = bits === 64 ? reader64(src) : reader(src);
  const wr = regWriter(dst);
  const s = dst.slot;
  return (c) => {
    const lo = rd(c);
    const hi = bits === 64 ? c.mhi : 0;
    const n = count(kind, lo, hi, bits);
    const zeroSrc = (bits < 32 ? lo & ((1 << bits) - 1) : lo | hi) === 0;
    switch (kind) {
      case BSF:
      case BSR:
        // Zero source: ZF=1 and the destination keeps its value.
        setFlags(c, ZF, n < 0 ? ZF : 0);
        if (n < 0) return;
        break;
      case POPCNT:
        setFlags(c, ARITH, zeroSrc ? ZF : 0);
        break;
      default:
        // TZCNT/LZCNT: CF and ZF defined; OF, SF, AF and PF undefined, cleared as QEMU TCG does.
        setFlags(c, ARITH, (zeroSrc ? CF : 0) | (n === 0 ? ZF : 0));
        break;
    }
    if (bits === 64) {
      const r = c.r;
      r[s] = n;
      r[s + 1] = 0;
    } else {
      wr(c, n);
    }
  };
}

export const bitTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Bt, (d) => translateBt(d, BT)],
  [Mnemonic.Bts, (d) => translateBt(d, BTS)],
  [Mnemonic.Btr, (d) => translateBt(d, BTR)],
  [Mnemonic.Btc, (d) => translateBt(d, BTC)],
  [Mnemonic.Bsf, (d) => translateCount(d, BSF)],
  [Mnemonic.Bsr, (d) => translateCount(d, BSR)],
  [Mnemonic.Tzcnt, (d) => translateCount(d, TZCNT)],
  [Mnemonic.Lzcnt, (d) => translateCount(d, LZCNT)],
  [Mnemonic.Popcnt, (d) => translateCount(d, POPCNT)],
];
