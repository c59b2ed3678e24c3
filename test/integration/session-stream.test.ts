// The Session stream's own rules, seen through a raw client: the attach handshake, protocol
// errors that leave the stream usable, multi-message answers, detach, and the bound on answers
// a client that stops reading can make the server hold.
import { create } from "@bufbuild/protobuf";
import { Status } from "nice-grpc";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { connect, VmmDebugError } from "../../src/client";
import { answerError, openRawStream, Pushable } from "./stream-helpers";
import { startHarness, sym, waitFor, type Harness } from "./harness";

describe("Session stream protocol", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vmIds: ["demo", "other"], sessionStream: { maxQueuedMessages: 10_000, maxQueuedBytes: 2 * 1024 * 1024 } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("opens with the session id and the VM's description, and shows a stream attachment", async () => {
    const s = await openRawStream(h.client, "demo");
    try {
      expect(s.opened.sessionId).toMatch(/^[0-9a-f]{32}$/);
      expect(s.opened.vm).toMatchObject({ id: "demo", vpCount: 2, backend: "emu" });
      const info = await h.client.rpc.vm.getVm({ vm: "demo" });
      expect(info.vm?.attached).toMatchObject({ stream: true });
      expect(info.vm?.attached?.leaseExpiresAt).toBeUndefined();
    } finally {
      s.end();
      await s.done;
    }
    await waitFor(async () => (await h.client.rpc.vm.getVm({ vm: "demo" })).vm?.attached === undefined, 10_000, "detach on close");
  });

  it("leaves no session behind when the stream is cancelled while Attach runs", async () => {
    for (let i = 0; i < 20; i++) {
      const requests = new Pushable<ds.SessionRequest>();
      const controller = new AbortController();
      requests.push(create(ds.SessionRequestSchema, { operation: { case: "attach", value: { vm: "demo" } } }));
      const it = h.client.rpc.debug.session(requests, { signal: controller.signal })[Symbol.asyncIterator]();
      const first = it.next().catch(() => undefined);
      // Cancel at a different point of the attach each time: at once, or after a few turns.
      for (let turn = 0; turn < i % 5; turn++) await new Promise((r) => setImmediate(r));
      controller.abort();
      await first;
      requests.end();
    }
    // An attach the server took in before it saw the cancel is detached once it does: wait until
    // the VM can be attached again (a session left behind would hold it for good).
    let s: Awaited<ReturnType<typeof openRawStream>> | undefined;
    await waitFor(
      async () => {
        if ((await h.client.rpc.vm.getVm({ vm: "demo" })).vm?.attached !== undefined) return false;
        s = await openRawStream(h.client, "demo").catch(() => undefined);
        return s !== undefined;
      },
      10_000,
      "the VM attachable again",
    );
    s!.end();
    await s!.done;
    await waitFor(async () => (await h.client.rpc.vm.getVm({ vm: "demo" })).vm?.attached === undefined, 10_000, "no session left");
  });

  it("ends a stream whose first message is not attach with INVALID_ARGUMENT / STREAM_PROTOCOL", async () => {
    const requests = new Pushable<ds.SessionRequest>();
    requests.push(create(ds.SessionRequestSchema, { id: 1n, operation: { case: "break", value: {} } }));
    const it = h.client.rpc.debug.session(requests)[Symbol.asyncIterator]();
    const err = await it.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    requests.end();
    expect(err).toBeInstanceOf(VmmDebugError);
    expect((err as VmmDebugError).code).toBe(Status.INVALID_ARGUMENT);
    expect((err as VmmDebugError).reason).toBe("STREAM_PROTOCOL");
  });

  it("ends the stream with the Attach error when the VM is taken (SESSION_CONFLICT)", async () => {
    const holder = await openRawStream(h.client, "demo");
    try {
      const err = await openRawStream(h.client, "demo").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as VmmDebugError).reason).toBe("SESSION_CONFLICT");
      expect((err as VmmDebugError).metadata.stream).toBe("true");
    } finally {
      holder.end();
      await holder.done;
    }
  });

  it("answers a second attach and an empty operation with errors, and the stream goes on", async () => {
    const s = await openRawStream(h.client, "demo");
    try {
      expect(answerError(await s.call({ case: "attach", value: { vm: "demo" } })).reason).toBe("STREAM_PROTOCOL");
      expect(answerError(await s.call({ case: undefined })).reason).toBe("STREAM_PROTOCOL");
      expect(answerError(await s.call({ case: "break", value: { vm: "other" } })).reason).toBe("SESSION_VM_MISMATCH");
      expect(answerError(await s.call({ case: "break", value: { sessionId: "f".repeat(32) } })).reason).toBe("SESSION_MISMATCH");
      expect((await s.call({ case: "break", value: {} })).result.case).toBe("break");
    } finally {
      s.end();
      await s.done;
    }
  });

  it("lets unary reads carry the stream's session id, and refuses a unary Resume of it", async () => {
    const s = await openRawStream(h.client, "demo");
    try {
      await s.call({ case: "break", value: {} });
      const state = await h.client.rpc.debug.getVpState({ vp: 0, sessionId: s.opened.sessionId });
      expect(state.state?.arch.case).toBe("x8664");
      const err = await h.client.rpc.debug.resume({ sessionId: s.opened.sessionId }).catch((e: unknown) => e);
      expect((err as VmmDebugError).reason).toBe("SESSION_MISMATCH");
    } finally {
      s.end();
      await s.done;
    }
  });

  it("ends the stream with ABORTED / SESSION_ENDED when a unary Detach names its session", async () => {
    const s = await openRawStream(h.client, "demo");
    await h.client.rpc.debug.detach({ sessionId: s.opened.sessionId });
    const err = await s.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as VmmDebugError).code).toBe(Status.ABORTED);
    expect((err as VmmDebugError).reason).toBe("SESSION_ENDED");
    expect((await h.client.getVm("demo")).attached).toBeUndefined();
  });

  it("answers read_memory_stream with chunks in order, `more` on all but the last", async () => {
    const s = await openRawStream(h.client, "demo");
    try {
      const length = 3 * 1024 * 1024 + 5;
      const id = s.send({ case: "readMemoryStream", value: { address: { kind: { case: "gpa", value: 0x100000n } }, length: BigInt(length) } });
      await waitFor(() => s.received.some((m) => m.id === id && !m.more), 20_000, "the last chunk");
      const chunks = s.received.filter((m) => m.id === id);
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks.slice(0, -1).every((m) => m.more)).toBe(true);
      let offset = 0n;
      let total = 0;
      for (const m of chunks) {
        if (m.result.case !== "readMemoryStream") throw new Error(`unexpected ${m.result.case}`);
        expect(m.result.value.offset).toBe(offset);
        offset += BigInt(m.result.value.data.length);
        total += m.result.value.data.length;
      }
      expect(total).toBe(length);
      const direct = await h.client.readMemory("demo", { gpa: 0x100000n }, 4096);
      const first = chunks[0].result.value as ds.ReadMemoryStreamResponse;
      expect(first.data.subarray(0, 4096)).toEqual(direct);
    } finally {
      s.end();
      await s.done;
    }
  });

  it("answers detach, then ends the stream; the VM runs on without debug state", async () => {
    const s = await openRawStream(h.client, "demo");
    await s.call({ case: "break", value: {} });
    const state = { breakpoints: [{ breakpoint: { address: sym("tick").gva, type: 0, size: 0 } }] };
    await s.call({ case: "setDebugState", value: { vp: 0, state } });
    expect((await s.call({ case: "detach", value: {} })).result.case).toBe("detach");
    await s.done;
    const vm = await h.client.getVm("demo");
    expect(vm.runState).toBe("running");
    expect(vm.attached).toBeUndefined();
  });

  it("holds a client that stops reading at its share of the send budget, then answers everything in order once it reads", async () => {
    // A small HTTP/2 window, so unread answers pile up on the server quickly.
    const slow = connect(h.address, { channelOptions: { "grpc-node.flow_control_window": 65_535 } });
    const requests = new Pushable<ds.SessionRequest>();
    requests.push(create(ds.SessionRequestSchema, { operation: { case: "attach", value: { vm: "demo" } } }));
    const it = slow.rpc.debug.session(requests)[Symbol.asyncIterator]();
    const budget = h.server.sendBudget;
    try {
      const opened = await it.next();
      expect(opened.value?.result.case).toBe("opened");
      // 32 reads of 1 MiB, not read yet: 32 MiB of answers against an 8 MiB share.
      const count = 32;
      for (let i = 1; i <= count; i++) {
        requests.push(
          create(ds.SessionRequestSchema, {
            id: BigInt(i),
            operation: { case: "readMemory", value: { address: { kind: { case: "gpa", value: BigInt(i) * 4096n } }, length: 1024n * 1024n } },
          }),
        );
      }
      // The server fills the stream's share, then waits: reads wait for room before reading.
      await waitFor(async () => budget.stats().waiting > 0, 20_000, "a read waiting for room");
      const held = budget.stats().usedBytes;
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(budget.limits.callBytes + 1024 * 1024 + 64);
      // Still attached: a slow reader is held back, not cut off.
      expect((await h.client.getVm("demo")).attached).toBeDefined();
      // Reading again, every answer arrives once, in order, with the right bytes.
      const direct = await h.client.readMemory("demo", { gpa: 4096n }, 64);
      for (let i = 1; i <= count; i++) {
        const r = await it.next();
        expect(r.value?.id).toBe(BigInt(i));
        const data = (r.value?.result.value as ds.ReadMemoryResponse).data;
        expect(data.length).toBe(1024 * 1024);
        if (i === 1) expect(data.subarray(0, 64)).toEqual(direct);
      }
      expect(budget.stats().waiting).toBe(0);
    } finally {
      requests.end();
      slow.close();
    }
    await waitFor(async () => budget.stats().usedBytes === 0, 10_000, "the stream's bytes returned");
  });
});

