// BMI1 (ANDN BEXTR BLSI BLSMSK BLSR), BMI2 (BZHI MULX PDEP PEXT RORX SARX SHLX SHRX), MOVBE and
// ADX (ADCX ADOX), at 32 and 64 bits (MOVBE also at 16), register and memory operands.
// TZCNT and LZCNT (BMI1 / ABM) live with BSF/BSR in bt.ts: iced decodes F3 0F BC/BD as them.
//
// Encoding checks: iced-x86 rejects VEX.L=1, a VEX.vvvv that is not 1111 where the form has no
// vvvv operand, legacy prefixes (66/F2/F3/REX/LOCK) in front of VEX, and register forms of MOVBE;
// such bytes decode to INVALID and the interpreter raises #UD.
//
// Flags the SDM leaves undefined take the values QEMU TCG gives (so lockstep runs agree):
// - ANDN, BEXTR: QEMU's "logic" flags: PF from the result, AF=0 (BEXTR's SF from the result too).
// - BLSI, BLSMSK, BLSR, BZHI: QEMU's "BMILG" flags: PF=0, AF=0.
// Defined flags follow the SDM (QEMU 7.2 sets BLSI's CF from "source is zero"; the SDM and
// hardware set it when the source is not zero, and so does this file).

import { Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as muldivModule from "./muldiv.js";
import * as operandsModule from "./operands.js";
import type { Operand } from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { ARITH, CF, OF, PARITY, SF, ZF } = flagsModule;
const { UnsupportedForm } = insnModule;
const { rd16, rd32, rd64, wr16, wr32, wr64 } = mmuModule;
const { mulU64, prod } = muldivModule.internal;
const { reader, reader64, regWriter } = operandsModule;
const { GP, RFLAGS } = vpLayoutModule;

const RDX = GP + 4;

/** 32-bit op on (a, b): returns the result word (flags set by the op). */
type Op32 = (c: Cpu, a: number, b: number) => number;
/** 64-bit op on (alo, ahi, blo, bhi): returns the low word, the high word in c.rhi. */
type Op64 = (c: Cpu, al: number, ah: number, bl: number, bh: number) => number;

function setFlags(c: Cpu, f: number): void {
  const r = c.r;
  r[RFLAGS] = (r[RFLAGS] & ~ARITH) | f;
}

/** ZF and SF of a 32-bit result. */
function zs32(v: number): number {
  return (v === 0 ? ZF : 0) | ((v >>> 24) & SF);
}
function zs64(lo: number, hi: number): number {
  return ((lo | hi) === 0 ? ZF : 0) | ((hi >>> 24) & SF);
}

function isRm(o: Operand | undefined): boolean {
  return o !== undefined && (o.kind === "reg" || o.kind === "mem");
}

/** dst ← f(a, b) for a 32- or 64-bit register destination. */
function binary(d: Insn, f32: Op32, f64: Op64): OpFn {
  const [dst, a, b] = d.ops;
  if (dst.kind !== "reg" || !isRm(a) || !isRm(b)) throw new UnsupportedForm();
  const s = dst.slot;
  if (dst.size === 8) {
    const ra = reader64(a);
    const rb = reader64(b);
    return (c) => {
      const al = ra(c);
      const ah = c.mhi;
      const bl = rb(c);
      const lo = f64(c, al, ah, bl, c.mhi);
      const r = c.r;
      r[s] = lo;
      r[s + 1] = c.rhi;
    };
  }
  if (dst.size !== 4) throw new UnsupportedForm();
  const ra = reader(a);
  const rb = reader(b);
  return (c) => {
    const av = ra(c);
    const v = f32(c, av, rb(c));
    const r = c.r;
    r[s] = v;
    r[s + 1] = 0;
  };
}

/** dst ← f(src) (BLSI BLSMSK BLSR): the op gets src in (a) / (al, ah). */
function unary(d: Insn, f32: Op32, f64: Op64): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind !== "reg" || !isRm(src)) throw new UnsupportedForm();
  const s = dst.slot;
  if (dst.size === 8) {
    const rs = reader64(src);
    return (c) => {
      const al = rs(c);
      const lo = f64(c, al, c.mhi, 0, 0);
      const r = c.r;
      r[s] = lo;
      r[s + 1] = c.rhi;
    };
  }
  if (dst.size !== 4) throw new UnsupportedForm();
  const rs = reader(src);
  return (c) => {
    const v = f32(c, rs(c), 0);
    const r = c.r;
    r[s] = v;
    r[s + 1] = 0;
  };
}

// ------------------------------------------------------------------ 64-bit shifts (count 0..63)

