// The floating-point core of the SSE family: IEEE single and double arithmetic with the MXCSR
// flags hardware sets (IE DE ZE OE UE PE), DAZ, FTZ, the four rounding modes and x86 NaN rules.
//
// Values travel as bit patterns (f64: hi, lo words; f32: one word) so NaN payloads survive.
// Fast path: round-to-nearest with operands and result well inside the normal range; the result
// comes from JS arithmetic and inexactness from an error-free transform (TwoSum, Dekker's
// TwoProduct). Everything else (directed rounding, tiny or huge results) takes the exact path:
// the exact value as a BigInt significand and a binary exponent, rounded here.
// Tininess is detected before rounding (as x86 and QEMU do); FTZ (with UE masked) flushes a tiny
// result to zero and sets UE and PE, as QEMU does.

export const IE = 0x1;
export const DE = 0x2;
export const ZE = 0x4;
export const OE = 0x8;
export const UE = 0x10;
export const PE = 0x20;
export const DAZ = 0x40;
export const FTZ = 0x8000;
/** The exceptions found before computing (an unmasked one stops the others being reported). */
export const PRE = IE | DE | ZE;

/** MXCSR of the instruction being executed (set by the caller before calling into this file). */
let MX = 0x1f80;
export function setMx(v: number): void {
  MX = v;
  RES[5] = v;
}
/**
 * Results, in one array so other modules read them without a module-binding getter: f64 result
 * low and high words (0, 1), f32 result (2), compare flags (3), conversion flags (4), MXCSR (5).
 */
export const RES = new Int32Array(8);

const SB = new ArrayBuffer(16);
const W = new Int32Array(SB);
const D = new Float64Array(SB);
const S = new Float32Array(SB);

export function f64Of(hi: number, lo: number): number {
  W[0] = lo;
  W[1] = hi;
  return D[0];
}
/** Set RES[1]/RES[0] from a (non-NaN) number. */
function out64(x: number): void {
  D[0] = x;
  RES[0] = W[0];
  RES[1] = W[1];
}
export function f32Of(w: number): number {
  W[2] = w;
  return S[2];
}
function out32(x: number): void {
  S[2] = x;
  RES[2] = W[2];
}

export function isNan64(hi: number, lo: number): boolean {
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0;
}
function isSnan64(hi: number, lo: number): boolean {
  return isNan64(hi, lo) && (hi & 0x80000) === 0;
}
export function isNan32(w: number): boolean {
  return (w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0;
}
function isSnan32(w: number): boolean {
  return isNan32(w) && (w & 0x400000) === 0;
}
function isDen64(hi: number, lo: number): boolean {
  return (hi & 0x7ff00000) === 0 && ((hi & 0xfffff) | lo) !== 0;
}
function isDen32(w: number): boolean {
  return (w & 0x7f800000) === 0 && (w & 0x7fffff) !== 0;
}

/** Default NaN (the "QNaN floating-point indefinite"). */
export const DEF_NAN_HI = 0xfff80000 | 0;
export const DEF_NAN32 = 0xffc00000 | 0;

// ------------------------------------------------------------------ exact path

function bitLen(m: bigint): number {
  return m.toString(2).length;
}

interface Exact { neg: boolean; m: bigint; e: number }

/** A finite nonzero double (any JS number) as (-1)^neg · m · 2^e. */
function decompose(x: number): Exact {
  D[0] = x;
  const hi = W[1];
  const lo = W[0];
  const ex = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo >>> 0);
  let e: number;
  if (ex === 0) e = -1074;
  else {
    m |= 1n << 52n;
    e = ex - 1075;
  }
  return { neg: hi < 0, m, e };
}

/**
 * Round (-1)^neg · (m + sticky·ε) · 2^e (m > 0; when sticky, m has more than p + 2 bits) to
 * format f (1 double, 0 single) under MX; sets OUT_* and returns the flags (OE UE PE).
 */
