// The RSP framer: a pure state machine fed bytes, yielding packets, acks, interrupts and errors.
import {
  ChecksumMismatch,
  MalformedChecksum,
  MalformedEscape,
  MalformedRle,
  PacketTooLarge,
  type RspFrameError,
  UnterminatedPacket,
} from "./errors";
import { ACK, NACK } from "./encode";
import { hexDigit } from "./hex";

/** What the framer recognised. Packet data is unescaped and run-length expanded. */
export type FrameEvent =
  | { type: "packet"; data: Uint8Array }
  | { type: "notification"; data: Uint8Array }
  | { type: "ack" }
  | { type: "nack" }
  | { type: "interrupt" }
  | { type: "error"; error: RspFrameError };

export interface FramerOptions {
  /** Largest decoded payload kept; longer packets yield PacketTooLarge. Default 1 MiB. */
  maxPacketSize?: number;
  /** Check the two checksum digits (default true). Peers in no-ack mode may skip it. */
  verifyChecksums?: boolean;
  /** Start in no-ack mode (see ackFor). */
  noAck?: boolean;
}

const enum State {
  Idle,
  Payload,
  Checksum1,
  Checksum2,
}

const DOLLAR = 0x24;
const PERCENT = 0x25;
const HASH = 0x23;
const BRACE = 0x7d;
const STAR = 0x2a;
const PLUS = 0x2b;
const MINUS = 0x2d;
const CTRL_C = 0x03;

const ACK_EVENT: FrameEvent = Object.freeze({ type: "ack" });
const NACK_EVENT: FrameEvent = Object.freeze({ type: "nack" });
const INTERRUPT_EVENT: FrameEvent = Object.freeze({ type: "interrupt" });

/**
 * Feed it every received byte, in order, in chunks of any size. Outside a packet, `+`, `-` and
 * 0x03 are events and other bytes are ignored; a bad packet yields one error event and framing
 * resumes at the next `$`. The framer never writes: `ackFor` says what the caller should send.
 */
export class RspFramer {
  /** In no-ack mode ackFor returns nothing; the framer itself behaves the same. */
  noAck: boolean;
  private readonly maxPacketSize: number;
  private readonly verifyChecksums: boolean;
  private state = State.Idle;
  private notification = false;
  private buf = new Uint8Array(256);
  private len = 0;
  private sum = 0;
  private escape = false;
  private rle = false;
  private error: RspFrameError | undefined;
  private digit = 0;

  constructor(options: FramerOptions = {}) {
    this.maxPacketSize = options.maxPacketSize ?? 1 << 20;
    this.verifyChecksums = options.verifyChecksums ?? true;
    this.noAck = options.noAck ?? false;
  }

  /** Whether the framer sits between packets (nothing partial buffered). */
  get idle(): boolean {
    return this.state === State.Idle;
  }

