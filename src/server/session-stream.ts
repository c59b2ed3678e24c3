// DebugService.Session: the session as one bidirectional stream. The first message attaches;
// every later one carries an id and an operation from the one table, answered with the same id.
// Stops are pushed as they happen. When the stream ends, the session ends with it.
import { create } from "@bufbuild/protobuf";
import type { CallContext } from "nice-grpc";
import { Code, type DebugStopReason, type VmmError } from "../core";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { statusToWire } from "../wire";
import { stopReasonToWire, vmInfoToWire } from "./convert";
import type { DetachCause } from "./event-log";
import { serverError, toErrorStatus } from "./errors";
import type { Logger } from "./logger";
import { auditRefusal, stopVp, type Execute, type OperationName, type OperationTable, type StreamBinding } from "./operations";
import type { VmRegistry } from "./registry";
import { retag, type CallAccount, type SendBudget } from "./send-budget";
import { principalOf } from "./auth/interceptor";

export interface SessionStreamLimits {
  /** Answers queued for a client that does not read, before the stream ends with STREAM_OVERFLOW. */
  maxQueuedMessages: number;
  /** Bytes of answers queued likewise. */
  maxQueuedBytes: number;
}

export const DEFAULT_SESSION_STREAM_LIMITS: SessionStreamLimits = { maxQueuedMessages: 10_000, maxQueuedBytes: 64 * 1024 * 1024 };

/**
 * Operations of one stream running or waiting at once: past this the stream reads no more
 * requests until one finishes, so a client pipelining without bound is held back by HTTP/2 flow
 * control instead of growing the server.
 */
export const MAX_INFLIGHT_OPERATIONS = 256;

type Request = ds.SessionRequest;
type Response = ds.SessionResponse;
type ResultCase = Exclude<Response["result"]["case"], undefined>;