export function roundPack(neg: boolean, m: bigint, e: number, sticky: boolean, f: number): number {
  const p = f ? 53 : 24;
  const emin = f ? -1022 : -126;
  const emax = f ? 1023 : 127;
  const rc = (MX >>> 13) & 3;
  const top = e + bitLen(m) - 1;
  const tiny = top < emin;
  if (tiny && (MX & FTZ) !== 0 && (MX & 0x800) !== 0) {
    packBits(neg, 0n, f);
    return UE | PE;
  }
  const q = tiny ? emin - (p - 1) : top - (p - 1);
  let mant: bigint;
  let inexact = sticky;
  if (e >= q) mant = m << BigInt(e - q);
  else {
    const s = BigInt(q - e);
    mant = m >> s;
    const rem = m & ((1n << s) - 1n);
    if (rem !== 0n) inexact = true;
    let up = false;
    if (rc === 0) {
      const half = 1n << (s - 1n);
      up = rem > half || (rem === half && (sticky || (mant & 1n) === 1n));
    } else if (rc === 1) up = neg && inexact;
    else if (rc === 2) up = !neg && inexact;
    if (up) mant += 1n;
  }
  let fl = inexact ? PE : 0;
  if (tiny) {
    if (inexact || (MX & 0x800) === 0) fl |= UE;
    packBits(neg, mant, f); // a subnormal, or the smallest normal after rounding up
    return fl;
  }
  let ee = top;
  if (mant === 1n << BigInt(p)) {
    mant >>= 1n;
    ee++;
  }
  if (ee > emax) {
    fl |= OE | PE;
    const toInf = rc === 0 || (rc === 1 && neg) || (rc === 2 && !neg);
    const maxBits = f ? 0x7fefffffffffffffn : 0x7f7fffffn;
    const infBits = f ? 0x7ff0000000000000n : 0x7f800000n;
    packBits(neg, toInf ? infBits : maxBits, f);
    return fl;
  }
  packBits(neg, (BigInt(ee + (f ? 1023 : 127)) << BigInt(p - 1)) | (mant - (1n << BigInt(p - 1))), f);
  return fl;
}

