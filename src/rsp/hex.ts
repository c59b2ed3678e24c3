// Hex and text helpers for RSP payloads: byte strings, little-endian register values, numbers.
import { RspParseError } from "./errors";

const HEX = "0123456789abcdef";

/** Lower-case hex of `bytes`, two digits per byte. */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
  return out;
}

/**
 * Bytes of even-length hex (either case), given as a string or as the packet's ASCII bytes
 * (which skips a string conversion for `m` replies). Throws RspParseError otherwise.
 */
export function hexToBytes(hex: string | Uint8Array): Uint8Array {
  const bad = (what: string): RspParseError =>
    new RspParseError(what, typeof hex === "string" ? hex : bytesToLatin1(hex.subarray(0, 100)));
  if (hex.length % 2 !== 0) throw bad("hex data (odd length)");
  const out = new Uint8Array(hex.length / 2);
  let invalid = 0;
  if (typeof hex === "string") {
    for (let i = 0, j = 0; i < out.length; i++, j += 2) {
      const c1 = hex.charCodeAt(j);
      const c2 = hex.charCodeAt(j + 1);
      const hi = c1 > 0xff ? 0x10 : HEX_VALUE[c1];
      const lo = c2 > 0xff ? 0x10 : HEX_VALUE[c2];
      invalid |= (hi | lo) & 0x10;
      out[i] = (hi << 4) | (lo & 15);
    }
  } else {
    for (let i = 0, j = 0; i < out.length; i++, j += 2) {
      const hi = HEX_VALUE[hex[j]];
      const lo = HEX_VALUE[hex[j + 1]];
      invalid |= (hi | lo) & 0x10;
      out[i] = (hi << 4) | (lo & 15);
    }
  }
  if (invalid) throw bad("hex data");
  return out;
}

/** Digit values; 0x10 marks a non-hex byte. */
const HEX_VALUE = (() => {
  const t = new Uint8Array(256).fill(0x10);
  for (let c = 0; c < 256; c++) {
    const d = hexDigit(c);
    if (d >= 0) t[c] = d;
  }
  return t;
})();

/** Value of one ASCII hex digit, or -1. */
export function hexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  return -1;
}

/** Hex of `byteLength` bytes holding `value` little-endian (register encoding of `g`/`p`/`P`). */
export function bigintToLeHex(value: bigint, byteLength: number): string {
  return bytesToHex(bigintToLeBytes(value, byteLength));
}

/** Value of a little-endian hex byte string. Throws RspParseError on `xx` (unavailable) or bad hex. */
export function leHexToBigint(hex: string): bigint {
  return leBytesToBigint(hexToBytes(hex));
}

/** `byteLength` bytes holding `value` little-endian. Negative values are taken two's complement. */
export function bigintToLeBytes(value: bigint, byteLength: number): Uint8Array {
  const bits = BigInt(byteLength * 8);
  const limit = 1n << bits;
  if (value >= limit || value < -(limit >> 1n)) {
    throw new RangeError(`value 0x${value.toString(16)} does not fit in ${byteLength} bytes`);
  }
  let v = BigInt.asUintN(byteLength * 8, value);
  const out = new Uint8Array(byteLength);
  for (let i = 0; i < byteLength; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Unsigned value of little-endian bytes. */
export function leBytesToBigint(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

/** A big-endian hex number as written in packets (`watch:`, addresses). Throws RspParseError. */
export function parseHexNumber(text: string): bigint {
  if (!/^[0-9a-fA-F]+$/.test(text)) throw new RspParseError("hex number", text);
  return BigInt("0x" + text);
}

/** A hex number that must fit a JS number safely (thread ids, signals, sizes). */
export function parseHexInt(text: string): number {
  const v = parseHexNumber(text);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RspParseError("small hex number", text);
  return Number(v);
}

/** Lower-case hex without a prefix, as packets want addresses and lengths. */
export function formatHex(value: bigint | number): string {
  if (value < 0) throw new RangeError(`negative value ${value} cannot be sent as an RSP hex number`);
  return value.toString(16);
}

/** Hex of the UTF-8 bytes of `text` (qRcmd commands, qThreadExtraInfo, `O` output). */
export function textToHex(text: string): string {
  return bytesToHex(new TextEncoder().encode(text));
}

/** Text of hex-encoded UTF-8 bytes. */
export function hexToText(hex: string): string {
  return new TextDecoder().decode(hexToBytes(hex));
}

/** One char per byte (payloads are ASCII; latin1 keeps binary bytes intact). */
export function bytesToLatin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

/** Bytes of a string of chars ≤ 0xff. Throws RangeError on wider chars. */
export function latin1ToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`character U+${c.toString(16)} cannot be sent in an RSP packet`);
    out[i] = c;
  }
  return out;
}