export function createSessionStreamHandler(
  registry: VmRegistry,
  table: OperationTable,
  execute: Execute,
  logger: Logger,
  limits: SessionStreamLimits,
  budget: SendBudget,
) {
  return async function* session(requests: AsyncIterable<Request>, ctx: CallContext): AsyncGenerator<Response> {
    // The stream's share of the send budget: reads reserve their answer's bytes before reading,
    // every other answer is counted as it is queued, and all of it returns as answers are written.
    const account = budget.open(ctx.signal);
    const principal = principalOf(ctx);
    const outbox = new Outbox(limits, account);
    let binding: StreamBinding | undefined;
    let endCause: DetachCause = "stream_closed";

    const answer = (id: bigint, result: Response["result"], more = false) => outbox.push(create(ds.SessionResponseSchema, { id, more, result }));
    const fail = (id: bigint, e: unknown) => {
      const status = toErrorStatus(e);
      if (status.unexpected) {
        logger.warn("unexpected error in a Session operation", {
          peer: ctx.peer,
          incident: status.unexpected.incident,
          error: e instanceof Error ? (e.stack ?? e.message) : String(e),
        });
      }
      answer(id, { case: "error", value: statusToWire(status) });
    };

    // The session can end without this stream ending it: the server shuts down, or a unary
    // Detach names this stream's session. The stream then ends too, saying why.
    let detaching = false;
    const onSessionEnded = (cause: DetachCause) => {
      if (detaching || cause === "stream_closed" || cause === "stream_overflow") return;
      const vm = binding?.target.id ?? "";
      binding = undefined;
      outbox.fail(
        cause === "server_shutdown"
          ? serverError(Code.Unavailable, "SERVER_SHUTTING_DOWN", "the server is shutting down; this session was detached and its VM resumed", {})
          : cause === "backend_lost"
            ? serverError(Code.Unavailable, "BACKEND_UNAVAILABLE", `VM "${vm}" is unavailable: its backend is gone (its process exited or a connection dropped), and this session ended`, { vm })
            : serverError(Code.Aborted, "SESSION_ENDED", `this stream's session ended (${cause === "requested" ? "a unary Detach named it" : cause === "forced" ? "an admin took the VM over or force-detached it" : cause})`, {
              cause,
            }),
      );
    };
    const push = (reason: DebugStopReason, sequence: bigint) =>
      answer(0n, {
        case: "stop",
        value: create(ds.SessionStopSchema, { reason: stopReasonToWire(reason), sequence, vp: stopVp(reason) }),
      });

    // Ordering: a control operation runs after every earlier operation; a read after the control
    // operations before it (so it sees their effects), overlapping other reads.
    let controlTail: Promise<unknown> = Promise.resolve();
    const reads = new Set<Promise<unknown>>();
    const inflight = new Set<Promise<unknown>>();
    const track = (p: Promise<unknown>, set: Set<Promise<unknown>>) => {
      set.add(p);
      void p.finally(() => set.delete(p));
    };

    const run = async (id: bigint, name: OperationName, value: Request["operation"]["value"]) => {
      const opCtx = { peer: ctx.peer, principal, signal: ctx.signal, account };
      try {
        if (name === "readMemoryStream" || name === "dumpMemory") {
          const chunks: AsyncIterable<ds.ReadMemoryStreamResponse | ds.DumpMemoryResponse> =
            name === "readMemoryStream"
              ? await execute(name, value as ds.ReadMemoryStreamRequest, opCtx, binding)
              : await execute(name, value as ds.DumpMemoryRequest, opCtx, binding);
          const reply = (v: ds.ReadMemoryStreamResponse | ds.DumpMemoryResponse, more: boolean) =>
            answer(id, { case: name, value: v } as Response["result"], more);
          // One chunk ahead, so the last one goes out without `more`. Each chunk waits for room in
          // the stream's share of the send budget before it is read.
          let held: ds.ReadMemoryStreamResponse | ds.DumpMemoryResponse | undefined;
          for await (const chunk of chunks) {
            if (held) reply(held, true);
            held = chunk;
            if (outbox.closed) return;
          }
          reply(held ?? create(name === "readMemoryStream" ? ds.ReadMemoryStreamResponseSchema : ds.DumpMemoryResponseSchema), false);
          return;
        }
        const result = await execute(name, value as never, opCtx, binding);
        answer(id, { case: name as ResultCase, value: result } as Response["result"]);
        if (name === "detach") {
          binding = undefined; // ended by the client: nothing left to end
          outbox.finish();
        }
      } catch (e) {
        fail(id, e);
      }
    };

    // A message out of place is refused with STREAM_PROTOCOL. Unless it is a read, it is a refused
    // control request (a second attach, or no operation: maybe one this server does not know), so
    // it is audited like every other.
    const refuseOutOfPlace = (operation: Request["operation"], error: VmmError): VmmError => {
      if (operation.case === undefined || table[operation.case].kind !== "read") {
        const carried = operation.value && "sessionId" in operation.value ? operation.value.sessionId : "";
        auditRefusal(
          logger,
          {
            peer: ctx.peer,
            principal: principal.name,
            auth: principal.method,
            vm: binding?.target.id ?? operation.value?.vm ?? "",
            rpc: operation.case === undefined ? "Session" : table[operation.case].rpc,
            session: (binding?.sessionId ?? carried).slice(0, 8),
            via: "stream",
          },
          error,
        );
      }
      return error;
    };

    const dispatch = (msg: Request) => {
      const { id, operation } = msg;
      if (operation.case === undefined || operation.case === "attach") {
        fail(
          id,
          refuseOutOfPlace(
            operation,
            serverError(
              Code.InvalidArgument,
              "STREAM_PROTOCOL",
              operation.case === undefined
                ? `message ${id} carries no operation: set one of the SessionRequest operations`
                : "this stream is already attached: one Session stream is one session",
              { id: String(id) },
            ),
          ),
        );
        return;
      }
      const name = operation.case;
      if (name === "detach") detaching = true;
      let p: Promise<unknown>;
      if (table[name].kind === "read") {
        p = controlTail.then(() => run(id, name, operation.value));
        track(p, reads);
      } else {
        p = Promise.all([controlTail, ...reads]).then(() => run(id, name, operation.value));
        controlTail = p;
      }
      track(p, inflight);
    };

    const pump = async () => {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) return outbox.finish();
      const { operation } = first.value;
      if (operation.case !== "attach") {
        throw refuseOutOfPlace(
          operation,
          serverError(Code.InvalidArgument, "STREAM_PROTOCOL", `the first Session message must be \`attach\` (got ${operation.case ?? "no operation"})`, {}),
        );
      }
      const opened = await execute("attach", operation.value, { peer: ctx.peer, principal, signal: ctx.signal, push, onSessionEnded });
      const target = registry.resolveFor("", opened.sessionId);
      binding = { target, sessionId: opened.sessionId, push };
      if (outbox.closed) {
        // The stream ended while Attach ran (cancelled, connection lost): its finally found no
        // session to end, so end it here, or the VM would stay attached to nobody.
        binding = undefined;
        void target.end(opened.sessionId, endCause);
        return;
      }
      answer(first.value.id, {
        case: "opened",
        value: create(ds.SessionOpenedSchema, { sessionId: opened.sessionId, vm: vmInfoToWire(target.core, target.attachment()) }),
      });
      // Bounded by the client's messages; each is answered exactly once. The next request is read
      // only when this stream has room: under its share of the send budget, its queue of answers
      // and its operations in flight.
      for (;;) {
        if (outbox.closed) return;
        await account.waitForRoom();
        await outbox.room(0);
        if (inflight.size >= MAX_INFLIGHT_OPERATIONS) await Promise.race(inflight);
        if (outbox.closed) return;
        const next = await it.next();
        if (next.done) break;
        dispatch(next.value);
      }
      // The client half-closed: answer what it sent, then end the session and the stream.
      await Promise.allSettled([...inflight]);
      outbox.finish();
    };

    void pump().catch((e: unknown) => outbox.fail(e));
    try {
      yield* outbox.drain(ctx.signal);
    } catch (e) {
      if (isOverflow(e)) endCause = "stream_overflow";
      throw e;
    } finally {
      outbox.finish();
      account.close();
      const b = binding;
      binding = undefined;
      // The stream is the lease: whatever ended it, the session ends now.
      if (b) void b.target.end(b.sessionId, endCause);
    }
  };
}

