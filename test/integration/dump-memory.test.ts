// DumpMemory's refusals and its Session-stream form, on the embedded demo: the stream relays the
// same core file the unary call streams (in order, `more` on all but the last), and a resume
// pipelined behind it runs the VM only after the dump.
import { createHash } from "node:crypto";
import { Status } from "nice-grpc";
import type * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { SMALL_RAM, expectRpcError, startHarness, waitFor, type Harness } from "./harness";
import { answerError, openRawStream } from "./stream-helpers";

describe("DumpMemory", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ memory: SMALL_RAM });
  });

  afterAll(async () => {
    await h?.close();
  });

  const drain = async (iterable: AsyncIterable<unknown>) => {
    for await (const _ of iterable) void _;
  };

  it("refuses an unknown VM, a session id that is not live, and a running VM, before sending anything", async () => {
    await expectRpcError(drain(h.client.dumpMemory("nope")), Status.NOT_FOUND, "VM_NOT_FOUND");
    await expectRpcError(drain(h.client.rpc.debug.dumpMemory({ vm: "demo", sessionId: "not-a-session" })), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
    await expectRpcError(drain(h.client.dumpMemory("demo")), Status.FAILED_PRECONDITION, "VM_RUNNING");
    expect((await h.client.getVm("demo")).runState).toBe("running");
  });

  it("on a Session stream: VM_RUNNING while running; once stopped, the same file as the unary call, and a pipelined resume runs after it", async () => {
    const s = await openRawStream(h.client, "demo");
    try {
      expect(answerError(await s.call({ case: "dumpMemory", value: {} })).reason).toBe("VM_RUNNING");
      expect((await s.call({ case: "break", value: {} })).result.case).toBe("break");
      await s.nextStop();

      // The unary call (no session) while the stream's session holds the VM stopped.
      const unary = createHash("sha256");
      let unaryBytes = 0n;
      for await (const piece of h.client.dumpMemory("demo")) {
        unary.update(piece.data);
        unaryBytes = piece.bytesDone;
      }

      const id = s.send({ case: "dumpMemory", value: {} });
      const resumeId = s.send({ case: "resume", value: {} });
      await waitFor(() => s.received.some((m) => m.id === id && !m.more), 60_000, "the dump's last message");
      const chunks = s.received.filter((m) => m.id === id);
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks.slice(0, -1).every((m) => m.more)).toBe(true);
      const stream = createHash("sha256");
      let offset = 0n;
      for (const m of chunks) {
        if (m.result.case !== "dumpMemory") throw new Error(`unexpected ${m.result.case}`);
        const v: ds.DumpMemoryResponse = m.result.value;
        expect(v.offset).toBe(offset);
        offset += BigInt(v.data.length);
        expect(v.bytesDone).toBe(offset);
        expect(v.bytesTotal).toBe(unaryBytes);
        stream.update(v.data);
      }
      expect(offset).toBe(unaryBytes);
      // Nothing ran between the two dumps: the resume waited for the stream's dump to end.
      expect(stream.digest("hex")).toBe(unary.digest("hex"));

      await waitFor(() => s.received.some((m) => m.id === resumeId), 20_000, "the resume's answer");
      expect(s.received.find((m) => m.id === resumeId)!.result.case).toBe("resume");
      expect((await h.client.getVm("demo")).runState).toBe("running");
    } finally {
      s.end();
      await s.done.catch(() => undefined);
    }
  });

  it("a dump whose client stops reading does not hold the server's shutdown", async () => {
    const own = await startHarness({ vmIds: ["shut"], memory: SMALL_RAM });
    try {
      const session = await own.client.attach("shut");
      await session.break();
      const it = own.client.dumpMemory("shut")[Symbol.asyncIterator]();
      expect((await it.next()).done).toBe(false);
      // The server now waits for this client to read (the dump's bytes are far beyond its send
      // budget and the transport's windows) while holding the VM stopped. close() ends the hold.
      await own.server.close();
      const end = await (async () => {
        for (;;) if ((await it.next()).done) return "ended";
      })().catch((e: unknown) => e);
      expect(end).not.toBe("ended"); // the file is incomplete: the SDK says so, or the call fails
    } finally {
      await own.close();
    }
  });
});
