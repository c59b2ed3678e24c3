// The send budget: how many bytes of answers the server holds for clients, per call and across
// every call and connection. A call reserves bytes before it reads guest memory for an answer;
// the bytes come back when the transport has taken that answer (the interceptor below sees the
// write complete) or when the call ends. A client that stops reading therefore holds the server
// at its call's share and no more, and all such clients together at the global bound.
import { ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import { Code } from "../core";
import { serverError } from "./errors";

const MIB = 1024 * 1024;

export interface SendBudgetLimits {
  /** Bytes of answers held across all calls. */
  totalBytes: number;
  /** Bytes of answers one call may hold (one answer larger than this still goes, alone). */
  callBytes: number;
}

export const DEFAULT_SEND_BUDGET: SendBudgetLimits = { totalBytes: 128 * MIB, callBytes: 8 * MIB };

/**
 * Raised into a call whose account closed while it waited for room: the call ended (cancelled,
 * its connection gone). A plain CANCELLED, not a server fault to log.
 */
function callEnded() {
  return serverError(Code.Cancelled, "CANCELLED", "the call ended while its answer waited for room to send");
}

interface Reservation {
  account: CallAccount;
  bytes: number;
  released: boolean;
}

interface Waiter {
  account: CallAccount;
  bytes: number;
  resolve: (r: Reservation) => void;
  reject: (e: unknown) => void;
}

/** Answers in flight, by the message object the transport will write. */
const inFlight = new WeakMap<object, Reservation>();

export class SendBudget {
  private used = 0;
  private peak = 0;
  private wakeScheduled = false;
  private readonly waiters: Waiter[] = [];

  constructor(readonly limits: SendBudgetLimits = DEFAULT_SEND_BUDGET) {
    if (!(limits.callBytes > 0 && limits.totalBytes >= limits.callBytes)) {
      throw new RangeError(`send budget: need 0 < callBytes <= totalBytes, got ${limits.callBytes} and ${limits.totalBytes}`);
    }
  }

  /** Bytes held now, the most ever held, and calls waiting for room. */
  stats(): { usedBytes: number; peakBytes: number; waiting: number } {
    return { usedBytes: this.used, peakBytes: this.peak, waiting: this.waiters.length };
  }

  /** An account for one call; it closes (returning everything it holds) when `signal` aborts. */
  open(signal?: AbortSignal): CallAccount {
    const account = new CallAccount(this);
    if (signal) {
      if (signal.aborted) account.close();
      else {
        const onAbort = () => account.close();
        signal.addEventListener("abort", onAbort, { once: true });
        account.onClose = () => signal.removeEventListener("abort", onAbort);
      }
    }
    return account;
  }

  /** @internal */
  reserve(account: CallAccount, bytes: number, wait: boolean): Promise<Reservation> | Reservation {
    // Small answers that must go out (stops, errors) are counted, never held back; the rest wait
    // their turn behind earlier waiters.
    if (!wait || (this.waiters.length === 0 && this.fits(account, bytes))) return this.grant(account, bytes);
    const queued = new Promise<Reservation>((resolve, reject) => this.waiters.push({ account, bytes, resolve, reject }));
    // Earlier waiters may be held only by their own call's share, not by the global bound.
    this.scheduleWake();
    return queued;
  }

  /** @internal */
  release(r: Reservation): void {
    if (r.released) return;
    r.released = true;
    this.used -= r.bytes;
    r.account.held -= r.bytes;
    r.account.reservations.delete(r);
    r.account.roomChanged();
    this.scheduleWake();
  }

  /** @internal */
  dropWaiters(account: CallAccount): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (w.account !== account) continue;
      this.waiters.splice(i, 1);
      w.reject(callEnded());
    }
    this.scheduleWake();
  }

  /**
   * Grants wait for the next turn of the event loop, so a burst of cancellations (a client
   * dropping a thousand streams) is all taken in before any of the freed bytes go to a waiter,
   * rather than each being handed to a call whose own cancellation is next in the queue.
   */
  private scheduleWake(): void {
    if (this.wakeScheduled || this.waiters.length === 0) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wake();
    });
  }

  private fits(account: CallAccount, bytes: number): boolean {
    const callOk = account.held === 0 || account.held + bytes <= this.limits.callBytes;
    const totalOk = this.used === 0 || this.used + bytes <= this.limits.totalBytes;
    return callOk && totalOk;
  }

  private grant(account: CallAccount, bytes: number): Reservation {
    const r: Reservation = { account, bytes, released: false };
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    account.held += bytes;
    account.reservations.add(r);
    return r;
  }

  /** Grants waiters in arrival order; one held back by the global bound holds back those after it. */
  private wake(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i];
      const callOk = w.account.held === 0 || w.account.held + w.bytes <= this.limits.callBytes;
      const totalOk = this.used === 0 || this.used + w.bytes <= this.limits.totalBytes;
      if (!totalOk) return;
      if (!callOk) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      w.resolve(this.grant(w.account, w.bytes));
    }
  }
}

