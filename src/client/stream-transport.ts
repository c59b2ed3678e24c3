// A Session over one DebugService.Session stream (internal): pipelined operations matched by id, pushed stops.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Status } from "nice-grpc";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { statusFromWire } from "../wire";
import { AsyncQueue } from "./async-queue";
import type { VmmDebugClient } from "./client";
import { ReadAssembler, sessionStopFromWire, stepResultFromWire, vmInfoFromWire } from "./convert";
import { VmmDebugError, cancelledError, deadlineError } from "./errors";
import type { OperationName, OperationRequest, OperationResponse, SessionTransport } from "./session-transport";
import type { CallOptions, DebugStopReason, PartialRead, SessionStop } from "./types";

/** Stops one stops() iterator holds for a reader that lags; one more ends it with STOPS_OVERFLOW. */
export const MAX_BUFFERED_STOPS = 1024;

type Result = ds.SessionResponse["result"];
type ResultCase = Exclude<Result["case"], undefined>;
/** The operation of one SessionRequest, as create() takes it. */
type Operation = NonNullable<MessageInitShape<typeof ds.SessionRequestSchema>["operation"]>;

/** A request waiting for its answer. `onAnswer` returns true once the request is answered in full. */
interface Pending {
  onAnswer(msg: ds.SessionResponse): boolean;
  reject(error: VmmDebugError): void;
}

/** The resume() waiting for its stop: `running` once the server has answered that the VM runs. */
interface ResumeWaiter {
  running: boolean;
  /** Stops pushed before the answer: one with a sequence after the answer's is this resume's. */
  early: SessionStop[];
  resolve(reason: DebugStopReason): void;
  reject(error: VmmDebugError): void;
}

export class StreamTransport implements SessionTransport {
  readonly kind = "stream" as const;
  readonly lease = 0;
  private nextId = 1n;
  private readonly pending = new Map<bigint, Pending>();
  /** Why the stream ended; set once, then every call fails with NOT_ATTACHED naming it. */
  private endedBy: string | undefined;
  private readonly ended: Promise<void>;
  private markEnded!: () => void;
  /** What ends the stream: detach() (the server ends it) or close() (we cancel it). */
  private leaving: "detach" | "close" | undefined;
  /** The newest stop that no resume() has reported yet (the VM stands there). */
  private unreported: SessionStop | undefined;
  private waiter: ResumeWaiter | undefined;
  private readonly feeds = new Set<AsyncQueue<SessionStop>>();

  private constructor(
    private readonly requests: AsyncQueue<ds.SessionRequest>,
    private readonly controller: AbortController,
    readonly vm: string,
    readonly id: string,
  ) {
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
  }

  /** Opens the stream and attaches; `opts` bound the attach only, not the stream's life. */
  static async open(client: VmmDebugClient, vm: string, opts: CallOptions, takeOver = false): Promise<StreamTransport> {
    const requests = new AsyncQueue<ds.SessionRequest>();
    const controller = new AbortController();
    requests.push(create(ds.SessionRequestSchema, { operation: { case: "attach", value: { vm, takeOver } } }));
    const responses = client.rpc.debug.session(requests, { signal: controller.signal })[Symbol.asyncIterator]();
    const giveUp = (error: VmmDebugError) => {
      requests.end();
      controller.abort(); // the server detaches a session it may have opened meanwhile
      throw error;
    };
    let first: IteratorResult<ds.SessionResponse>;
    try {
      first = await withCallOptions(responses.next(), opts);
    } catch (e) {
      return giveUp(VmmDebugError.from(e));
    }
    if (first.done || first.value.result.case !== "opened") {
      return giveUp(new VmmDebugError(Status.INTERNAL, "the server did not answer the Session stream's attach with `opened`"));
    }
    const opened = first.value.result.value;
    const transport = new StreamTransport(requests, controller, vmInfoFromWire(opened.vm).id, opened.sessionId);
    void transport.pump(responses);
    return transport;
  }