function shl64(lo: number, hi: number, n: number, c: Cpu): number {
  if (n === 0) {
    c.rhi = hi;
    return lo;
  }
  if (n < 32) {
    c.rhi = (hi << n) | (lo >>> (32 - n));
    return lo << n;
  }
  c.rhi = lo << (n - 32);
  return 0;
}

function shr64(lo: number, hi: number, n: number, c: Cpu, arith: boolean): number {
  if (n === 0) {
    c.rhi = hi;
    return lo;
  }
  if (n < 32) {
    c.rhi = arith ? hi >> n : (hi >>> n) | 0;
    return (lo >>> n) | (hi << (32 - n));
  }
  c.rhi = arith ? hi >> 31 : 0;
  return arith ? hi >> (n - 32) : (hi >>> (n - 32)) | 0;
}

// ------------------------------------------------------------------ BMI1

const andn32: Op32 = (c, a, b) => {
  const v = ~a & b;
  setFlags(c, zs32(v) | PARITY[v & 0xff]);
  return v;
};
const andn64: Op64 = (c, al, ah, bl, bh) => {
  const lo = ~al & bl;
  const hi = ~ah & bh;
  setFlags(c, zs64(lo, hi) | PARITY[lo & 0xff]);
  c.rhi = hi;
  return lo;
};

// BEXTR: a = source, b = control (start in bits 7:0, length in bits 15:8).
const bextr32: Op32 = (c, a, b) => {
  const start = b & 0xff;
  const len = (b >>> 8) & 0xff;
  let v = start < 32 ? (a >>> start) | 0 : 0;
  if (len < 32) v &= (1 << len) - 1;
  setFlags(c, zs32(v) | PARITY[v & 0xff]);
  return v;
};
const bextr64: Op64 = (c, al, ah, bl) => {
  const start = bl & 0xff;
  const len = (bl >>> 8) & 0xff;
  let lo = 0;
  let hi = 0;
  if (start < 64) {
    lo = shr64(al, ah, start, c, false);
    hi = c.rhi;
  }
  if (len < 32) {
    lo &= (1 << len) - 1;
    hi = 0;
  } else if (len < 64) {
    hi &= len === 32 ? 0 : (1 << (len - 32)) - 1;
  }
  setFlags(c, zs64(lo, hi) | PARITY[lo & 0xff]);
  c.rhi = hi;
  return lo;
};

const blsi32: Op32 = (c, a) => {
  const v = a & -a;
  setFlags(c, zs32(v) | (a !== 0 ? CF : 0));
  return v;
};
const blsi64: Op64 = (c, al, ah) => {
  const nl = -al | 0;
  const nh = (~ah + (al === 0 ? 1 : 0)) | 0;
  const lo = al & nl;
  const hi = ah & nh;
  setFlags(c, zs64(lo, hi) | ((al | ah) !== 0 ? CF : 0));
  c.rhi = hi;
  return lo;
};

const blsmsk32: Op32 = (c, a) => {
  const v = a ^ (a - 1);
  setFlags(c, zs32(v) | (a === 0 ? CF : 0));
  return v;
};
const blsmsk64: Op64 = (c, al, ah) => {
  const ml = (al - 1) | 0;
  const mh = (ah - (al === 0 ? 1 : 0)) | 0;
  const lo = al ^ ml;
  const hi = ah ^ mh;
  setFlags(c, zs64(lo, hi) | ((al | ah) === 0 ? CF : 0));
  c.rhi = hi;
  return lo;
};

const blsr32: Op32 = (c, a) => {
  const v = a & (a - 1);
  setFlags(c, zs32(v) | (a === 0 ? CF : 0));
  return v;
};
const blsr64: Op64 = (c, al, ah) => {
  const ml = (al - 1) | 0;
  const mh = (ah - (al === 0 ? 1 : 0)) | 0;
  const lo = al & ml;
  const hi = ah & mh;
  setFlags(c, zs64(lo, hi) | ((al | ah) === 0 ? CF : 0));
  c.rhi = hi;
  return lo;
};

// ------------------------------------------------------------------ BMI2

// BZHI: a = source, b = index (bits 7:0). CF = index > width - 1; OF cleared.
const bzhi32: Op32 = (c, a, b) => {
  const n = b & 0xff;
  const v = n < 32 ? a & ((1 << n) - 1) : a;
  setFlags(c, zs32(v) | (n > 31 ? CF : 0));
  return v;
};
const bzhi64: Op64 = (c, al, ah, bl) => {
  const n = bl & 0xff;
  let lo = al;
  let hi = ah;
  if (n < 32) {
    lo &= (1 << n) - 1;
    hi = 0;
  } else if (n < 64) {
    hi &= n === 32 ? 0 : (1 << (n - 32)) - 1;
  }
  setFlags(c, zs64(lo, hi) | (n > 63 ? CF : 0));
  c.rhi = hi;
  return lo;
};