describe("Session stream at server shutdown", () => {
  it("ends the stream with UNAVAILABLE / SERVER_SHUTTING_DOWN and lets the VM run", async () => {
    const h = await startHarness();
    try {
      const s = await openRawStream(h.client, "demo");
      await s.call({ case: "break", value: {} });
      const closing = h.server.close();
      const err = await s.done.then(
        () => undefined,
        (e: unknown) => e,
      );
      await closing;
      expect((err as VmmDebugError).code).toBe(Status.UNAVAILABLE);
      expect((err as VmmDebugError).reason).toBe("SERVER_SHUTTING_DOWN");
      expect(h.vms[0].runState()).toBe("running");
    } finally {
      await h.close();
    }
  });
});

describe("Session stream when the backend is lost", () => {
  it("ends the stream with UNAVAILABLE / BACKEND_UNAVAILABLE while a resume waits for a stop", async () => {
    const h = await startHarness();
    try {
      const s = await openRawStream(h.client, "demo");
      await s.call({ case: "break", value: {} });
      expect((await s.call({ case: "resume", value: {} })).result.case).toBe("resume");
      await h.vms[0].close(); // the embedded machine's worker is gone: its backend is lost
      const err = await s.done.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as VmmDebugError).code).toBe(Status.UNAVAILABLE);
      expect((err as VmmDebugError).reason).toBe("BACKEND_UNAVAILABLE");
      expect((err as VmmDebugError).metadata.vm).toBe("demo");
      const events: string[] = [];
      for await (const e of h.client.watchEvents("demo", { afterSequence: 0n })) {
        events.push(e.event.kind === "detached" ? `detached:${e.event.cause}` : e.event.kind);
        if (e.event.kind === "detached") break;
      }
      expect(events.slice(-2)).toEqual(["backendLost", "detached:backendLost"]);
    } finally {
      await h.close();
    }
  });
});
