// MOV MOVZX MOVSX MOVSXD LEA XCHG XADD CMPXCHG CMPXCHG8B/16B BSWAP XLATB CBW… CWD… (moves and
// sign extensions; MOV to and from control, debug and segment registers is in system.ts).

import { Code, Mnemonic } from "iced-x86";
import * as arithModule from "./arith.js";
import type { OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as operandsModule from "./operands.js";
import type { Operand } from "./operands.js";
import * as systemModule from "./system.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { ADD, CMP, setFlags } = arithModule;
const { gp } = faultModule;
const { ZF } = flagsModule;
const { UnsupportedForm } = insnModule;
const { rd32, rd64, rd8, rdw16, rdw32, rdw64, rdw8, wr16, wr32, wr64, wr8 } = mmuModule;
const { reader, reader64, regWriter, signExtend, writer, writer64 } = operandsModule;
const { movControl, movSegment } = systemModule;
const { GP } = vpLayoutModule;

const RAX = GP;
const RDX = GP + 4;
const RBX = GP + 6;
const RCX = GP + 2;

function translateMov(d: Insn): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind === "cr" || src.kind === "cr" || dst.kind === "dr" || src.kind === "dr") return movControl(d);
  if (dst.kind === "sreg" || src.kind === "sreg") return movSegment(d);
  return move(dst, src);
}

/** dst = src for same-size register, memory and immediate operands. */
export function move(dst: Operand, src: Operand): OpFn {
  if (dst.kind !== "reg" && dst.kind !== "mem") throw new UnsupportedForm();
  if (dst.size === 8) {
    if (dst.kind === "reg") {
      const d = dst.slot;
      if (src.kind === "reg") {
        const s = src.slot;
        return (c) => {
          const r = c.r;
          r[d] = r[s];
          r[d + 1] = r[s + 1];
        };
      }
      if (src.kind === "imm") {
        const lo = src.lo | 0;
        const hi = src.hi | 0;
        return (c) => {
          const r = c.r;
          r[d] = lo;
          r[d + 1] = hi;
        };
      }
      if (src.kind === "mem") {
        const ea = src.ea;
        return (c) => {
          const lo = rd64(c, ea(c), c.ahi);
          const r = c.r;
          r[d] = lo;
          r[d + 1] = c.mhi;
        };
      }
    } else {
      const ea = dst.ea;
      if (src.kind === "reg") {
        const s = src.slot;
        return (c) => {
          const lo = ea(c);
          const r = c.r;
          wr64(c, lo, c.ahi, r[s], r[s + 1]);
        };
      }
      if (src.kind === "imm") {
        const kl = src.lo | 0;
        const kh = src.hi | 0;
        return (c) => wr64(c, ea(c), c.ahi, kl, kh);
      }
    }
    throw new UnsupportedForm();
  }
  if (dst.size === 4) {
    if (dst.kind === "reg") {
      const d = dst.slot;
      if (src.kind === "reg") {
        const s = src.slot;
        return (c) => {
          const r = c.r;
          r[d] = r[s];
          r[d + 1] = 0;
        };
      }
      if (src.kind === "imm") {
        const k = src.lo | 0;
        return (c) => {
          const r = c.r;
          r[d] = k;
          r[d + 1] = 0;
        };
      }
      if (src.kind === "mem") {
        const ea = src.ea;
        return (c) => {
          const v = rd32(c, ea(c), c.ahi);
          const r = c.r;
          r[d] = v;
          r[d + 1] = 0;
        };
      }
    } else {
      const ea = dst.ea;
      if (src.kind === "reg") {
        const s = src.slot;
        return (c) => {
          const lo = ea(c);
          wr32(c, lo, c.ahi, c.r[s]);
        };
      }
      if (src.kind === "imm") {
        const k = src.lo | 0;
        return (c) => wr32(c, ea(c), c.ahi, k);
      }
    }
    throw new UnsupportedForm();
  }
  const rd = reader(src);
  const wr = writer(dst);
  return (c) => wr(c, rd(c));
}

