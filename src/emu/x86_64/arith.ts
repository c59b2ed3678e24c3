// ADD ADC SUB SBB AND OR XOR CMP TEST INC DEC NEG NOT: op objects and their generic executor.

import type { Cpu, OpFn } from "./cpu.js";
import type { Insn, Translator } from "./insn.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as operandsModule from "./operands.js";
import type { Operand } from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";
import { Mnemonic } from "iced-x86";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { AF, ARITH, CF, OF, PARITY, SF, ZF } = flagsModule;
const { UnsupportedForm } = insnModule;
const { rd16, rd32, rd64, rd8, rdw16, rdw32, rdw64, rdw8, wr16, wr32, wr64, wr8 } = mmuModule;
const { reader, regWriter } = operandsModule;
const { RFLAGS } = vpLayoutModule;

/**
 * One arithmetic/logic operation at each operand size. Values are zero-extended for 8/16 bits,
 * signed words for 32; op64 takes and returns word pairs (the high result word in c.rhi).
 * Each op sets the flags it defines and leaves the others alone.
 */
export interface AluOp {
  /** False for CMP and TEST: flags only. */
  readonly writes: boolean;
  op8(c: Cpu, a: number, b: number): number;
  op16(c: Cpu, a: number, b: number): number;
  op32(c: Cpu, a: number, b: number): number;
  op64(c: Cpu, alo: number, ahi: number, blo: number, bhi: number): number;
}

export function setArith(c: Cpu, f: number): void {
  const r = c.r;
  r[RFLAGS] = (r[RFLAGS] & ~ARITH) | f;
}

/** Set the flags in `mask` to the values in `f`, leave the rest. */
export function setFlags(c: Cpu, mask: number, f: number): void {
  const r = c.r;
  r[RFLAGS] = (r[RFLAGS] & ~mask) | f;
}

export function szp8(v: number): number {
  return PARITY[v] | (v === 0 ? ZF : 0) | (v & SF);
}
export function szp16(v: number): number {
  return PARITY[v & 0xff] | (v === 0 ? ZF : 0) | ((v >> 8) & SF);
}
export function szp32(v: number): number {
  return PARITY[v & 0xff] | (v === 0 ? ZF : 0) | ((v >>> 24) & SF);
}
export function szp64(lo: number, hi: number): number {
  return PARITY[lo & 0xff] | ((lo | hi) === 0 ? ZF : 0) | ((hi >>> 24) & SF);
}

function addOp(withCarry: boolean): AluOp {
  return {
    writes: true,
    op8(c, a, b) {
      const s = a + b + (withCarry ? c.r[RFLAGS] & CF : 0);
      const v = s & 0xff;
      setArith(c, (s >> 8) | szp8(v) | ((a ^ b ^ v) & AF) | ((((a ^ v) & (b ^ v)) << 4) & OF));
      return v;
    },
    op16(c, a, b) {
      const s = a + b + (withCarry ? c.r[RFLAGS] & CF : 0);
      const v = s & 0xffff;
      setArith(c, (s >> 16) | szp16(v) | ((a ^ b ^ v) & AF) | ((((a ^ v) & (b ^ v)) >> 4) & OF));
      return v;
    },
    op32(c, a, b) {
      const s = (a >>> 0) + (b >>> 0) + (withCarry ? c.r[RFLAGS] & CF : 0);
      const v = s | 0;
      setArith(c, (s > 0xffffffff ? CF : 0) | szp32(v) | ((a ^ b ^ v) & AF) | ((((a ^ v) & (b ^ v)) >>> 20) & OF));
      return v;
    },
    op64(c, alo, ahi, blo, bhi) {
      const sl = (alo >>> 0) + (blo >>> 0) + (withCarry ? c.r[RFLAGS] & CF : 0);
      const lo = sl | 0;
      const sh = (ahi >>> 0) + (bhi >>> 0) + (sl > 0xffffffff ? 1 : 0);
      const hi = sh | 0;
      setArith(c, (sh > 0xffffffff ? CF : 0) | szp64(lo, hi) | ((alo ^ blo ^ lo) & AF) | ((((ahi ^ hi) & (bhi ^ hi)) >>> 20) & OF));
      c.rhi = hi;
      return lo;
    },
  };
}

