// VmmDebugClient.watchEvents against a real server: typed events in order, replay after a
// sequence, and reconnection (a server that comes up late, a connection that drops mid-feed).
import { connect as connectTcp, createServer, type Server, type Socket } from "node:net";
import { Status } from "nice-grpc";
import { connect, type VmEvent, type VmmDebugError } from "../../src/client";
import { createEmuMachine } from "../../src/emu";
import { createVmmDebugServer, type Logger } from "../../src/server";
import { expectRpcError, image, startHarness, sym, type Harness } from "./harness";

const VM = "demo";
const quiet: Logger = { info: () => undefined, warn: () => undefined };

/** Reads `n` items of a feed, in a bounded time. */
async function take<T>(it: AsyncIterator<T>, n: number, ms = 30_000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`only ${out.length} of ${n} items within ${ms} ms`)), deadline - Date.now()))),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`the feed ended after ${out.length} of ${n} items`);
    out.push(r.value);
  }
  return out;
}

/** "stopped:hwBreakpoint", "detached:requested", "stepped:0", or the kind. */
function what(e: VmEvent): string {
  const ev = e.event;
  switch (ev.kind) {
    case "stopped":
      return `stopped:${ev.reason.kind}`;
    case "detached":
      return `detached:${ev.cause}`;
    case "debugStateChanged":
    case "stepped":
      return `${ev.kind}:${ev.vp}`;
    default:
      return ev.kind;
  }
}

function expectConsecutive(events: VmEvent[]): void {
  const first = events[0]!.sequence;
  expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => first + BigInt(i)));
}

/** A promise and the function that resolves it. */
function signal(): [Promise<void>, () => void] {
  let fire!: () => void;
  const p = new Promise<void>((resolve) => (fire = resolve));
  return [p, fire];
}