  call<K extends OperationName>(name: K, request: OperationRequest<K>, opts: CallOptions): Promise<OperationResponse<K>> {
    return this.send({ case: name, value: request } as unknown as Operation, opts, (msg, settle) => {
      if (msg.result.case === name) settle.resolve(msg.result.value as OperationResponse<K>);
      else settle.reject(unexpectedAnswer(name, msg.result.case));
      return true;
    });
  }

  readMemoryStream(request: OperationRequest<"readMemory">, length: number, opts: CallOptions): Promise<Uint8Array> {
    return this.streamedRead(request, length, opts, (chunks) => chunks.result());
  }

  readMemoryStreamPartial(request: OperationRequest<"readMemory">, length: number, opts: CallOptions): Promise<PartialRead> {
    return this.streamedRead({ ...request, allowPartial: true }, length, opts, (chunks) => chunks.partialResult());
  }

  private streamedRead<T>(request: OperationRequest<"readMemory">, length: number, opts: CallOptions, done: (chunks: ReadAssembler) => T): Promise<T> {
    const chunks = new ReadAssembler(length);
    return this.send<T>({ case: "readMemoryStream", value: request }, opts, (msg, settle) => {
      if (msg.result.case !== "readMemoryStream") {
        settle.reject(unexpectedAnswer("readMemoryStream", msg.result.case));
        return true;
      }
      chunks.add(msg.result.value); // a throw rejects the call (onMessage)
      if (msg.more) return false;
      settle.resolve(done(chunks));
      return true;
    });
  }

  /**
   * An unreported stop answers at once (the VM has not run since). Otherwise sends `resume` and
   * answers the first stop whose sequence is after the one the server's answer names (the event
   * feed's newest when the VM began to run); an older stop is not this resume's (stops() has it).
   */
  resume(opts: CallOptions): Promise<DebugStopReason> {
    if (this.endedBy !== undefined) return Promise.reject(this.notAttached());
    if (this.waiter) {
      return Promise.reject(
        new VmmDebugError(Status.FAILED_PRECONDITION, `a resume() on VM "${this.vm}" is already waiting for the next stop: wait for it, cancel it, or call break()`, {
          reason: "RESUME_IN_PROGRESS",
          metadata: { vm: this.vm },
        }),
      );
    }
    const stop = this.unreported;
    if (stop) {
      this.unreported = undefined;
      return Promise.resolve(stop.reason);
    }
    // One deadline for both halves (the answer that the VM runs, then its stop).
    const deadlineAt = opts.deadlineMs === undefined ? undefined : Date.now() + opts.deadlineMs;
    return new Promise<DebugStopReason>((resolve, reject) => {
      let stopWatching = () => {};
      const waiter: ResumeWaiter = {
        running: false,
        early: [],
        resolve: (reason) => {
          stopWatching();
          resolve(reason);
        },
        reject: (error) => {
          stopWatching();
          reject(error);
        },
      };
      this.waiter = waiter;
      const giveUp = (error: VmmDebugError) => {
        if (this.waiter === waiter) this.waiter = undefined; // the VM runs on; its stop waits for the next resume()
        waiter.reject(error);
      };
      this.send({ case: "resume", value: {} }, opts, (msg, settle) => {
        if (msg.result.case === "resume") settle.resolve(msg.result.value.sequence);
        else settle.reject(unexpectedAnswer("resume", msg.result.case));
        return true;
      }).then(
        (after) => {
          if (this.waiter !== waiter) return;
          const mine = waiter.early.find((s) => s.sequence > (after as bigint));
          if (mine) {
            this.waiter = undefined;
            waiter.resolve(mine.reason);
            return;
          }
          waiter.running = true;
          const rest = deadlineAt === undefined ? undefined : Math.max(0, deadlineAt - Date.now());
          stopWatching = watchCallOptions({ signal: opts.signal, deadlineMs: rest }, () => giveUp(giveUpError(opts)));
        },
        (e: unknown) => giveUp(VmmDebugError.from(e)),
      );
    });
  }

