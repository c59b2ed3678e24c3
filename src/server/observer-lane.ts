// The observers' lane: event-feed writes take turns, one per turn of the event loop, so that
// whatever else the server does (a debugger's request, a stop to push) always goes first.
//
// A server thread feeding many observers at full rate would spend most of its time writing to
// them and slow the VM's debugger. Here an observer waits for its turn before each write; turns
// are handed out from setImmediate, after pending I/O, one at a time. When the server is idle,
// turns follow each other at once; when it is busy, observers fall behind, and past the event
// ring they get a gap and skip ahead (see EventLog) instead of holding anyone back.

export class ObserverLane {
  private readonly waiting: (() => void)[] = [];
  private head = 0;
  private scheduled = false;

  /** Resolves when it is this caller's turn to write one message. */
  turn(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.head >= this.waiting.length) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const next = this.waiting[this.head++];
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      next?.();
      this.schedule();
    });
  }
}
