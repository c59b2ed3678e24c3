// 80-bit x87 extended-precision soft-float, computing what QEMU's softfloat floatx80 (QEMU 7.2,
// target/i386) computes: IEEE rounding per the control word's RC and PC (24/53/64 significand
// bits, exponent range always 15 bits), tininess detected before rounding, x87 NaN propagation
// (the larger significand wins, SNaNs silenced), the negative QNaN "real indefinite" as the
// default NaN, and invalid encodings (unnormals, pseudo-NaN/infinity) as invalid operands.
//
// Values are {s, e, m}: sign bit, raw 15-bit biased exponent, raw 64-bit significand (bigint,
// bit 63 the explicit integer bit). Exceptions accumulate in `env.flags` as x87 FSW bits.
//
// Known differences from hardware that follow QEMU 7.2: no denormal-operand flag (DE) on
// arithmetic, loads and conversions (FXTRACT excepted); underflow only when the tiny result is
// also inexact, whatever UM says.

export const FE_IE = 0x01;
export const FE_DE = 0x02;
export const FE_ZE = 0x04;
export const FE_OE = 0x08;
export const FE_UE = 0x10;
export const FE_PE = 0x20;

export const RC_NEAR = 0;
export const RC_DOWN = 1;
export const RC_UP = 2;
export const RC_ZERO = 3;

/** Rounding precision in significand bits: 24, 53 or 64. */
export type Precision = 24 | 53 | 64;

export interface FpEnv {
  /** RC_*. */
  rc: number;
  pc: Precision;
  /** FE_* raised so far. */
  flags: number;
}

export interface F80 {
  readonly s: number;
  readonly e: number;
  readonly m: bigint;
}

const M64 = (1n << 64n) - 1n;
const BIT63 = 1n << 63n;
const BIT62 = 1n << 62n;
const BIAS = 16383;

export function f80(s: number, e: number, m: bigint): F80 {
  return { s: s & 1, e: e & 0x7fff, m: m & M64 };
}

export const F80_ZERO = f80(0, 0, 0n);
export const F80_ONE = f80(0, 0x3fff, BIT63);
export const F80_INF = f80(0, 0x7fff, BIT63);
/** Real indefinite: negative QNaN with only the quiet bit. */
export const F80_DEFAULT_NAN = f80(1, 0x7fff, 0xc000000000000000n);

// ------------------------------------------------------------------ classification

export function isNan(a: F80): boolean {
  return a.e === 0x7fff && (a.m & ~BIT63) !== 0n;
}
export function isSnan(a: F80): boolean {
  return isNan(a) && (a.m & BIT62) === 0n;
}
export function isInf(a: F80): boolean {
  return a.e === 0x7fff && a.m === BIT63;
}
export function isZero(a: F80): boolean {
  return a.e === 0 && a.m === 0n;
}
/** Unnormals, pseudo-NaNs and pseudo-infinities (exponent not 0, integer bit clear). */
export function isInvalidEncoding(a: F80): boolean {
  return a.e !== 0 && (a.m & BIT63) === 0n;
}
export function silence(a: F80): F80 {
  return f80(a.s, a.e, a.m | BIT62);
}
export function chs(a: F80): F80 {
  return f80(a.s ^ 1, a.e, a.m);
}
export function abs(a: F80): F80 {
  return f80(0, a.e, a.m);
}

function bitLength(v: bigint): number {
  return v === 0n ? 0 : v.toString(2).length;
}

/** Pick the NaN operand as QEMU's x87 rule does (at least one of a, b is a NaN); raises IE for SNaNs. */
function pickNan(env: FpEnv, a: F80, b: F80): F80 {
  const aS = isSnan(a);
  const bS = isSnan(b);
  const aQ = isNan(a) && !aS;
  const bQ = isNan(b) && !bS;
  if (aS || bS) env.flags |= FE_IE;
  const aLarger = a.m > b.m || (a.m === b.m && a.s < b.s);
  let pickA: boolean;
  if (aS) pickA = bS ? aLarger : !bQ;
  else if (aQ) pickA = bS || !bQ ? true : aLarger;
  else pickA = false;
  const r = pickA ? a : b;
  return isSnan(r) ? silence(r) : r;
}