  /** One Step of one instruction: one message, and the VM stays stopped. */
  async stepOnce(vp: number, opts: CallOptions): Promise<DebugStopReason> {
    const res = await this.call("step", { vp, count: 1, trace: ds.StepTrace.NONE }, opts);
    return stepResultFromWire(res).stop ?? { kind: "singleStep", vp };
  }

  stops(): AsyncIterableIterator<SessionStop> {
    const feed: AsyncQueue<SessionStop> = new AsyncQueue<SessionStop>({
      limit: MAX_BUFFERED_STOPS,
      overflow: () =>
        new VmmDebugError(
          Status.RESOURCE_EXHAUSTED,
          `this stops() reader fell ${MAX_BUFFERED_STOPS} stops behind; it ends here (the session goes on: call stops() again)`,
          { reason: "STOPS_OVERFLOW", metadata: { buffered: String(MAX_BUFFERED_STOPS) } },
        ),
      onReturn: () => this.feeds.delete(feed),
    });
    if (this.endedBy !== undefined) feed.end();
    else this.feeds.add(feed);
    return feed;
  }

  async detach(opts: CallOptions): Promise<void> {
    if (this.endedBy !== undefined) throw this.notAttached();
    this.leaving = "detach";
    try {
      await this.send({ case: "detach", value: {} }, opts, (msg, settle) => {
        if (msg.result.case === "detach") settle.resolve(undefined);
        else settle.reject(unexpectedAnswer("detach", msg.result.case));
        return true;
      });
    } catch (e) {
      if (this.endedBy === undefined) this.leaving = undefined;
      throw e;
    }
    // The server ends the stream after answering; bound the wait by the call's options too.
    await withCallOptions(this.ended, opts);
  }

  async close(): Promise<void> {
    if (this.endedBy === undefined) {
      this.leaving ??= "close";
      this.requests.end();
      this.controller.abort();
    }
    await this.ended;
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Sends one operation with a fresh id and settles through `onAnswer` (called per answer with
   * that id until it returns true). An abort or deadline rejects at once; the server's later
   * answer is then dropped.
   */
  private send<T>(
    operation: Operation,
    opts: CallOptions,
    onAnswer: (msg: ds.SessionResponse, settle: { resolve(v: T): void; reject(e: VmmDebugError): void }) => boolean,
  ): Promise<T> {
    if (this.endedBy !== undefined) return Promise.reject(this.notAttached());
    if (opts.signal?.aborted) return Promise.reject(cancelledError());
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const stopWatching = watchCallOptions(opts, () => {
        this.pending.delete(id);
        reject(giveUpError(opts));
      });
      const settle = {
        resolve: (v: T) => {
          stopWatching();
          resolve(v);
        },
        reject: (e: VmmDebugError) => {
          stopWatching();
          reject(e);
        },
      };
      this.pending.set(id, {
        onAnswer: (msg) => {
          if (msg.result.case === "error") {
            settle.reject(VmmDebugError.fromDetails(statusFromWire(msg.result.value)));
            return true;
          }
          return onAnswer(msg, settle);
        },
        reject: settle.reject,
      });
      this.requests.push(create(ds.SessionRequestSchema, { id, operation }));
    });
  }

  /** Reads every server message until the stream ends; nothing thrown here escapes. */
  private async pump(responses: AsyncIterator<ds.SessionResponse>): Promise<void> {
    let failure: VmmDebugError | undefined;
    try {
      for (;;) {
        const r = await responses.next();
        if (r.done) break;
        this.onMessage(r.value);
      }
      if (this.leaving !== "detach") {
        failure = new VmmDebugError(Status.ABORTED, `the server ended the Session stream of VM "${this.vm}" without a detach`, {
          reason: "SESSION_ENDED",
          metadata: { vm: this.vm },
        });
      }
    } catch (e) {
      failure = this.leaving === "close" ? closedError(e) : VmmDebugError.from(e);
    }
    this.finish(failure);
  }

  private onMessage(msg: ds.SessionResponse): void {
    if (msg.result.case === "stop") {
      this.onStop(sessionStopFromWire(msg.result.value));
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return; // answered after its caller gave up (abort or deadline)
    let done: boolean;
    try {
      done = p.onAnswer(msg);
    } catch (e) {
      p.reject(VmmDebugError.from(e)); // an answer this SDK cannot convert
      done = true;
    }
    if (done) this.pending.delete(msg.id);
  }

  private onStop(stop: SessionStop): void {
    for (const feed of this.feeds) if (!feed.push(stop)) this.feeds.delete(feed);
    const waiter = this.waiter;
    if (waiter?.running) {
      this.waiter = undefined;
      waiter.resolve(stop.reason);
    } else if (waiter) {
      waiter.early.push(stop);
    } else {
      this.unreported = stop;
    }
  }

  /** The stream is over: every pending call fails with `failure` (or NOT_ATTACHED after a detach), and so will later ones. */
  private finish(failure: VmmDebugError | undefined): void {
    this.endedBy =
      failure === undefined
        ? "the session detached"
        : this.leaving === "close"
          ? "the session was closed"
          : `its stream ended with ${failure.message}`;
    const error = failure ?? this.notAttached();
    this.requests.end();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
    const waiter = this.waiter;
    this.waiter = undefined;
    this.unreported = undefined;
    // As a unary Resume that a Detach overtakes: ABORTED / SESSION_ENDED.
    waiter?.reject(
      failure ??
        new VmmDebugError(Status.ABORTED, `the session ended (detach was called) while this resume() waited; VM "${this.vm}" runs on`, {
          reason: "SESSION_ENDED",
          metadata: { vm: this.vm, cause: "detached" },
        }),
    );
    for (const feed of this.feeds) {
      if (failure && this.leaving !== "close") feed.fail(failure);
      else feed.end();
    }
    this.feeds.clear();
    this.markEnded();
  }

  private notAttached(): VmmDebugError {
    return new VmmDebugError(
      Status.FAILED_PRECONDITION,
      `this session of VM "${this.vm}" is over (${this.endedBy ?? "it ended"}): attach again`,
      { reason: "NOT_ATTACHED", metadata: { vm: this.vm, session_id: this.id.slice(0, 8) } },
    );
  }
}

