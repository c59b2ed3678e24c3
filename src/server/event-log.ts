// One VM's event feed: a numbered ring of recent events that any number of observers read at their own pace.
import type { DebugStopReason } from "../core";
import { Waiters } from "../core/waiters";

/** Why a session ended. */
export type DetachCause = "requested" | "lease_expired" | "stream_closed" | "server_shutdown" | "stream_overflow" | "backend_lost" | "forced";

/** What happened, without its number and time. */
export type VmEventBody =
  | { kind: "attached"; holder: string; stream: boolean }
  | { kind: "detached"; cause: DetachCause }
  | { kind: "resumed" }
  | { kind: "stopped"; reason: DebugStopReason }
  | { kind: "stepped"; vp: number; executed: number; stop?: DebugStopReason }
  | { kind: "debugStateChanged"; vp: number }
  | { kind: "poweredOff" }
  | { kind: "reset" }
  | { kind: "backendLost"; detail: string };

/** One published event: its per-VM sequence number (from 1), when, and what. */
export interface VmEvent {
  sequence: bigint;
  timeMs: number;
  body: VmEventBody;
}

/** What an observer reads: an event, or word that the events before `nextSequence` are lost to it. */
export type FeedItem = VmEvent | { kind: "gap"; nextSequence: bigint };

export interface EventLogOptions {
  /** Events held for replay and for observers that fall behind. Default 4096, at least 1. */
  capacity?: number;
  /** Clock for the events' time. Default Date.now. */
  now?: () => number;
}

const DEFAULT_EVENT_CAPACITY = 4096;

/** One observer: where it reads next (it waits in `waiters` keyed by its cursor). */
interface Cursor {
  next: bigint;
}

/**
 * The publisher writes into a shared ring and wakes the observers that are waiting; it never
 * waits for, copies to, or buffers per observer. An observer that stops reading keeps only its
 * cursor; when the ring has moved past it, it is told so with one gap and skips ahead.
 */
export class EventLog {
  private readonly capacity: number;
  private readonly capacityBig: bigint;
  private readonly now: () => number;
  private readonly ring: (VmEvent | undefined)[];
  private last = 0n;
  private closed = false;
  /**
   * Observers waiting for the next publish (each at most once), woken after the current turn of
   * the event loop: whatever published the event (a stop being pushed to the debugger, an answer
   * being written) finishes first, so observers never stand between the VM and its debugger.
   */
  private readonly waiters = new Waiters();

  constructor(options: EventLogOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_EVENT_CAPACITY;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`EventLog capacity must be a whole number of at least 1, got ${capacity}`);
    }
    this.capacity = capacity;
    this.capacityBig = BigInt(capacity);
    this.now = options.now ?? Date.now;
    this.ring = new Array<VmEvent | undefined>(capacity).fill(undefined);
  }

  /** Sequence of the newest event (0n before the first). */
  get lastSequence(): bigint {
    return this.last;
  }

  /** Appends an event (sequence 1, 2, 3 …) and wakes subscribers. Synchronous, O(1) per waiting subscriber, never throws. */
  publish(body: VmEventBody): VmEvent {
    const event: VmEvent = { sequence: this.last + 1n, timeMs: this.time(), body };
    this.ring[this.slot(event.sequence)] = event;
    this.last = event.sequence;
    this.waiters.wakeSoon();
    return event;
  }

  /**
   * The feed of one observer: with afterSequence undefined, only events published from now on
   * (from this call, not from the first read); with a number, every held event with a larger
   * sequence first, then live ones. A number past the newest event reads as "from now on" (the
   * server may have restarted and numbers from 1 again). When events it needs have left the ring
   * it gets one gap naming the sequence it gets next, then continues from the oldest held event.
   * Ends when `signal` aborts or close() is called.
   */
  subscribe(afterSequence: bigint | undefined, signal: AbortSignal): AsyncIterable<FeedItem> {
    const start = afterSequence === undefined || afterSequence > this.last ? this.last + 1n : afterSequence < 0n ? 1n : afterSequence + 1n;
    const cursor: Cursor = { next: start };
    return this.read(cursor, signal);
  }

  /** Ends every subscription; later publish() calls still number events but nobody is woken. */
  close(): void {
    this.closed = true;
    this.waiters.wakeAll();
  }

  private async *read(cursor: Cursor, signal: AbortSignal): AsyncGenerator<FeedItem, void, undefined> {
    const onAbort = () => this.waiters.wake(cursor);
    signal.addEventListener("abort", onAbort);
    try {
      // Each pass either hands out at most `capacity + 1` items or waits for a publish, close or abort.
      while (!this.closed && !signal.aborted) {
        for (let n = 0; n <= this.capacity && cursor.next <= this.last; n++) {
          const oldest = this.oldestHeld();
          if (cursor.next < oldest) {
            cursor.next = oldest;
            yield { kind: "gap", nextSequence: oldest };
          } else {
            const event = this.ring[this.slot(cursor.next)] as VmEvent;
            cursor.next += 1n;
            yield event;
          }
          if (this.closed || signal.aborted) return;
        }
        if (cursor.next <= this.last) continue;
        await this.waiters.wait(cursor);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.waiters.forget(cursor);
    }
  }

  private oldestHeld(): bigint {
    const held = this.last < this.capacityBig ? this.last : this.capacityBig;
    return this.last - held + 1n;
  }

  private slot(sequence: bigint): number {
    return Number((sequence - 1n) % this.capacityBig);
  }

  private time(): number {
    try {
      return this.now();
    } catch {
      return Date.now(); // an injected clock's failure must not reach the publisher
    }
  }
}
