// A Session over unary RPCs that carry the session id (internal): a lease, Resume waits for the stop.
import { Status } from "nice-grpc";
import type { VmmDebugClient } from "./client";
import { debugStateToWire, stopReasonFromWire } from "./convert";
import { VmmDebugError } from "./errors";
import type { OperationName, OperationRequest, OperationResponse, SessionTransport } from "./session-transport";
import type { CallOptions, DebugState, DebugStopReason, PartialRead, SessionStop } from "./types";

type UnaryMethod = (request: object, opts: CallOptions) => Promise<unknown>;

export class UnaryTransport implements SessionTransport {
  readonly kind = "unary" as const;
  /** VPs on which stepOnce() left single-step on in the server. */
  private readonly stepArmed = new Set<number>();
  /** Ends the stops() feeds when the session ends. */
  private readonly feeds = new Set<AbortController>();

  constructor(
    private readonly client: VmmDebugClient,
    readonly vm: string,
    readonly id: string,
    readonly lease: number,
    /** The debug state the Session last set on a VP (what stepping must restore). */
    private readonly debugState: (vp: number) => DebugState,
  ) {}

  private get rpc() {
    return this.client.rpc.debug;
  }

  /** Every request carries the session id: control needs it, and it renews the lease of reads. */
  async call<K extends OperationName>(name: K, request: OperationRequest<K>, opts: CallOptions): Promise<OperationResponse<K>> {
    // A batched step honours the VP's debug state: single-step left on by stepOnce() must go first.
    if (name === "step") await this.disarmSteps(undefined, opts);
    const method = this.rpc[name] as unknown as UnaryMethod;
    const res = (await method({ ...request, vm: this.vm, sessionId: this.id }, opts)) as OperationResponse<K>;
    if (name === "setDebugState") this.stepArmed.delete((request as OperationRequest<"setDebugState">).vp ?? 0);
    return res;
  }

  readMemoryStream(request: OperationRequest<"readMemory">, length: number, opts: CallOptions): Promise<Uint8Array> {
    return this.client.streamRead({ ...request, vm: this.vm, sessionId: this.id }, length, opts);
  }

  readMemoryStreamPartial(request: OperationRequest<"readMemory">, length: number, opts: CallOptions): Promise<PartialRead> {
    return this.client.streamReadPartial({ ...request, vm: this.vm, sessionId: this.id }, length, opts);
  }

  async resume(opts: CallOptions): Promise<DebugStopReason> {
    await this.disarmSteps(undefined, opts);
    return this.rawResume(opts);
  }

  /**
   * Single-step through the VP's debug state and Resume. Single-step stays on in the server
   * between consecutive steps of the same VP, so a run of steps costs one Resume each; resume(),
   * a batched step and setDebugState() turn it off again.
   */
  async stepOnce(vp: number, opts: CallOptions): Promise<DebugStopReason> {
    await this.disarmSteps(vp, opts);
    if (!this.stepArmed.has(vp)) {
      const state = this.debugState(vp);
      await this.rpc.setDebugState({ vm: this.vm, sessionId: this.id, vp, state: debugStateToWire({ ...state, singleStep: true }) }, opts);
      this.stepArmed.add(vp);
    }
    return this.rawResume(opts);
  }

  /**
   * There is no stream to push stops: this reads the VM's event feed (WatchEvents) for its
   * `stopped` events, from the moment the server subscribes the feed. It ends when this session
   * detaches or is closed (or another session's detach shows this one is over); it fails with
   * RESOURCE_EXHAUSTED / STOPS_OVERFLOW if the reader fell so far behind that the server's ring
   * moved past it.
   */
  stops(): AsyncIterableIterator<SessionStop> {
    const controller = new AbortController();
    this.feeds.add(controller);
    const feeds = this.feeds;
    const events = this.client.watchEvents(this.vm, { signal: controller.signal });
    const vm = this.vm;
    return (async function* () {
      try {
        for await (const e of events) {
          const body = e.event;
          if (body.kind === "stopped") yield { reason: body.reason, sequence: e.sequence, ...("vp" in body.reason ? { vp: body.reason.vp } : {}) };
          else if (body.kind === "detached") return;
          else if (body.kind === "gap") {
            throw new VmmDebugError(Status.RESOURCE_EXHAUSTED, `this stops() reader of VM "${vm}" fell behind the server's event ring; it ends here`, {
              reason: "STOPS_OVERFLOW",
              metadata: { vm },
            });
          }
        }
      } finally {
        controller.abort();
        feeds.delete(controller);
      }
    })();
  }

  async detach(opts: CallOptions): Promise<void> {
    try {
      await this.rpc.detach({ vm: this.vm, sessionId: this.id }, opts);
    } finally {
      this.endFeeds();
    }
    this.stepArmed.clear();
  }

  /** Detaches, ignoring a session that is already over (a unary session has no stream to close). */
  async close(): Promise<void> {
    try {
      await this.detach({});
    } catch (e) {
      if (!(e instanceof VmmDebugError && e.reason === "NOT_ATTACHED")) throw e;
    }
  }

  private async rawResume(opts: CallOptions): Promise<DebugStopReason> {
    const res = await this.rpc.resume({ vm: this.vm, sessionId: this.id }, opts);
    return stopReasonFromWire(res.reason);
  }

  /** Turns single-step off again on the VPs stepOnce() left it on for (all but `keep`). */
  private async disarmSteps(keep: number | undefined, opts: CallOptions): Promise<void> {
    for (const vp of [...this.stepArmed]) {
      if (vp === keep) continue;
      await this.rpc.setDebugState({ vm: this.vm, sessionId: this.id, vp, state: debugStateToWire(this.debugState(vp)) }, opts);
      this.stepArmed.delete(vp);
    }
  }

  private endFeeds(): void {
    for (const c of this.feeds) c.abort();
    this.feeds.clear();
  }
}