/** MOVZX / MOVSX / MOVSXD: widen the source into a 16/32/64-bit register. */
function widen(d: Insn, signed: boolean): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind !== "reg" || (src.kind !== "reg" && src.kind !== "mem")) throw new UnsupportedForm();
  const rd = reader(src);
  const n = src.size;
  const s = dst.slot;
  if (dst.size === 8) {
    return signed
      ? (c) => {
        const v = signExtend(rd(c), n);
        const r = c.r;
        r[s] = v;
        r[s + 1] = v >> 31;
      }
      : (c) => {
        const v = rd(c);
        const r = c.r;
        r[s] = v;
        r[s + 1] = 0;
      };
  }
  const wr = regWriter(dst);
  return signed ? (c) => wr(c, signExtend(rd(c), n)) : (c) => wr(c, rd(c));
}

/** LEA: the offset part of the address (no segment base), truncated to the register size. */
function translateLea(d: Insn): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind !== "reg" || src.kind !== "mem") throw new UnsupportedForm();
  const ea = src.offset;
  const s = dst.slot;
  if (dst.size === 8) {
    return (c) => {
      const lo = ea(c);
      const r = c.r;
      r[s] = lo;
      r[s + 1] = c.ahi;
    };
  }
  if (dst.size === 4) {
    return (c) => {
      const lo = ea(c);
      const r = c.r;
      r[s] = lo;
      r[s + 1] = 0;
    };
  }
  const wr = regWriter(dst);
  return (c) => wr(c, ea(c));
}

/** XCHG: with memory it is a read-modify-write (the register changes only after the store). */
function translateXchg(d: Insn): OpFn {
  let [a, b] = d.ops;
  if (a.kind === "mem") [a, b] = [b, a];
  if (a.kind !== "reg" || (b.kind !== "reg" && b.kind !== "mem")) throw new UnsupportedForm();
  const size = a.size;
  if (size === 8) {
    const s = a.slot;
    if (b.kind === "reg") {
      const t = b.slot;
      return (c) => {
        const r = c.r;
        const lo = r[s];
        const hi = r[s + 1];
        r[s] = r[t];
        r[s + 1] = r[t + 1];
        r[t] = lo;
        r[t + 1] = hi;
      };
    }
    const ea = b.ea;
    return (c) => {
      const lo = ea(c);
      const hi = c.ahi;
      const ml = rdw64(c, lo, hi);
      const mh = c.mhi;
      const r = c.r;
      wr64(c, lo, hi, r[s], r[s + 1]);
      r[s] = ml;
      r[s + 1] = mh;
    };
  }
  const ra = reader(a);
  const wa = regWriter(a);
  if (b.kind === "reg") {
    const rb = reader(b);
    const wb = regWriter(b);
    return (c) => {
      const va = ra(c);
      const vb = rb(c);
      wa(c, vb);
      wb(c, va);
    };
  }
  const ea = b.ea;
  const rdw = size === 1 ? rdw8 : size === 2 ? rdw16 : rdw32;
  const wr = size === 1 ? wr8 : size === 2 ? wr16 : wr32;
  return (c) => {
    const lo = ea(c);
    const hi = c.ahi;
    const m = rdw(c, lo, hi);
    wr(c, lo, hi, ra(c));
    wa(c, m);
  };
}

/** XADD dst, src: tmp = dst + src (ADD flags); src = dst; dst = tmp. */
function translateXadd(d: Insn): OpFn {
  const [dst, src] = d.ops;
  if (src.kind !== "reg" || (dst.kind !== "reg" && dst.kind !== "mem")) throw new UnsupportedForm();
  if (dst.size === 8) {
    const s = src.slot;
    if (dst.kind === "reg") {
      const t = dst.slot;
      return (c) => {
        const r = c.r;
        const al = r[t];
        const ah = r[t + 1];
        const lo = ADD.op64(c, al, ah, r[s], r[s + 1]);
        r[s] = al;
        r[s + 1] = ah;
        r[t] = lo;
        r[t + 1] = c.rhi;
      };
    }
    const ea = dst.ea;
    return (c) => {
      const lo = ea(c);
      const hi = c.ahi;
      const al = rdw64(c, lo, hi);
      const ah = c.mhi;
      const r = c.r;
      const vl = ADD.op64(c, al, ah, r[s], r[s + 1]);
      wr64(c, lo, hi, vl, c.rhi);
      r[s] = al;
      r[s + 1] = ah;
    };
  }
  const f = dst.size === 1 ? ADD.op8 : dst.size === 2 ? ADD.op16 : ADD.op32;
  const rs = reader(src);
  const ws = regWriter(src);
  if (dst.kind === "reg") {
    const rd = reader(dst);
    const wd = regWriter(dst);
    return (c) => {
      const a = rd(c);
      const v = f(c, a, rs(c));
      ws(c, a);
      wd(c, v);
    };
  }
  const ea = dst.ea;
  const rdw = dst.size === 1 ? rdw8 : dst.size === 2 ? rdw16 : rdw32;
  const wr = dst.size === 1 ? wr8 : dst.size === 2 ? wr16 : wr32;
  return (c) => {
    const lo = ea(c);
    const hi = c.ahi;
    const a = rdw(c, lo, hi);
    wr(c, lo, hi, f(c, a, rs(c)));
    ws(c, a);
  };
}

