// One VM's guest console output: a bounded history of raw bytes, each with its offset in the VM's
// console byte stream and the device that sent it, read by any number of watchers at their pace.

import { Waiters } from "./waiters";

/** A console device: the x86 debug console (0xE9), the COM1 16550 UART (0x3F8), a launched QEMU's stdout. */
export type ConsoleSource = "debugcon" | "com1" | "qemuStdio";

/** Why the output ended: the guest powered off, or the backend is gone. */
export type ConsoleEndReason = "poweredOff" | "backendLost";

/** What a watcher reads: bytes of one device from `offset` on, word that bytes are lost to it, or the end. */
export type ConsoleItem =
  | { kind: "output"; offset: bigint; source: ConsoleSource; data: Uint8Array }
  | { kind: "gap"; nextOffset: bigint }
  | { kind: "end"; endOffset: bigint; reason: ConsoleEndReason };

export interface ConsoleLogOptions {
  /** Bytes held for replay and for watchers that fall behind. Default 1 MiB. */
  capacityBytes?: number;
  /**
   * Device runs held (a run: consecutive bytes of one device). A guest alternating devices byte
   * by byte makes a run per byte; past this many the oldest bytes are dropped. Default 65,536.
   */
  maxRuns?: number;
}

export interface ConsoleSubscribeOptions {
  /** Most bytes in one item. Default 64 KiB. */
  maxChunkBytes?: number;
  /** Stop once the output there was at subscription has been read (an end that came meanwhile is still read). */
  stopAtEnd?: boolean;
}

const DEFAULT_CAPACITY = 1024 * 1024;
const DEFAULT_MAX_RUNS = 65_536;
const DEFAULT_CHUNK = 64 * 1024;

interface Cursor {
  next: number;
}

/**
 * The backend appends (synchronously, copying into a ring; it never waits for a watcher), and
 * wakes waiting watchers after the current turn of the event loop. A watcher keeps only its
 * cursor: it copies at most one chunk when it reads, and when the ring has moved past it, it is
 * told so with a gap and skips to the oldest byte held.
 */
export class ConsoleLog {
  private readonly capacity: number;
  private readonly maxRuns: number;
  private readonly ring: Uint8Array;
  /** Bytes ever appended: the offset the next byte gets. */
  private total = 0;
  /** Device runs, oldest first from runHead: where each starts and which device. */
  private runStart: number[] = [];
  private runSource: ConsoleSource[] = [];
  private runHead = 0;
  /** Bytes before this offset were dropped with their runs (maxRuns). */
  private droppedBefore = 0;
  private endReason: ConsoleEndReason | undefined;
  private readonly waiters = new Waiters();
  private readonly watchers = new Set<Cursor>();