function subOp(withBorrow: boolean, writes: boolean): AluOp {
  return {
    writes,
    op8(c, a, b) {
      const d = a - b - (withBorrow ? c.r[RFLAGS] & CF : 0);
      const v = d & 0xff;
      setArith(c, (d < 0 ? CF : 0) | szp8(v) | ((a ^ b ^ v) & AF) | ((((a ^ b) & (a ^ v)) << 4) & OF));
      return v;
    },
    op16(c, a, b) {
      const d = a - b - (withBorrow ? c.r[RFLAGS] & CF : 0);
      const v = d & 0xffff;
      setArith(c, (d < 0 ? CF : 0) | szp16(v) | ((a ^ b ^ v) & AF) | ((((a ^ b) & (a ^ v)) >> 4) & OF));
      return v;
    },
    op32(c, a, b) {
      const d = (a >>> 0) - (b >>> 0) - (withBorrow ? c.r[RFLAGS] & CF : 0);
      const v = d | 0;
      setArith(c, (d < 0 ? CF : 0) | szp32(v) | ((a ^ b ^ v) & AF) | ((((a ^ b) & (a ^ v)) >>> 20) & OF));
      return v;
    },
    op64(c, alo, ahi, blo, bhi) {
      const dl = (alo >>> 0) - (blo >>> 0) - (withBorrow ? c.r[RFLAGS] & CF : 0);
      const lo = dl | 0;
      const dh = (ahi >>> 0) - (bhi >>> 0) - (dl < 0 ? 1 : 0);
      const hi = dh | 0;
      setArith(c, (dh < 0 ? CF : 0) | szp64(lo, hi) | ((alo ^ blo ^ lo) & AF) | ((((ahi ^ bhi) & (ahi ^ hi)) >>> 20) & OF));
      c.rhi = hi;
      return lo;
    },
  };
}

/** AND, OR, XOR, TEST: CF = OF = 0, AF cleared (architecturally undefined). */
function logicOp(kind: "and" | "or" | "xor", writes: boolean): AluOp {
  const f = kind === "and" ? (a: number, b: number) => a & b : kind === "or" ? (a: number, b: number) => a | b : (a: number, b: number) => a ^ b;
  return {
    writes,
    op8(c, a, b) {
      const v = f(a, b);
      setArith(c, szp8(v));
      return v;
    },
    op16(c, a, b) {
      const v = f(a, b);
      setArith(c, szp16(v));
      return v;
    },
    op32(c, a, b) {
      const v = f(a, b);
      setArith(c, szp32(v));
      return v;
    },
    op64(c, alo, ahi, blo, bhi) {
      const lo = f(alo, blo);
      const hi = f(ahi, bhi);
      setArith(c, szp64(lo, hi));
      c.rhi = hi;
      return lo;
    },
  };
}

export const ADD = addOp(false);
export const ADC = addOp(true);
export const SUB = subOp(false, true);
export const SBB = subOp(true, true);
export const CMP = subOp(false, false);
export const AND = logicOp("and", true);
export const OR = logicOp("or", true);
export const XOR = logicOp("xor", true);
export const TEST = logicOp("and", false);

/** INC and DEC: ADD/SUB 1 that keep CF. */
function incDecOp(inner: AluOp): AluOp {
  return {
    writes: true,
    op8(c, a) {
      const cf = c.r[RFLAGS] & CF;
      const v = inner.op8(c, a, 1);
      setFlags(c, CF, cf);
      return v;
    },
    op16(c, a) {
      const cf = c.r[RFLAGS] & CF;
      const v = inner.op16(c, a, 1);
      setFlags(c, CF, cf);
      return v;
    },
    op32(c, a) {
      const cf = c.r[RFLAGS] & CF;
      const v = inner.op32(c, a, 1);
      setFlags(c, CF, cf);
      return v;
    },
    op64(c, alo, ahi) {
      const cf = c.r[RFLAGS] & CF;
      const v = inner.op64(c, alo, ahi, 1, 0);
      setFlags(c, CF, cf);
      return v;
    },
  };
}

export const INC = incDecOp(ADD);
export const DEC = incDecOp(SUB);
/** NEG: 0 - a (CF = a != 0). */
export const NEG: AluOp = {
  writes: true,
  op8: (c, a) => SUB.op8(c, 0, a),
  op16: (c, a) => SUB.op16(c, 0, a),
  op32: (c, a) => SUB.op32(c, 0, a),
  op64: (c, alo, ahi) => SUB.op64(c, 0, 0, alo, ahi),
};
/** NOT: no flags. */
export const NOT: AluOp = {
  writes: true,
  op8: (_c, a) => ~a & 0xff,
  op16: (_c, a) => ~a & 0xffff,
  op32: (_c, a) => ~a,
  op64: (c, alo, ahi) => {
    c.rhi = ~ahi;
    return ~alo;
  },
};

