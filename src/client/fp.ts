// Helpers for X86FpState's byte fields: 80-bit x87 values and 128-bit XMM registers.

const BIAS_80 = 16383;
const BIAS_64 = 1023;
const INTEGER_BIT = 1n << 63n;

function bytesToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

function bigintToBytes(v: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The sign, biased exponent and 64-bit significand (integer bit 63) of an 80-bit value (10 bytes, little-endian). */
export function x87Parts(value: Uint8Array): { sign: number; exponent: number; significand: bigint } {
  if (value.length !== 10) throw new RangeError(`an x87 value has 10 bytes, got ${value.length}`);
  const se = value[8] | (value[9] << 8);
  return { sign: se >> 15, exponent: se & 0x7fff, significand: bytesToBigint(value.subarray(0, 8)) };
}

/** An 80-bit extended value as the nearest JavaScript number (±Infinity and NaN included; unnormals read as NaN). */
export function x87ToNumber(value: Uint8Array): number {
  const { sign, exponent, significand } = x87Parts(value);
  const s = sign ? -1 : 1;
  if (exponent === 0x7fff) return (significand & ~INTEGER_BIT) === 0n ? s * Infinity : NaN;
  if (exponent !== 0 && (significand & INTEGER_BIT) === 0n) return NaN; // unnormal: an invalid operand
  if (significand === 0n) return s * 0;
  // The significand scaled to [0, 2) first, so 2 ** e alone decides over- and underflow.
  const e = (exponent === 0 ? 1 : exponent) - BIAS_80;
  return s * (Number(significand) / 2 ** 63) * 2 ** e;
}

/** A JavaScript number as the 80-bit extended value that holds it exactly (10 bytes, little-endian). */
export function x87FromNumber(n: number): Uint8Array {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, n, true);
  const bits = dv.getBigUint64(0, true);
  const sign = Number(bits >> 63n);
  const exp11 = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  let exponent: number;
  let significand: bigint;
  if (exp11 === 0x7ff) {
    exponent = 0x7fff;
    significand = INTEGER_BIT | (frac << 11n) | (frac !== 0n ? 1n << 62n : 0n); // NaNs quiet
  } else if (exp11 === 0) {
    if (frac === 0n) {
      exponent = 0;
      significand = 0n;
    } else {
      // A double denormal is a normal 80-bit value: shift its top bit to bit 63.
      const p = frac.toString(2).length - 1;
      significand = frac << BigInt(63 - p);
      exponent = BIAS_80 + p - 1074;
    }
  } else {
    exponent = exp11 - BIAS_64 + BIAS_80;
    significand = INTEGER_BIT | (frac << 11n);
  }
  const out = new Uint8Array(10);
  out.set(bigintToBytes(significand, 8), 0);
  const se = (sign << 15) | exponent;
  out[8] = se & 0xff;
  out[9] = se >> 8;
  return out;
}

/** An XMM register's 16 bytes as an unsigned 128-bit bigint. */
export function xmmToBigint(value: Uint8Array): bigint {
  if (value.length !== 16) throw new RangeError(`an XMM register has 16 bytes, got ${value.length}`);
  return bytesToBigint(value);
}

/** A 128-bit value as an XMM register's 16 bytes, little-endian. */
export function xmmFromBigint(value: bigint): Uint8Array {
  return bigintToBytes(BigInt.asUintN(128, value), 16);
}