/** CMPXCHG dst, src: compare the accumulator with dst (CMP flags); equal → dst = src, else accumulator = dst. */
function translateCmpxchg(d: Insn): OpFn {
  const [dst, src] = d.ops;
  if (src.kind !== "reg" || (dst.kind !== "reg" && dst.kind !== "mem")) throw new UnsupportedForm();
  if (dst.size === 8) {
    const s = src.slot;
    const rd = dst.kind === "mem" ? null : reader64(dst);
    const ea = dst.kind === "mem" ? dst.ea : null;
    const wd = writer64(dst);
    return (c) => {
      let lo = 0;
      let hi = 0;
      let dl: number;
      if (ea !== null) {
        lo = ea(c);
        hi = c.ahi;
        dl = rdw64(c, lo, hi);
      } else {
        dl = rd!(c);
      }
      const dh = c.mhi;
      const r = c.r;
      CMP.op64(c, r[RAX], r[RAX + 1], dl, dh);
      const equal = r[RAX] === dl && r[RAX + 1] === dh;
      const nl = equal ? r[s] : dl;
      const nh = equal ? r[s + 1] : dh;
      if (ea !== null) wr64(c, lo, hi, nl, nh);
      else wd(c, nl, nh);
      if (!equal) {
        r[RAX] = dl;
        r[RAX + 1] = dh;
      }
    };
  }
  const n = dst.size;
  const f = n === 1 ? CMP.op8 : n === 2 ? CMP.op16 : CMP.op32;
  const acc: Operand = { kind: "reg", size: n, slot: RAX, high8: false };
  const racc = reader(acc);
  const wacc = regWriter(acc);
  const rs = reader(src);
  if (dst.kind === "reg") {
    const rd = reader(dst);
    const wd = regWriter(dst);
    return (c) => {
      const a = racc(c);
      const v = rd(c);
      f(c, a, v);
      if (a === v) wd(c, rs(c));
      else wacc(c, v);
    };
  }
  const ea = dst.ea;
  const rdw = n === 1 ? rdw8 : n === 2 ? rdw16 : rdw32;
  const wr = n === 1 ? wr8 : n === 2 ? wr16 : wr32;
  return (c) => {
    const lo = ea(c);
    const hi = c.ahi;
    const v = rdw(c, lo, hi);
    const a = racc(c);
    f(c, a, v);
    wr(c, lo, hi, a === v ? rs(c) : v);
    if (a !== v) wacc(c, v);
  };
}

/** CMPXCHG8B / CMPXCHG16B m: compare EDX:EAX (RDX:RAX) with m; equal → m = ECX:EBX (RCX:RBX). Only ZF changes. */
function translateCmpxchgWide(d: Insn): OpFn {
  const m = d.ops[0];
  if (m.kind !== "mem") throw new UnsupportedForm();
  const ea = m.ea;
  if (d.code === Code.Cmpxchg8b_m64) {
    return (c) => {
      const lo = ea(c);
      const hi = c.ahi;
      const ml = rdw64(c, lo, hi);
      const mh = c.mhi;
      const r = c.r;
      const equal = ml === r[RAX] && mh === r[RDX];
      if (equal) {
        wr64(c, lo, hi, r[RBX], r[RCX]);
      } else {
        wr64(c, lo, hi, ml, mh);
        r[RAX] = ml;
        r[RAX + 1] = 0;
        r[RDX] = mh;
        r[RDX + 1] = 0;
      }
      setFlags(c, ZF, equal ? ZF : 0);
    };
  }
  return (c) => {
    const lo = ea(c);
    const hi = c.ahi;
    if ((lo & 15) !== 0) gp(c, 0);
    const l0 = rdw64(c, lo, hi);
    const h0 = c.mhi;
    const l1 = rdw64(c, (lo + 8) | 0, hi);
    const h1 = c.mhi;
    const r = c.r;
    const equal = l0 === r[RAX] && h0 === r[RAX + 1] && l1 === r[RDX] && h1 === r[RDX + 1];
    if (equal) {
      wr64(c, lo, hi, r[RBX], r[RBX + 1]);
      wr64(c, (lo + 8) | 0, hi, r[RCX], r[RCX + 1]);
    } else {
      r[RAX] = l0;
      r[RAX + 1] = h0;
      r[RDX] = l1;
      r[RDX + 1] = h1;
    }
    setFlags(c, ZF, equal ? ZF : 0);
  };
}

