// Limits per principal: concurrent calls, concurrent streams, request rate, and message sizes.
// The auth interceptor asks `admit` once per call (and the Session stream asks `admitOperation`
// once per operation it carries); a refusal becomes RESOURCE_EXHAUSTED with the refusal's reason
// as the ErrorInfo reason. One principal's exhaustion never touches another's account, so a
// flooding client is refused at its own bounds while a well-behaved one goes on being served.
//
// Memory is bounded: a principal with nothing in flight and a full bucket is indistinguishable
// from one never seen, so it is forgotten (a few are checked on every admission, oldest first);
// past `maxEntries` the least recently seen principals with nothing in flight are forgotten even
// with a partly drained bucket (the one case where forgetting is not free: such a principal
// starts again with a full bucket). Principals with calls in flight are never forgotten, so the
// map holds at most max(maxEntries, principals with a call in flight) entries — and each call in
// flight already costs the server far more than its principal's entry.
import { Code, type VmmError } from "../../core";
import { serverError } from "../errors";

const MIB = 1024 * 1024;

export interface PrincipalLimits {
  /** Calls one principal may have in flight at once, streams included (a stream is a call). */
  callsPerPrincipal: number;
  /** Streaming calls (Session, WatchEvents, ReadMemoryStream) one principal may have open at once. */
  streamsPerPrincipal: number;
  /** Calls and Session-stream operations per second one principal may start, sustained. */
  ratePerSecond: number;
  /** Calls and operations one principal may start at once after a quiet spell (the bucket's size). */
  burst: number;
  /** Largest request message one principal may send, in bytes. */
  maxRequestBytes: number;
  /** Largest response message the server sends one principal, in bytes. */
  maxResponseBytes: number;
}

/**
 * Defaults for a debugger service, where a principal is a person's tool (gdb bridge, SDK script)
 * or a service (crash collector, CI driver):
 * - 64 calls in flight: a client pipelining reads over one connection rarely needs more than a
 *   few dozen; 64 is half of one connection's `grpc.max_concurrent_streams` (128), so no single
 *   principal can hold a whole connection's worth of handler slots, let alone several.
 * - 16 streams: a debugger holds one Session stream and one WatchEvents per VM, perhaps a
 *   ReadMemoryStream or two; 16 covers a handful of VMs. Streams are long-lived, so this bounds
 *   what a principal holds for a long time.
 * - 500 per second sustained, bursts of 1,000: a gdb `x/1000gx` or a stepping loop issues a few
 *   hundred small calls a second; a crash collector's burst (every VP's registers, then a
 *   thousand memory ranges) fits the burst. One principal at 500/s uses a few percent of the
 *   server's capacity (tens of thousands of small calls a second; see `npm run bench`).
 * - 5 MiB per message each way: the server's unary read cap is 4 MiB (`maxReadBytes`), so the
 *   largest WriteMemory request and the largest ReadMemory / ReadMemoryMany answer are 4 MiB of
 *   bytes plus their fields; +1 MiB for those, as `grpc.max_receive_message_length` already
 *   allows. ReadMemoryStream answers are 1 MiB chunks, well inside.
 */
export const DEFAULT_PRINCIPAL_LIMITS: Readonly<PrincipalLimits> = Object.freeze({
  callsPerPrincipal: 64,
  streamsPerPrincipal: 16,
  ratePerSecond: 500,
  burst: 1000,
  maxRequestBytes: 4 * MIB + MIB,
  maxResponseBytes: 4 * MIB + MIB,
});

/** Principals remembered at most (beyond those with calls in flight); see the head of this file. */
export const DEFAULT_MAX_PRINCIPAL_ENTRIES = 10_000;

export type LimitReason = "CALL_LIMIT" | "STREAM_LIMIT" | "RATE_LIMIT";

/** An admitted call: `release()` when it ends, however it ends (a second call does nothing). */
export interface Admission {
  ok: true;
  release(): void;
}

/** A refused call or operation: what to put on the wire, and when trying again may succeed. */
export interface Refusal {
  ok: false;
  reason: "CALL_LIMIT" | "STREAM_LIMIT" | "RATE_LIMIT";
  message: string;
  /** RATE_LIMIT only: milliseconds until the principal's bucket holds a token again. */
  retryAfterMs?: number;
}

