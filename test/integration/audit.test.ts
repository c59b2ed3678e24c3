// The audit trail: every attach and control request writes exactly one audit line — refusals
// included, whichever layer refused them — over unary calls and the Session stream; reads write none.
import { clone, create, type MessageInitShape } from "@bufbuild/protobuf";
import { Status } from "nice-grpc";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { BreakpointSize as Size, BreakpointType as Type } from "../../gen/vmm/debug/v1/breakpoint_pb";
import { Aarch64VpStateSchema, DebuggerVpStateSchema, type DebuggerVpState, type X86VpState } from "../../gen/vmm/debug/v1/types_pb";
import { RunState } from "../../gen/vmm/debug/v1/vm_service_pb";
import { VmmDebugError } from "../../src/client";
import { createOperationTable } from "../../src/server/operations";
import { statusFromWire } from "../../src/wire";
import { startHarness, sym, waitFor, type Harness } from "./harness";
import { openRawStream, Pushable, type RawStream } from "./stream-helpers";

const VM = "demo";
const OTHER = "other";
const BOGUS = "feedface".repeat(4);

type Operation = NonNullable<MessageInitShape<typeof ds.SessionRequestSchema>["operation"]>;

/** What a request's audit line must say besides its outcome. */
interface Line {
  rpc: string;
  vm: string;
  /** The first 8 characters of the session id ("" for none). */
  session: string;
  via: "unary" | "stream";
}

/** One request of a table: a name for failures, the request, the outcome the client must get. */
interface Case<Req> {
  name: string;
  req: Req;
  outcome: string;
  /** Runs before the request, outside its audit window (e.g. waiting for a pushed stop). */
  before?: () => Promise<void>;
}
const c = <Req>(name: string, req: Req, outcome: string): Case<Req> => ({ name, req, outcome });

/** The audit `rpc` of each Session operation that is audited (the table's attach and control kinds). */
const STREAM_RPC: Partial<Record<string, string>> = {
  attach: "Attach",
  detach: "Detach",
  resume: "Resume",
  break: "Break",
  setDebugState: "SetDebugState",
  setVpState: "SetVpState",
  writeMemory: "WriteMemory",
  step: "Step",
  insertSoftwareBreakpoint: "InsertSoftwareBreakpoint",
  removeSoftwareBreakpoint: "RemoveSoftwareBreakpoint",
};

const gpa = (value: bigint) => ({ kind: { case: "gpa" as const, value } });
const gva = (vp: number, value: bigint) => ({ kind: { case: "gva" as const, value: { vp, gva: value } } });
/** A SoftwareBreakpointAddress by GVA (every VP unless `vp`) or by GPA. */
const swGva = (value: bigint, vp?: number) => ({ kind: { case: "gva" as const, value: { gva: value, vp } } });
const swGpa = (value: bigint) => ({ kind: { case: "gpa" as const, value } });
/** A DebugState with one hardware slot. */
const oneSlot = (address: bigint, type: Type, size: Size) => ({ breakpoints: [{ breakpoint: { address, type, size } }] });
const aarch64 = () =>
  create(DebuggerVpStateSchema, { arch: { case: "aarch64", value: create(Aarch64VpStateSchema, { x: Array<bigint>(31).fill(0n) }) } });

/** A copy of an x86 state with `patch` applied. */
function x86With(state: DebuggerVpState, patch: (s: X86VpState) => void): DebuggerVpState {
  const copy = clone(DebuggerVpStateSchema, state);
  if (copy.arch.case !== "x8664") throw new Error("not an x86 state");
  patch(copy.arch.value);
  return copy;
}

/** "ok", or "STATUS/REASON" of the VmmDebugError the call rejected with. */
async function unaryOutcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (e) {
    if (!(e instanceof VmmDebugError)) throw e;
    return `${e.codeName}/${e.reason}`;
  }
}

/** "ok", or "STATUS/REASON" of a Session stream answer. */
function answerOutcome(msg: ds.SessionResponse): string {
  if (msg.result.case !== "error") return "ok";
  const e = statusFromWire(msg.result.value);
  return `${Status[e.code]}/${e.reason}`;
}