function translateBswap(d: Insn): OpFn {
  const dst = d.ops[0];
  if (dst.kind !== "reg" || dst.size < 4) throw new UnsupportedForm();
  const s = dst.slot;
  const swap = (v: number) => ((v >>> 24) | ((v >> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24)) | 0;
  if (dst.size === 4) {
    return (c) => {
      const r = c.r;
      r[s] = swap(r[s]);
      r[s + 1] = 0;
    };
  }
  return (c) => {
    const r = c.r;
    const lo = r[s];
    r[s] = swap(r[s + 1]);
    r[s + 1] = swap(lo);
  };
}

/** CBW CWDE CDQE: sign-extend the low half of the accumulator into all of it. */
function signExtendAccumulator(d: Insn): OpFn {
  switch (d.mnemonic) {
    case Mnemonic.Cbw:
      return (c) => {
        const r = c.r;
        r[RAX] = (r[RAX] & ~0xffff) | (((r[RAX] << 24) >> 24) & 0xffff);
      };
    case Mnemonic.Cwde:
      return (c) => {
        const r = c.r;
        r[RAX] = (r[RAX] << 16) >> 16;
        r[RAX + 1] = 0;
      };
    default:
      return (c) => {
        const r = c.r;
        r[RAX + 1] = r[RAX] >> 31;
      };
  }
}

/** CWD CDQ CQO: fill DX/EDX/RDX with the accumulator's sign. */
function signIntoRdx(d: Insn): OpFn {
  switch (d.mnemonic) {
    case Mnemonic.Cwd:
      return (c) => {
        const r = c.r;
        r[RDX] = (r[RDX] & ~0xffff) | (((r[RAX] << 16) >> 31) & 0xffff);
      };
    case Mnemonic.Cdq:
      return (c) => {
        const r = c.r;
        r[RDX] = r[RAX] >> 31;
        r[RDX + 1] = 0;
      };
    default:
      return (c) => {
        const r = c.r;
        const s = r[RAX + 1] >> 31;
        r[RDX] = s;
        r[RDX + 1] = s;
      };
  }
}

/** XLATB: AL = [RBX + AL] (64-bit address size). */
const xlatOp: OpFn = (c) => {
  const r = c.r;
  const s = (r[RBX] >>> 0) + (r[RAX] & 0xff);
  const v = rd8(c, s | 0, s > 0xffffffff ? (r[RBX + 1] + 1) | 0 : r[RBX + 1]);
  r[RAX] = (r[RAX] & ~0xff) | v;
};

export const movTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Mov, translateMov],
  [Mnemonic.Movzx, (d) => widen(d, false)],
  [Mnemonic.Movsx, (d) => widen(d, true)],
  [Mnemonic.Movsxd, (d) => widen(d, true)],
  [Mnemonic.Lea, translateLea],
  [Mnemonic.Xchg, translateXchg],
  [Mnemonic.Xadd, translateXadd],
  [Mnemonic.Cmpxchg, translateCmpxchg],
  [Mnemonic.Cmpxchg8b, translateCmpxchgWide],
  [Mnemonic.Cmpxchg16b, translateCmpxchgWide],
  [Mnemonic.Bswap, translateBswap],
  [Mnemonic.Cbw, signExtendAccumulator],
  [Mnemonic.Cwde, signExtendAccumulator],
  [Mnemonic.Cdqe, signExtendAccumulator],
  [Mnemonic.Cwd, signIntoRdx],
  [Mnemonic.Cdq, signIntoRdx],
  [Mnemonic.Cqo, signIntoRdx],
  [Mnemonic.Xlatb, (d) => {
    if (d.addr32) throw new UnsupportedForm();
    return xlatOp;
  }],
];
