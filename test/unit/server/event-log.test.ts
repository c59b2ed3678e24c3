// EventLog: numbering, live and replayed feeds, gaps for observers the ring left behind, ending;
// and the feed's wire form (vmEventToWire) for every event kind.
import { setMaxListeners } from "node:events";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { BreakpointSize, BreakpointType } from "../../../src/core";
import { EventLog, type FeedItem, type VmEvent, type VmEventBody } from "../../../src/server/event-log";
import { vmEventToWire } from "../../../src/server/vm-service";
import { DetachCause, WatchEventsResponseSchema } from "../../../gen/vmm/debug/v1/vm_service_pb";

const changed = (vp: number): VmEventBody => ({ kind: "debugStateChanged", vp });

/** The next `n` items of a feed (each must arrive within the test's timeout). */
async function take(it: AsyncIterator<FeedItem>, n: number): Promise<FeedItem[]> {
  const out: FeedItem[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) throw new Error(`the feed ended after ${i} of ${n} items`);
    out.push(r.value);
  }
  return out;
}

const seqs = (items: FeedItem[]) => items.map((i) => ("sequence" in i ? i.sequence : `gap:${i.nextSequence}`));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));

/** A promise's value if it settles once pending microtasks and one macrotask have run, else "pending". */
async function settled<T>(p: Promise<T>): Promise<T | "pending"> {
  return Promise.race([p, new Promise<"pending">((res) => setImmediate(() => res("pending")))]);
}