/** A TCP relay to `target` whose live connections can be cut (it keeps accepting new ones). */
async function startRelay(target: { host: string; port: number }): Promise<{ address: string; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connectTcp(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined); // a cut connection errors; that is the point
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("VmmDebugClient.watchEvents", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 1 });
  });
  afterAll(async () => {
    await h.close();
  });

  it("delivers a session's events typed, in order, with consecutive sequences; afterSequence replays them", async () => {
    const ac = new AbortController();
    const [subscribed, onSubscribed] = signal();
    const feed = h.client.watchEvents(VM, { signal: ac.signal, onSubscribed })[Symbol.asyncIterator]();
    const reading = take(feed, 7);
    await subscribed;
    const before = Date.now();

    const s = await h.client.attach(VM);
    await s.break();
    expect(await s.resume()).toEqual({ kind: "break" });
    await s.setBreakpoint(0, sym("tick").gva);
    const hit = await s.resume();
    const stepped = await s.step(0, { count: 3 });
    await s.detach();

    const events = await reading;
    expect(events.map(what)).toEqual([
      "attached",
      "stopped:break",
      "debugStateChanged:0",
      "resumed",
      "stopped:hwBreakpoint",
      "stepped:0",
      "detached:requested",
    ]);
    expectConsecutive(events);
    expect(events[0]!.event).toMatchObject({ kind: "attached", stream: true });
    expect(events[4]!.event).toEqual({ kind: "stopped", reason: hit });
    expect(events[5]!.event).toEqual({ kind: "stepped", vp: 0, executed: stepped.executed });
    for (const e of events) {
      expect(e.vm).toBe(VM);
      expect(e.time.getTime()).toBeGreaterThanOrEqual(before - 5);
      expect(e.time.getTime()).toBeLessThanOrEqual(Date.now() + 5);
    }

    // Replay: the same events from the server's ring.
    const replay = h.client.watchEvents(VM, { afterSequence: events[0]!.sequence - 1n, signal: ac.signal })[Symbol.asyncIterator]();
    expect(await take(replay, 7)).toEqual(events);

    // An abort ends both feeds without an error.
    ac.abort();
    expect(await feed.next()).toEqual({ value: undefined, done: true });
    expect(await replay.next()).toEqual({ value: undefined, done: true });
  });

  it("fails at once, without retrying, for an error other than UNAVAILABLE", async () => {
    const retries: number[] = [];
    const feed = h.client.watchEvents("nope", { onRetry: (_e, attempt) => retries.push(attempt) })[Symbol.asyncIterator]();
    await expectRpcError(feed.next(), Status.NOT_FOUND, "VM_NOT_FOUND");
    expect(retries).toEqual([]);
  });

  it("resumes after the last delivered sequence when the connection drops mid-feed: nothing lost, nothing repeated", async () => {
    const [host, port] = h.address.split(":");
    const relay = await startRelay({ host: host!, port: Number(port) });
    const client = connect(relay.address);
    const ac = new AbortController();
    try {
      const [subscribed, onSubscribed] = signal();
      const [retried, onRetry] = signal();
      const errors: VmmDebugError[] = [];
      const feed = client
        .watchEvents(VM, {
          signal: ac.signal,
          onSubscribed,
          onRetry: (e) => {
            errors.push(e);
            onRetry();
          },
        })
        [Symbol.asyncIterator]();
      const first = take(feed, 2);
      await subscribed;

      const s = await h.client.attach(VM);
      await s.break();
      const seen = await first;
      expect(seen.map(what)).toEqual(["attached", "stopped:break"]);

      relay.cut();
      const rest = take(feed, 4); // read on: the feed notices the cut and reconnects
      await retried;
      // Published while the watcher is away (or reconnecting): the replay brings them.
      await s.setBreakpoint(0, sym("tick").gva);
      expect(await s.resume()).toEqual({ kind: "break" });
      expect((await s.resume()).kind).toBe("hwBreakpoint");
      await s.detach();

      const events = [...seen, ...(await rest)];
      expect(events.map(what)).toEqual(["attached", "stopped:break", "debugStateChanged:0", "resumed", "stopped:hwBreakpoint", "detached:requested"]);
      expectConsecutive(events);
      expect(errors[0]!.code).toBe(Status.UNAVAILABLE);
    } finally {
      ac.abort();
      client.close();
      await relay.close();
    }
  });
});

describe("VmmDebugClient.watchEvents against a server that starts late", () => {
  it("retries UNAVAILABLE with backoff until the server is up, then delivers", async () => {
    const port = await freePort();
    const client = connect(`127.0.0.1:${port}`);
    const vm = await createEmuMachine({ id: VM, image, vpCount: 1 });
    const server = createVmmDebugServer({ vms: [vm], logger: quiet });
    const ac = new AbortController();
    try {
      const [retried, onRetry] = signal();
      const [subscribed, onSubscribed] = signal();
      const delays: number[] = [];
      const feed = client
        .watchEvents(VM, {
          afterSequence: 0n, // everything the new server holds
          signal: ac.signal,
          maxRetries: 30,
          onSubscribed,
          onRetry: (e, _attempt, delay) => {
            expect(e.code).toBe(Status.UNAVAILABLE);
            delays.push(delay);
            onRetry();
          },
        })
        [Symbol.asyncIterator]();
      const first = take(feed, 1);
      await retried; // the first call failed: nothing listens yet
      await server.listen(`127.0.0.1:${port}`);
      await subscribed; // within the retries: the channel's own reconnection backoff allows it

      const s = await client.attach(VM);
      await s.detach();
      const [e] = await first;
      expect(e!.event).toMatchObject({ kind: "attached", stream: true });
      expect(e!.sequence).toBe(1n);
      expect(delays[0]).toBe(50);
      // Doubling, capped at 2 s.
      delays.forEach((d, i) => expect(d).toBe(Math.min(50 * 2 ** i, 2000)));
    } finally {
      ac.abort();
      client.close();
      await server.close();
      await vm.close();
    }
  });
});