// PDEP / PEXT: a = source (vvvv), b = mask (r/m). No flags.
const pdep32: Op32 = (_c, a, b) => {
  let m = b;
  let v = 0;
  for (let k = 0; m !== 0; k++) {
    const bit = m & -m;
    if ((a >>> k) & 1) v |= bit;
    m ^= bit;
  }
  return v;
};
const pdep64: Op64 = (c, al, ah, bl, bh) => {
  let k = 0;
  let lo = 0;
  let hi = 0;
  for (let m = bl; m !== 0; k++) {
    const bit = m & -m;
    if ((k < 32 ? al >>> k : ah >>> (k - 32)) & 1) lo |= bit;
    m ^= bit;
  }
  for (let m = bh; m !== 0; k++) {
    const bit = m & -m;
    if ((k < 32 ? al >>> k : ah >>> (k - 32)) & 1) hi |= bit;
    m ^= bit;
  }
  c.rhi = hi;
  return lo;
};
const pext32: Op32 = (_c, a, b) => {
  let m = b;
  let v = 0;
  for (let k = 0; m !== 0; k++) {
    const bit = m & -m;
    if ((a & bit) !== 0) v |= 1 << k;
    m ^= bit;
  }
  return v;
};
const pext64: Op64 = (c, al, ah, bl, bh) => {
  let k = 0;
  let lo = 0;
  let hi = 0;
  for (let m = bl; m !== 0; k++) {
    const bit = m & -m;
    if ((al & bit) !== 0) lo |= 1 << k; // k < 32 here
    m ^= bit;
  }
  for (let m = bh; m !== 0; k++) {
    const bit = m & -m;
    if ((ah & bit) !== 0) {
      if (k < 32) lo |= 1 << k;
      else hi |= 1 << (k - 32);
    }
    m ^= bit;
  }
  c.rhi = hi;
  return lo;
};

// SHLX / SHRX / SARX: a = source (r/m), b = count (vvvv), masked to 5 or 6 bits. No flags.
const shlx32: Op32 = (_c, a, b) => a << (b & 31);
const shrx32: Op32 = (_c, a, b) => (a >>> (b & 31)) | 0;
const sarx32: Op32 = (_c, a, b) => a >> (b & 31);
const shlx64: Op64 = (c, al, ah, bl) => shl64(al, ah, bl & 63, c);
const shrx64: Op64 = (c, al, ah, bl) => shr64(al, ah, bl & 63, c, false);
const sarx64: Op64 = (c, al, ah, bl) => shr64(al, ah, bl & 63, c, true);

function translateRorx(d: Insn): OpFn {
  const [dst, src, imm] = d.ops;
  if (dst.kind !== "reg" || !isRm(src) || imm === undefined || imm.kind !== "imm") throw new UnsupportedForm();
  const s = dst.slot;
  if (dst.size === 8) {
    const k = imm.lo & 63;
    const rs = reader64(src);
    return (c) => {
      let lo = rs(c);
      let hi = c.mhi;
      let n = k;
      if (n >= 32) {
        const t = lo;
        lo = hi;
        hi = t;
        n -= 32;
      }
      const r = c.r;
      if (n === 0) {
        r[s] = lo;
        r[s + 1] = hi;
      } else {
        r[s] = (lo >>> n) | (hi << (32 - n));
        r[s + 1] = (hi >>> n) | (lo << (32 - n));
      }
    };
  }
  if (dst.size !== 4) throw new UnsupportedForm();
  const k = imm.lo & 31;
  const rs = reader(src);
  return (c) => {
    const v = rs(c);
    const r = c.r;
    r[s] = k === 0 ? v : (v >>> k) | (v << (32 - k));
    r[s + 1] = 0;
  };
}

/** MULX hi, lo, src: unsigned EDX/RDX × src; the low half is written first, so hi wins when hi = lo. No flags. */
function translateMulx(d: Insn): OpFn {
  const [hiOp, loOp, src] = d.ops;
  if (hiOp.kind !== "reg" || loOp.kind !== "reg" || !isRm(src)) throw new UnsupportedForm();
  const sh = hiOp.slot;
  const sl = loOp.slot;
  if (hiOp.size === 8) {
    const rs = reader64(src);
    return (c) => {
      const bl = rs(c);
      const bh = c.mhi;
      const r = c.r;
      mulU64(r[RDX], r[RDX + 1], bl, bh);
      r[sl] = prod[0];
      r[sl + 1] = prod[1];
      r[sh] = prod[2];
      r[sh + 1] = prod[3];
    };
  }
  if (hiOp.size !== 4) throw new UnsupportedForm();
  const rs = reader(src);
  return (c) => {
    const b = rs(c);
    const r = c.r;
    mulU64(r[RDX], 0, b, 0);
    r[sl] = prod[0];
    r[sl + 1] = 0;
    r[sh] = prod[1];
    r[sh + 1] = 0;
  };
}

