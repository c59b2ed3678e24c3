// The SDK's Session over both transports (the Session stream by default, and unary) against a
// real server and real emu VMs: run control, pushed stops, pipelining, batched steps, scatter
// reads, and what closing a session (or killing its process) leaves behind.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Status } from "nice-grpc";
import type { Session, SessionStop, Transport, VmEvent, VmmDebugClient } from "../../src/client";
import { MAX_BUFFERED_STOPS, connect } from "../../src/client";
import { expectRpcError, readU64, startHarness, sym, u64Bytes, waitFor, type Harness } from "./harness";

const VM = "demo";
const SDK = join(__dirname, "../../src/client");

/** Reads `feed` until `match`, in a bounded time; returns everything read. */
async function readUntil<T>(feed: AsyncIterator<T>, match: (x: T) => boolean, ms = 20_000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      feed.next(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no matching item within ${ms} ms (read ${out.length})`)), left))),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`the feed ended after ${out.length} items without a match`);
    out.push(r.value);
    if (match(r.value)) return out;
  }
}

/** A live event feed of the VM, subscribed by the server when this resolves. */
async function liveEvents(client: VmmDebugClient, signal: AbortSignal): Promise<AsyncIterator<VmEvent>> {
  let onSubscribed!: () => void;
  const subscribed = new Promise<void>((resolve) => (onSubscribed = resolve));
  const it = client.watchEvents(VM, { signal, onSubscribed })[Symbol.asyncIterator]();
  let first: Promise<IteratorResult<VmEvent>> | undefined = it.next(); // starts the call
  first.catch(() => undefined); // read (and rethrown) by next()
  await subscribed;
  return {
    next: () => {
      const p = first ?? it.next();
      first = undefined;
      return p;
    },
  };
}

/**
 * The events of the next session on the feed, from its `attached` to its `detached` (a feed
 * opened just after a release may still get that earlier session's `detached` first).
 */
async function nextSessionEvents(events: AsyncIterator<VmEvent>): Promise<VmEvent[]> {
  let attached = false;
  const seen = await readUntil(events, (e) => (attached ||= e.event.kind === "attached") && e.event.kind === "detached");
  return seen.slice(seen.findIndex((e) => e.event.kind === "attached"));
}

/** Nobody attached and the VM running again, within a generous bound. */
async function waitReleased(client: VmmDebugClient): Promise<void> {
  await waitFor(
    async () => {
      const info = await client.getVm(VM);
      return info.attached === undefined && info.runState === "running";
    },
    20_000,
    "the VM released (not attached, running)",
  );
}

/**
 * The debug state of VP 0 is clear: a fresh session's batched step of 2,000 instructions (the
 * demo loop passes `tick` every few instructions) runs to the end without a breakpoint stop.
 */
async function expectNoBreakpointArmed(client: VmmDebugClient): Promise<void> {
  const s = await client.attach(VM);
  try {
    await s.break();
    const r = await s.step(0, { count: 2000 });
    expect({ executed: r.executed, stop: r.stop }).toEqual({ executed: 2000, stop: undefined });
  } finally {
    await s.detach();
  }
}

describe.each(["stream", "unary"] as const)("Session over %s", (transport: Transport) => {
  let h: Harness;
  let session: Session | undefined;
  const attach = async () => (session = await h.client.attach(VM, transport === "stream" ? {} : { transport }));

  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterEach(async () => {
    await session?.close().catch(() => undefined);
    session = undefined;
    await waitReleased(h.client);
  });
  afterAll(async () => {
    await h.close();
  });

  it(`attaches over ${transport === "stream" ? "the Session stream by default" : "unary calls when asked"}`, async () => {
    const s = await attach();
    expect(s.transport).toBe(transport);
    expect(s.vm).toBe(VM);
    expect(s.id).toMatch(/^[0-9a-f]{32}$/);
    expect(s.lease).toBe(transport === "stream" ? 0 : 600_000);
    const info = await h.client.getVm(VM);
    expect(info.attached?.holder).toMatch(/127\.0\.0\.1/);
    // The stream is the lease: no expiry is shown for it.
    if (transport === "stream") expect(info.attached?.leaseExpiresAt.getTime()).toBe(0);
  });

  it("answers break with resume() = break, a hardware breakpoint hit through resume(), and stops() sees the same stops with rising sequences", async () => {
    const s = await attach();
    const stops = s.stops();
    if (transport === "unary") {
      // The unary feed starts when the server subscribes it: single-step until it shows a stop,
      // then let the VM run again (a Resume cut short by its deadline leaves it running).
      await s.break();
      await s.resume();
      let live = false;
      void stops.next().then(() => (live = true));
      await waitFor(async () => live || (await s.step(0), false), 20_000, "the unary stops() feed live");
      expect(await s.resume({ deadlineMs: 50 }).catch((e: unknown) => e)).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    }

    await s.break();
    expect(await s.resume()).toEqual({ kind: "break" });
    await s.setBreakpoint(0, sym("tick").gva);
    const hit = await s.resume();
    expect(hit).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: sym("tick").gva, type: "execute", size: 1 } });
    expect(await s.resume()).toEqual(hit);

    let hits = 0;
    const seen = await readUntil(stops, (x: SessionStop) => x.reason.kind === "hwBreakpoint" && ++hits === 2);
    const tail = seen.slice(-3);
    expect(tail.map((x) => x.reason)).toEqual([{ kind: "break" }, hit, hit]);
    expect(tail.map((x) => x.vp)).toEqual([undefined, 0, 0]);
    for (let i = 1; i < tail.length; i++) expect(tail[i]!.sequence).toBeGreaterThan(tail[i - 1]!.sequence);
    await stops.return?.();
  });

  it("keeps the stop of a cancelled resume() for the next one, and a call's deadline fails only that call", async () => {
    const s = await attach();
    await s.break();
    await s.resume(); // break
    // No breakpoint: the VM runs past the deadline, and keeps running.
    expect(await s.resume({ deadlineMs: 100 }).catch((e: unknown) => e)).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    const ac = new AbortController();
    const pending = s.resume({ signal: ac.signal }).catch((e: unknown) => e);
    ac.abort();
    expect(await pending).toMatchObject({ code: Status.CANCELLED });
    expect((await h.client.getVm(VM)).runState).toBe("running");
    await s.break();
    expect(await s.resume()).toEqual({ kind: "break" });
  });

  it("answers 1,000 pipelined readMemory calls, each with its own bytes", async () => {
    const s = await attach();
    const base = sym("text_start").gpa;
    const whole = await s.readMemory({ gpa: base }, 4096 + 16);
    const reads = Array.from({ length: 1000 }, (_, i) => s.readMemory({ gpa: base + BigInt(i * 4) }, 16));
    const got = await Promise.all(reads);
    got.forEach((bytes, i) => expect(bytes).toEqual(whole.subarray(i * 4, i * 4 + 16)));
  });

  it("streams a read longer than the unary cap", async () => {
    const s = await attach();
    const len = 6 * 1024 * 1024; // over the 4 MiB cap, within the demo's RAM
    const big = await s.readMemory({ gpa: 0n }, len);
    expect(big.length).toBe(len);
    expect(big.subarray(Number(sym("text_start").gpa), Number(sym("text_start").gpa) + 64)).toEqual(
      await s.readMemory({ gpa: sym("text_start").gpa }, 64),
    );
  });

  it("gives a batched step's PC trace equal to the RIPs of as many single steps from the same state", async () => {
    const s = await attach();
    await s.break();
    expect(await s.resume()).toEqual({ kind: "break" }); // the stop break() made, reported
    const n = 300;
    const start = await s.getVpState(0);
    const counter = await readU64(h.vms[0]!, sym("counter").gpa);

    const batch = await s.step(0, { count: n, trace: "pc" });
    expect({ executed: batch.executed, stop: batch.stop, halted: batch.halted, pcs: batch.pcs.length }).toEqual({
      executed: n,
      stop: undefined,
      halted: false,
      pcs: n,
    });

    // Back to the same state (registers and the counter the loop branches on), then one by one.
    await s.setVpState(0, start);
    await s.writeMemory({ gpa: sym("counter").gpa }, u64Bytes(counter));
    const rips: bigint[] = [];
    for (let i = 0; i < n; i++) {
      expect(await s.step(0)).toEqual({ kind: "singleStep", vp: 0 });
      const st = await s.getVpState(0);
      if (st.arch !== "x86_64") throw new Error("not x86");
      rips.push(st.state.rip);
    }
    expect(rips).toEqual([...batch.pcs]);

    // A register trace: each instruction's delta names RIP (register 16) with the traced PC.
    const regs = await s.step(0, { count: 50, trace: "registers" });
    expect(regs.deltas).toHaveLength(50);
    regs.deltas.forEach((d, i) => {
      expect(d.registers).toHaveLength(d.values.length);
      expect(d.values[d.registers.indexOf(16)]).toBe(regs.pcs[i]);
    });
  });

  it("answers readMany with one bad range with that range's error only", async () => {
    const s = await attach();
    const good = { gpa: sym("text_start").gpa };
    const results = await s.readMany([
      { address: good, length: 32 },
      { address: { gpa: 0xffff_ffff_0000n }, length: 8 },
      { address: { gva: sym("counter").gva, vp: 0 }, length: 8 },
    ]);
    expect(results).toHaveLength(3);
    expect(results[0]).toEqual({ data: await s.readMemory(good, 32) });
    const bad = results[1]!;
    if (!("error" in bad)) throw new Error("the unmapped range was read");
    expect({ code: bad.error.codeName, reason: bad.error.reason }).toEqual({ code: "OUT_OF_RANGE", reason: "GPA_UNMAPPED" });
    expect("data" in results[2]! && results[2].data.length).toBe(8);
    // The client's call needs no session.
    expect(await h.client.readMany(VM, [{ address: good, length: 32 }])).toEqual([results[0]]);
  });

  it("answers getVpStates for every VP, or the ones asked for", async () => {
    const s = await attach();
    await s.break();
    const all = await s.getVpStates();
    expect(all.map((e) => e.vp)).toEqual([0, 1]);
    expect(all[1]!.state).toEqual(await s.getVpState(1));
    expect(await s.getVpStates([1])).toEqual([all[1]]);
    expect(await h.client.getVpStates(VM)).toEqual(all);
  });

  it(`${transport === "stream" ? "close() closes the stream" : "close() detaches"}: the VM runs, nobody is attached, and its breakpoints are gone`, async () => {
    const ac = new AbortController();
    const events = await liveEvents(h.client, ac.signal);
    try {
      const s = await attach();
      await s.break();
      await s.setBreakpoint(0, sym("tick").gva);
      await s.close();
      session = undefined;
      await waitReleased(h.client);
      const seen = await nextSessionEvents(events);
      expect(seen.at(-1)!.event).toEqual({ kind: "detached", cause: transport === "stream" ? "streamClosed" : "requested" });
      await expectRpcError(s.break(), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
      await expectNoBreakpointArmed(h.client);
    } finally {
      ac.abort();
    }
  });

  it("detach() ends the session; later calls fail with NOT_ATTACHED", async () => {
    const s = await attach();
    await s.break();
    await s.detach();
    session = undefined;
    await expectRpcError(s.break(), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
    expect((await h.client.getVm(VM)).attached).toBeUndefined();
  });
});

describe("Session stream that the server ends", () => {
  let h: Harness;
  beforeAll(async () => {
    // Room for very few queued answers: a burst of pipelined reads overflows the stream.
    h = await startHarness({ vpCount: 1, sessionStream: { maxQueuedMessages: 4, maxQueuedBytes: 128 * 1024 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it("fails every pending call with the server's status and reason (STREAM_OVERFLOW), and later calls with NOT_ATTACHED", async () => {
    const ac = new AbortController();
    const events = await liveEvents(h.client, ac.signal);
    // A small HTTP/2 window: the server's answers back up in its queue instead of the transport's.
    const narrow = connect(h.address, { channelOptions: { "grpc-node.flow_control_window": 16 * 1024 } });
    try {
      const s = await narrow.attach(VM);
      const stops = s.stops();
      const reads = Array.from({ length: 200 }, (_, i) => s.readMemory({ gpa: BigInt(i) * 0x10000n }, 0x10000).then(() => undefined, (e: unknown) => e));
      const outcomes = await Promise.all(reads);
      const failed = outcomes.filter((o) => o !== undefined);
      expect(failed.length).toBeGreaterThan(0);
      for (const e of failed) expect(e).toMatchObject({ code: Status.RESOURCE_EXHAUSTED, reason: "STREAM_OVERFLOW" });
      await expect(stops.next()).rejects.toMatchObject({ code: Status.RESOURCE_EXHAUSTED, reason: "STREAM_OVERFLOW" });
      await expectRpcError(s.break(), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
      await waitReleased(h.client);
      expect((await nextSessionEvents(events)).at(-1)!.event).toEqual({ kind: "detached", cause: "streamOverflow" });
    } finally {
      ac.abort();
      narrow.close();
    }
  });
});

describe("Session stream", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterAll(async () => {
    await h.close();
  });

  it("rejects an aborted call at once with CANCELLED and drops its late answer; the session goes on", async () => {
    const s = await h.client.attach(VM);
    try {
      const ac = new AbortController();
      const p = s.readMemory({ gpa: sym("text_start").gpa }, 16, { signal: ac.signal });
      ac.abort();
      await expectRpcError(p, Status.CANCELLED, "CANCELLED");
      expect((await s.readMemory({ gpa: sym("text_start").gpa }, 16)).length).toBe(16);
      await expectRpcError(s.resume({ signal: AbortSignal.abort() }), Status.CANCELLED, "CANCELLED");
    } finally {
      await s.detach();
    }
  });

  it("refuses a second attach over the stream with the server's SESSION_CONFLICT, and fails a waiting resume() with SESSION_ENDED on detach", async () => {
    const s = await h.client.attach(VM);
    await expectRpcError(h.client.attach(VM), Status.FAILED_PRECONDITION, "SESSION_CONFLICT", { vm: VM });
    const waiting = s.resume(); // the VM runs freely: this waits
    const detached = s.detach();
    await expectRpcError(waiting, Status.ABORTED, "SESSION_ENDED");
    await detached;
    await waitReleased(h.client);
  });

  it("fails a pending call and the open stops() feeds when the stream closes, and every later call with NOT_ATTACHED", async () => {
    const s = await h.client.attach(VM);
    const stops = s.stops();
    const waiting = s.resume().catch((e: unknown) => e); // the VM runs freely: this waits
    const next = stops.next();
    await s.close();
    expect(await waiting).toMatchObject({ code: Status.CANCELLED });
    expect(await next).toEqual({ value: undefined, done: true });
    await expectRpcError(s.readMemory({ gpa: 0n }, 8), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
    await waitReleased(h.client);
  });

  it("ends a stops() feed whose reader lags past its bound with STOPS_OVERFLOW, after the stops it holds; the session goes on", async () => {
    const s = await h.client.attach(VM);
    try {
      await s.break();
      await s.resume();
      await s.setBreakpoint(0, sym("tick").gva);
      const lagging = s.stops();
      for (let i = 0; i <= MAX_BUFFERED_STOPS; i++) {
        const stop = await s.resume();
        if (stop.kind !== "hwBreakpoint") throw new Error(`hit ${i}: stopped for ${stop.kind}`);
      }
      const held: SessionStop[] = [];
      const err = await (async () => {
        for await (const stop of lagging) held.push(stop);
      })().then(
        () => new Error("the lagging feed ended without an error"),
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: Status.RESOURCE_EXHAUSTED, reason: "STOPS_OVERFLOW" });
      expect(held).toHaveLength(MAX_BUFFERED_STOPS);
      expect((await s.resume()).kind).toBe("hwBreakpoint");
    } finally {
      await s.detach();
    }
  }, 120_000);

  it("is released when the process holding it is killed: the VM runs, nobody is attached, breakpoints are gone, the feed says streamClosed", async () => {
    const ac = new AbortController();
    const events = await liveEvents(h.client, ac.signal);
    const script = `
      const { connect } = require(${JSON.stringify(SDK)});
      (async () => {
        const client = connect(${JSON.stringify(h.address)});
        const s = await client.attach(${JSON.stringify(VM)});
        await s.break();
        await s.setBreakpoint(0, ${sym("tick").gva}n);
        process.stdout.write("ready\\n");
        setInterval(() => {}, 1 << 30);
      })().catch((e) => { console.error(e); process.exit(1); });
    `;
    const child = spawn(process.execPath, ["-r", "tsx/cjs", "-e", script], { cwd: join(__dirname, "../.."), stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      await waitFor(() => out.includes("ready") || child.exitCode !== null, 60_000, "the child attached");
      if (!out.includes("ready")) throw new Error(`the child failed: ${err}`);
      expect((await h.client.getVm(VM)).runState).toBe("stopped");

      child.kill("SIGKILL");
      await waitReleased(h.client);
      const seen = await nextSessionEvents(events);
      expect(seen.map((e) => e.event.kind)).toEqual(["attached", "stopped", "debugStateChanged", "detached"]);
      expect(seen.at(-1)!.event).toEqual({ kind: "detached", cause: "streamClosed" });
      await expectNoBreakpointArmed(h.client);
    } finally {
      child.kill("SIGKILL");
      ac.abort();
    }
  });
});
