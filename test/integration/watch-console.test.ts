// VmService.WatchConsole against a real server and a real guest on the embedded machine: output
// complete and in order with its devices, batching, resume at an offset, gaps, a reader that
// stops reading while the guest runs to its end, cancellation, and the errors.
import { Status } from "nice-grpc";
import { type ConsoleChunk, connect, type VmmDebugClient } from "../../src/client";
import { createEmuMachine, type EmuMachine } from "../../src/emu";
import { createVmmDebugServer, type Logger, type VmmDebugServer } from "../../src/server";
import { COM1_TEXT, DEBUGCON_TEXT, type ConsoleGuestMode, consoleGuest, consoleGuestOutput } from "../shared/console-guest";
import { expectRpcError, SMALL_RAM, waitFor } from "./harness";

interface Rig {
  vm: EmuMachine;
  server: VmmDebugServer;
  client: VmmDebugClient;
  address: string;
  close(): Promise<void>;
}

const quiet: Logger = { info: () => undefined, warn: () => undefined };

async function rig(opts: { count: number; mode: ConsoleGuestMode; start?: boolean; historyBytes?: number; id?: string }): Promise<Rig> {
  const vm = await createEmuMachine({
    id: opts.id ?? "con",
    image: consoleGuest(opts.count, opts.mode),
    vpCount: 1,
    memory: SMALL_RAM,
    startRunning: opts.start ?? true,
    consoleHistoryBytes: opts.historyBytes,
  });
  const server = createVmmDebugServer({ vms: [vm], logger: quiet });
  const { port } = await server.listen("127.0.0.1:0");
  const address = `127.0.0.1:${port}`;
  const client = connect(address);
  const rigged: Rig = {
    vm,
    server,
    client,
    address,
    async close() {
      client.close();
      await rigged.server.close(); // the server serving it now (a test may replace it)
      await vm.close();
    },
  };
  return rigged;
}

async function collect(feed: AsyncIterable<ConsoleChunk>): Promise<ConsoleChunk[]> {
  const out: ConsoleChunk[] = [];
  for await (const c of feed) out.push(c);
  return out;
}

/** The bytes of the output chunks, checking that their offsets follow each other from `from`. */
function joined(chunks: ConsoleChunk[], from: bigint): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = from;
  for (const c of chunks) {
    if (c.kind === "gap") at = c.nextOffset;
    if (c.kind !== "output") continue;
    expect(c.offset).toBe(at);
    at += BigInt(c.data.length);
    parts.push(c.data);
  }
  return Buffer.concat(parts);
}

const until = (ms: number) => AbortSignal.timeout(ms);

