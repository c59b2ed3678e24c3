// PrincipalLimiter against an injected clock: the rate and its burst, refill, concurrent calls and
// streams, independence of principals, and the bound on remembered principals. No sleeps.
import { Code } from "../../../src/core";
import {
  DEFAULT_PRINCIPAL_LIMITS,
  PrincipalLimiter,
  refusalError,
  type Admission,
  type PrincipalLimits,
  type Refusal,
} from "../../../src/server/auth/limits";
import { toErrorStatus } from "../../../src/server/errors";

function clock(start = 1000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

function limiter(limits: Partial<PrincipalLimits>, c = clock(), maxEntries?: number) {
  return { c, l: new PrincipalLimiter({ limits, now: c.now, maxEntries }) };
}

function admitted(r: Admission | Refusal | { ok: true }): Admission {
  if (!r.ok) throw new Error(`refused: ${r.reason}: ${r.message}`);
  return r as Admission;
}

function refused(r: Admission | Refusal | { ok: true }): Refusal {
  if (r.ok) throw new Error("admitted, expected a refusal");
  return r;
}

const HIGH = { callsPerPrincipal: 1_000_000, streamsPerPrincipal: 1_000_000 };

describe("PrincipalLimiter: rate", () => {
  test("a burst is admitted at once, the next call is RATE_LIMIT with a retry time", () => {
    const { l } = limiter({ ...HIGH, ratePerSecond: 10, burst: 5 });
    for (let i = 0; i < 5; i++) admitted(l.admit("alice", "unary")).release();
    const r = refused(l.admit("alice", "unary"));
    expect(r.reason).toBe("RATE_LIMIT");
    expect(r.retryAfterMs).toBe(100); // one token at 10/s
    expect(r.message).toMatch(/alice.*10 calls per second/);
  });

  test("the bucket refills at the rate, never past the burst", () => {
    const { c, l } = limiter({ ...HIGH, ratePerSecond: 10, burst: 5 });
    for (let i = 0; i < 5; i++) admitted(l.admit("alice", "unary")).release();
    c.advance(99);
    expect(refused(l.admit("alice", "unary")).retryAfterMs).toBe(1);
    c.advance(1); // 100 ms: one token
    admitted(l.admit("alice", "unary")).release();
    refused(l.admit("alice", "unary"));
    c.advance(250); // 2.5 tokens: two calls
    admitted(l.admit("alice", "unary")).release();
    admitted(l.admit("alice", "unary")).release();
    expect(refused(l.admit("alice", "unary")).retryAfterMs).toBe(50);
    c.advance(60_000); // a long quiet spell refills to the burst, not beyond
    for (let i = 0; i < 5; i++) admitted(l.admit("alice", "unary")).release();
    refused(l.admit("alice", "unary"));
  });

  test("sustained: over 10 s at 10/s with burst 5, exactly 5 + 100 calls are admitted", () => {
    const { c, l } = limiter({ ...HIGH, ratePerSecond: 10, burst: 5 });
    let ok = 0;
    for (let step = 0; step <= 10_000; step++) {
      // one attempt per millisecond, far over the rate
      const r = l.admit("alice", "unary");
      if (r.ok) {
        ok++;
        r.release();
      }
      c.advance(1);
    }
    expect(ok).toBe(5 + 100);
    expect(l.snapshot().refused.RATE_LIMIT).toBe(10_001 - 105);
  });

  test("stream operations draw on the same bucket as calls", () => {
    const { c, l } = limiter({ ...HIGH, ratePerSecond: 1, burst: 3 });
    const stream = admitted(l.admit("alice", "stream"));
    expect(l.admitOperation("alice").ok).toBe(true);
    expect(l.admitOperation("alice").ok).toBe(true);
    const r = refused(l.admitOperation("alice"));
    expect(r.reason).toBe("RATE_LIMIT");
    expect(r.retryAfterMs).toBe(1000);
    expect(refused(l.admit("alice", "unary")).reason).toBe("RATE_LIMIT");
    c.advance(1000);
    expect(l.admitOperation("alice").ok).toBe(true);
    stream.release();
  });

  test("a clock that steps back refills nothing and drains nothing", () => {
    const { c, l } = limiter({ ...HIGH, ratePerSecond: 10, burst: 2 });
    admitted(l.admit("alice", "unary")).release();
    c.advance(-5000);
    admitted(l.admit("alice", "unary")).release();
    refused(l.admit("alice", "unary"));
    c.advance(5100); // back where it was, plus 100 ms: one token
    admitted(l.admit("alice", "unary")).release();
  });
});

describe("PrincipalLimiter: concurrency", () => {
  test("calls in flight are capped; a release makes room; release is idempotent", () => {
    const { l } = limiter({ callsPerPrincipal: 3, streamsPerPrincipal: 2, ratePerSecond: 1000, burst: 1000 });
    const calls = [0, 1, 2].map(() => admitted(l.admit("alice", "unary")));
    const r = refused(l.admit("alice", "unary"));
    expect(r.reason).toBe("CALL_LIMIT");
    expect(r.retryAfterMs).toBeUndefined();
    expect(r.message).toMatch(/3 calls in flight/);
    calls[0].release();
    calls[0].release(); // twice: still only one slot back
    calls[0].release();
    const again = admitted(l.admit("alice", "unary"));
    expect(refused(l.admit("alice", "unary")).reason).toBe("CALL_LIMIT");
    expect(l.snapshot().principals.alice.calls).toBe(3);
    for (const c of [again, calls[1], calls[2]]) c.release();
    expect(l.snapshot().principals.alice.calls).toBe(0);
  });

  test("streams are capped apart from calls, and a stream is a call", () => {
    const { l } = limiter({ callsPerPrincipal: 4, streamsPerPrincipal: 2, ratePerSecond: 1000, burst: 1000 });
    const s1 = admitted(l.admit("alice", "stream"));
    const s2 = admitted(l.admit("alice", "stream"));
    expect(refused(l.admit("alice", "stream")).reason).toBe("STREAM_LIMIT");
    // unary calls still fit: 2 streams + 2 unary = 4 calls
    const u1 = admitted(l.admit("alice", "unary"));
    const u2 = admitted(l.admit("alice", "unary"));
    expect(refused(l.admit("alice", "unary")).reason).toBe("CALL_LIMIT");
    s1.release();
    // a freed stream slot is also a freed call slot
    const s3 = admitted(l.admit("alice", "stream"));
    expect(l.snapshot().principals.alice).toMatchObject({ calls: 4, streams: 2 });
    for (const a of [s2, s3, u1, u2]) a.release();
    expect(l.snapshot().principals.alice).toMatchObject({ calls: 0, streams: 0 });
  });

  test("a call refused for concurrency costs no token", () => {
    const { l } = limiter({ callsPerPrincipal: 1, streamsPerPrincipal: 1, ratePerSecond: 1, burst: 2 });
    const a = admitted(l.admit("alice", "unary"));
    for (let i = 0; i < 10; i++) expect(refused(l.admit("alice", "unary")).reason).toBe("CALL_LIMIT");
    a.release();
    admitted(l.admit("alice", "unary")).release(); // the second token is still there
    expect(refused(l.admit("alice", "unary")).reason).toBe("RATE_LIMIT");
  });
});

describe("PrincipalLimiter: one principal's exhaustion does not touch another's", () => {
  test("rate", () => {
    const { l } = limiter({ ...HIGH, ratePerSecond: 10, burst: 3 });
    for (let i = 0; i < 3; i++) admitted(l.admit("flood", "unary")).release();
    for (let i = 0; i < 100; i++) refused(l.admit("flood", "unary"));
    for (let i = 0; i < 3; i++) admitted(l.admit("calm", "unary")).release();
    expect(l.snapshot().principals.calm.tokens).toBe(0);
  });

  test("calls and streams", () => {
    const { l } = limiter({ callsPerPrincipal: 2, streamsPerPrincipal: 1, ratePerSecond: 1000, burst: 1000 });
    const held = [admitted(l.admit("flood", "stream")), admitted(l.admit("flood", "unary"))];
    expect(refused(l.admit("flood", "unary")).reason).toBe("CALL_LIMIT");
    const calm = [admitted(l.admit("calm", "stream")), admitted(l.admit("calm", "unary"))];
    for (const a of [...held, ...calm]) a.release();
  });
});

describe("PrincipalLimiter: remembered principals are bounded", () => {
  test("idle principals with a full bucket are forgotten as others come and go", () => {
    const { c, l } = limiter({ ...HIGH, ratePerSecond: 100, burst: 10 });
    for (let i = 0; i < 1000; i++) {
      admitted(l.admit(`p${i}`, "unary")).release();
      c.advance(100); // 10 tokens: any earlier principal's bucket is full again
    }
    // each admission forgets up to two idle ones: only the newest few remain
    expect(l.snapshot().entries).toBeLessThanOrEqual(2);
    expect(l.snapshot().evicted).toBeGreaterThanOrEqual(998);
  });

  test("past maxEntries the least recently seen idle principals are forgotten, busy ones never", () => {
    const { l } = limiter({ ...HIGH, ratePerSecond: 1, burst: 10 }, clock(), 100);
    // 5 busy principals first (oldest), each holding a call
    const busy = Array.from({ length: 5 }, (_, i) => admitted(l.admit(`busy${i}`, "unary")));
    // 100,000 distinct names with no time passing: none has a full bucket, so only the cap bounds them
    for (let i = 0; i < 100_000; i++) {
      admitted(l.admit(`name${i}`, "unary")).release();
      if (i % 997 === 0 && l.snapshot().entries > 100) throw new Error(`${l.snapshot().entries} entries after ${i + 1} names`);
    }
    const snap = l.snapshot();
    expect(snap.entries).toBe(100);
    for (let i = 0; i < 5; i++) expect(snap.principals[`busy${i}`]).toMatchObject({ calls: 1 });
    expect(snap.principals["name99999"]).toBeDefined();
    expect(snap.principals["name0"]).toBeUndefined();
    for (const b of busy) b.release();
  });

  test("busy principals past the cap are kept (bounded by calls in flight), and forgotten once idle", () => {
    const { c, l } = limiter({ ...HIGH, ratePerSecond: 1000, burst: 10 }, clock(), 10);
    const busy = Array.from({ length: 20 }, (_, i) => admitted(l.admit(`busy${i}`, "unary")));
    expect(l.snapshot().entries).toBe(20);
    for (const b of busy) b.release();
    c.advance(10); // every bucket full again
    for (let i = 0; i < 10; i++) admitted(l.admit("one", "unary")).release();
    expect(l.snapshot().entries).toBe(1);
  });

  test("a forgotten principal's in-flight release is never lost: busy entries are not evicted", () => {
    const { c, l } = limiter({ callsPerPrincipal: 1, streamsPerPrincipal: 1, ratePerSecond: 1000, burst: 1 }, clock(), 1);
    const a = admitted(l.admit("alice", "unary"));
    c.advance(1000);
    for (let i = 0; i < 10; i++) admitted(l.admit(`other${i}`, "unary")).release();
    expect(refused(l.admit("alice", "unary")).reason).toBe("CALL_LIMIT");
    a.release();
    admitted(l.admit("alice", "unary")).release();
  });
});

describe("PrincipalLimiter: configuration and errors", () => {
  test("defaults", () => {
    expect(DEFAULT_PRINCIPAL_LIMITS).toEqual({
      callsPerPrincipal: 64,
      streamsPerPrincipal: 16,
      ratePerSecond: 500,
      burst: 1000,
      maxRequestBytes: 5 * 1024 * 1024,
      maxResponseBytes: 5 * 1024 * 1024,
    });
    expect(new PrincipalLimiter().limits).toEqual(DEFAULT_PRINCIPAL_LIMITS);
    expect(new PrincipalLimiter({ limits: { burst: 7 } }).limits.burst).toBe(7);
  });

  test("nonsense limits are refused", () => {
    expect(() => new PrincipalLimiter({ limits: { ratePerSecond: 0 } })).toThrow(RangeError);
    expect(() => new PrincipalLimiter({ limits: { burst: 0.5 } })).toThrow(RangeError);
    expect(() => new PrincipalLimiter({ limits: { callsPerPrincipal: NaN } })).toThrow(RangeError);
    expect(() => new PrincipalLimiter({ limits: { callsPerPrincipal: 2, streamsPerPrincipal: 3 } })).toThrow(/a stream is a call/);
    expect(() => new PrincipalLimiter({ maxEntries: 0 })).toThrow(RangeError);
  });

  test("a refusal leaves as RESOURCE_EXHAUSTED with its reason and metadata", () => {
    const { l } = limiter({ ...HIGH, ratePerSecond: 4, burst: 1 });
    admitted(l.admit("alice", "unary")).release();
    const status = toErrorStatus(refusalError("alice", refused(l.admit("alice", "unary")), l.limits));
    expect(status).toMatchObject({
      code: Code.ResourceExhausted,
      reason: "RATE_LIMIT",
      metadata: { principal: "alice", limit: "4", retry_after_ms: "250" },
    });
  });
});