function packBits(neg: boolean, bits: bigint, f: number): void {
  if (f) {
    RES[1] = (Number(bits >> 32n) | (neg ? 0x80000000 : 0)) | 0;
    RES[0] = Number(bits & 0xffffffffn) | 0;
  } else {
    RES[2] = (Number(bits) | (neg ? 0x80000000 : 0)) | 0;
  }
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitLen(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/** Exact a op b (finite, nonzero operands, op 0 add 1 sub 2 mul 3 div 4 sqrt(a)) rounded to format f. */
function exactOp(op: number, a: number, b: number, f: number): number {
  const x = decompose(a);
  if (op === 4) {
    let s = 128 + (((x.e % 2) + 2) % 2);
    const n = x.m << BigInt(s);
    const r = isqrt(n);
    return roundPack(false, r, (x.e - s) / 2, r * r !== n, f);
  }
  const y = decompose(op === 1 ? -b : b);
  if (op === 2) return roundPack(x.neg !== y.neg, x.m * y.m, x.e + y.e, false, f);
  if (op === 3) {
    const k = 128;
    const n = x.m << BigInt(k);
    const q = n / y.m;
    return roundPack(x.neg !== y.neg, q, x.e - y.e - k, q * y.m !== n, f);
  }
  const e = Math.min(x.e, y.e);
  const ma = (x.neg ? -x.m : x.m) << BigInt(x.e - e);
  const mb = (y.neg ? -y.m : y.m) << BigInt(y.e - e);
  const sum = ma + mb;
  if (sum === 0n) {
    packBits(((MX >>> 13) & 3) === 1, 0n, f);
    return 0;
  }
  return roundPack(sum < 0n, sum < 0n ? -sum : sum, e, false, f);
}

// ------------------------------------------------------------------ error-free transforms

const SPLIT = 134217729; // 2^27 + 1
/** Low part of a·b (a·b = fl(a·b) + result exactly), for |a|,|b| < 2^995 and |a·b| ≥ 2^-960. */
function twoProdErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

const LO_LIM = 2 ** -960;
const HI_LIM = 2 ** 990;
const MIN_NORM64 = 2 ** -1022;
const MIN_NORM32 = 2 ** -126;

/**
 * Fast round-to-nearest result of a op b in double (op as exactOp). Returns the residual sign
 * information through FAST_INEXACT, or false when the fast path does not apply.
 */
let FAST_INEXACT = false;
function fastOp(op: number, a: number, b: number): number | null {
  let r: number;
  switch (op) {
    case 0:
    case 1: {
      if (op === 1) b = -b;
      r = a + b;
      if (!Number.isFinite(r)) return null;
      const bb = r - a;
      FAST_INEXACT = (a - (r - bb)) + (b - bb) !== 0;
      return r;
    }
    case 2: {
      r = a * b;
      const ar = Math.abs(r);
      if (!(ar >= LO_LIM && ar <= HI_LIM && Math.abs(a) < HI_LIM && Math.abs(b) < HI_LIM)) return null;
      FAST_INEXACT = twoProdErr(a, b, r) !== 0;
      return r;
    }
    case 3: {
      r = a / b;
      const ar = Math.abs(r);
      const aa = Math.abs(a);
      const ab = Math.abs(b);
      if (!(ar >= LO_LIM && ar <= HI_LIM && aa >= LO_LIM && aa <= HI_LIM && ab >= LO_LIM && ab <= HI_LIM)) return null;
      const p = r * b;
      FAST_INEXACT = (a - p) - twoProdErr(r, b, p) !== 0;
      return r;
    }
    default: {
      if (!(a >= LO_LIM && a <= HI_LIM)) return null;
      r = Math.sqrt(a);
      const p = r * r;
      FAST_INEXACT = (a - p) - twoProdErr(r, r, p) !== 0;
      return r;
    }
  }
}

// ------------------------------------------------------------------ arithmetic

/** First-source-wins NaN result (x86 SSE): sets OUT_* and returns IE when either is a signalling NaN. */
function nan64(ah: number, al: number, bh: number, bl: number): number {
  const fl = isSnan64(ah, al) || isSnan64(bh, bl) ? IE : 0;
  if (isNan64(ah, al)) {
    RES[1] = ah | 0x80000;
    RES[0] = al;
  } else {
    RES[1] = bh | 0x80000;
    RES[0] = bl;
  }
  return fl;
}
function nan32(a: number, b: number): number {
  const fl = isSnan32(a) || isSnan32(b) ? IE : 0;
  RES[2] = (isNan32(a) ? a : b) | 0x400000;
  return fl;
}

/**
 * a op b on JS values that are not NaN (denormals already flushed by DAZ), result in format f.
 * op: 0 add 1 sub 2 mul 3 div 4 sqrt (a only). Sets OUT_* and returns flags (beyond DE).
 */
function arith(op: number, a: number, b: number, f: number): number {
  const out = f ? out64 : out32;
  // Invalid operations and the exact special cases.
  switch (op) {
    case 0:
    case 1: {
      const bb = op === 1 ? -b : b;
      const ia = !Number.isFinite(a);
      const ib = !Number.isFinite(bb);
      if (ia || ib) {
        if (ia && ib && a !== bb) return defaultNan(f);
        out(a + bb);
        return 0;
      }
      if (a === 0 || bb === 0) {
        if (a === 0 && bb === 0) {
          out(Object.is(a, bb) ? a : ((MX >>> 13) & 3) === 1 ? -0 : 0);
          return 0;
        }
        return roundFrom(a !== 0 ? a : bb, f);
      }
      break;
    }
    case 2: {
      const za = a === 0, zb = b === 0, ia = !Number.isFinite(a), ib = !Number.isFinite(b);
      if ((za && ib) || (zb && ia)) return defaultNan(f);
      if (za || zb || ia || ib) {
        out(a * b);
        return 0;
      }
      break;
    }
    case 3: {
      const za = a === 0, zb = b === 0, ia = !Number.isFinite(a), ib = !Number.isFinite(b);
      if ((za && zb) || (ia && ib)) return defaultNan(f);
      if (zb) {
        out(a / b);
        return ia ? 0 : ZE;
      }
      if (za || ia || ib) {
        out(a / b);
        return 0;
      }
      break;
    }
    default: {
      if (a === 0 || a === Infinity) {
        out(a);
        return 0;
      }
      if (a < 0) return defaultNan(f);
    }
  }
  if (((MX >>> 13) & 3) === 0) {
    const r = fastOp(op, a, b);
    if (r !== null) {
      if (f) {
        if (r === 0) {
          out64(r);
          return 0;
        }
        if (Math.abs(r) > MIN_NORM64) {
          out64(r);
          return FAST_INEXACT ? PE : 0;
        }
      } else {
        const s = Math.fround(r);
        const as = Math.abs(s);
        if (r === 0) {
          out32(r);
          return 0;
        }
        if (Math.abs(r) > MIN_NORM32 && as !== Infinity) {
          out32(s);
          return FAST_INEXACT || s !== r ? PE : 0;
        }
      }
    }
  }
  return exactOp(op, a, b, f);
}

/** Round a nonzero finite double to format f (for a + 0 in single precision and conversions). */
function roundFrom(x: number, f: number): number {
  if (f && Math.abs(x) >= MIN_NORM64) {
    out64(x);
    return 0;
  }
  if (!f && Math.fround(x) === x && Math.abs(x) >= MIN_NORM32) {
    out32(x);
    return 0;
  }
  const d = decompose(x);
  return roundPack(d.neg, d.m, d.e, false, f);
}

function defaultNan(f: number): number {
  if (f) {
    RES[1] = DEF_NAN_HI;
    RES[0] = 0;
  } else RES[2] = DEF_NAN32;
  return IE;
}

/** Operand as a JS number after DAZ; adds DE to DENORM_FLAG when it is a denormal kept. */
let DEN = 0;
function in64(hi: number, lo: number): number {
  if (isDen64(hi, lo)) {
    if ((MX & DAZ) !== 0) return hi < 0 ? -0 : 0;
    DEN = DE;
  }
  return f64Of(hi, lo);
}
function in32(w: number): number {
  if (isDen32(w)) {
    if ((MX & DAZ) !== 0) return w < 0 ? -0 : 0;
    DEN = DE;
  }
  return f32Of(w);
}

/** An invalid operation outranks a denormal operand (sqrt of a negative denormal sets IE alone). */
function withDen(den: number, fl: number): number {
  return (fl & IE) !== 0 ? fl : den | fl;
}

/** Double a op b (op 0 add 1 sub 2 mul 3 div 4 sqrt of b, 5 min 6 max): RES[1]/RES[0], returns flags. */
export function bin64(op: number, ah: number, al: number, bh: number, bl: number): number {
  if (op === 4) {
    if (isNan64(bh, bl)) return nan64(bh, bl, bh, bl);
    DEN = 0;
    const b = in64(bh, bl);
    return withDen(DEN, arith(4, b, 0, 1));
  }
  if (op >= 5) {
    if (isNan64(ah, al) || isNan64(bh, bl)) {
      RES[1] = bh;
      RES[0] = bl;
      return IE;
    }
    DEN = 0;
    const a = in64(ah, al);
    const b = in64(bh, bl);
    const takeA = op === 5 ? a < b : a > b;
    // The result is the operand itself (a denormal that DAZ flushed comes back as zero).
    if (takeA) {
      RES[1] = a === 0 ? ah & 0x80000000 : ah;
      RES[0] = a === 0 ? 0 : al;
    } else {
      RES[1] = b === 0 ? bh & 0x80000000 : bh;
      RES[0] = b === 0 ? 0 : bl;
    }
    return DEN;
  }
  if (isNan64(ah, al) || isNan64(bh, bl)) return nan64(ah, al, bh, bl);
  DEN = 0;
  const a = in64(ah, al);
  const b = in64(bh, bl);
  const den = DEN;
  return withDen(den, arith(op, a, b, 1));
}

/** Single a op b (ops as bin64): RES[2], returns flags. */
export function bin32(op: number, a: number, b: number): number {
  if (op === 4) {
    if (isNan32(b)) return nan32(b, b);
    DEN = 0;
    const x = in32(b);
    return withDen(DEN, arith(4, x, 0, 0));
  }
  if (op >= 5) {
    if (isNan32(a) || isNan32(b)) {
      RES[2] = b;
      return IE;
    }
    DEN = 0;
    const x = in32(a);
    const y = in32(b);
    RES[2] = (op === 5 ? x < y : x > y) ? (x === 0 ? a & 0x80000000 : a) : y === 0 ? b & 0x80000000 : b;
    return DEN;
  }
  if (isNan32(a) || isNan32(b)) return nan32(a, b);
  DEN = 0;
  const x = in32(a);
  const y = in32(b);
  const den = DEN;
  return withDen(den, arith(op, x, y, 0));
}

// ------------------------------------------------------------------ compares

/**
 * Compare: returns 0 less, 1 equal, 2 greater, 3 unordered; RES[3] gets IE/DE (IE for a
 * signalling NaN, or any NaN when `signalling`).
 */
export function cmp64(ah: number, al: number, bh: number, bl: number, signalling: boolean): number {
  const na = isNan64(ah, al), nb = isNan64(bh, bl);
  if (na || nb) {
    RES[3] = signalling || isSnan64(ah, al) || isSnan64(bh, bl) ? IE : 0;
    return 3;
  }
  DEN = 0;
  const a = in64(ah, al);
  const b = in64(bh, bl);
  RES[3] = DEN;
  return a < b ? 0 : a === b ? 1 : 2;
}
export function cmp32(a: number, b: number, signalling: boolean): number {
  const na = isNan32(a), nb = isNan32(b);
  if (na || nb) {
    RES[3] = signalling || isSnan32(a) || isSnan32(b) ? IE : 0;
    return 3;
  }
  DEN = 0;
  const x = in32(a);
  const y = in32(b);
  RES[3] = DEN;
  return x < y ? 0 : x === y ? 1 : 2;
}

/** CMPccPS/PD predicate (imm8 bits 2:0) on a compare result: true/false, and whether it signals on QNaN. */
export function cmpPredicate(pred: number, rel: number): boolean {
  switch (pred & 7) {
    case 0: return rel === 1;
    case 1: return rel === 0;
    case 2: return rel === 0 || rel === 1;
    case 3: return rel === 3;
    case 4: return rel !== 1;
    case 5: return rel !== 0;
    case 6: return rel !== 0 && rel !== 1;
    default: return rel !== 3;
  }
}
export function predSignals(pred: number): boolean {
  const p = pred & 7;
  return p === 1 || p === 2 || p === 5 || p === 6;
}

// ------------------------------------------------------------------ conversions

/** Double → single (CVTSD2SS): RES[2], flags. */
export function cvt64to32(hi: number, lo: number): number {
  if (isNan64(hi, lo)) {
    RES[2] = (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
    return isSnan64(hi, lo) ? IE : 0;
  }
  DEN = 0;
  const x = in64(hi, lo);
  if (x === 0 || !Number.isFinite(x)) {
    out32(x);
    return DEN;
  }
  return DEN | roundFrom(x, 0);
}

/** Single → double (CVTSS2SD): RES[1]/RES[0], flags. */
export function cvt32to64(w: number): number {
  if (isNan32(w)) {
    const m = w & 0x7fffff;
    RES[1] = (w & 0x80000000) | 0x7ff80000 | (m >>> 3);
    RES[0] = m << 29;
    return isSnan32(w) ? IE : 0;
  }
  DEN = 0;
  const x = in32(w);
  out64(x);
  return DEN;
}

/** Integer (as a JS number, or a BigInt for 64-bit values beyond 2^53) → format f. */
export function cvtInt(v: number | bigint, f: number): number {
  if (typeof v === "number") {
    if (v === 0) {
      if (f) out64(0);
      else out32(0);
      return 0;
    }
    if (f && Math.abs(v) <= 2 ** 53) {
      out64(v);
      return 0;
    }
    if (!f && Math.abs(v) <= 2 ** 24) {
      out32(v);
      return 0;
    }
    v = BigInt(v);
  }
  if (v === 0n) {
    if (f) out64(0);
    else out32(0);
    return 0;
  }
  const neg = v < 0n;
  return roundPack(neg, neg ? -v : v, 0, false, f);
}

/**
 * Float (a non-NaN JS number after DAZ, or NaN) → integer of `bits` (32/64) with rounding mode rc
 * (0–3; 3 = truncate). Returns the value as a number (64-bit: exact up to 2^63) or null for
 * the integer indefinite (IE); RES[4] gets PE/IE.
 */
export function toInt(x: number, bits: number, rc: number): number | null {
  RES[4] = 0;
  if (Number.isNaN(x) || !Number.isFinite(x)) {
    RES[4] = IE;
    return null;
  }
  let t = Math.trunc(x);
  const frac = x - t;
  if (frac !== 0) {
    if (rc === 0) {
      const af = Math.abs(frac);
      if (af > 0.5 || (af === 0.5 && t % 2 !== 0)) t += x < 0 ? -1 : 1;
    } else if (rc === 1) {
      if (x < 0) t -= 1;
    } else if (rc === 2) {
      if (x > 0) t += 1;
    }
  }
  const lim = bits === 32 ? 2 ** 31 : 2 ** 63;
  if (t >= lim || t < -lim) {
    RES[4] = IE;
    return null;
  }
  if (frac !== 0) RES[4] = PE;
  return t === 0 ? 0 : t;
}

/** A double's value for an integer conversion: NaN stays NaN, DAZ applies, no DE. */
export function num64(hi: number, lo: number): number {
  if (isNan64(hi, lo)) return NaN;
  if (isDen64(hi, lo) && (MX & DAZ) !== 0) return hi < 0 ? -0 : 0;
  return f64Of(hi, lo);
}
export function num32(w: number): number {
  if (isNan32(w)) return NaN;
  if (isDen32(w) && (MX & DAZ) !== 0) return w < 0 ? -0 : 0;
  return f32Of(w);
}

// ------------------------------------------------------------------ ROUNDSD / ROUNDSS

/** Round to an integral value in format f with mode rc (0–3); flags IE (SNaN) and PE (unless suppressed). */
export function roundIntegral64(hi: number, lo: number, rc: number, noPe: boolean): number {
  if (isNan64(hi, lo)) {
    RES[1] = hi | 0x80000;
    RES[0] = lo;
    return isSnan64(hi, lo) ? IE : 0;
  }
  const x = num64(hi, lo);
  const r = roundMode(x, rc);
  out64(r);
  return r !== x && !noPe ? PE : 0;
}
export function roundIntegral32(w: number, rc: number, noPe: boolean): number {
  if (isNan32(w)) {
    RES[2] = w | 0x400000;
    return isSnan32(w) ? IE : 0;
  }
  const x = num32(w);
  const r = roundMode(x, rc);
  out32(r);
  return r !== x && !noPe ? PE : 0;
}
function roundMode(x: number, rc: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  let t: number;
  if (rc === 1) t = Math.floor(x);
  else if (rc === 2) t = Math.ceil(x);
  else if (rc === 3) t = Math.trunc(x);
  else {
    t = Math.trunc(x);
    const af = Math.abs(x - t);
    if (af > 0.5 || (af === 0.5 && t % 2 !== 0)) t += x < 0 ? -1 : 1;
  }
  // Keep the sign of a zero result (-0.3 rounds to -0).
  return t === 0 ? (x < 0 ? -0 : 0) : t;
}