/** One operand: invalid encoding → IE + default NaN; SNaN → IE + quieted. */
function nan1(env: FpEnv, a: F80): F80 {
  if (isSnan(a)) {
    env.flags |= FE_IE;
    return silence(a);
  }
  return a;
}

function invalid(env: FpEnv): F80 {
  env.flags |= FE_IE;
  return F80_DEFAULT_NAN;
}

/** Normalized exponent (raw 0 counts as 1) and significand of a finite nonzero value: value = m · 2^(e − 16446). */
function effExp(a: F80): number {
  return a.e === 0 ? 1 : a.e;
}

// ------------------------------------------------------------------ rounding

/**
 * Round and pack sign, exponent `zExp` and the 128-bit significand `sig` (integer bit at bit
 * 127 when normalized) to `prec` bits: QEMU's roundAndPackFloatx80.
 */
export function roundPack(env: FpEnv, prec: Precision, zSign: number, zExp: number, sig: bigint): F80 {
  let zSig0 = sig >> 64n;
  let zSig1 = sig & M64;
  const rm = env.rc;
  const nearest = rm === RC_NEAR;
  if (prec !== 64) {
    let roundIncrement = prec === 53 ? 0x400n : 0x8000000000n;
    let roundMask = prec === 53 ? 0x7ffn : 0xffffffffffn;
    if (zSig1 !== 0n) zSig0 |= 1n;
    if (!nearest) {
      if (rm === RC_ZERO) roundIncrement = 0n;
      else {
        roundIncrement = roundMask;
        if (zSign ? rm === RC_UP : rm === RC_DOWN) roundIncrement = 0n;
      }
    }
    let roundBits = zSig0 & roundMask;
    if (zExp - 1 >= 0x7ffd || zExp - 1 < 0) {
      if (zExp > 0x7ffe || (zExp === 0x7ffe && zSig0 + roundIncrement > M64)) {
        return overflow(env, zSign, roundMask);
      }
      if (zExp <= 0) {
        const tiny = true; // tininess before rounding (x86)
        zSig0 = jam64(zSig0, 1 - zExp);
        zExp = 0;
        roundBits = zSig0 & roundMask;
        if (tiny && roundBits !== 0n) env.flags |= FE_UE;
        if (roundBits !== 0n) env.flags |= FE_PE;
        zSig0 += roundIncrement;
        if ((zSig0 & BIT63) !== 0n) zExp = 1;
        roundIncrement = roundMask + 1n;
        if (nearest && roundBits << 1n === roundIncrement) roundMask |= roundIncrement;
        zSig0 &= ~roundMask & M64;
        return f80(zSign, zExp, zSig0);
      }
    }
    if (roundBits !== 0n) env.flags |= FE_PE;
    zSig0 += roundIncrement;
    if (zSig0 > M64) {
      zExp++;
      zSig0 = BIT63;
    }
    roundIncrement = roundMask + 1n;
    if (nearest && roundBits << 1n === roundIncrement) roundMask |= roundIncrement;
    zSig0 &= ~roundMask & M64;
    if (zSig0 === 0n) zExp = 0;
    return f80(zSign, zExp, zSig0);
  }
  let increment = (zSig1 & BIT63) !== 0n;
  if (!nearest) {
    if (rm === RC_ZERO) increment = false;
    else increment = (zSign ? rm === RC_DOWN : rm === RC_UP) && zSig1 !== 0n;
  }
  if (zExp - 1 >= 0x7ffd || zExp - 1 < 0) {
    if (zExp > 0x7ffe || (zExp === 0x7ffe && zSig0 === M64 && increment)) {
      return overflow(env, zSign, 0n);
    }
    if (zExp <= 0) {
      const tiny = true;
      [zSig0, zSig1] = jamExtra(zSig0, zSig1, 1 - zExp);
      zExp = 0;
      if (tiny && zSig1 !== 0n) env.flags |= FE_UE;
      if (zSig1 !== 0n) env.flags |= FE_PE;
      if (nearest) increment = (zSig1 & BIT63) !== 0n;
      else if (rm === RC_ZERO) increment = false;
      else increment = (zSign ? rm === RC_DOWN : rm === RC_UP) && zSig1 !== 0n;
      if (increment) {
        zSig0 = (zSig0 + 1n) & M64;
        if (nearest && ((zSig1 << 1n) & M64) === 0n) zSig0 &= ~1n;
        zExp = (zSig0 & BIT63) !== 0n ? 1 : 0;
      }
      return f80(zSign, zExp, zSig0);
    }
  }
  if (zSig1 !== 0n) env.flags |= FE_PE;
  if (increment) {
    zSig0 = (zSig0 + 1n) & M64;
    if (zSig0 === 0n) {
      zExp++;
      zSig0 = BIT63;
    } else if (nearest && ((zSig1 << 1n) & M64) === 0n) {
      zSig0 &= ~1n;
    }
  } else if (zSig0 === 0n) {
    zExp = 0;
  }
  return f80(zSign, zExp, zSig0);
}

