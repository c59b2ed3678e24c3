// Small replies shared by many requests: `OK`, `E xx`, `O` console output, qXfer chunks.
import { RspParseError } from "./errors";
import { formatHex, hexToText, parseHexInt } from "./hex";

/** `E xx` (errno-style code) or `E.message`. */
export interface ErrorReply {
  code: number | undefined;
  message?: string;
}

/** The error a reply carries, or undefined when it is not an error reply. */
export function parseErrorReply(payload: string): ErrorReply | undefined {
  if (/^E[0-9a-fA-F]{2}$/.test(payload)) return { code: parseHexInt(payload.slice(1)) };
  if (payload.startsWith("E.")) return { code: undefined, message: payload.slice(2) };
  const m = /^E([0-9a-fA-F]{2});(.*)$/s.exec(payload);
  if (m) return { code: parseHexInt(m[1]), message: m[2] };
  return undefined;
}

/** `E` followed by two hex digits. */
export function formatErrorReply(code: number): string {
  if (code < 0 || code > 0xff) throw new RangeError(`error code ${code} does not fit one byte`);
  return "E" + code.toString(16).padStart(2, "0");
}

/** Whether a payload is console output (`O` + hex; `OK` is not). */
export function isConsoleOutput(payload: string): boolean {
  return payload.length > 1 && payload[0] === "O" && /^[0-9a-fA-F]+$/.test(payload.slice(1));
}

/** Text of an `O` console-output packet. Throws RspParseError. */
export function parseConsoleOutput(payload: string): string {
  if (!isConsoleOutput(payload)) throw new RspParseError("console output", payload);
  return hexToText(payload.slice(1));
}

/** One chunk of a qXfer read: `m` data (more follows) or `l` data (last). */
export interface XferChunk {
  last: boolean;
  data: Uint8Array;
}

/** Parses a qXfer read reply (already unescaped by the framer). Throws RspParseError. */
export function parseXferReply(payload: Uint8Array): XferChunk {
  const kind = payload[0];
  if (kind !== 0x6d /* m */ && kind !== 0x6c /* l */) {
    throw new RspParseError("qXfer reply", String.fromCharCode(...payload.subarray(0, 40)));
  }
  return { last: kind === 0x6c, data: payload.subarray(1) };
}

/** `qXfer:object:read:annex:offset,length`. */
export function formatXferRead(object: string, annex: string, offset: number, length: number): string {
  return `qXfer:${object}:read:${annex}:${formatHex(offset)},${formatHex(length)}`;
}