export type CallKind = "unary" | "stream";

/** One principal's account. */
interface Entry {
  /** Tokens in the bucket as of `refilledAt`. */
  tokens: number;
  refilledAt: number;
  calls: number;
  streams: number;
}

export interface PrincipalLimiterOptions {
  limits?: Partial<PrincipalLimits>;
  /** Milliseconds on a monotonic clock; injectable so tests need no sleeps. Default `performance.now`. */
  now?: () => number;
  /** Principals remembered at most, beyond those with calls in flight. Default 10,000. */
  maxEntries?: number;
}

export interface LimiterSnapshot {
  /** Principals remembered now. */
  entries: number;
  /** Principals forgotten so far (idle, or the least recently seen past `maxEntries`). */
  evicted: number;
  /** Refusals so far, by reason. */
  refused: Record<Refusal["reason"], number>;
  /** Each remembered principal's account (tokens as of now). */
  principals: Record<string, { calls: number; streams: number; tokens: number }>;
}

/** Idle principals checked (oldest first) per admission, so memory shrinks without a timer. */
const SWEEP_PER_ADMISSION = 2;

export class PrincipalLimiter {
  readonly limits: Readonly<PrincipalLimits>;
  private readonly now: () => number;
  private readonly maxEntries: number;
  /** In least-recently-seen order: an admission moves its principal to the end. */
  private readonly entries = new Map<string, Entry>();
  private evicted = 0;
  private readonly refused: Record<Refusal["reason"], number> = { CALL_LIMIT: 0, STREAM_LIMIT: 0, RATE_LIMIT: 0 };