function isOverflow(e: unknown): boolean {
  return (e as { reason?: unknown } | null)?.reason === "STREAM_OVERFLOW";
}

/** Bytes an answer holds, for the outbox bound (bulk data counts; the rest is small). */
function sizeOf(msg: Response): number {
  const r = msg.result;
  switch (r.case) {
    case "readMemory":
    case "readMemoryStream":
    case "dumpMemory":
      return 64 + r.value.data.length;
    case "readMemoryMany":
      return 64 + r.value.results.reduce((n, x) => n + (x.result.case === "data" ? x.result.value.length : 64), 0);
    case "step":
      return 64 + r.value.pcTrace.length + r.value.registerTrace.length * 32;
    case "listSoftwareBreakpoints":
      return 64 + r.value.breakpoints.length * 48;
    default:
      return 64;
  }
}

/**
 * The answers waiting to be written. nice-grpc writes one at a time and waits for the transport
 * to drain, so a client that stops reading makes this queue grow: past the bound the stream ends
 * with RESOURCE_EXHAUSTED / STREAM_OVERFLOW instead of buffering without limit.
 */
class Outbox {
  private queue: { msg: Response; size: number }[] = [];
  private head = 0;
  private bytes = 0;
  private done = false;
  private error: unknown;
  private wake: (() => void) | undefined;
  private roomWaiters: (() => void)[] = [];

  constructor(
    private readonly limits: SessionStreamLimits,
    private readonly account: CallAccount,
  ) {}

  get closed(): boolean {
    return this.done;
  }

  push(msg: Response): void {
    if (this.done) return;
    const size = sizeOf(msg);
    const queued = this.queue.length - this.head;
    if (queued + 1 > this.limits.maxQueuedMessages || this.bytes + size > this.limits.maxQueuedBytes) {
      this.fail(
        serverError(
          Code.ResourceExhausted,
          "STREAM_OVERFLOW",
          `the client stopped reading this Session stream: ${queued} answers (${this.bytes} bytes) were waiting, over the server's bound ` +
            `(${this.limits.maxQueuedMessages} answers or ${this.limits.maxQueuedBytes} bytes); the session was detached`,
          { queued: String(queued), queued_bytes: String(this.bytes) },
        ),
      );
      return;
    }
    // A read's answer already holds its bytes (reserved before the read); the rest are counted now.
    const inner = msg.result.value;
    if (!(inner && typeof inner === "object" && retag(inner, msg))) this.account.charge(msg, size);
    this.queue.push({ msg, size });
    this.bytes += size;
    this.notify();
  }

  /** Waits until `size` more bytes fit under half the bound (the pump waits here before reading on). */
  async room(size: number): Promise<void> {
    while (!this.done && (this.bytes + size > this.limits.maxQueuedBytes / 2 || this.queue.length - this.head >= this.limits.maxQueuedMessages / 2)) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.notify();
  }

  fail(e: unknown): void {
    if (this.error === undefined) this.error = e;
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    this.done = true;
    this.notify();
  }

  async *drain(signal: AbortSignal): AsyncGenerator<Response> {
    const onAbort = () => this.finish();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        if (this.error !== undefined) throw this.error;
        if (this.head < this.queue.length) {
          const { msg, size } = this.queue[this.head++];
          this.bytes -= size;
          if (this.head > 1024 && this.head * 2 > this.queue.length) {
            this.queue = this.queue.slice(this.head);
            this.head = 0;
          }
          const waiters = this.roomWaiters;
          this.roomWaiters = [];
          for (const w of waiters) w();
          yield msg;
          continue;
        }
        if (this.done || signal.aborted) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    if (this.done) {
      const waiters = this.roomWaiters;
      this.roomWaiters = [];
      for (const w of waiters) w();
    }
  }
}