/** One call's share of the send budget. */
export class CallAccount {
  /** @internal */ held = 0;
  /** @internal */ readonly reservations = new Set<Reservation>();
  /** @internal */ onClose: (() => void) | undefined;
  private closed = false;
  private roomWaiters: (() => void)[] = [];

  constructor(private readonly budget: SendBudget) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Waits for room for `bytes`, then holds them until the answer carrying them is written. */
  async reserve(bytes: number): Promise<Ticket> {
    if (this.closed) throw callEnded();
    const r = await this.budget.reserve(this, Math.max(1, bytes), true);
    if (this.closed) {
      this.budget.release(r);
      throw callEnded();
    }
    return new Ticket(this.budget, r);
  }

  /** Counts a small answer that must go out now (a stop, an acknowledgement, an error). */
  charge(message: object, bytes: number): void {
    if (this.closed) return;
    const r = this.budget.reserve(this, Math.max(1, bytes), false) as Reservation;
    new Ticket(this.budget, r).attach(message);
  }

  /** Whether this call holds less than its share (a stream reads its next request only then). */
  hasRoom(): boolean {
    return !this.closed && this.held < this.budget.limits.callBytes;
  }

  /** Resolves once this call holds less than its share, or has closed. */
  async waitForRoom(): Promise<void> {
    while (!this.hasRoom() && !this.closed) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** Returns everything this call holds and fails its waits: the call ended. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of [...this.reservations]) this.budget.release(r);
    this.budget.dropWaiters(this);
    this.roomChanged();
    this.onClose?.();
  }

  /** @internal */
  roomChanged(): void {
    if (this.roomWaiters.length === 0 || (!this.closed && !this.hasRoom())) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }
}

/** Bytes reserved for one answer: attach them to the message, or release them if none is sent. */
export class Ticket {
  constructor(
    private readonly budget: SendBudget,
    private readonly r: Reservation,
  ) {}

  /** The bytes stay held until the transport has taken `message`. */
  attach(message: object): void {
    if (this.r.released) return;
    const previous = inFlight.get(message);
    if (previous) this.budget.release(previous);
    inFlight.set(message, this.r);
  }

  release(): void {
    this.budget.release(this.r);
  }
}

/**
 * Moves the bytes held for `inner` to `outer`, the message that carries it (a Session answer
 * wrapping a read's result). Returns false when `inner` held none.
 */
export function retag(inner: object, outer: object): boolean {
  const r = inFlight.get(inner);
  if (!r) return false;
  inFlight.delete(inner);
  inFlight.set(outer, r);
  return true;
}

/** The interceptor that returns an answer's bytes once the transport has written it. */
export function sendBudgetInterceptor(budget: SendBudget): ServerInterceptor {
  return (_method, call) => new ReleasingCall(call, budget);
}

class ReleasingCall extends ServerInterceptingCall {
  constructor(
    next: ServerInterceptingCallInterface,
    private readonly budget: SendBudget,
  ) {
    super(next);
  }

  override sendMessage(message: unknown, callback: () => void): void {
    const r = message !== null && typeof message === "object" ? inFlight.get(message) : undefined;
    if (!r) {
      super.sendMessage(message, callback);
      return;
    }
    super.sendMessage(message, () => {
      inFlight.delete(message as object);
      this.budget.release(r);
      callback();
    });
  }
}
