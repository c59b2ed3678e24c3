// Packet encoding: checksums, `}` escaping of binary data, optional run-length encoding.
import { latin1ToBytes } from "./hex";

const DOLLAR = 0x24;
const HASH = 0x23;
const BRACE = 0x7d;
const STAR = 0x2a;
const PERCENT = 0x25;

/** `+`, `-` and the interrupt byte, ready to write. */
export const ACK: Uint8Array = Uint8Array.of(0x2b);
export const NACK: Uint8Array = Uint8Array.of(0x2d);
export const INTERRUPT: Uint8Array = Uint8Array.of(0x03);

/** Bytes that must be escaped inside a packet: `$ # } *`. */
export function needsEscape(byte: number): boolean {
  return byte === DOLLAR || byte === HASH || byte === BRACE || byte === STAR;
}

/** Modulo-256 sum of the bytes (the RSP checksum of what is on the wire between `$` and `#`). */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum = (sum + bytes[i]) & 0xff;
  return sum;
}

/** Binary data with `$ # } *` escaped as `}` followed by the byte xor 0x20 (for `X`, qXfer, vFile). */
export function escapeBinary(data: Uint8Array): Uint8Array {
  let extra = 0;
  for (let i = 0; i < data.length; i++) if (needsEscape(data[i])) extra++;
  if (extra === 0) return data;
  const out = new Uint8Array(data.length + extra);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (needsEscape(b)) {
      out[o++] = BRACE;
      out[o++] = b ^ 0x20;
    } else {
      out[o++] = b;
    }
  }
  return out;
}

/** Inverse of escapeBinary. A trailing lone `}` throws RangeError. */
export function unescapeBinary(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === BRACE) {
      if (++i >= data.length) throw new RangeError("escaped data ends inside a } escape");
      out[o++] = data[i] ^ 0x20;
    } else {
      out[o++] = data[i];
    }
  }
  return out.slice(0, o);
}

/** Length of `data` once escaped. */
export function escapedLength(data: Uint8Array): number {
  let n = data.length;
  for (let i = 0; i < data.length; i++) if (needsEscape(data[i])) n++;
  return n;
}

/**
 * How many bytes of `data` starting at `start` fit in `budget` bytes once escaped: used to cut
 * binary writes (`X`) so each packet stays within the peer's PacketSize.
 */
export function fitEscaped(data: Uint8Array, start: number, budget: number): number {
  let used = 0;
  let i = start;
  while (i < data.length) {
    const cost = needsEscape(data[i]) ? 2 : 1;
    if (used + cost > budget) break;
    used += cost;
    i++;
  }
  return i - start;
}

export interface EncodeOptions {
  /** Run-length encode runs of 4 or more identical plain bytes (only replies may use it). */
  rle?: boolean;
}

/** `$payload#xx` with the payload escaped (and optionally run-length encoded). */
export function encodePacket(payload: Uint8Array | string, options: EncodeOptions = {}): Uint8Array {
  return frame(DOLLAR, payload, options);
}

/** `%payload#xx`: an asynchronous notification (non-stop mode). */
export function encodeNotification(payload: Uint8Array | string, options: EncodeOptions = {}): Uint8Array {
  return frame(PERCENT, payload, options);
}

function frame(start: number, payload: Uint8Array | string, options: EncodeOptions): Uint8Array {
  const raw = typeof payload === "string" ? latin1ToBytes(payload) : payload;
  const body = options.rle ? runLengthEncode(escapeBinary(raw)) : escapeBinary(raw);
  const out = new Uint8Array(body.length + 4);
  out[0] = start;
  out.set(body, 1);
  out[body.length + 1] = HASH;
  const sum = checksum(body);
  out[body.length + 2] = hexChar(sum >> 4);
  out[body.length + 3] = hexChar(sum & 15);
  return out;
}

// Repeat counts n are sent as n+29; 6 and 7 would give '#' and '$', and 13/96 ('*', '}') are
// avoided too so that no decoder can misread the count byte. Counts are capped at 97 (n+29 ≤ 126).
const FORBIDDEN_COUNTS = new Set([6, 7, 13, 96]);
const MAX_COUNT = 97;

/** RLE over already-escaped bytes; escaped pairs and `*` are never part of a run. */
function runLengthEncode(escaped: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < escaped.length) {
    const b = escaped[i];
    if (b === BRACE) {
      out.push(b, escaped[i + 1]);
      i += 2;
      continue;
    }
    let run = 1;
    while (i + run < escaped.length && escaped[i + run] === b) run++;
    let remaining = run;
    while (remaining > 0) {
      out.push(b);
      remaining--;
      if (remaining >= 3) {
        let n = Math.min(remaining, MAX_COUNT);
        while (FORBIDDEN_COUNTS.has(n)) n--;
        out.push(STAR, n + 29);
        remaining -= n;
      } else {
        for (; remaining > 0; remaining--) out.push(b);
      }
    }
    i += run;
  }
  return Uint8Array.from(out);
}

function hexChar(n: number): number {
  return n < 10 ? 0x30 + n : 0x61 + n - 10;
}