  /** All events completed by `chunk`. Same result as feeding each byte, faster on long payloads. */
  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    for (let i = 0; i < chunk.length; i++) {
      if (this.state === State.Payload && !this.escape && !this.rle && !this.error) {
        let j = i;
        while (j < chunk.length) {
          const b = chunk[j];
          if (b === DOLLAR || b === HASH || b === BRACE || b === STAR) break;
          j++;
        }
        if (j > i) {
          this.appendPlain(chunk, i, j);
          i = j;
          if (i >= chunk.length) break;
        }
      }
      const e = this.feed(chunk[i]);
      if (e) events.push(e);
    }
    return events;
  }

  /** Advance by one byte; returns the event it completed, if any. */
  feed(byte: number): FrameEvent | undefined {
    switch (this.state) {
      case State.Idle:
        switch (byte) {
          case DOLLAR:
          case PERCENT:
            this.begin(byte === PERCENT);
            return undefined;
          case PLUS:
            return ACK_EVENT;
          case MINUS:
            return NACK_EVENT;
          case CTRL_C:
            return INTERRUPT_EVENT;
          default:
            return undefined; // line noise between packets
        }
      case State.Payload:
        return this.payloadByte(byte);
      case State.Checksum1: {
        if (byte === DOLLAR) return this.restart();
        const d = hexDigit(byte);
        if (d < 0) return this.fail(new MalformedChecksum(byte));
        this.digit = d << 4;
        this.state = State.Checksum2;
        return undefined;
      }
      case State.Checksum2: {
        if (byte === DOLLAR) return this.restart();
        const d = hexDigit(byte);
        if (d < 0) return this.fail(new MalformedChecksum(byte));
        return this.finish(this.digit | d);
      }
    }
  }

  /** Drop any partial packet. */
  reset(): void {
    this.state = State.Idle;
    this.len = 0;
  }

  /**
   * What to answer an event with: `+` for a packet, `-` for a framing error, nothing for the
   * rest or in no-ack mode.
   */
  ackFor(event: FrameEvent): Uint8Array | undefined {
    if (this.noAck) return undefined;
    if (event.type === "packet") return ACK;
    if (event.type === "error") return NACK;
    return undefined;
  }

  private begin(notification: boolean): void {
    this.state = State.Payload;
    this.notification = notification;
    this.len = 0;
    this.sum = 0;
    this.escape = false;
    this.rle = false;
    this.error = undefined;
  }

  private restart(): FrameEvent {
    const partial = this.len;
    this.begin(false);
    return { type: "error", error: new UnterminatedPacket(partial) };
  }

  private fail(error: RspFrameError): FrameEvent {
    this.state = State.Idle;
    return { type: "error", error };
  }

  private payloadByte(byte: number): FrameEvent | undefined {
    // '$' is never data (it is always escaped), so it always starts a new packet; '%' may be data.
    if (byte === DOLLAR) return this.restart();
    if (byte === HASH) {
      if (!this.error && this.escape) this.error = new MalformedEscape();
      if (!this.error && this.rle) this.error = new MalformedRle("'*' without a count before '#'");
      this.state = State.Checksum1;
      return undefined;
    }
    this.sum = (this.sum + byte) & 0xff;
    if (this.error) return undefined; // keep summing to the end, keep nothing
    if (this.escape) {
      this.escape = false;
      this.append(byte ^ 0x20);
    } else if (this.rle) {
      this.rle = false;
      const count = byte - 29;
      if (count < 1 || byte > 126) {
        this.error = new MalformedRle(`count byte 0x${byte.toString(16)} is out of range`);
      } else {
        const prev = this.buf[this.len - 1];
        for (let k = 0; k < count && !this.error; k++) this.append(prev);
      }
    } else if (byte === BRACE) {
      this.escape = true;
    } else if (byte === STAR) {
      if (this.len === 0) this.error = new MalformedRle("'*' with no preceding character");
      else this.rle = true;
    } else {
      this.append(byte);
    }
    return undefined;
  }

  /** Plain payload bytes chunk[from..to): summed and kept as they are. */
  private appendPlain(chunk: Uint8Array, from: number, to: number): void {
    let sum = this.sum;
    for (let k = from; k < to; k++) sum += chunk[k];
    this.sum = sum & 0xff;
    const n = to - from;
    if (this.len + n > this.maxPacketSize) {
      this.error = new PacketTooLarge(this.maxPacketSize);
      return;
    }
    if (this.len + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.len + n) size *= 2;
      const bigger = new Uint8Array(Math.min(size, this.maxPacketSize));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(chunk.subarray(from, to), this.len);
    this.len += n;
  }

  private append(byte: number): void {
    if (this.len >= this.maxPacketSize) {
      this.error = new PacketTooLarge(this.maxPacketSize);
      return;
    }
    if (this.len === this.buf.length) {
      const bigger = new Uint8Array(Math.min(this.buf.length * 2, Math.max(this.maxPacketSize, 256)));
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.len++] = byte;
  }

  private finish(received: number): FrameEvent {
    this.state = State.Idle;
    // A corrupted byte usually shows first as a checksum mismatch: report that before the rest.
    if (this.verifyChecksums && received !== this.sum) {
      return { type: "error", error: new ChecksumMismatch(this.sum, received) };
    }
    if (this.error) return { type: "error", error: this.error };
    const data = this.buf.slice(0, this.len);
    return this.notification ? { type: "notification", data } : { type: "packet", data };
  }
}

/** A framer (see RspFramer). */
export function createFramer(options: FramerOptions = {}): RspFramer {
  return new RspFramer(options);
}