/**
 * The generic executor: `dst = op(dst, src)` for any operand forms at any size. Memory
 * destinations are read with write intent first, so the store after the flag update cannot
 * fault and a faulting instruction leaves no trace.
 */
export function binary(op: AluOp, dst: Operand, src: Operand): OpFn {
  const size = dst.kind === "reg" || dst.kind === "mem" ? dst.size : 0;
  const w = op.writes;
  if (size === 8) return binary64(op, dst, src);
  if (size === 4) return binary32(op, dst, src);
  const rb = reader(src);
  const f = size === 1 ? op.op8 : op.op16;
  if (dst.kind === "reg") {
    const ra = reader(dst);
    const wa = regWriter(dst);
    return w ? (c) => wa(c, f(c, ra(c), rb(c))) : (c) => void f(c, ra(c), rb(c));
  }
  if (dst.kind !== "mem") throw new UnsupportedForm("bad destination");
  const ea = dst.ea;
  if (size === 1) {
    return w
      ? (c) => {
        const lo = ea(c);
        const hi = c.ahi;
        const a = rdw8(c, lo, hi);
        wr8(c, lo, hi, f(c, a, rb(c)));
      }
      : (c) => {
        const lo = ea(c);
        f(c, rd8(c, lo, c.ahi), rb(c));
      };
  }
  return w
    ? (c) => {
      const lo = ea(c);
      const hi = c.ahi;
      const a = rdw16(c, lo, hi);
      wr16(c, lo, hi, f(c, a, rb(c)));
    }
    : (c) => {
      const lo = ea(c);
      f(c, rd16(c, lo, c.ahi), rb(c));
    };
}

function binary32(op: AluOp, dst: Operand, src: Operand): OpFn {
  const w = op.writes;
  if (dst.kind === "reg") {
    const d = dst.slot;
    if (src.kind === "reg") {
      const s = src.slot;
      return w
        ? (c) => {
          const r = c.r;
          r[d] = op.op32(c, r[d], r[s]);
          r[d + 1] = 0;
        }
        : (c) => void op.op32(c, c.r[d], c.r[s]);
    }
    if (src.kind === "imm") {
      const k = src.lo | 0;
      return w
        ? (c) => {
          const r = c.r;
          r[d] = op.op32(c, r[d], k);
          r[d + 1] = 0;
        }
        : (c) => void op.op32(c, c.r[d], k);
    }
    if (src.kind === "mem") {
      const ea = src.ea;
      return w
        ? (c) => {
          const b = rd32(c, ea(c), c.ahi);
          const r = c.r;
          r[d] = op.op32(c, r[d], b);
          r[d + 1] = 0;
        }
        : (c) => {
          const b = rd32(c, ea(c), c.ahi);
          op.op32(c, c.r[d], b);
        };
    }
  }
  if (dst.kind === "mem") {
    const ea = dst.ea;
    const rb = reader(src);
    return w
      ? (c) => {
        const lo = ea(c);
        const hi = c.ahi;
        const a = rdw32(c, lo, hi);
        wr32(c, lo, hi, op.op32(c, a, rb(c)));
      }
      : (c) => {
        const lo = ea(c);
        op.op32(c, rd32(c, lo, c.ahi), rb(c));
      };
  }
  throw new UnsupportedForm("bad operands");
}

