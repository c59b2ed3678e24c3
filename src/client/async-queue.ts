// A push-driven async iterator (internal): the Session stream's outgoing messages and each stops() feed.

/**
 * Items pushed by a producer, read by for-await. `end()` finishes after the held items; `fail()`
 * throws after them. With a `limit`, a push beyond that many unread items fails the queue with
 * `overflow()` (the reader gets what it holds, then that error): a reader that lags can never
 * make the producer buffer without bound.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private items: T[] = [];
  private head = 0;
  private done = false;
  private error: unknown;
  private failed = false;
  private readers: { resolve(r: IteratorResult<T>): void; reject(e: unknown): void }[] = [];

  constructor(
    private readonly options: { limit?: number; overflow?: () => unknown; onReturn?: () => void } = {},
  ) {}

  get ended(): boolean {
    return this.done;
  }

  /** Queues an item (false if the queue has ended or just overflowed). */
  push(item: T): boolean {
    if (this.done) return false;
    const reader = this.readers.shift();
    if (reader) {
      reader.resolve({ value: item, done: false });
      return true;
    }
    const limit = this.options.limit ?? Infinity;
    if (this.items.length - this.head >= limit) {
      this.fail(this.options.overflow?.() ?? new Error("queue overflow"));
      return false;
    }
    this.items.push(item);
    return true;
  }

  /** No more items: readers finish once they have read the held ones. */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.settleReaders();
  }

  /** Readers get the held items, then `error`. */
  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failed = true;
    this.error = error;
    this.settleReaders();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head];
      this.items[this.head++] = undefined as T;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return this.finished();
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  /** The reader is gone (for-await broke out): drop what is held. */
  return(): Promise<IteratorResult<T>> {
    const wasDone = this.done;
    this.done = true;
    this.failed = false;
    this.items = [];
    this.head = 0;
    this.settleReaders();
    if (!wasDone) this.options.onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private finished(): Promise<IteratorResult<T>> {
    if (this.failed) {
      this.failed = false; // thrown once; later reads are plain "done"
      return Promise.reject(this.error);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  private settleReaders(): void {
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) {
      // Readers wait only while nothing is held, so each gets the end (or the error).
      this.finished().then(r.resolve, r.reject);
    }
  }
}
