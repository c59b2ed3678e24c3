// Readers of a log waiting for its next append (the event feed's EventLog, the ConsoleLog): each
// waits at most once at a time, keyed by its cursor, and is woken by the appender, by close, or
// by its own abort.

export class Waiters {
  private readonly waiting = new Map<object, () => void>();
  private wakeScheduled = false;

  /** Resolves when `key` is woken (wake, wakeAll, wakeSoon). */
  wait(key: object): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.set(key, resolve));
  }

  /** Wakes `key` if it waits (an abort). */
  wake(key: object): void {
    const resolve = this.waiting.get(key);
    this.waiting.delete(key);
    resolve?.();
  }

  /** Forgets `key` (its reader ended) without waking it. */
  forget(key: object): void {
    this.waiting.delete(key);
  }

  /** Wakes everyone waiting now. Resolving a promise runs nothing synchronously. */
  wakeAll(): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const resolve of all) resolve();
  }

  /**
   * Wakes everyone after the current turn of the event loop, not in it: whatever appended (a stop
   * being pushed to the debugger, a worker's batch) finishes first. One wake serves a burst.
   */
  wakeSoon(): void {
    if (this.wakeScheduled || this.waiting.size === 0) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wakeAll();
    });
  }
}
