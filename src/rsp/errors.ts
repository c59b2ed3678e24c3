// Typed errors of the RSP codec: framing errors (reported as framer events) and packet parse errors.

/** What went wrong while framing one packet; the framer reports it as an event and resyncs. */
export type RspFrameErrorKind =
  | "checksum-mismatch"
  | "malformed-checksum"
  | "malformed-rle"
  | "malformed-escape"
  | "packet-too-large"
  | "unterminated-packet";

/** Base of the framing errors. `kind` discriminates them without instanceof. */
export abstract class RspFrameError extends Error {
  abstract readonly kind: RspFrameErrorKind;
}

/**
 * The two checksum digits did not match the payload. `expected` is the modulo-256 sum of the
 * bytes as received (what the digits should have said); `actual` is what the digits said.
 */
export class ChecksumMismatch extends RspFrameError {
  override name = "ChecksumMismatch";
  readonly kind = "checksum-mismatch";
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`RSP checksum mismatch: payload sums to 0x${hex2(expected)} but the packet says 0x${hex2(actual)}`);
  }
}

/** A checksum character after `#` was not a hex digit. */
export class MalformedChecksum extends RspFrameError {
  override name = "MalformedChecksum";
  readonly kind = "malformed-checksum";
  constructor(readonly byte: number) {
    super(`RSP checksum digit 0x${hex2(byte)} is not a hex digit`);
  }
}

/** A `*` run-length marker with nothing to repeat, or with a count byte out of range. */
export class MalformedRle extends RspFrameError {
  override name = "MalformedRle";
  readonly kind = "malformed-rle";
  constructor(readonly detail: string) {
    super(`RSP run-length encoding is malformed: ${detail}`);
  }
}

/** A `}` escape right before the `#` terminator. */
export class MalformedEscape extends RspFrameError {
  override name = "MalformedEscape";
  readonly kind = "malformed-escape";
  constructor() {
    super("RSP packet ends inside a } escape");
  }
}

/** The decoded payload grew beyond the framer's limit; the rest of the packet was discarded. */
export class PacketTooLarge extends RspFrameError {
  override name = "PacketTooLarge";
  readonly kind = "packet-too-large";
  constructor(readonly limit: number) {
    super(`RSP packet payload exceeds ${limit} bytes`);
  }
}

/** A `$` arrived inside a packet: the partial packet is dropped and a new one starts. */
export class UnterminatedPacket extends RspFrameError {
  override name = "UnterminatedPacket";
  readonly kind = "unterminated-packet";
  constructor(readonly partialLength: number) {
    super(`RSP packet interrupted by a new '$' after ${partialLength} payload bytes`);
  }
}

/** A packet's payload did not have the shape its parser expects. */
export class RspParseError extends Error {
  override name = "RspParseError";
  constructor(
    readonly what: string,
    readonly payload: string,
  ) {
    super(`malformed ${what}: ${JSON.stringify(payload.length > 80 ? payload.slice(0, 80) + "…" : payload)}`);
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