function binary64(op: AluOp, dst: Operand, src: Operand): OpFn {
  const w = op.writes;
  if (dst.kind === "reg") {
    const d = dst.slot;
    if (src.kind === "reg") {
      const s = src.slot;
      return w
        ? (c) => {
          const r = c.r;
          r[d] = op.op64(c, r[d], r[d + 1], r[s], r[s + 1]);
          r[d + 1] = c.rhi;
        }
        : (c) => {
          const r = c.r;
          op.op64(c, r[d], r[d + 1], r[s], r[s + 1]);
        };
    }
    if (src.kind === "imm") {
      const kl = src.lo | 0;
      const kh = src.hi | 0;
      return w
        ? (c) => {
          const r = c.r;
          r[d] = op.op64(c, r[d], r[d + 1], kl, kh);
          r[d + 1] = c.rhi;
        }
        : (c) => {
          const r = c.r;
          op.op64(c, r[d], r[d + 1], kl, kh);
        };
    }
    if (src.kind === "mem") {
      const ea = src.ea;
      return w
        ? (c) => {
          const bl = rd64(c, ea(c), c.ahi);
          const r = c.r;
          r[d] = op.op64(c, r[d], r[d + 1], bl, c.mhi);
          r[d + 1] = c.rhi;
        }
        : (c) => {
          const bl = rd64(c, ea(c), c.ahi);
          const r = c.r;
          op.op64(c, r[d], r[d + 1], bl, c.mhi);
        };
    }
  }
  if (dst.kind === "mem") {
    const ea = dst.ea;
    if (src.kind === "reg") {
      const s = src.slot;
      return w
        ? (c) => {
          const lo = ea(c);
          const hi = c.ahi;
          const al = rdw64(c, lo, hi);
          const r = c.r;
          const v = op.op64(c, al, c.mhi, r[s], r[s + 1]);
          wr64(c, lo, hi, v, c.rhi);
        }
        : (c) => {
          const al = rd64(c, ea(c), c.ahi);
          const r = c.r;
          op.op64(c, al, c.mhi, r[s], r[s + 1]);
        };
    }
    if (src.kind === "imm") {
      const kl = src.lo | 0;
      const kh = src.hi | 0;
      return w
        ? (c) => {
          const lo = ea(c);
          const hi = c.ahi;
          const al = rdw64(c, lo, hi);
          const v = op.op64(c, al, c.mhi, kl, kh);
          wr64(c, lo, hi, v, c.rhi);
        }
        : (c) => {
          const al = rd64(c, ea(c), c.ahi);
          op.op64(c, al, c.mhi, kl, kh);
        };
    }
  }
  throw new UnsupportedForm("bad operands");
}

/** INC DEC NEG NOT: `dst = op(dst)`. */
export function unary(op: AluOp, dst: Operand): OpFn {
  if (dst.kind !== "reg" && dst.kind !== "mem") throw new UnsupportedForm("bad operand");
  if (dst.size === 8) {
    if (dst.kind === "reg") {
      const d = dst.slot;
      return (c) => {
        const r = c.r;
        r[d] = op.op64(c, r[d], r[d + 1], 0, 0);
        r[d + 1] = c.rhi;
      };
    }
    const ea = dst.ea;
    return (c) => {
      const lo = ea(c);
      const hi = c.ahi;
      const al = rdw64(c, lo, hi);
      const v = op.op64(c, al, c.mhi, 0, 0);
      wr64(c, lo, hi, v, c.rhi);
    };
  }
  const f = dst.size === 1 ? op.op8 : dst.size === 2 ? op.op16 : op.op32;
  if (dst.kind === "reg") {
    const ra = reader(dst);
    const wa = regWriter(dst);
    return (c) => wa(c, f(c, ra(c), 0));
  }
  const ea = dst.ea;
  const rdw = dst.size === 1 ? rdw8 : dst.size === 2 ? rdw16 : rdw32;
  const wr = dst.size === 1 ? wr8 : dst.size === 2 ? wr16 : wr32;
  return (c) => {
    const lo = ea(c);
    const hi = c.ahi;
    wr(c, lo, hi, f(c, rdw(c, lo, hi), 0));
  };
}

const binaryOps: [Mnemonic, AluOp][] = [
  [Mnemonic.Add, ADD], [Mnemonic.Adc, ADC], [Mnemonic.Sub, SUB], [Mnemonic.Sbb, SBB],
  [Mnemonic.And, AND], [Mnemonic.Or, OR], [Mnemonic.Xor, XOR], [Mnemonic.Cmp, CMP], [Mnemonic.Test, TEST],
];
const unaryOps: [Mnemonic, AluOp][] = [[Mnemonic.Inc, INC], [Mnemonic.Dec, DEC], [Mnemonic.Neg, NEG], [Mnemonic.Not, NOT]];

export const arithTranslators: [Mnemonic, Translator][] = [
  ...binaryOps.map(([m, op]): [Mnemonic, Translator] => [m, (d: Insn) => binary(op, d.ops[0], d.ops[1])]),
  ...unaryOps.map(([m, op]): [Mnemonic, Translator] => [m, (d: Insn) => unary(op, d.ops[0])]),
];