describe("audit coverage", () => {
  it("walks every attach and control operation of the operation table", () => {
    const table = createOperationTable({ maxReadBytes: 1, maxStreamReadBytes: 1, streamChunkBytes: 1 } as Parameters<typeof createOperationTable>[0]);
    const audited = Object.entries(table).filter(([, spec]) => spec.kind !== "read");
    // A new control operation fails here until this file walks it (unary and on the stream).
    expect(Object.fromEntries(audited.map(([name, spec]) => [name, spec.rpc]))).toEqual(STREAM_RPC);
  });
});

describe("audit", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vmIds: [VM, OTHER], vpCount: 2 });
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(async () => {
    // No test depends on the one before it: whatever a test left attached is released by now.
    await waitFor(async () => (await h.client.rpc.vm.listVms({})).vms.every((v) => v.attached === undefined), 10_000, "no session left");
  });

  const auditsFrom = (mark: number) => h.logs.slice(mark).filter((l) => l.message === "audit").map((l) => l.fields);
  const debug = () => h.client.rpc.debug;

  /** Runs `call` (which returns its outcome) and checks it wrote exactly one audit line, with that outcome. */
  async function expectOneLine(name: string, line: Line, outcome: string, call: () => Promise<string>): Promise<void> {
    const mark = h.logs.length;
    const got = await call();
    expect({ name, outcome: got }).toEqual({ name, outcome });
    expect({ name, lines: auditsFrom(mark) }).toEqual({
      name,
      lines: [expect.objectContaining({ ...line, outcome: got, peer: expect.stringContaining("127.0.0.1"), time: expect.any(String) })],
    });
  }

  async function attachStopped(): Promise<string> {
    const { sessionId } = await debug().attach({ vm: VM });
    await debug().break({ vm: VM, sessionId });
    await debug().resume({ vm: VM, sessionId }); // reports the Break
    return sessionId;
  }

  async function detachQuietly(sessionId: string): Promise<void> {
    await debug()
      .detach({ vm: VM, sessionId })
      .catch(() => undefined);
  }

  describe("unary", () => {
    let s = "";
    beforeEach(async () => {
      s = await attachStopped();
    });
    afterEach(async () => {
      await detachQuietly(s);
    });

    /**
     * Refusals every unary control request shares: the VM, then the session. `payload` is valid
     * for the RPC, so that only the named fault is wrong.
     */
    function sessionFaults<P extends object>(payload: P): Case<P & { vm: string; sessionId: string }>[] {
      const req = (vm: string, sessionId: string) => ({ ...payload, vm, sessionId });
      return [
        c("unknown VM, no session", req("nope", ""), "NOT_FOUND/VM_NOT_FOUND"),
        c("unknown VM, the session", req("nope", s), "INVALID_ARGUMENT/SESSION_VM_MISMATCH"),
        c("another VM than the session's", req(OTHER, s), "INVALID_ARGUMENT/SESSION_VM_MISMATCH"),
        c("absent session", req(VM, ""), "FAILED_PRECONDITION/NOT_ATTACHED"),
        c("unknown session", req(VM, BOGUS), "FAILED_PRECONDITION/NOT_ATTACHED"),
        c("unknown session, no VM, two VMs", req("", BOGUS), "FAILED_PRECONDITION/NOT_ATTACHED"),
        c("no VM and no session, two VMs", req("", ""), "INVALID_ARGUMENT/VM_AMBIGUOUS"),
      ];
    }

    async function runUnary<R extends { vm: string; sessionId: string }>(
      rpc: string,
      call: (req: R) => Promise<unknown>,
      cases: Case<R>[],
    ): Promise<void> {
      for (const k of cases) {
        await k.before?.();
        const line: Line = { rpc, vm: k.req.vm, session: k.req.sessionId.slice(0, 8), via: "unary" };
        await expectOneLine(`${rpc}: ${k.name}`, line, k.outcome, () => unaryOutcome(call(k.req)));
      }
    }

    it("Attach: one line per request, with the new session's prefix when it succeeds", async () => {
      await detachQuietly(s);
      const { sessionId } = await debug().attach({ vm: VM });
      const attach = (vm: string) => () => unaryOutcome(debug().attach({ vm }));
      const line = (vm: string): Line => ({ rpc: "Attach", vm, session: "", via: "unary" });
      await expectOneLine("taken", line(VM), "FAILED_PRECONDITION/SESSION_CONFLICT", attach(VM));
      await expectOneLine("unknown VM", line("nope"), "NOT_FOUND/VM_NOT_FOUND", attach("nope"));
      await expectOneLine("no VM, two VMs", line(""), "INVALID_ARGUMENT/VM_AMBIGUOUS", attach(""));
      await debug().detach({ vm: VM, sessionId });
      // The good Attach: its line carries the new session's prefix, known once it answers.
      const mark = h.logs.length;
      s = (await debug().attach({ vm: VM })).sessionId;
      expect(auditsFrom(mark)).toEqual([expect.objectContaining({ ...line(VM), session: s.slice(0, 8), outcome: "ok" })]);
    });

    it("Detach: one line per good and bad request", async () => {
      await runUnary("Detach", (r) => debug().detach(r), [...sessionFaults({}), c("good", { vm: VM, sessionId: s }, "ok")]);
    });

    it("Break: one line per good and bad request", async () => {
      await runUnary("Break", (r) => debug().break(r), [...sessionFaults({}), c("good", { vm: VM, sessionId: s }, "ok")]);
    });

    it("Resume: one line per good and bad request", async () => {
      const good = c("good (single-stepping VP 0)", { vm: VM, sessionId: s }, "ok");
      good.before = async () => void (await debug().setDebugState({ vm: VM, sessionId: s, vp: 0, state: { singleStep: true } }));
      await runUnary("Resume", (r) => debug().resume(r), [...sessionFaults({}), good]);
    });

    it("SetDebugState: one line per good and bad request", async () => {
      const ok = { vp: 1, state: oneSlot(sym("counter").gva, Type.WRITE, Size.QWORD) };
      const req = (patch: object) => ({ vm: VM, sessionId: s, ...ok, ...patch });
      await runUnary("SetDebugState", (r) => debug().setDebugState(r), [
        ...sessionFaults(ok),
        c("VP out of range", req({ vp: 2 }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
        c("VP 2^32-1", req({ vp: 0xffff_ffff }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
        c("misaligned", req({ state: oneSlot(0x1004n, Type.WRITE, Size.QWORD) }), "INVALID_ARGUMENT/BREAKPOINT_MISALIGNED"),
        c("EXECUTE of size 8", req({ state: oneSlot(0x1000n, Type.EXECUTE, Size.QWORD) }), "INVALID_ARGUMENT/BREAKPOINT_INVALID_SIZE"),
        c("INVALID (I/O) type", req({ state: oneSlot(0x1000n, Type.INVALID, Size.BYTE) }), "INVALID_ARGUMENT/BREAKPOINT_INVALID_TYPE"),
        c("unknown type", req({ state: oneSlot(0x1000n, 7 as Type, Size.BYTE) }), "INVALID_ARGUMENT/INVALID_ENUM"),
        c("unknown size", req({ state: oneSlot(0x1000n, Type.WRITE, 9 as Size) }), "INVALID_ARGUMENT/INVALID_ENUM"),
        c("five slots", req({ state: { breakpoints: Array(5).fill({}) } }), "INVALID_ARGUMENT/TOO_MANY_BREAKPOINTS"),
        c("good", req({}), "ok"),
      ]);
    });

    it("SetVpState: one line per good and bad request", async () => {
      const current = (await debug().getVpState({ vm: VM, vp: 0 })).state!;
      const ok = { vp: 0, state: current };
      const req = (patch: object) => ({ vm: VM, sessionId: s, ...ok, ...patch });
      const patched = (patch: (x: X86VpState) => void) => req({ state: x86With(current, patch) });
      await runUnary("SetVpState", (r) => debug().setVpState(r), [
        ...sessionFaults(ok),
        c("VP out of range", req({ vp: 2 }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
        c("17 gp values", patched((x) => void x.gp.push(0n)), "INVALID_ARGUMENT/INVALID_ARRAY_LENGTH"),
        c("15 gp values", patched((x) => void x.gp.pop()), "INVALID_ARGUMENT/INVALID_ARRAY_LENGTH"),
        c("no state", req({ state: undefined }), "INVALID_ARGUMENT/MISSING_FIELD"),
        c("no architecture", req({ state: create(DebuggerVpStateSchema) }), "INVALID_ARGUMENT/MISSING_FIELD"),
        c("a segment missing", patched((x) => void (x.cs = undefined)), "INVALID_ARGUMENT/MISSING_FIELD"),
        c("CR8 over 4 bits", patched((x) => void (x.cr8 = 0x10n)), "INVALID_ARGUMENT/VALUE_OUT_OF_RANGE"),
        c("aarch64 state on an x86 VM", req({ state: aarch64() }), "FAILED_PRECONDITION/ARCH_MISMATCH"),
        c("good", req({}), "ok"),
      ]);
    });

    it("WriteMemory: one line per good and bad request", async () => {
      const at = sym("counter").gpa;
      const bytes = (await debug().readMemory({ vm: VM, address: gpa(at), length: 8n })).data;
      const ok = { address: gpa(at), data: bytes };
      const req = (patch: object) => ({ vm: VM, sessionId: s, ...ok, ...patch });
      await runUnary("WriteMemory", (r) => debug().writeMemory(r), [
        ...sessionFaults(ok),
        c("no address", req({ address: undefined }), "INVALID_ARGUMENT/MISSING_FIELD"),
        c("an address of no kind", req({ address: {} }), "INVALID_ARGUMENT/MISSING_FIELD"),
        c("8 bytes at GPA 2^64-1", req({ address: gpa(0xffff_ffff_ffff_ffffn) }), "INVALID_ARGUMENT/VALUE_OUT_OF_RANGE"),
        c("1 byte at GPA 2^64-1", req({ address: gpa(0xffff_ffff_ffff_ffffn), data: Uint8Array.of(1) }), "OUT_OF_RANGE/GPA_UNMAPPED"),
        c("unmapped GVA", req({ address: gva(0, 0x7fff_0000_0000n) }), "FAILED_PRECONDITION/GVA_NOT_MAPPED"),
        c("GVA of a VP out of range", req({ address: gva(5, sym("counter").gva) }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
        c("good", req({}), "ok"),
      ]);
    });

    it("Step: one line per good and bad request", async () => {
      const ok = { vp: 0, count: 1 };
      const req = (patch: object) => ({ vm: VM, sessionId: s, ...ok, ...patch });
      await runUnary("Step", (r) => debug().step(r), [
        ...sessionFaults(ok),
        c("VP out of range", req({ vp: 2 }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
        c("count 0", req({ count: 0 }), "INVALID_ARGUMENT/VALUE_OUT_OF_RANGE"),
        c("count 2^32-1", req({ count: 0xffff_ffff }), "INVALID_ARGUMENT/VALUE_OUT_OF_RANGE"),
        c("unknown trace", req({ trace: 9 as ds.StepTrace }), "INVALID_ARGUMENT/INVALID_ENUM"),
        c("good", req({}), "ok"),
      ]);
    });

    it("InsertSoftwareBreakpoint: one line per good and bad request", async () => {
      const ok = { address: swGva(sym("tick").gva, 1) };
      const req = (patch: object) => ({ vm: VM, sessionId: s, ...ok, ...patch });
      await runUnary("InsertSoftwareBreakpoint", (r) => debug().insertSoftwareBreakpoint(r), [
        ...sessionFaults(ok),
        c("no address", req({ address: undefined }), "INVALID_ARGUMENT/MISSING_FIELD"),
        c("an address of no kind", req({ address: {} }), "INVALID_ARGUMENT/MISSING_FIELD"),
        c("VP out of range", req({ address: swGva(sym("tick").gva, 2) }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
        c("unmapped GPA", req({ address: swGpa(1n << 50n) }), "OUT_OF_RANGE/GPA_UNMAPPED"),
        c("good", req({}), "ok"),
        c("good again (the existing one)", req({ oneShot: true }), "ok"),
        c("good, one-shot by GPA", req({ address: swGpa(sym("tick").gpa), oneShot: true }), "ok"),
      ]);
    });

    it("RemoveSoftwareBreakpoint: one line per good and bad request", async () => {
      const { id } = await debug().insertSoftwareBreakpoint({ vm: VM, sessionId: s, address: swGva(sym("tick").gva) });
      const req = (patch: object) => ({ vm: VM, sessionId: s, id, ...patch });
      await runUnary("RemoveSoftwareBreakpoint", (r) => debug().removeSoftwareBreakpoint(r), [
        ...sessionFaults({ id }),
        c("unknown id", req({ id: id + 1000n }), "NOT_FOUND/SOFTWARE_BREAKPOINT_NOT_FOUND"),
        c("id past 2^53", req({ id: 1n << 63n }), "NOT_FOUND/SOFTWARE_BREAKPOINT_NOT_FOUND"),
        c("good", req({}), "ok"),
        c("the same id again", req({}), "NOT_FOUND/SOFTWARE_BREAKPOINT_NOT_FOUND"),
      ]);
    });

    it("refusals while the VM runs are audited too (VM_RUNNING, RESUME_IN_PROGRESS)", async () => {
      const current = { vm: VM, sessionId: s };
      const line = (rpc: string): Line => ({ rpc, vm: VM, session: s.slice(0, 8), via: "unary" });
      const state = (await debug().getVpState({ vm: VM, vp: 0 })).state!;
      const resumed = debug().resume(current);
      // Running means the Resume above waits for the stop (it lets the VM run under the lock).
      await waitFor(async () => (await h.client.rpc.vm.getVm({ vm: VM })).vm?.runState === RunState.RUNNING, 10_000, "the VM runs");
      const running = "FAILED_PRECONDITION/VM_RUNNING";
      await expectOneLine("SetDebugState", line("SetDebugState"), running, () => unaryOutcome(debug().setDebugState({ ...current, vp: 0 })));
      await expectOneLine("Step", line("Step"), running, () => unaryOutcome(debug().step({ ...current, vp: 0, count: 1 })));
      await expectOneLine("SetVpState", line("SetVpState"), running, () => unaryOutcome(debug().setVpState({ ...current, vp: 0, state })));
      const address = swGva(sym("tick").gva);
      await expectOneLine("InsertSoftwareBreakpoint", line("InsertSoftwareBreakpoint"), running, () =>
        unaryOutcome(debug().insertSoftwareBreakpoint({ ...current, address })),
      );
      await expectOneLine("RemoveSoftwareBreakpoint", line("RemoveSoftwareBreakpoint"), running, () =>
        unaryOutcome(debug().removeSoftwareBreakpoint({ ...current, id: 1n })),
      );
      await expectOneLine("second Resume", line("Resume"), "FAILED_PRECONDITION/RESUME_IN_PROGRESS", () => unaryOutcome(debug().resume(current)));
      const mark = h.logs.length;
      await debug().break(current);
      await resumed;
      // The Resume answers when the stop comes, which may be before the Break returns.
      expect(auditsFrom(mark).map((l) => `${String(l.rpc)} ${String(l.outcome)}`).sort()).toEqual(["Break ok", "Resume ok"]);
    });

    it("reads write no audit line, whether they succeed or are refused", async () => {
      const mark = h.logs.length;
      const d = debug();
      const drain = async (stream: AsyncIterable<unknown>) => {
        for await (const _ of stream) void _;
      };
      const reads: Promise<unknown>[] = [
        d.getVpState({ vm: VM, vp: 0 }),
        d.getVpState({ vm: VM, vp: 7 }),
        d.getVpState({ vm: "nope", vp: 0 }),
        d.getVpState({ vm: VM, vp: 0, sessionId: BOGUS }),
        d.getVpState({ vm: VM, vp: 0, sessionId: s }),
        d.getVpStates({ vm: VM }),
        d.getVpStates({ vm: VM, vps: [0, 9] }),
        d.listSoftwareBreakpoints({ vm: VM }),
        d.listSoftwareBreakpoints({ vm: VM, sessionId: BOGUS }),
        d.listSoftwareBreakpoints({ vm: "nope" }),
        d.readMemory({ vm: VM, address: gpa(sym("counter").gpa), length: 8n }),
        d.readMemory({ vm: VM, address: gpa(0xffff_ffff_ffff_ff00n), length: 8n }),
        d.readMemory({ vm: VM, length: 8n }),
        d.readMemory({ vm: VM, address: gpa(0n), length: 1n << 40n }),
        d.readMemoryMany({ vm: VM, ranges: [{ address: gpa(0n), length: 8n }, { length: 8n }] }),
        drain(d.readMemoryStream({ vm: VM, address: gpa(0n), length: 64n })),
        drain(d.readMemoryStream({ vm: VM, address: gpa(1n << 63n), length: 64n })),
        h.client.rpc.vm.listVms({}),
        h.client.rpc.vm.getVm({ vm: VM }),
        h.client.rpc.vm.getVm({ vm: "nope" }),
        (async () => {
          const ac = new AbortController();
          for await (const _ of h.client.rpc.vm.watchEvents({ vm: VM, afterSequence: 0n }, { signal: ac.signal })) {
            void _;
            ac.abort(); // one event is enough: the call was served
          }
        })(),
      ];
      const outcomes = await Promise.allSettled(reads);
      expect(outcomes.filter((o) => o.status === "rejected").length).toBeGreaterThanOrEqual(8);
      expect(auditsFrom(mark)).toEqual([]);
    });
  });

  describe("Session stream", () => {
    async function openStopped(): Promise<RawStream> {
      const stream = await openRawStream(h.client, VM);
      await stream.call({ case: "break", value: {} });
      await stream.nextStop();
      return stream;
    }

    async function closeStream(stream: RawStream): Promise<void> {
      stream.end();
      await stream.done.catch(() => undefined);
    }

    /** Each case on the stream; its line names the stream's VM and session whatever the request carries. */
    async function runStream(stream: RawStream, cases: Case<Operation>[]): Promise<void> {
      const session = stream.opened.sessionId.slice(0, 8);
      for (const k of cases) {
        await k.before?.();
        const rpc = k.req.case === undefined ? "Session" : STREAM_RPC[k.req.case]!;
        const line: Line = { rpc, vm: VM, session, via: "stream" };
        await expectOneLine(`${rpc}: ${k.name}`, line, k.outcome, async () => answerOutcome(await stream.call(k.req)));
      }
    }

    it("Attach on a stream is audited, refused or not", async () => {
      const unary = await attachStopped();
      try {
        const open = (vm: string) => () => openRawStream(h.client, vm).then(() => "ok", (e: VmmDebugError) => `${e.codeName}/${e.reason}`);
        const line = (vm: string): Line => ({ rpc: "Attach", vm, session: "", via: "stream" });
        await expectOneLine("taken", line(VM), "FAILED_PRECONDITION/SESSION_CONFLICT", open(VM));
        await expectOneLine("unknown VM", line("nope"), "NOT_FOUND/VM_NOT_FOUND", open("nope"));
        await expectOneLine("no VM, two VMs", line(""), "INVALID_ARGUMENT/VM_AMBIGUOUS", open(""));
      } finally {
        await detachQuietly(unary);
      }
      const mark = h.logs.length;
      const stream = await openRawStream(h.client, VM);
      const session = stream.opened.sessionId.slice(0, 8);
      expect(auditsFrom(mark)).toEqual([expect.objectContaining({ rpc: "Attach", vm: VM, session, via: "stream", outcome: "ok" })]);
      await closeStream(stream);
    });

    it("every control operation, good and bad, writes one line with the stream's session", async () => {
      const stream = await openStopped();
      try {
        const state = ((await stream.call({ case: "getVpState", value: { vp: 0 } })).result.value as ds.GetVpStateResponse).state!;
        const counter = sym("counter").gpa;
        const read = await stream.call({ case: "readMemory", value: { address: gpa(counter), length: 8n } });
        const bytes = (read.result.value as ds.ReadMemoryResponse).data;
        const op = (name: keyof typeof STREAM_RPC, value: object) => ({ case: name, value }) as Operation;
        /** Inside a stream `vm` and `session_id` may be empty; when set they must be the stream's. */
        const notThisStream = (name: keyof typeof STREAM_RPC, payload: object) => [
          c("another VM", op(name, { ...payload, vm: OTHER }), "INVALID_ARGUMENT/SESSION_VM_MISMATCH"),
          c("unknown VM", op(name, { ...payload, vm: "nope" }), "INVALID_ARGUMENT/SESSION_VM_MISMATCH"),
          c("another session id", op(name, { ...payload, sessionId: BOGUS }), "INVALID_ARGUMENT/SESSION_MISMATCH"),
        ];
        const afterStop = (k: Case<Operation>) => ({ ...k, before: async () => void (await stream.nextStop()) });
        const [firstSetVpState, ...setVpStateFaults] = notThisStream("setVpState", { vp: 0, state });
        await runStream(stream, [
          ...notThisStream("break", {}),
          c("good", op("break", {}), "ok"),

          ...notThisStream("setDebugState", { vp: 0 }),
          c("VP out of range", op("setDebugState", { vp: 2 }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
          c("misaligned", op("setDebugState", { vp: 0, state: oneSlot(0x1002n, Type.READ_OR_WRITE, Size.DWORD) }), "INVALID_ARGUMENT/BREAKPOINT_MISALIGNED"),
          c("bad size", op("setDebugState", { vp: 0, state: oneSlot(0x1000n, Type.EXECUTE, Size.WORD) }), "INVALID_ARGUMENT/BREAKPOINT_INVALID_SIZE"),
          c("good", op("setDebugState", { vp: 0, state: { singleStep: true } }), "ok"),

          ...notThisStream("resume", {}),
          c("good (single-stepping)", op("resume", {}), "ok"),

          // The single step's stop is pushed when it comes: wait for it, so the VM is stopped.
          afterStop(firstSetVpState),
          ...setVpStateFaults,
          c("17 gp values", op("setVpState", { vp: 0, state: x86With(state, (x) => void x.gp.push(1n)) }), "INVALID_ARGUMENT/INVALID_ARRAY_LENGTH"),
          c("aarch64 fields", op("setVpState", { vp: 0, state: aarch64() }), "FAILED_PRECONDITION/ARCH_MISMATCH"),
          c("VP out of range", op("setVpState", { vp: 3, state }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
          c("no state", op("setVpState", { vp: 0 }), "INVALID_ARGUMENT/MISSING_FIELD"),
          c("good", op("setVpState", { vp: 0, state }), "ok"),

          ...notThisStream("writeMemory", { address: gpa(counter), data: bytes }),
          c("no address", op("writeMemory", { data: bytes }), "INVALID_ARGUMENT/MISSING_FIELD"),
          c("GPA 2^64-8", op("writeMemory", { address: gpa(0xffff_ffff_ffff_fff8n), data: bytes }), "OUT_OF_RANGE/GPA_UNMAPPED"),
          c("good", op("writeMemory", { address: gpa(counter), data: bytes }), "ok"),

          ...notThisStream("step", { vp: 0, count: 1 }),
          c("count 0", op("step", { vp: 0, count: 0 }), "INVALID_ARGUMENT/VALUE_OUT_OF_RANGE"),
          c("VP out of range", op("step", { vp: 2, count: 1 }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
          c("good", op("step", { vp: 0, count: 2 }), "ok"),

          ...notThisStream("insertSoftwareBreakpoint", { address: swGva(sym("tick").gva) }),
          c("no address", op("insertSoftwareBreakpoint", {}), "INVALID_ARGUMENT/MISSING_FIELD"),
          c("VP out of range", op("insertSoftwareBreakpoint", { address: swGva(sym("tick").gva, 5) }), "INVALID_ARGUMENT/VP_OUT_OF_RANGE"),
          c("unmapped GPA", op("insertSoftwareBreakpoint", { address: swGpa(1n << 50n) }), "OUT_OF_RANGE/GPA_UNMAPPED"),
          c("good", op("insertSoftwareBreakpoint", { address: swGva(sym("tick").gva) }), "ok"),

          ...notThisStream("removeSoftwareBreakpoint", { id: 1n }),
          c("unknown id", op("removeSoftwareBreakpoint", { id: 1n << 40n }), "NOT_FOUND/SOFTWARE_BREAKPOINT_NOT_FOUND"),

          // Messages out of place are refused control requests too (DESIGN: "an audit line for
          // every control request, refused ones included"); the stream goes on after them.
          c("a second attach (STREAM_PROTOCOL)", op("attach", { vm: VM }), "INVALID_ARGUMENT/STREAM_PROTOCOL"),
          c("no operation (STREAM_PROTOCOL)", { case: undefined }, "INVALID_ARGUMENT/STREAM_PROTOCOL"),

          ...notThisStream("detach", {}),
          c("good", op("detach", {}), "ok"),
        ]);
      } finally {
        await closeStream(stream);
      }
    });

    it("reads on a stream write no audit line, whether they succeed or are refused", async () => {
      const stream = await openStopped();
      try {
        const mark = h.logs.length;
        const answers = await Promise.all([
          stream.call({ case: "getVpState", value: { vp: 0 } }),
          stream.call({ case: "getVpState", value: { vp: 9 } }),
          stream.call({ case: "getVpState", value: { vp: 0, vm: "nope" } }),
          stream.call({ case: "getVpStates", value: {} }),
          stream.call({ case: "listSoftwareBreakpoints", value: {} }),
          stream.call({ case: "listSoftwareBreakpoints", value: { vm: OTHER } }),
          stream.call({ case: "readMemory", value: { address: gpa(0n), length: 16n } }),
          stream.call({ case: "readMemory", value: { length: 16n } }),
          stream.call({ case: "readMemoryMany", value: { ranges: [{ length: 1n }] } }),
          stream.call({ case: "readMemoryStream", value: { address: gpa(0n), length: 100n } }),
          stream.call({ case: "readMemoryStream", value: { address: gpa(1n << 62n), length: 100n } }),
        ]);
        expect(answers.map(answerOutcome).filter((o) => o !== "ok").length).toBeGreaterThanOrEqual(4);
        expect(auditsFrom(mark)).toEqual([]);
      } finally {
        await closeStream(stream);
      }
    });

    describe("a first message that is not attach ends the stream with STREAM_PROTOCOL", () => {
      /** Opens a Session stream whose first message is `operation`; the stream's outcome. */
      async function openWith(operation: Operation): Promise<string> {
        const requests = new Pushable<ds.SessionRequest>();
        requests.push(create(ds.SessionRequestSchema, { id: 1n, operation }));
        try {
          for await (const _ of debug().session(requests)) void _;
          return "ok";
        } catch (e) {
          if (!(e instanceof VmmDebugError)) throw e;
          return `${e.codeName}/${e.reason}`;
        } finally {
          requests.end();
        }
      }
      const refused = "INVALID_ARGUMENT/STREAM_PROTOCOL";

      it("audits it when it is a control operation or no operation", async () => {
        const line = (rpc: string, vm: string, session = ""): Line => ({ rpc, vm, session, via: "stream" });
        await expectOneLine("break", line("Break", VM), refused, () => openWith({ case: "break", value: { vm: VM } }));
        const write = { vm: OTHER, sessionId: BOGUS, address: gpa(0n), data: new Uint8Array(4) };
        await expectOneLine("writeMemory", line("WriteMemory", OTHER, BOGUS.slice(0, 8)), refused, () => openWith({ case: "writeMemory", value: write }));
        await expectOneLine("no operation", line("Session", ""), refused, () => openWith({ case: undefined }));
      });

      it("does not audit a read", async () => {
        const mark = h.logs.length;
        expect(await openWith({ case: "getVpState", value: { vm: VM } })).toBe(refused);
        expect(auditsFrom(mark)).toEqual([]);
      });
    });
  });
});