function overflow(env: FpEnv, zSign: number, roundMask: bigint): F80 {
  env.flags |= FE_OE | FE_PE;
  const rm = env.rc;
  if (rm === RC_ZERO || (zSign && rm === RC_UP) || (!zSign && rm === RC_DOWN)) {
    return f80(zSign, 0x7ffe, ~roundMask & M64);
  }
  return f80(zSign, 0x7fff, BIT63);
}

function jam64(v: bigint, n: number): bigint {
  if (n === 0) return v;
  if (n < 64) return (v >> BigInt(n)) | ((v & ((1n << BigInt(n)) - 1n)) !== 0n ? 1n : 0n);
  return v !== 0n ? 1n : 0n;
}

/** shift64ExtraRightJamming: (a0, a1) right by n, a1 keeps the bits shifted out (sticky in bit 0). */
function jamExtra(a0: bigint, a1: bigint, n: number): [bigint, bigint] {
  if (n === 0) return [a0, a1];
  if (n < 64) {
    const N = BigInt(n);
    return [a0 >> N, ((a0 << BigInt(64 - n)) & M64) | (a1 !== 0n ? 1n : 0n)];
  }
  if (n === 64) return [0n, a0 | (a1 !== 0n ? 1n : 0n)];
  return [0n, (a0 | a1) !== 0n ? 1n : 0n];
}

/**
 * Round the exact value R · 2^(x − 16446) (R ≥ 0) with sign s: normalizes R to 128 bits with
 * sticky bits, then roundPack.
 */
function packExact(env: FpEnv, prec: Precision, s: number, R: bigint, x: number): F80 {
  if (R === 0n) return f80(s, 0, 0n);
  const L = bitLength(R);
  let S: bigint;
  if (L > 128) {
    const sh = BigInt(L - 128);
    S = (R >> sh) | ((R & ((1n << sh) - 1n)) !== 0n ? 1n : 0n);
  } else {
    S = R << BigInt(128 - L);
  }
  return roundPack(env, prec, s, x + L - 64, S);
}

// ------------------------------------------------------------------ arithmetic

function addSub(env: FpEnv, a: F80, b: F80, negB: boolean): F80 {
  if (isInvalidEncoding(a) || isInvalidEncoding(b)) return invalid(env);
  if (isNan(a) || isNan(b)) return pickNan(env, a, b);
  const bs = negB ? b.s ^ 1 : b.s;
  const aInf = isInf(a);
  const bInf = isInf(b);
  if (aInf || bInf) {
    if (aInf && bInf && a.s !== bs) return invalid(env);
    return aInf ? a : f80(bs, b.e, b.m);
  }
  const aZ = a.m === 0n;
  const bZ = b.m === 0n;
  if (aZ && bZ) {
    if (a.s === bs) return f80(a.s, 0, 0n);
    return f80(env.rc === RC_DOWN ? 1 : 0, 0, 0n);
  }
  const prec = env.pc;
  if (aZ) return packExact(env, prec, bs, b.m, effExp(b));
  if (bZ) return packExact(env, prec, a.s, a.m, effExp(a));
  let ea = effExp(a);
  let eb = effExp(b);
  let ma = a.m;
  let mb = b.m;
  let sa = a.s;
  let sb = bs;
  if (ea < eb) {
    [ea, eb] = [eb, ea];
    [ma, mb] = [mb, ma];
    [sa, sb] = [sb, sa];
  }
  const d = ea - eb;
  let X: bigint;
  let Y: bigint;
  let x: number;
  if (d > 130) {
    X = ma << 130n;
    Y = 1n;
    x = ea - 130;
  } else {
    X = ma << BigInt(d);
    Y = mb;
    x = eb;
  }
  if (sa === sb) return packExact(env, prec, sa, X + Y, x);
  const R = X - Y;
  if (R === 0n) return f80(env.rc === RC_DOWN ? 1 : 0, 0, 0n);
  return R > 0n ? packExact(env, prec, sa, R, x) : packExact(env, prec, sb, -R, x);
}