  constructor(options: ConsoleLogOptions = {}) {
    const capacity = options.capacityBytes ?? DEFAULT_CAPACITY;
    const maxRuns = options.maxRuns ?? DEFAULT_MAX_RUNS;
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`ConsoleLog capacity must be at least 1 byte, got ${capacity}`);
    if (!Number.isSafeInteger(maxRuns) || maxRuns < 1) throw new RangeError(`ConsoleLog maxRuns must be at least 1, got ${maxRuns}`);
    this.capacity = capacity;
    this.maxRuns = maxRuns;
    this.ring = new Uint8Array(capacity);
  }

  /** Offset the next byte gets (bytes ever written). */
  get endOffset(): bigint {
    return BigInt(this.total);
  }

  /** Offset of the oldest byte held (equal to endOffset when none is). */
  get oldestOffset(): bigint {
    return BigInt(this.oldest());
  }

  /** Why the output ended, once it has. */
  get ended(): ConsoleEndReason | undefined {
    return this.endReason;
  }

  /** Watchers reading now (each feed from its first read until it ends). */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Appends bytes one device sent out. Synchronous, never throws; ignored after end(). */
  append(source: ConsoleSource, data: Uint8Array): void {
    if (this.endReason !== undefined || data.length === 0) return;
    const last = this.runSource.length - 1;
    if (last < this.runHead || this.runSource[last] !== source) {
      this.runStart.push(this.total);
      this.runSource.push(source);
      if (this.runSource.length - this.runHead > this.maxRuns) {
        this.runHead++;
        this.droppedBefore = this.runStart[this.runHead];
      }
    }
    // Only the last `capacity` bytes of a large write can be held.
    const keep = data.length > this.capacity ? data.subarray(data.length - this.capacity) : data;
    const at = (this.total + data.length - keep.length) % this.capacity;
    const first = Math.min(keep.length, this.capacity - at);
    this.ring.set(keep.subarray(0, first), at);
    if (first < keep.length) this.ring.set(keep.subarray(first), 0);
    this.total += data.length;
    this.pruneRuns();
    this.waiters.wakeSoon();
  }

  /** No more output will come: watchers read what is held, then the end. Idempotent. */
  end(reason: ConsoleEndReason): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.waiters.wakeSoon();
  }

  /**
   * One watcher's feed: from `fromOffset` (undefined: from now on). Throws a RangeError for an
   * offset past the end; the caller checks first (endOffset). Ends when `signal` aborts, after the
   * end item, or (stopAtEnd) once the output there was at subscription has been read.
   */
  subscribe(fromOffset: bigint | undefined, signal: AbortSignal, options: ConsoleSubscribeOptions = {}): AsyncIterable<ConsoleItem> {
    if (fromOffset !== undefined && (fromOffset < 0n || fromOffset > BigInt(this.total))) {
      throw new RangeError(`offset ${fromOffset} is past the end of the console output (${this.total})`);
    }
    const cursor: Cursor = { next: fromOffset === undefined ? this.total : Number(fromOffset) };
    const stopAt = options.stopAtEnd ? this.total : undefined;
    return this.read(cursor, signal, Math.max(1, options.maxChunkBytes ?? DEFAULT_CHUNK), stopAt);
  }

  private async *read(cursor: Cursor, signal: AbortSignal, chunk: number, stopAt: number | undefined): AsyncGenerator<ConsoleItem, void, undefined> {
    const onAbort = () => this.waiters.wake(cursor);
    signal.addEventListener("abort", onAbort);
    this.watchers.add(cursor); // from the first read until the feed ends
    try {
      while (!signal.aborted) {
        const oldest = this.oldest();
        if (cursor.next < oldest) {
          cursor.next = oldest;
          yield { kind: "gap", nextOffset: BigInt(oldest) };
          continue;
        }
        if (cursor.next < this.total && (stopAt === undefined || cursor.next < stopAt || this.endReason !== undefined)) {
          yield this.take(cursor, chunk);
          continue;
        }
        if (this.endReason !== undefined) {
          yield { kind: "end", endOffset: BigInt(this.total), reason: this.endReason };
          return;
        }
        if (stopAt !== undefined && cursor.next >= stopAt) return;
        await this.waiters.wait(cursor);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.waiters.forget(cursor);
      this.watchers.delete(cursor);
    }
  }

  /** The bytes from the cursor to the end of its run, of the output, or of one chunk (copied). */
  private take(cursor: Cursor, chunk: number): ConsoleItem {
    const r = this.runAt(cursor.next);
    const runEnd = r + 1 < this.runStart.length ? this.runStart[r + 1] : this.total;
    const start = cursor.next;
    const end = Math.min(runEnd, this.total, start + chunk);
    const data = new Uint8Array(end - start);
    const at = start % this.capacity;
    const first = Math.min(data.length, this.capacity - at);
    data.set(this.ring.subarray(at, at + first));
    if (first < data.length) data.set(this.ring.subarray(0, data.length - first), first);
    cursor.next = end;
    return { kind: "output", offset: BigInt(start), source: this.runSource[r], data };
  }

  /** Index of the run holding `offset` (held, so at or after the first run kept). */
  private runAt(offset: number): number {
    let lo = this.runHead;
    let hi = this.runStart.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runStart[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private oldest(): number {
    return Math.max(this.total - this.capacity, this.droppedBefore, 0);
  }

  /** Forgets runs wholly before the oldest byte held; compacts the arrays now and then. */
  private pruneRuns(): void {
    const oldest = this.oldest();
    while (this.runHead + 1 < this.runStart.length && this.runStart[this.runHead + 1] <= oldest) this.runHead++;
    if (this.runHead > 1024 && this.runHead * 2 > this.runStart.length) {
      this.runStart = this.runStart.slice(this.runHead);
      this.runSource = this.runSource.slice(this.runHead);
      this.runHead = 0;
    }
  }
}