// ------------------------------------------------------------------ MOVBE

function bswap32(v: number): number {
  return ((v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) | 0;
}
function bswap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

function translateMovbe(d: Insn): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind === "reg" && src.kind === "mem") {
    const ea = src.ea;
    const s = dst.slot;
    if (dst.size === 8) {
      return (c) => {
        const lo = rd64(c, ea(c), c.ahi);
        const hi = c.mhi;
        const r = c.r;
        r[s] = bswap32(hi);
        r[s + 1] = bswap32(lo);
      };
    }
    if (dst.size === 4) {
      return (c) => {
        const v = rd32(c, ea(c), c.ahi);
        const r = c.r;
        r[s] = bswap32(v);
        r[s + 1] = 0;
      };
    }
    if (dst.size === 2) {
      const wr = regWriter(dst); // keeps bits 63:16
      return (c) => wr(c, bswap16(rd16(c, ea(c), c.ahi)));
    }
  } else if (dst.kind === "mem" && src.kind === "reg") {
    const ea = dst.ea;
    const s = src.slot;
    if (src.size === 8) {
      return (c) => {
        const r = c.r;
        const lo = bswap32(r[s + 1]);
        const hi = bswap32(r[s]);
        wr64(c, ea(c), c.ahi, lo, hi);
      };
    }
    if (src.size === 4) return (c) => wr32(c, ea(c), c.ahi, bswap32(c.r[s]));
    if (src.size === 2) return (c) => wr16(c, ea(c), c.ahi, bswap16(c.r[s]));
  }
  throw new UnsupportedForm();
}

// ------------------------------------------------------------------ ADX

/** ADCX (carry in and out through CF) or ADOX (through OF); no other flag changes. */
function translateAdx(d: Insn, flag: number): OpFn {
  const [dst, src] = d.ops;
  if (dst.kind !== "reg" || !isRm(src)) throw new UnsupportedForm();
  const s = dst.slot;
  if (dst.size === 8) {
    const rs = reader64(src);
    return (c) => {
      const bl = rs(c);
      const bh = c.mhi;
      const r = c.r;
      const f = r[RFLAGS];
      const lo = (r[s] >>> 0) + (bl >>> 0) + ((f & flag) !== 0 ? 1 : 0);
      const hi = (r[s + 1] >>> 0) + (bh >>> 0) + (lo > 0xffffffff ? 1 : 0);
      r[s] = lo | 0;
      r[s + 1] = hi | 0;
      r[RFLAGS] = hi > 0xffffffff ? f | flag : f & ~flag;
    };
  }
  if (dst.size !== 4) throw new UnsupportedForm();
  const rs = reader(src);
  return (c) => {
    const b = rs(c);
    const r = c.r;
    const f = r[RFLAGS];
    const v = (r[s] >>> 0) + (b >>> 0) + ((f & flag) !== 0 ? 1 : 0);
    r[s] = v | 0;
    r[s + 1] = 0;
    r[RFLAGS] = v > 0xffffffff ? f | flag : f & ~flag;
  };
}

export const bmiTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Andn, (d) => binary(d, andn32, andn64)],
  [Mnemonic.Bextr, (d) => binary(d, bextr32, bextr64)],
  [Mnemonic.Blsi, (d) => unary(d, blsi32, blsi64)],
  [Mnemonic.Blsmsk, (d) => unary(d, blsmsk32, blsmsk64)],
  [Mnemonic.Blsr, (d) => unary(d, blsr32, blsr64)],
  [Mnemonic.Bzhi, (d) => binary(d, bzhi32, bzhi64)],
  [Mnemonic.Pdep, (d) => binary(d, pdep32, pdep64)],
  [Mnemonic.Pext, (d) => binary(d, pext32, pext64)],
  [Mnemonic.Shlx, (d) => binary(d, shlx32, shlx64)],
  [Mnemonic.Shrx, (d) => binary(d, shrx32, shrx64)],
  [Mnemonic.Sarx, (d) => binary(d, sarx32, sarx64)],
  [Mnemonic.Rorx, translateRorx],
  [Mnemonic.Mulx, translateMulx],
  [Mnemonic.Movbe, translateMovbe],
  [Mnemonic.Adcx, (d) => translateAdx(d, CF)],
  [Mnemonic.Adox, (d) => translateAdx(d, OF)],
];