describe("WatchConsole", () => {
  let r: Rig | undefined;
  const afterThis: (() => void)[] = [];
  afterEach(async () => {
    for (const f of afterThis.splice(0)) f();
    await r?.close();
    r = undefined;
  });

  test("a live watcher gets every byte in order with its device, in batches, then the end at power-off", async () => {
    const count = 200_000;
    r = await rig({ count, mode: "powerOff", start: false });
    let subscribedAt: bigint | undefined;
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    const feed = collect(
      r.client.watchConsole("con", {
        signal: until(60_000),
        onSubscribed: (end) => {
          subscribedAt = end;
          subscribed();
        },
      }),
    );
    await ready;
    expect(subscribedAt).toBe(0n);
    await r.vm.resume();
    const chunks = await feed;
    const expected = consoleGuestOutput(count);
    expect(Buffer.from(joined(chunks, 0n)).equals(Buffer.from(expected))).toBe(true);
    // The devices: the debug console's line, the UART's, then the debug console again.
    const outputs = chunks.filter((c): c is Extract<ConsoleChunk, { kind: "output" }> => c.kind === "output");
    const firstCom1 = outputs.find((c) => c.source === "com1")!;
    expect(firstCom1.offset).toBe(BigInt(DEBUGCON_TEXT.length));
    expect(Buffer.from(outputs.filter((c) => c.source === "com1").flatMap((c) => [...c.data])).toString("latin1")).toBe(COM1_TEXT);
    expect(outputs.filter((c) => c.source === "com1").every((c) => c.offset < BigInt(DEBUGCON_TEXT.length + COM1_TEXT.length))).toBe(true);
    expect(outputs[0].source).toBe("debugcon");
    // One OUT per byte, but batched: far fewer messages than bytes.
    expect(outputs.length).toBeLessThan(count / 256);
    expect(chunks[chunks.length - 1]).toEqual({ kind: "end", endOffset: BigInt(expected.length), reason: "poweredOff" });
    expect(chunks.filter((c) => c.kind === "gap")).toEqual([]);
  });

  test("from_offset replays exactly the rest; the end offset gives only the end; stop_at_end stops when caught up", async () => {
    const count = 100_000;
    r = await rig({ count, mode: "powerOff" });
    await waitFor(() => r!.vm.runState() === "poweredOff", 60_000, "the guest powering off");
    const expected = consoleGuestOutput(count);
    const all = await collect(r.client.watchConsole("con", { fromOffset: 0n, signal: until(30_000) }));
    expect(Buffer.from(joined(all, 0n)).equals(Buffer.from(expected))).toBe(true);
    // Held output comes in messages of up to 64 KiB.
    expect(all.filter((c) => c.kind === "output").length).toBeLessThanOrEqual(4);

    for (const from of [1n, 12_345n, BigInt(expected.length - 1)]) {
      const rest = await collect(r.client.watchConsole("con", { fromOffset: from, signal: until(30_000) }));
      expect(Buffer.from(joined(rest, from)).equals(Buffer.from(expected.subarray(Number(from))))).toBe(true);
      expect(rest[rest.length - 1].kind).toBe("end");
    }
    const atEnd = await collect(r.client.watchConsole("con", { fromOffset: BigInt(expected.length), signal: until(30_000) }));
    expect(atEnd).toEqual([{ kind: "end", endOffset: BigInt(expected.length), reason: "poweredOff" }]);
  });

  test("stop_at_end on a VM that runs on: what there was, then the call completes", async () => {
    r = await rig({ count: 1000, mode: "spin" });
    const total = DEBUGCON_TEXT.length + COM1_TEXT.length + 1000;
    await waitFor(() => r!.vm.console.endOffset === BigInt(total), 30_000, "the guest's output");
    const chunks = await collect(r.client.watchConsole("con", { fromOffset: 0n, stopAtEnd: true, signal: until(30_000) }));
    expect(Buffer.from(joined(chunks, 0n)).equals(Buffer.from(consoleGuestOutput(1000)))).toBe(true);
    expect(chunks.some((c) => c.kind === "end")).toBe(false);
    expect(r.vm.runState()).toBe("running");
  });

  test.each([
    ["spins (flushed on the time bound while running)", "spin" as const],
    ["halts (flushed when every VP sleeps)", "halt" as const],
  ])("a lone prompt arrives promptly while the guest %s", async (_what, mode) => {
    r = await rig({ count: 0, mode, start: false });
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    const got: number[] = [];
    const want = DEBUGCON_TEXT.length + COM1_TEXT.length;
    const ac = new AbortController();
    const feed = (async () => {
      for await (const c of r!.client.watchConsole("con", { signal: ac.signal, onSubscribed: () => subscribed() })) {
        if (c.kind === "output") got.push(...c.data);
        if (got.length >= want) return;
      }
    })();
    await ready;
    await r.vm.resume();
    const giveUp = setTimeout(() => ac.abort(), 20_000);
    await feed;
    clearTimeout(giveUp);
    expect(Buffer.from(got).toString("latin1")).toBe(DEBUGCON_TEXT + COM1_TEXT);
    expect(r.vm.runState()).toBe("running"); // no stop was needed to get it out
  });

  test("history that is gone is announced by a gap naming the next offset", async () => {
    const count = 50_000;
    r = await rig({ count, mode: "powerOff", historyBytes: 4096 });
    await waitFor(() => r!.vm.runState() === "poweredOff", 60_000, "the guest powering off");
    const expected = consoleGuestOutput(count);
    const chunks = await collect(r.client.watchConsole("con", { fromOffset: 0n, signal: until(30_000) }));
    const oldest = BigInt(expected.length - 4096);
    expect(chunks[0]).toEqual({ kind: "gap", nextOffset: oldest });
    expect(Buffer.from(joined(chunks, oldest)).equals(Buffer.from(expected.subarray(expected.length - 4096)))).toBe(true);
    expect(chunks[chunks.length - 1].kind).toBe("end");
  });

  test("a reader that stops reading does not hold the guest back: it completes, and the reader gets a gap and the tail", async () => {
    const count = 2_000_000;
    const history = 64 * 1024;
    r = await rig({ count, mode: "powerOff", start: false, historyBytes: history });
    // Its own connection with a small HTTP/2 window: little of what it does not read can wait in
    // transport buffers, so its cursor in the server's history falls behind instead.
    const stalledClient = connect(r.address, { channelOptions: { "grpc-node.flow_control_window": 4096 } });
    afterThis.push(() => stalledClient.close());
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    const it = stalledClient.watchConsole("con", { signal: until(120_000), onSubscribed: () => subscribed() })[Symbol.asyncIterator]();
    const first = it.next();
    await ready;
    await r.vm.resume();
    const head = await first; // then read nothing while the guest writes 2 MB
    expect(head.value?.kind).toBe("output");
    await waitFor(() => r!.vm.runState() === "poweredOff", 120_000, "the guest powering off while its reader is paused");
    const expected = consoleGuestOutput(count);
    expect(r.vm.console.endOffset).toBe(BigInt(expected.length));
    // What the stalled call holds in the server's send budget stays within a few messages, not the
    // 2 MB the guest wrote (two on a quiet machine; 146–199 KB, three, was measured under load).
    expect(r.server.sendBudget.stats().usedBytes).toBeLessThanOrEqual(4 * (64 * 1024 + 64));
    const rest: ConsoleChunk[] = [head.value as ConsoleChunk];
    for (;;) {
      const n = await it.next();
      if (n.done) break;
      rest.push(n.value);
    }
    const gaps = rest.filter((c) => c.kind === "gap");
    expect(gaps.length).toBeGreaterThanOrEqual(1);
    const last = gaps[gaps.length - 1] as Extract<ConsoleChunk, { kind: "gap" }>;
    const after = rest.slice(rest.indexOf(last) + 1);
    expect(Buffer.from(joined(after, last.nextOffset)).equals(Buffer.from(expected.subarray(Number(last.nextOffset))))).toBe(true);
    expect(rest[rest.length - 1]).toEqual({ kind: "end", endOffset: BigInt(expected.length), reason: "poweredOff" });
  });

  test("cancelling the call releases its subscription", async () => {
    r = await rig({ count: 10, mode: "spin" });
    const log = r.vm.console;
    expect(log.watcherCount).toBe(0);
    const acs = [new AbortController(), new AbortController(), new AbortController()];
    const feeds = acs.map((ac) => collect(r!.client.watchConsole("con", { fromOffset: 0n, signal: ac.signal })));
    await waitFor(() => log.watcherCount === 3, 20_000, "three watchers");
    acs[1].abort();
    await waitFor(() => log.watcherCount === 2, 20_000, "the cancelled watcher released");
    acs[0].abort();
    acs[2].abort();
    await Promise.all(feeds);
    await waitFor(() => log.watcherCount === 0, 20_000, "every watcher released");
  });

  test("the server closing ends open feeds with UNAVAILABLE / SERVER_SHUTTING_DOWN", async () => {
    r = await rig({ count: 10, mode: "spin" });
    const feed = collect(r.client.watchConsole("con", { fromOffset: 0n, maxRetries: 0 }));
    await waitFor(() => r!.vm.console.watcherCount === 1, 20_000, "a watcher");
    const closing = r.server.close();
    await expectRpcError(feed, Status.UNAVAILABLE, "SERVER_SHUTTING_DOWN", { vm: "con" });
    await closing;
    expect(r.vm.console.watcherCount).toBe(0);
  });

  test("the SDK resumes at the exact next byte on a server that serves the VM again after UNAVAILABLE", async () => {
    const count = 20_000;
    r = await rig({ count, mode: "powerOff", start: false });
    const { vm, address } = r;
    const port = Number(address.split(":")[1]);
    const retries: string[] = [];
    const chunks: ConsoleChunk[] = [];
    const reading = (async () => {
      for await (const c of r!.client.watchConsole("con", { fromOffset: 0n, signal: until(60_000), onRetry: (e) => retries.push(e.reason ?? e.codeName) })) chunks.push(c);
    })();
    await waitFor(() => vm.console.watcherCount === 1, 20_000, "a watcher");
    await vm.step(0, 3000, "none"); // part of the output, step by step
    await waitFor(() => vm.console.endOffset > 0n, 20_000, "the stepped output");
    const part = vm.console.endOffset;
    await waitFor(() => joined(chunks, 0n).length === Number(part), 20_000, "the first part delivered");
    await r.server.close(); // the feed ends with UNAVAILABLE; the SDK waits and calls again
    await vm.step(0, 3000, "none"); // output the watcher is not connected for
    const again = createVmmDebugServer({ vms: [vm], logger: quiet });
    await again.listen(`127.0.0.1:${port}`);
    r.server = again;
    await vm.resume(); // the rest, to power-off
    await reading;
    const expected = consoleGuestOutput(count);
    expect(Buffer.from(joined(chunks, 0n)).equals(Buffer.from(expected))).toBe(true);
    expect(chunks.filter((c) => c.kind === "gap")).toEqual([]);
    expect(chunks[chunks.length - 1]).toEqual({ kind: "end", endOffset: BigInt(expected.length), reason: "poweredOff" });
    expect(retries[0]).toBe("SERVER_SHUTTING_DOWN");
  });

  test("many watchers at once each get every byte, and all end with the server", async () => {
    const count = 30_000;
    r = await rig({ count, mode: "halt", start: false });
    const expected = Buffer.from(consoleGuestOutput(count));
    const seen = Array.from({ length: 40 }, () => [] as ConsoleChunk[]);
    const feeds = seen.map(async (chunks) => {
      try {
        for await (const c of r!.client.watchConsole("con", { fromOffset: 0n, maxRetries: 0, signal: until(60_000) })) chunks.push(c);
        return "completed";
      } catch (e) {
        return (e as { reason?: string }).reason;
      }
    });
    await waitFor(() => r!.vm.console.watcherCount === 40, 20_000, "40 watchers");
    await r.vm.resume();
    await waitFor(() => seen.every((chunks) => joined(chunks, 0n).length === expected.length), 30_000, "every watcher has every byte");
    // The guest halts (it does not power off): the 40 stay subscribed until the server closes.
    await r.server.close();
    expect(new Set(await Promise.all(feeds))).toEqual(new Set(["SERVER_SHUTTING_DOWN"]));
    for (const chunks of seen) expect(Buffer.from(joined(chunks, 0n)).equals(expected)).toBe(true);
    expect(r.vm.console.watcherCount).toBe(0);
  });

  test("errors: unknown VM, an offset past the end, and a bad request changes nothing", async () => {
    r = await rig({ count: 0, mode: "halt" });
    await waitFor(() => r!.vm.console.endOffset === 35n, 20_000, "the greeting");
    await expectRpcError(collect(r.client.watchConsole("nope", { fromOffset: 0n })), Status.NOT_FOUND, "VM_NOT_FOUND", { vm: "nope" });
    await expectRpcError(collect(r.client.watchConsole("con", { fromOffset: 36n })), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE", {
      field: "from_offset",
      value: "36",
      end_offset: "35",
    });
    expect(r.vm.console.watcherCount).toBe(0);
    expect(r.vm.runState()).toBe("running");
    const again = await collect(r.client.watchConsole("con", { fromOffset: 0n, stopAtEnd: true }));
    expect(Buffer.from(joined(again, 0n)).toString("latin1")).toBe(DEBUGCON_TEXT + COM1_TEXT);
  });
});