export function add(env: FpEnv, a: F80, b: F80): F80 {
  return addSub(env, a, b, false);
}
export function sub(env: FpEnv, a: F80, b: F80): F80 {
  return addSub(env, a, b, true);
}

export function mul(env: FpEnv, a: F80, b: F80): F80 {
  if (isInvalidEncoding(a) || isInvalidEncoding(b)) return invalid(env);
  if (isNan(a) || isNan(b)) return pickNan(env, a, b);
  const s = a.s ^ b.s;
  if (isInf(a) || isInf(b)) {
    if (a.m === 0n || b.m === 0n) return invalid(env);
    return f80(s, 0x7fff, BIT63);
  }
  if (a.m === 0n || b.m === 0n) return f80(s, 0, 0n);
  return packExact(env, env.pc, s, a.m * b.m, effExp(a) + effExp(b) - 16446);
}

export function div(env: FpEnv, a: F80, b: F80): F80 {
  if (isInvalidEncoding(a) || isInvalidEncoding(b)) return invalid(env);
  if (isNan(a) || isNan(b)) return pickNan(env, a, b);
  const s = a.s ^ b.s;
  if (isInf(a)) {
    if (isInf(b)) return invalid(env);
    return f80(s, 0x7fff, BIT63);
  }
  if (isInf(b)) return f80(s, 0, 0n);
  if (b.m === 0n) {
    if (a.m === 0n) return invalid(env);
    env.flags |= FE_ZE;
    return f80(s, 0x7fff, BIT63);
  }
  if (a.m === 0n) return f80(s, 0, 0n);
  const N = a.m << 130n;
  const q = N / b.m;
  const R = q | (q * b.m !== N ? 1n : 0n);
  return packExact(env, env.pc, s, R, effExp(a) - effExp(b) + 16316);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitLength(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sqrt(env: FpEnv, a: F80): F80 {
  if (isInvalidEncoding(a)) return invalid(env);
  if (isNan(a)) return nan1(env, a);
  if (a.m === 0n) return a;
  if (a.s) return invalid(env);
  if (isInf(a)) return a;
  let m = a.m;
  let t = effExp(a) - 16446;
  if (t & 1) {
    m <<= 1n;
    t -= 1;
  }
  const N = m << 140n;
  const q = isqrt(N);
  const R = q | (q * q !== N ? 1n : 0n);
  return packExact(env, env.pc, 0, R, t / 2 - 70 + 16446);
}

/** Round to an integral value per RC (FRNDINT), then to the precision control. */
export function roundToInt(env: FpEnv, a: F80): F80 {
  if (isInvalidEncoding(a)) return invalid(env);
  if (isNan(a)) return nan1(env, a);
  if (isInf(a) || a.m === 0n) return a;
  const e = effExp(a);
  if (e >= 0x3fff + 63) return packExact(env, env.pc, a.s, a.m, e);
  const sh = BigInt(0x3fff + 63 - e);
  const n = roundShift(env, a.s, a.m, sh);
  if (n === 0n) return f80(a.s, 0, 0n);
  return packExact(env, env.pc, a.s, n, 0x3fff + 63);
}

/** m >> sh rounded per RC (the magnitude of a value with sign s); raises PE when inexact. */
function roundShift(env: FpEnv, s: number, m: bigint, sh: bigint): bigint {
  if (sh > 200n) sh = 200n;
  const q = m >> sh;
  const rem = m - (q << sh);
  if (rem === 0n) return q;
  env.flags |= FE_PE;
  const half = 1n << (sh - 1n);
  switch (env.rc) {
    case RC_NEAR:
      return rem > half || (rem === half && (q & 1n) === 1n) ? q + 1n : q;
    case RC_DOWN:
      return s ? q + 1n : q;
    case RC_UP:
      return s ? q : q + 1n;
    default:
      return q;
  }
}

/** ST0 · 2^n with n already an integer (FSCALE's core): QEMU's floatx80_scalbn at 64-bit precision. */
export function scalbn(env: FpEnv, a: F80, n: number, prec: Precision = 64): F80 {
  if (isInvalidEncoding(a)) return invalid(env);
  if (a.e === 0x7fff) return isNan(a) ? nan1(env, a) : a;
  if (a.m === 0n) return a;
  if (n > 0x10000) n = 0x10000;
  else if (n < -0x10000) n = -0x10000;
  return packExact(env, prec, a.s, a.m, effExp(a) + n);
}

// ------------------------------------------------------------------ integers

/** Exact conversion of a signed integer (bigint) to 80 bits. */
export function fromInt(v: bigint): F80 {
  if (v === 0n) return F80_ZERO;
  const s = v < 0n ? 1 : 0;
  const m = s ? -v : v;
  const L = bitLength(m);
  return f80(s, 0x3fff + L - 1, m << BigInt(64 - L));
}

/**
 * Convert to a signed integer of `bits` (16, 32, 64) per RC (or truncating): QEMU's helper
 * results (integer indefinite on invalid, and FIST m16's range check after a 32-bit conversion).
 */
export function toInt(env: FpEnv, a: F80, bits: 16 | 32 | 64, truncate: boolean): bigint {
  const convBits = bits === 16 ? 32 : bits;
  const min = -(1n << BigInt(convBits - 1));
  const max = (1n << BigInt(convBits - 1)) - 1n;
  const local: FpEnv = { rc: truncate ? RC_ZERO : env.rc, pc: env.pc, flags: 0 };
  let v: bigint;
  if (isInvalidEncoding(a) || a.e === 0x7fff) {
    local.flags = FE_IE;
    v = min;
  } else if (a.m === 0n) {
    v = 0n;
  } else {
    const unb = effExp(a) - 0x3fff; // exponent of significand bit 63
    let mag: bigint;
    if (unb > 63) mag = 1n << 80n;
    else if (unb === 63) mag = a.m;
    else mag = roundShift(local, a.s, a.m, BigInt(63 - unb));
    if (a.s ? mag > -min : mag > max) {
      local.flags = FE_IE;
      v = min;
    } else {
      v = a.s ? -mag : mag;
    }
  }
  if (bits === 16 && v !== BigInt.asIntN(16, v)) {
    local.flags = FE_IE;
    v = -32768n;
  }
  env.flags |= local.flags;
  return v;
}

// ------------------------------------------------------------------ binary32 / binary64

interface Fmt { readonly expBits: number; readonly fracBits: number }
const F32: Fmt = { expBits: 8, fracBits: 23 };
const F64: Fmt = { expBits: 11, fracBits: 52 };

function fromIeee(env: FpEnv, bits: bigint, f: Fmt): F80 {
  const fb = BigInt(f.fracBits);
  const emax = (1 << f.expBits) - 1;
  const bias = emax >> 1;
  const s = Number((bits >> BigInt(f.expBits + f.fracBits)) & 1n);
  const e = Number((bits >> fb) & BigInt(emax));
  const frac = bits & ((1n << fb) - 1n);
  if (e === emax) {
    if (frac === 0n) return f80(s, 0x7fff, BIT63);
    let m = BIT63 | (frac << BigInt(63 - f.fracBits));
    if ((frac >> (fb - 1n)) === 0n) {
      env.flags |= FE_IE;
      m |= BIT62;
    }
    return f80(s, 0x7fff, m);
  }
  if (e === 0) {
    if (frac === 0n) return f80(s, 0, 0n);
    const L = bitLength(frac);
    return packExact(env, env.pc, s, frac << BigInt(64 - L), BIAS - bias + 1 - (f.fracBits - L + 1));
  }
  // QEMU rounds the (exact) value to the precision control: FLD m64 at PC = 24 bits loses bits.
  return packExact(env, env.pc, s, BIT63 | (frac << BigInt(63 - f.fracBits)), e - bias + BIAS);
}

export function fromF32(env: FpEnv, bits: number): F80 {
  return fromIeee(env, BigInt(bits >>> 0), F32);
}
export function fromF64(env: FpEnv, lo: number, hi: number): F80 {
  return fromIeee(env, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0), F64);
}

/** Round to a narrower IEEE format (its exponent range and subnormals); returns the bits. */
function toIeee(env: FpEnv, a: F80, f: Fmt): bigint {
  const fb = BigInt(f.fracBits);
  const emax = (1 << f.expBits) - 1;
  const bias = emax >> 1;
  const sBit = BigInt(a.s) << BigInt(f.expBits + f.fracBits);
  const infBits = sBit | (BigInt(emax) << fb);
  if (isInvalidEncoding(a)) {
    env.flags |= FE_IE;
    return (1n << BigInt(f.expBits + f.fracBits)) | (BigInt(emax) << fb) | (1n << (fb - 1n));
  }
  if (isNan(a)) {
    const q = nan1(env, a);
    return infBits | ((q.m >> BigInt(63 - f.fracBits)) & ((1n << fb) - 1n));
  }
  if (isInf(a)) return infBits;
  if (a.m === 0n) return sBit;
  // value = m · 2^(E) with E = e − 16446; target normalized exponent of the leading bit:
  const L = bitLength(a.m);
  const lead = effExp(a) - 16446 + L - 1; // unbiased exponent of the leading one
  let te = lead + bias; // biased target exponent if normal
  let shift: number; // right shift of m to keep fracBits+1 (or fewer when subnormal) bits
  const tiny = te < 1;
  if (tiny) {
    shift = L - 1 - f.fracBits + (1 - te);
    te = 0;
  } else {
    shift = L - 1 - f.fracBits;
  }
  let q: bigint;
  const inexactBefore = env.flags & FE_PE;
  if (shift > 0) {
    env.flags &= ~FE_PE;
    q = roundShift(env, a.s, a.m, BigInt(shift));
    const inexact = (env.flags & FE_PE) !== 0;
    env.flags |= inexactBefore;
    if (tiny && inexact) env.flags |= FE_UE;
  } else {
    q = a.m << BigInt(-shift);
  }
  if (tiny) {
    // A subnormal that rounds up to the smallest normal keeps exponent field 1 via the carry.
    return sBit | q;
  }
  if (q >> (fb + 1n) !== 0n) {
    q >>= 1n;
    te++;
  }
  if (te >= emax) {
    env.flags |= FE_OE | FE_PE;
    const rm = env.rc;
    if (rm === RC_ZERO || (a.s && rm === RC_UP) || (!a.s && rm === RC_DOWN)) {
      return sBit | (BigInt(emax - 1) << fb) | ((1n << fb) - 1n);
    }
    return infBits;
  }
  return sBit | (BigInt(te) << fb) | (q & ((1n << fb) - 1n));
}

export function toF32(env: FpEnv, a: F80): number {
  return Number(toIeee(env, a, F32)) | 0;
}
/** Returns the f64 bits as a bigint. */
export function toF64(env: FpEnv, a: F80): bigint {
  return toIeee(env, a, F64);
}

// ------------------------------------------------------------------ compare and remainder

export const CMP_LESS = -1;
export const CMP_EQUAL = 0;
export const CMP_GREATER = 1;
export const CMP_UNORDERED = 2;

/** Compare a with b; `quiet` raises IE only for SNaNs (FUCOM), else for any NaN (FCOM). */
export function compare(env: FpEnv, a: F80, b: F80, quiet: boolean): number {
  if (isInvalidEncoding(a) || isInvalidEncoding(b)) {
    env.flags |= FE_IE;
    return CMP_UNORDERED;
  }
  if (isNan(a) || isNan(b)) {
    if (!quiet || isSnan(a) || isSnan(b)) env.flags |= FE_IE;
    return CMP_UNORDERED;
  }
  const aZ = a.m === 0n;
  const bZ = b.m === 0n;
  if (aZ && bZ) return CMP_EQUAL;
  if (a.s !== b.s) return a.s ? CMP_LESS : CMP_GREATER;
  // Same sign: compare magnitudes (pseudo-denormals compare by value).
  const ka = magKey(a);
  const kb = magKey(b);
  if (ka === kb) return CMP_EQUAL;
  return (ka < kb) !== (a.s === 1) ? CMP_LESS : CMP_GREATER;
}

function magKey(a: F80): bigint {
  if (a.m === 0n) return 0n;
  return (BigInt(effExp(a)) << 64n) + a.m;
}

/**
 * FPREM (mod = true, truncated quotient) and FPREM1 (round-to-nearest quotient) when the
 * exponent difference is below 64: the exact remainder and the quotient's low bits.
 */
export function modrem(env: FpEnv, a: F80, b: F80, mod: boolean): { r: F80; q: number } {
  if (isInvalidEncoding(a) || isInvalidEncoding(b)) return { r: invalid(env), q: 0 };
  if (a.e === 0x7fff) {
    if ((a.m << 1n) & M64 || (b.e === 0x7fff && (b.m << 1n) & M64)) return { r: pickNan(env, a, b), q: 0 };
    return { r: invalid(env), q: 0 };
  }
  if (b.e === 0x7fff) {
    if ((b.m << 1n) & M64) return { r: pickNan(env, a, b), q: 0 };
    return { r: packExact(env, env.pc, a.s, a.m, effExp(a)), q: 0 };
  }
  if (b.m === 0n) return { r: invalid(env), q: 0 };
  if (a.m === 0n) return { r: a, q: 0 };
  const ea = effExp(a) - 64 + bitLength(a.m);
  const eb = effExp(b) - 64 + bitLength(b.m);
  const d = ea - eb;
  if (d < 0 && (mod || d < -1)) return { r: packExact(env, env.pc, a.s, a.m, effExp(a)), q: 0 };
  // Both as integers over the common unit 2^(min exponent − 16446).
  const xa = effExp(a);
  const xb = effExp(b);
  const x = Math.min(xa, xb);
  const A = a.m << BigInt(xa - x);
  const B = b.m << BigInt(xb - x);
  let q = A / B;
  let r = A - q * B;
  let s = a.s;
  if (!mod) {
    const alt = B - r;
    if (alt < r || (alt === r && (q & 1n) === 1n)) {
      r = alt;
      s ^= 1;
      q += 1n;
    }
  }
  return { r: packExact(env, env.pc, s, r, x), q: Number(q & 7n) };
}

/** Truncate to int32, saturating (QEMU's floatx80_to_int32_round_to_zero value; flags dropped): FSCALE's count. */
export function toInt32Saturating(a: F80): number {
  if (isNan(a) || isInvalidEncoding(a)) return 0x7fffffff;
  if (isInf(a)) return a.s ? -0x80000000 : 0x7fffffff;
  if (a.m === 0n) return 0;
  const unb = effExp(a) - 0x3fff;
  if (unb >= 31) return a.s ? -0x80000000 : 0x7fffffff;
  if (unb < 0) return 0;
  const mag = Number(a.m >> BigInt(63 - unb));
  return a.s ? -mag : mag;
}

/** Round a value to `prec` significand bits (QEMU's floatx80_round_pack_canonical of an exact value). */
export function roundToPrecision(env: FpEnv, prec: Precision, a: F80): F80 {
  if (a.e === 0x7fff || a.m === 0n || isInvalidEncoding(a)) return a;
  return packExact(env, prec, a.s, a.m, effExp(a));
}
