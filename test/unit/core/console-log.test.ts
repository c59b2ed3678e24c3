// ConsoleLog: offsets, device runs, the ring wrapping, gaps (capacity and run bound), the end,
// stop-at-end, from-now-on, chunking, and watchers released on abort.
import { ConsoleLog, type ConsoleItem } from "../../../src/core";

const bytes = (text: string) => Buffer.from(text, "latin1");

/** Reads items until the feed ends or `n` items came (then aborts it). */
async function read(feed: AsyncIterable<ConsoleItem>, n = Infinity): Promise<ConsoleItem[]> {
  const out: ConsoleItem[] = [];
  if (n === 0) return out;
  for await (const item of feed) {
    out.push(item);
    if (out.length >= n) break;
  }
  return out;
}

const text = (items: ConsoleItem[]) => Buffer.concat(items.flatMap((i) => (i.kind === "output" ? [i.data] : []))).toString("latin1");

describe("ConsoleLog", () => {
  it("numbers bytes across devices and hands them out run by run, then the end", async () => {
    const log = new ConsoleLog();
    log.append("debugcon", bytes("ab"));
    log.append("debugcon", bytes("c"));
    log.append("com1", bytes("XY"));
    log.append("debugcon", bytes("d"));
    log.end("poweredOff");
    log.append("com1", bytes("ignored after the end"));
    expect(log.endOffset).toBe(6n);
    const items = await read(log.subscribe(0n, new AbortController().signal));
    const u8 = (t: string) => new Uint8Array(bytes(t));
    expect(items).toEqual([
      { kind: "output", offset: 0n, source: "debugcon", data: u8("abc") },
      { kind: "output", offset: 3n, source: "com1", data: u8("XY") },
      { kind: "output", offset: 5n, source: "debugcon", data: u8("d") },
      { kind: "end", endOffset: 6n, reason: "poweredOff" },
    ]);
    // From the middle of a run.
    const mid = await read(log.subscribe(4n, new AbortController().signal));
    expect(mid[0]).toEqual({ kind: "output", offset: 4n, source: "com1", data: new Uint8Array(bytes("Y")) });
  });

  it("wraps its ring, and a reader behind it gets one gap to the oldest byte held", async () => {
    const log = new ConsoleLog({ capacityBytes: 8 });
    log.append("debugcon", bytes("0123456"));
    log.append("debugcon", bytes("789ABC")); // wraps: holds 56789ABC
    expect(log.oldestOffset).toBe(5n);
    log.end("backendLost");
    const items = await read(log.subscribe(0n, new AbortController().signal));
    expect(items[0]).toEqual({ kind: "gap", nextOffset: 5n });
    expect(text(items)).toBe("56789ABC");
    expect(items[items.length - 1]).toEqual({ kind: "end", endOffset: 13n, reason: "backendLost" });
    // A write larger than the ring keeps its last bytes.
    const big = new ConsoleLog({ capacityBytes: 4 });
    big.append("com1", bytes("abcdefghij"));
    big.end("poweredOff");
    const b = await read(big.subscribe(0n, new AbortController().signal));
    expect(b[0]).toEqual({ kind: "gap", nextOffset: 6n });
    expect(text(b)).toBe("ghij");
  });

  it("bounds the runs it holds: a guest alternating devices byte by byte drops the oldest bytes", async () => {
    const log = new ConsoleLog({ maxRuns: 4 });
    for (const c of "abcdefgh") log.append(c.charCodeAt(0) % 2 ? "debugcon" : "com1", bytes(c));
    log.end("poweredOff");
    const items = await read(log.subscribe(0n, new AbortController().signal));
    expect(items[0]).toEqual({ kind: "gap", nextOffset: 4n });
    expect(text(items)).toBe("efgh");
    expect(items.filter((i) => i.kind === "output").map((i) => (i.kind === "output" ? i.source : ""))).toEqual(["debugcon", "com1", "debugcon", "com1"]);
  });

  it("cuts held output into chunks; stop-at-end ends when caught up; from-now-on skips what was there", async () => {
    const log = new ConsoleLog();
    log.append("debugcon", new Uint8Array(10_000).fill(0x41));
    const chunks = await read(log.subscribe(0n, new AbortController().signal, { maxChunkBytes: 4096, stopAtEnd: true }));
    expect(chunks.map((c) => (c.kind === "output" ? [c.offset, c.data.length] : c.kind))).toEqual([
      [0n, 4096],
      [4096n, 4096],
      [8192n, 1808],
    ]);
    const ac = new AbortController();
    const live = read(log.subscribe(undefined, ac.signal), 1);
    log.append("com1", bytes("new"));
    expect(await live).toEqual([{ kind: "output", offset: 10_000n, source: "com1", data: new Uint8Array(bytes("new")) }]);
    expect(() => log.subscribe(10_004n, ac.signal)).toThrow(RangeError);
  });

  it("counts watchers from their first read until their feed ends (aborted, or the end read)", async () => {
    const log = new ConsoleLog();
    const ac = new AbortController();
    const it = log.subscribe(undefined, ac.signal)[Symbol.asyncIterator]();
    const pending = it.next();
    expect(log.watcherCount).toBe(1);
    ac.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(log.watcherCount).toBe(0);
    const other = read(log.subscribe(undefined, new AbortController().signal));
    await new Promise((r) => setImmediate(r));
    expect(log.watcherCount).toBe(1);
    log.end("poweredOff");
    expect(await other).toEqual([{ kind: "end", endOffset: 0n, reason: "poweredOff" }]);
    expect(log.watcherCount).toBe(0);
  });
});