/** Calls `onGiveUp` once when the signal aborts or the deadline passes; returns the function that stops watching. */
function watchCallOptions(opts: CallOptions, onGiveUp: () => void): () => void {
  const { signal, deadlineMs } = opts;
  if (!signal && deadlineMs === undefined) return () => {};
  let done = false;
  const stop = () => {
    done = true;
    if (timer) clearTimeout(timer);
    signal?.removeEventListener("abort", fire);
  };
  const fire = () => {
    if (done) return;
    stop();
    onGiveUp();
  };
  const timer = deadlineMs === undefined ? undefined : setTimeout(fire, deadlineMs);
  signal?.addEventListener("abort", fire, { once: true });
  if (signal?.aborted) fire();
  return stop;
}

/** Why a call gave up: its signal (CANCELLED) or its deadline (DEADLINE_EXCEEDED). */
function giveUpError(opts: CallOptions): VmmDebugError {
  return opts.signal?.aborted ? cancelledError() : deadlineError(opts.deadlineMs);
}

/** Awaits `p`, rejecting earlier with CANCELLED or DEADLINE_EXCEEDED as `opts` say. */
function withCallOptions<T>(p: Promise<T>, opts: CallOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = watchCallOptions(opts, () => reject(giveUpError(opts)));
    p.then(
      (v) => {
        stop();
        resolve(v);
      },
      (e: unknown) => {
        stop();
        reject(e);
      },
    );
  });
}

function closedError(cause: unknown): VmmDebugError {
  return new VmmDebugError(Status.CANCELLED, "the session was closed while this call waited", { reason: "CANCELLED", cause });
}

function unexpectedAnswer(operation: string, got: ResultCase | undefined): VmmDebugError {
  return new VmmDebugError(Status.INTERNAL, `the server answered \`${operation}\` with \`${got ?? "nothing"}\` (is it newer than this SDK?)`);
}