  constructor(options: PrincipalLimiterOptions = {}) {
    const limits = { ...DEFAULT_PRINCIPAL_LIMITS, ...options.limits };
    for (const [name, value] of Object.entries(limits)) {
      if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`principal limits: ${name} must be a positive number, got ${value}`);
    }
    if (limits.burst < 1) throw new RangeError(`principal limits: burst must be at least 1, got ${limits.burst}`);
    if (limits.streamsPerPrincipal > limits.callsPerPrincipal) {
      throw new RangeError(
        `principal limits: streamsPerPrincipal (${limits.streamsPerPrincipal}) exceeds callsPerPrincipal (${limits.callsPerPrincipal}); a stream is a call`,
      );
    }
    this.limits = Object.freeze(limits);
    this.now = options.now ?? (() => performance.now());
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_PRINCIPAL_ENTRIES;
    if (!(Number.isInteger(this.maxEntries) && this.maxEntries > 0)) {
      throw new RangeError(`principal limits: maxEntries must be a positive integer, got ${this.maxEntries}`);
    }
  }

  /**
   * Admits one call of `principal`, or refuses it. Concurrency is checked before the rate, so a
   * call refused for CALL_LIMIT or STREAM_LIMIT costs no token. A refusal changes nothing.
   */
  admit(principal: string, kind: CallKind): Admission | Refusal {
    const now = this.now();
    const entry = this.touch(principal, now);
    const { callsPerPrincipal, streamsPerPrincipal } = this.limits;
    if (entry.calls >= callsPerPrincipal) {
      return this.refuse(
        "CALL_LIMIT",
        `principal ${principal} has ${entry.calls} calls in flight, the most this server allows one principal (${callsPerPrincipal}): wait for one to finish`,
      );
    }
    if (kind === "stream" && entry.streams >= streamsPerPrincipal) {
      return this.refuse(
        "STREAM_LIMIT",
        `principal ${principal} has ${entry.streams} streams open, the most this server allows one principal (${streamsPerPrincipal}): close one first`,
      );
    }
    const rate = this.take(principal, entry, now);
    if (rate) return rate;
    entry.calls++;
    if (kind === "stream") entry.streams++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        entry.calls--;
        if (kind === "stream") entry.streams--;
        // The entry stays (its bucket still counts); the sweep forgets it once it is idle and full.
      },
    };
  }

  /**
   * Admits one operation on a Session stream (rate only: the stream already bounds how many of
   * its operations are in flight), or refuses it.
   */
  admitOperation(principal: string): { ok: true } | Refusal {
    const now = this.now();
    const entry = this.touch(principal, now);
    return this.take(principal, entry, now) ?? { ok: true };
  }

  /** Counts and every remembered principal's account (for tests and the bench). */
  snapshot(): LimiterSnapshot {
    const now = this.now();
    const principals: LimiterSnapshot["principals"] = {};
    for (const [name, e] of this.entries) principals[name] = { calls: e.calls, streams: e.streams, tokens: this.tokensAt(e, now) };
    return { entries: this.entries.size, evicted: this.evicted, refused: { ...this.refused }, principals };
  }

  /** The principal's entry, created if new and moved to the most-recently-seen end; sweeps a little. */
  private touch(principal: string, now: number): Entry {
    let entry = this.entries.get(principal);
    if (entry) {
      this.entries.delete(principal);
    } else {
      entry = { tokens: this.limits.burst, refilledAt: now, calls: 0, streams: 0 };
    }
    this.sweep(now);
    this.entries.set(principal, entry);
    return entry;
  }

  /**
   * Forgets up to SWEEP_PER_ADMISSION of the least recently seen principals that are idle (nothing
   * in flight) with a full bucket — forgetting those loses nothing. Then, past `maxEntries`,
   * forgets the least recently seen principals with nothing in flight whatever their bucket.
   */
  private sweep(now: number): void {
    let checked = 0;
    for (const [name, e] of this.entries) {
      if (checked++ >= SWEEP_PER_ADMISSION) break;
      if (e.calls === 0 && this.tokensAt(e, now) >= this.limits.burst) {
        this.entries.delete(name);
        this.evicted++;
      }
    }
    // Room for the entry about to be (re)inserted.
    if (this.entries.size < this.maxEntries) return;
    for (const [name, e] of this.entries) {
      if (this.entries.size < this.maxEntries) break;
      if (e.calls !== 0) continue;
      this.entries.delete(name);
      this.evicted++;
    }
  }

  private tokensAt(e: Entry, now: number): number {
    // A clock that steps back (an injected one) refills nothing rather than draining.
    const elapsed = Math.max(0, now - e.refilledAt);
    return Math.min(this.limits.burst, e.tokens + (elapsed * this.limits.ratePerSecond) / 1000);
  }

  /** Takes one token from the principal's bucket; a refusal if it holds less than one. */
  private take(principal: string, e: Entry, now: number): Refusal | undefined {
    e.tokens = this.tokensAt(e, now);
    e.refilledAt = Math.max(e.refilledAt, now);
    if (e.tokens >= 1) {
      e.tokens -= 1;
      return undefined;
    }
    // (Less a hair, so floating-point dust (1.0000000001 ms) does not round up a whole millisecond.)
    const retryAfterMs = Math.max(1, Math.ceil(((1 - e.tokens) * 1000) / this.limits.ratePerSecond - 1e-6));
    const refusal = this.refuse(
      "RATE_LIMIT",
      `principal ${principal} is over this server's rate of ${this.limits.ratePerSecond} calls per second (bursts of ${this.limits.burst}): retry after ${retryAfterMs} ms`,
    );
    refusal.retryAfterMs = retryAfterMs;
    return refusal;
  }

  private refuse(reason: Refusal["reason"], message: string): Refusal {
    this.refused[reason]++;
    return { ok: false, reason, message };
  }
}

/**
 * The error a refusal leaves as: RESOURCE_EXHAUSTED with the refusal's reason, and in the
 * ErrorInfo metadata the principal, the limit, and (RATE_LIMIT) `retry_after_ms`.
 */
export function refusalError(principal: string, refusal: Refusal, limits: Readonly<PrincipalLimits>): VmmError {
  const limit =
    refusal.reason === "CALL_LIMIT" ? limits.callsPerPrincipal : refusal.reason === "STREAM_LIMIT" ? limits.streamsPerPrincipal : limits.ratePerSecond;
  const metadata: Record<string, string> = { principal, limit: String(limit) };
  if (refusal.retryAfterMs !== undefined) metadata.retry_after_ms = String(refusal.retryAfterMs);
  return serverError(Code.ResourceExhausted, refusal.reason, refusal.message, metadata);
}