describe("EventLog", () => {
  let ac: AbortController;
  beforeEach(() => {
    ac = new AbortController();
    setMaxListeners(32, ac.signal); // the tests share one signal among up to 16 feeds; the server gives each call its own
  });
  afterEach(() => ac.abort());

  it("numbers events 1, 2, 3 … and stamps them with the injected clock", () => {
    let t = 1000;
    const log = new EventLog({ now: () => t++ });
    expect(log.lastSequence).toBe(0n);
    const a = log.publish({ kind: "resumed" });
    const b = log.publish({ kind: "stopped", reason: { kind: "break" } });
    expect(a).toEqual({ sequence: 1n, timeMs: 1000, body: { kind: "resumed" } });
    expect(b).toEqual({ sequence: 2n, timeMs: 1001, body: { kind: "stopped", reason: { kind: "break" } } });
    expect(log.lastSequence).toBe(2n);
  });

  it("publishes without throwing when the injected clock throws", () => {
    const log = new EventLog({
      now: () => {
        throw new Error("clock broke");
      },
    });
    expect(log.publish({ kind: "reset" }).sequence).toBe(1n);
  });

  it("refuses a capacity below 1 or not a whole number", () => {
    expect(() => new EventLog({ capacity: 0 })).toThrow(RangeError);
    expect(() => new EventLog({ capacity: 1.5 })).toThrow(RangeError);
    expect(new EventLog({ capacity: 1 }).publish({ kind: "reset" }).sequence).toBe(1n);
  });

  it("gives a live-only subscriber just the events published after subscribe()", async () => {
    const log = new EventLog();
    log.publish(changed(0));
    log.publish(changed(1));
    const it = log.subscribe(undefined, ac.signal)[Symbol.asyncIterator]();
    log.publish(changed(2));
    log.publish(changed(3));
    const items = await take(it, 2);
    expect(items).toEqual([
      expect.objectContaining({ sequence: 3n, body: changed(2) }),
      expect.objectContaining({ sequence: 4n, body: changed(3) }),
    ]);
  });

  it("wakes a waiting subscriber on publish", async () => {
    const log = new EventLog();
    const it = log.subscribe(undefined, ac.signal)[Symbol.asyncIterator]();
    const next = it.next();
    expect(await settled(next)).toBe("pending");
    log.publish({ kind: "poweredOff" });
    expect(await next).toEqual({ done: false, value: expect.objectContaining({ sequence: 1n, body: { kind: "poweredOff" } }) });
  });

  it("replays held events after the given sequence, then continues live", async () => {
    const log = new EventLog();
    for (let i = 0; i < 5; i++) log.publish(changed(i));
    const it = log.subscribe(3n, ac.signal)[Symbol.asyncIterator]();
    log.publish(changed(5));
    expect(seqs(await take(it, 3))).toEqual(range(4, 6));
  });

  it("replays everything held from 0", async () => {
    const log = new EventLog({ capacity: 8 });
    for (let i = 0; i < 8; i++) log.publish(changed(i));
    const items = await take(log.subscribe(0n, ac.signal)[Symbol.asyncIterator](), 8);
    expect(items.map((e) => (e as VmEvent).body)).toEqual(range(0, 7).map((i) => changed(Number(i))));
    expect(seqs(items)).toEqual(range(1, 8));
  });

  it("treats a sequence past the newest event as live-only", async () => {
    const log = new EventLog();
    log.publish(changed(0));
    const it = log.subscribe(100n, ac.signal)[Symbol.asyncIterator]();
    log.publish(changed(1));
    expect(seqs(await take(it, 1))).toEqual([2n]);
  });

  it("gives a request older than the ring a gap naming the first held sequence, then the rest in order", async () => {
    const log = new EventLog({ capacity: 4 });
    for (let i = 0; i < 10; i++) log.publish(changed(i));
    const it = log.subscribe(2n, ac.signal)[Symbol.asyncIterator]();
    expect(await take(it, 1)).toEqual([{ kind: "gap", nextSequence: 7n }]);
    expect(seqs(await take(it, 4))).toEqual(range(7, 10));
    expect(await settled(it.next())).toBe("pending");
    // From 0 with events gone: the same gap.
    expect(seqs(await take(log.subscribe(0n, ac.signal)[Symbol.asyncIterator](), 5))).toEqual(["gap:7", ...range(7, 10)]);
  });

  it("gives a subscriber that stopped reading while capacity+N events were published one gap, then every later event once, in order", async () => {
    const capacity = 16;
    const log = new EventLog({ capacity });
    const it = log.subscribe(undefined, ac.signal)[Symbol.asyncIterator]();
    log.publish(changed(0));
    expect(seqs(await take(it, 1))).toEqual([1n]);
    // Not reading: 16 + 5 more events; 2..6 leave the ring.
    for (let i = 1; i <= capacity + 5; i++) log.publish(changed(i));
    const items = await take(it, 1 + capacity);
    expect(items[0]).toEqual({ kind: "gap", nextSequence: 7n });
    expect(seqs(items.slice(1))).toEqual(range(7, 22));
    log.publish(changed(99));
    expect(seqs(await take(it, 1))).toEqual([23n]);
    expect(await settled(it.next())).toBe("pending");
  });

  it("gives a subscriber that falls behind in the middle of a replay a gap, then skips ahead", async () => {
    const log = new EventLog({ capacity: 4 });
    for (let i = 0; i < 4; i++) log.publish(changed(i));
    const it = log.subscribe(0n, ac.signal)[Symbol.asyncIterator]();
    expect(seqs(await take(it, 2))).toEqual([1n, 2n]);
    for (let i = 4; i < 10; i++) log.publish(changed(i)); // holds 7..10 now; 3..6 are gone
    expect(seqs(await take(it, 5))).toEqual(["gap:7", ...range(7, 10)]);
  });

  it("gives 16 subscribers every event in order while they read at different paces", async () => {
    const log = new EventLog({ capacity: 64 });
    const total = 1000;
    const readers = Array.from({ length: 16 }, async (_, r) => {
      const seen: bigint[] = [];
      for await (const item of log.subscribe(undefined, ac.signal)) {
        if (!("sequence" in item)) throw new Error(`reader ${r} got a gap`);
        seen.push(item.sequence);
        if (seen.length === total) break;
        if (r % 4 === 0) await Promise.resolve(); // some read a little slower
      }
      return seen;
    });
    // Publish in bursts smaller than the ring, letting readers catch up between bursts.
    for (let i = 0; i < total; i += 32) {
      for (let j = i; j < Math.min(total, i + 32); j++) log.publish(changed(j % 4));
      await new Promise((r) => setImmediate(r));
    }
    const all = await Promise.all(readers);
    for (const seen of all) expect(seen).toEqual(range(1, total));
  });

  it("ends the feed when its signal aborts, while waiting and while not waiting", async () => {
    const log = new EventLog();
    const waitingAc = new AbortController();
    const waiting = log.subscribe(undefined, waitingAc.signal)[Symbol.asyncIterator]();
    const pending = waiting.next();
    expect(await settled(pending)).toBe("pending");
    waitingAc.abort();
    expect(await pending).toEqual({ done: true, value: undefined });

    const readingAc = new AbortController();
    const reading = log.subscribe(undefined, readingAc.signal)[Symbol.asyncIterator]();
    log.publish(changed(0));
    log.publish(changed(1));
    expect(seqs(await take(reading, 1))).toEqual([1n]);
    readingAc.abort();
    expect(await reading.next()).toEqual({ done: true, value: undefined });

    const already = new AbortController();
    already.abort();
    expect(await log.subscribe(0n, already.signal)[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
  });

  it("ends every feed on close(), and keeps numbering events published after it", async () => {
    const log = new EventLog();
    const feeds = Array.from({ length: 4 }, () => log.subscribe(undefined, ac.signal)[Symbol.asyncIterator]());
    const nexts = feeds.map((f) => f.next());
    log.close();
    for (const n of nexts) expect(await n).toEqual({ done: true, value: undefined });
    expect(log.publish({ kind: "reset" }).sequence).toBe(1n);
    expect(await log.subscribe(0n, ac.signal)[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
  });
});

describe("vmEventToWire", () => {
  const bp = { address: 0xffff_ffff_8010_10afn, type: BreakpointType.Execute, size: BreakpointSize.Byte };
  const bodies: VmEventBody[] = [
    { kind: "attached", holder: "ipv4:127.0.0.1:5555", stream: true },
    { kind: "detached", cause: "lease_expired" },
    { kind: "resumed" },
    { kind: "stopped", reason: { kind: "hwBreakpoint", vp: 1, breakpoint: bp } },
    { kind: "stepped", vp: 0, executed: 7, stop: { kind: "singleStep", vp: 0 } },
    { kind: "stepped", vp: 0, executed: 100 },
    { kind: "debugStateChanged", vp: 1 },
    { kind: "poweredOff" },
    { kind: "reset" },
    { kind: "backendLost", detail: "qemu exited with code 1" },
  ];

  it.each(bodies.map((b) => [b.kind, b] as const))("puts an event of kind %s on the wire with its vm, sequence and time", (_kind, body) => {
    const msg = fromBinary(WatchEventsResponseSchema, toBinary(WatchEventsResponseSchema, vmEventToWire("demo", { sequence: 42n, timeMs: 1_700_000_000_123, body })));
    expect(msg.vm).toBe("demo");
    expect(msg.sequence).toBe(42n);
    expect(timestampMs(msg.time!)).toBe(1_700_000_000_123);
    expect(msg.event.case).toBe(body.kind);
  });

  it("keeps each event's fields", () => {
    const wire = (body: VmEventBody) => vmEventToWire("demo", { sequence: 1n, timeMs: 0, body }).event;
    expect(wire(bodies[0]!)).toMatchObject({ case: "attached", value: { holder: "ipv4:127.0.0.1:5555", stream: true } });
    expect(wire({ kind: "detached", cause: "requested" })).toMatchObject({ value: { cause: DetachCause.REQUESTED } });
    expect(wire({ kind: "detached", cause: "lease_expired" })).toMatchObject({ value: { cause: DetachCause.LEASE_EXPIRED } });
    expect(wire({ kind: "detached", cause: "stream_closed" })).toMatchObject({ value: { cause: DetachCause.STREAM_CLOSED } });
    expect(wire({ kind: "detached", cause: "server_shutdown" })).toMatchObject({ value: { cause: DetachCause.SERVER_SHUTDOWN } });
    expect(wire({ kind: "detached", cause: "stream_overflow" })).toMatchObject({ value: { cause: DetachCause.STREAM_OVERFLOW } });
    expect(wire(bodies[3]!)).toMatchObject({
      case: "stopped",
      value: { reason: { reason: { case: "hwBreakpoint", value: { vp: 1, breakpoint: { address: bp.address } } } } },
    });
    expect(wire(bodies[4]!)).toMatchObject({ value: { vp: 0, executed: 7, stop: { reason: { case: "singleStep" } } } });
    expect((wire(bodies[5]!).value as { stop?: unknown }).stop).toBeUndefined();
    expect(wire(bodies[9]!)).toMatchObject({ case: "backendLost", value: { detail: "qemu exited with code 1" } });
  });

  it("puts a gap on the wire with sequence 0 and the next sequence", () => {
    const msg = vmEventToWire("demo", { kind: "gap", nextSequence: 4097n });
    expect(msg.sequence).toBe(0n);
    expect(msg.event).toMatchObject({ case: "gap", value: { nextSequence: 4097n } });
  });
});
