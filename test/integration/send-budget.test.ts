// The send budget: clients that stop reading hold the server at their call's share and, all
// together, at the global bound; a cancelled call returns its bytes at once; a well-behaved
// client is still answered.
import { create } from "@bufbuild/protobuf";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { connect, type VmmDebugClient } from "../../src/client";
import { startHarness, waitFor, type Harness } from "./harness";

const MIB = 1024 * 1024;
const TOTAL = 16 * MIB;
const PER_CALL = 4 * MIB;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ sendBudget: { totalBytes: TOTAL, callBytes: PER_CALL } });
});
afterAll(() => h.close());

function streamRequest(gpa: bigint, length: number) {
  return create(ds.ReadMemoryStreamRequestSchema, { vm: "demo", address: { kind: { case: "gpa", value: gpa } }, length: BigInt(length) });
}

/** Starts a ReadMemoryStream and never reads it: the first `next()` opens the call. */
function unreadStream(client: VmmDebugClient, signal: AbortSignal, gpa = 0n, length = 64 * MIB) {
  const it = client.rpc.debug.readMemoryStream(streamRequest(gpa, length), { signal })[Symbol.asyncIterator]();
  void it.next().catch(() => undefined); // ends with the abort below; nothing to report
  return it;
}

describe("send budget", () => {
  it("holds 40 unread 64 MiB ReadMemoryStreams over 4 connections at the global bound, and a cancel returns every byte", async () => {
    const clients = Array.from({ length: 4 }, () => connect(h.address, { channelOptions: { "grpc-node.flow_control_window": 65_535 } }));
    const abort = new AbortController();
    const budget = h.server.sendBudget;
    try {
      for (let i = 0; i < 40; i++) unreadStream(clients[i % 4], abort.signal, BigInt(i) * 4096n);
      // The streams fill the budget, and the rest wait for room before reading anything.
      await waitFor(async () => budget.stats().waiting >= 30, 30_000, "streams waiting for room");
      const { usedBytes, peakBytes } = budget.stats();
      expect(usedBytes).toBeGreaterThan(0);
      expect(peakBytes).toBeLessThanOrEqual(TOTAL);
      // A well-behaved client is still answered: unary reads of registers and VMs do not wait.
      const vms = await h.client.listVms();
      expect(vms.map((v) => v.id)).toEqual(["demo"]);
      // Cancelling the flood returns every byte and every wait at once.
      abort.abort();
      await waitFor(async () => budget.stats().usedBytes === 0 && budget.stats().waiting === 0, 10_000, "budget returned");
      // A call cancelled while it waited is a plain cancel, not a server fault to log.
      expect(h.logs.filter((l) => l.message === "unexpected error in a handler")).toEqual([]);
      // With the bytes back, a stream read goes through in full.
      const data = await h.client.readMemoryStream("demo", { gpa: 0n }, 24 * MIB);
      expect(data.length).toBe(24 * MIB);
      expect(budget.stats().peakBytes).toBeLessThanOrEqual(TOTAL);
    } finally {
      abort.abort();
      for (const c of clients) c.close();
    }
  });

  it("holds one unread stream at its call's share and lets it finish when it reads again", async () => {
    const slow = connect(h.address, { channelOptions: { "grpc-node.flow_control_window": 65_535 } });
    const budget = h.server.sendBudget;
    try {
      const length = 32 * MIB;
      const it = slow.rpc.debug.readMemoryStream(streamRequest(0x100000n, length))[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      await waitFor(async () => budget.stats().waiting === 1, 20_000, "the stream waiting for room");
      expect(budget.stats().usedBytes).toBeLessThanOrEqual(PER_CALL + MIB);
      let total = first.value!.data.length;
      let expected = BigInt(total);
      for (let i = 0; i < 64; i++) {
        const r = await it.next();
        if (r.done) break;
        expect(r.value.offset).toBe(expected);
        total += r.value.data.length;
        expected += BigInt(r.value.data.length);
      }
      expect(total).toBe(length);
      await waitFor(async () => budget.stats().usedBytes === 0, 10_000, "bytes returned after the stream ended");
    } finally {
      slow.close();
    }
  });

  it("holds unread unary ReadMemory answers in the budget until they are written", async () => {
    const slow = connect(h.address, { channelOptions: { "grpc-node.flow_control_window": 65_535 } });
    const budget = h.server.sendBudget;
    const abort = new AbortController();
    try {
      // 4 MiB answers from 12 calls the client is slow to take: never more than the global bound.
      const calls = Array.from({ length: 12 }, (_, i) =>
        slow.rpc.debug
          .readMemory(create(ds.ReadMemoryRequestSchema, { vm: "demo", address: { kind: { case: "gpa", value: BigInt(i) * 4096n } }, length: BigInt(4 * MIB) }), {
            signal: abort.signal,
          })
          .then((r) => r.data.length),
      );
      const lengths = await Promise.all(calls);
      expect(lengths).toEqual(Array(12).fill(4 * MIB));
      expect(budget.stats().peakBytes).toBeLessThanOrEqual(TOTAL);
      await waitFor(async () => budget.stats().usedBytes === 0, 10_000, "bytes returned");
    } finally {
      abort.abort();
      slow.close();
    }
  });
});
