// Per-VM debugger state, like OpenVMM's DebuggerState: the one session (unary with a lease, or a
// Session stream that is its own lease), the stop not yet reported, the Resume waiting for a
// stop, and the VM's event feed. Control operations on one VM run one at a time.
//
// This layer owns the session rules (attached, which session, one Resume at a time). The VMM core
// owns the machine rules (VP index, VM stopped, architecture, step count) and is trusted for them.
import { randomBytes } from "node:crypto";
import {
  Code,
  emptyDebugState,
  errors,
  type DebugState,
  type DebugStopReason,
  type DebuggerVpState,
  type GuestAddress,
  type GvaTranslation,
  type PartialRead,
  type SoftwareBreakpoint,
  type SoftwareBreakpointAddress,
  type SoftwareBreakpoints,
  type StepResult,
  type StepTrace,
  type VmmCore,
} from "../core";
import type { AttachmentInfo } from "./convert";
import { serverError } from "./errors";
import { EventLog, type DetachCause } from "./event-log";
import { Mutex } from "./mutex";

/** Where a Session stream's stops go: every stop is pushed the moment it happens. */
export type StopPush = (reason: DebugStopReason, sequence: bigint) => void;

interface Session {
  id: string;
  holder: string;
  /** The principal that attached: only it (or an admin) may use the session. */
  owner: string;
  attachedAtMs: number;
  /** Unary sessions only: when the lease lapses unless renewed. */
  leaseExpiresAtMs: number;
  timer?: NodeJS.Timeout;
  /** Set for a Session stream: the stream is the lease, and stops are pushed instead of kept. */
  push?: StopPush;
  /** Told when the session ends, however it ends (so a stream can end with it). */
  onEnded?: (cause: DetachCause) => void;
}

interface ResumeWaiter {
  sessionId: string;
  resolve(reason: DebugStopReason): void;
  reject(error: unknown): void;
}

export interface DebuggerStateOptions {
  /** Lease of a unary session. */
  leaseMs: number;
  /** Events held for replay by WatchEvents. Default 4096. */
  eventCapacity?: number;
  /** Called when the server ends a session on its own (lease lapse, stream gone); the server audits it. */
  onSessionEnded?(vm: string, sessionId: string, cause: DetachCause, outcome: string): void;
}

export class DebuggerState {
  /** The VM's event feed (VmService.WatchEvents, and the sequence numbers of pushed stops). */
  readonly events: EventLog;
  private session: Session | undefined;
  /** A stop that happened while a unary session was attached and no Resume has reported yet. */
  private pendingStop: DebugStopReason | undefined;
  private waiter: ResumeWaiter | undefined;
  /** The VM is stopped because of the debugger (a stop while attached), so Detach resumes it. */
  private debuggerStopped = false;
  private readonly mutex = new Mutex();
  private readonly unsubscribe: () => void;
  private closed = false;
  /** endSession is stopping the VM itself: that stop is nobody's, and the VM must stay stopped. */
  private ending = false;
  /** Holds of the VM stopped (DumpMemory), each ended by calling it; none once close() began. */
  private readonly holds = new Set<() => void>();
  private holdsEnded = false;

  constructor(
    readonly core: VmmCore,
    private readonly options: DebuggerStateOptions,
  ) {
    this.events = new EventLog({ capacity: options.eventCapacity });
    // One listener for the VM's lifetime: a stop can never slip between "resume" and "subscribe",
    // and a stop after a cancelled Resume is still caught and kept for the next one.
    const offStop = core.onStop((reason) => this.onStop(reason));
    const offGone = core.onGone((detail) => this.onGone(detail));
    this.unsubscribe = () => {
      offStop();
      offGone();
    };
  }

  get id(): string {
    return this.core.id;
  }

  attachment(): AttachmentInfo | undefined {
    const s = this.session;
    return s && { holder: s.holder, attachedAtMs: s.attachedAtMs, leaseExpiresAtMs: s.push ? undefined : s.leaseExpiresAtMs };
  }

  /** The live session's id, if any (an admin's take-over or force-detach ends it without knowing it). */
  liveSessionId(): string | undefined {
    return this.session?.id;
  }

  /** The principal that owns `sessionId` if it is this VM's live session. */
  sessionOwner(sessionId: string): string | undefined {
    return this.hasSession(sessionId) ? this.session!.owner : undefined;
  }

  /** Whether `sessionId` is this VM's live session. */
  hasSession(sessionId: string): boolean {
    return sessionId !== "" && this.session?.id === sessionId;
  }

  /**
   * Opens the session. With `push` it is a Session stream's: no lease (the stream ends it) and
   * every stop is pushed. `leaseMs` is 0 for a stream session.
   */
  attach(
    holder: string,
    push?: StopPush,
    onEnded?: (cause: DetachCause) => void,
    owner = "local",
  ): Promise<{ sessionId: string; leaseMs: number }> {
    return this.mutex.run(async () => {
      this.assertOpen();
      if (this.core.runState() === "gone") throw errors.backendUnavailable(this.id, "the VMM backend is gone");
      const live = this.session;
      if (live) {
        const attachedAt = new Date(live.attachedAtMs).toISOString();
        const lease = live.push ? "held by a Session stream" : `lease expires ${new Date(live.leaseExpiresAtMs).toISOString()}`;
        throw serverError(
          Code.FailedPrecondition,
          "SESSION_CONFLICT",
          `VM "${this.id}" is already being debugged by ${live.holder} (attached ${attachedAt}, ${lease}): ` +
            `that session must Detach, or its lease lapse or its stream end, before another Attach`,
          {
            vm: this.id,
            holder: live.holder,
            attached_at: attachedAt,
            ...(live.push ? { stream: "true" } : { lease_expires_at: new Date(live.leaseExpiresAtMs).toISOString() }),
          },
        );
      }
      const now = Date.now();
      this.session = { id: randomBytes(16).toString("hex"), holder, owner, attachedAtMs: now, leaseExpiresAtMs: now, push, onEnded };
      this.pendingStop = undefined;
      this.debuggerStopped = false;
      this.renew();
      this.events.publish({ kind: "attached", holder, stream: push !== undefined });
      return { sessionId: this.session.id, leaseMs: push ? 0 : this.options.leaseMs };
    });
  }

  detach(sessionId: string): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      await this.endSession("requested");
    });
  }

  /**
   * The server ends a session on its own (a Session stream ended or overflowed): as Detach, but
   * without waiting behind control operations that may never finish (a Resume's stop). No-op if
   * that session is no longer live.
   */
  end(sessionId: string, cause: DetachCause): Promise<void> {
    const s = this.session;
    if (!s || s.id !== sessionId) return Promise.resolve();
    // Stop pushing at once: whatever happens from here is nobody's to report.
    s.push = () => {};
    return this.mutex
      .run(async () => {
        if (this.session?.id !== sessionId) return "gone";
        await this.endSession(cause);
        return "ok";
      })
      .then(
        (outcome) => {
          if (outcome === "ok") this.options.onSessionEnded?.(this.id, sessionId, cause, "ok");
        },
        (e: unknown) => this.options.onSessionEnded?.(this.id, sessionId, cause, `error: ${e instanceof Error ? e.message : String(e)}`),
      );
  }

  /**
   * Unary Resume: answers an unreported stop at once; otherwise lets the VM run and waits
   * (outside the mutex) for the next stop. Cancelling leaves the VM running and keeps its next
   * stop pending.
   */
  async resume(sessionId: string, signal: AbortSignal): Promise<DebugStopReason> {
    const started = await this.mutex.run(async () => {
      const s = this.requireSession(sessionId);
      if (s.push) return { stop: undefined, waiter: undefined, pushed: true as const, stopped: undefined };
      if (this.waiter) {
        throw serverError(
          Code.FailedPrecondition,
          "RESUME_IN_PROGRESS",
          `a Resume on VM "${this.id}" is already waiting for the next stop: wait for it, cancel it, or call Break`,
          { vm: this.id },
        );
      }
      if (this.pendingStop) {
        const stop = this.pendingStop;
        this.pendingStop = undefined;
        return { stop, waiter: undefined, pushed: false as const, stopped: undefined };
      }
      if (signal.aborted) throw cancelled();
      let waiter!: ResumeWaiter;
      const stopped = new Promise<DebugStopReason>((resolve, reject) => {
        waiter = { sessionId, resolve, reject };
      });
      this.waiter = waiter;
      try {
        await this.runCore();
      } catch (e) {
        if (this.waiter === waiter) this.waiter = undefined;
        throw e;
      }
      return { stop: undefined, waiter, pushed: false as const, stopped };
    });
    if (started.pushed) {
      // A stream's session resumed through a unary call: the stop goes to the stream.
      throw serverError(
        Code.FailedPrecondition,
        "SESSION_MISMATCH",
        `session ${sessionId.slice(0, 8)}… belongs to a Session stream: send \`resume\` on that stream (its stops are pushed there)`,
        { vm: this.id, session_id: sessionId.slice(0, 8) },
      );
    }
    if (!started.waiter) return started.stop;

    const { waiter, stopped } = started;
    const onAbort = () => {
      if (this.waiter !== waiter) return;
      this.waiter = undefined;
      if (this.session?.id === sessionId) this.renew();
      waiter.reject(cancelled());
    };
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      return await stopped!;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * A Session stream's resume: lets the VM run and returns once it runs (a no-op when it already
   * runs), with the event sequence at that moment: its stops come after it. Every stop is
   * pushed to the stream as it happens.
   */
  resumeStream(sessionId: string): Promise<bigint> {
    return this.mutex.run(async () => {
      const s = this.requireSession(sessionId);
      if (!s.push) {
        throw serverError(Code.Internal, "INTERNAL", "resumeStream on a unary session");
      }
      await this.runCore();
      return this.events.lastSequence;
    });
  }

  /** Stops a running VM (its stop goes to the waiting Resume, the stream, or stays pending); no-op if stopped. */
  break(sessionId: string): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      if (this.core.runState() === "gone") throw errors.backendUnavailable(this.id, "the VMM backend is gone");
      if (this.core.runState() === "running") await this.core.halt();
    });
  }

  setDebugState(sessionId: string, vp: number, state: DebugState): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      await this.core.setDebugState(vp, state);
      this.events.publish({ kind: "debugStateChanged", vp });
    });
  }

  /** Arms a software breakpoint (the core owns the VP, stopped and placement rules). */
  insertSoftwareBreakpoint(
    sessionId: string,
    address: SoftwareBreakpointAddress,
    oneShot: boolean,
  ): Promise<{ breakpoint: SoftwareBreakpoint; existing: boolean }> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      return this.softwareBreakpoints().insert(address, oneShot);
    });
  }

  removeSoftwareBreakpoint(sessionId: string, id: number): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      await this.softwareBreakpoints().remove(id);
    });
  }

  /** The armed software breakpoints (a read: in arrival order with control operations). */
  listSoftwareBreakpoints(): Promise<SoftwareBreakpoint[]> {
    return this.mutex.run(async () => {
      this.assertOpen();
      return this.softwareBreakpoints().list();
    });
  }

  /** A batched step of one VP; the VM stays stopped. The core owns the VP, stopped and count rules. */
  step(sessionId: string, vp: number, count: number, trace: StepTrace, signal: AbortSignal): Promise<StepResult> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      const result = await this.core.step(vp, count, trace, signal);
      this.events.publish({ kind: "stepped", vp, executed: result.executed, stop: result.stop });
      if (result.stop) this.publishMachineEvent(result.stop);
      return result;
    });
  }

  /** Reads run in arrival order with control operations (so they see what came before). */
  getVpState(vp: number): Promise<DebuggerVpState> {
    return this.mutex.run(async () => {
      this.assertOpen();
      return this.core.getVpState(vp);
    });
  }

  /** Several VPs' registers, read together (every VP when `vps` is empty). */
  getVpStates(vps: readonly number[]): Promise<{ vp: number; state: DebuggerVpState }[]> {
    return this.mutex.run(async () => {
      this.assertOpen();
      const which = vps.length > 0 ? vps : Array.from({ length: this.core.vpCount }, (_, i) => i);
      const out: { vp: number; state: DebuggerVpState }[] = [];
      for (const vp of which) out.push({ vp, state: await this.core.getVpState(vp) });
      return out;
    });
  }

  setVpState(sessionId: string, vp: number, state: DebuggerVpState): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      await this.core.setVpState(vp, state);
    });
  }

  /** Reads need no session and no lock: the core serves them while the VM runs. */
  readMemory(address: GuestAddress, length: number): Promise<Uint8Array> {
    this.assertOpen();
    return this.core.readMemory(address, length);
  }

  /** As readMemory, with unreadable bytes as zero and listed (ReadMemory's allow_partial). */
  readMemoryPartial(address: GuestAddress, length: number): Promise<PartialRead> {
    this.assertOpen();
    return this.core.readMemoryPartial(address, length);
  }

  /** One VP's translation of `gva`, in arrival order with control operations (like getVpState). */
  translateGva(vp: number, gva: bigint): Promise<GvaTranslation> {
    return this.mutex.run(async () => {
      this.assertOpen();
      return this.core.translateGva(vp, gva);
    });
  }

  writeMemory(sessionId: string, address: GuestAddress, data: Uint8Array): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      await this.core.writeMemory(address, data);
    });
  }

  /** A read that carries a session id renews that session's lease (NOT_ATTACHED if it is not live). */
  touch(sessionId: string): void {
    this.requireSession(sessionId);
  }

  /**
   * Holds the VM stopped (DumpMemory): checks it is stopped (else VM_RUNNING) and keeps the lock
   * until the returned function is called, so every control operation (Resume, Step, Detach…)
   * and every locked read waits until then. close() ends every hold first, telling `interrupted`.
   */
  holdStopped(what: string, interrupted?: () => void): Promise<() => void> {
    return new Promise((resolve, reject) => {
      void this.mutex.run(async () => {
        try {
          this.assertOpen();
          if (this.holdsEnded) {
            throw serverError(Code.Unavailable, "SERVER_SHUTTING_DOWN", `the server is shutting down and no longer serves VM "${this.id}"`, { vm: this.id });
          }
          const state = this.core.runState();
          if (state === "gone") throw errors.backendUnavailable(this.id, "the VMM backend is gone");
          if (state === "running") throw errors.vmRunning(this.id, what);
        } catch (e) {
          reject(e);
          return;
        }
        await new Promise<void>((release) => {
          const interrupt = () => {
            this.holds.delete(interrupt);
            release();
            interrupted?.();
          };
          this.holds.add(interrupt);
          resolve(() => {
            this.holds.delete(interrupt);
            release();
          });
        });
      });
    });
  }

  /** Ends any session as Detach would (so no VM stays frozen), ends every observer, stops listening. */
  close(): Promise<void> {
    this.holdsEnded = true;
    for (const interrupt of [...this.holds]) interrupt();
    return this.mutex.run(async () => {
      if (this.closed) return;
      try {
        if (this.session) await this.endSession("server_shutdown");
      } finally {
        this.closed = true;
        this.unsubscribe();
        this.events.close();
      }
    });
  }

  // -------------------------------------------------------------------------------------------

  /** Lets the VM run for the debugger (under the mutex). */
  private async runCore(): Promise<void> {
    const wasDebuggerStopped = this.debuggerStopped;
    const wasRunning = this.core.runState() === "running";
    this.debuggerStopped = false;
    try {
      await this.core.resume();
    } catch (e) {
      this.debuggerStopped = wasDebuggerStopped;
      throw e;
    }
    if (!wasRunning) this.events.publish({ kind: "resumed" });
  }

  private onStop(reason: DebugStopReason): void {
    const s = this.session;
    if (s && !this.ending) {
      if (reason.kind !== "powerOff") this.debuggerStopped = true;
      const event = this.events.publish({ kind: "stopped", reason });
      this.publishMachineEvent(reason);
      if (s.push) {
        s.push(reason, event.sequence);
        return;
      }
      const waiter = this.waiter;
      if (waiter) {
        this.waiter = undefined;
        this.renew();
        waiter.resolve(reason);
      } else {
        this.pendingStop = reason;
      }
      return;
    }
    this.publishMachineEvent(reason);
    // Nobody is debugging: a VM that reset, triple-faulted or hit its watchdog carries on as a
    // VM without a debugger would (a triple fault resets it); only a power-off stops it for good.
    if (!this.ending && !this.closed && reason.kind !== "powerOff" && reason.kind !== "break") {
      this.core.resume().catch((e: unknown) => {
        // Nobody waits on this resume; a VM that cannot run on reads as stopped (or gone) in GetVm.
        this.events.publish({ kind: "backendLost", detail: `could not let VM run on after ${reason.kind}: ${String(e)}` });
      });
    }
  }

  /** Power-off and reset are events of the VM whether or not anyone debugs it. */
  private publishMachineEvent(reason: DebugStopReason): void {
    if (reason.kind === "powerOff") this.events.publish({ kind: "poweredOff" });
    else if (reason.kind === "reset") this.events.publish({ kind: "reset" });
  }

  /**
   * The backend is gone: a waiting Resume fails with UNAVAILABLE / BACKEND_UNAVAILABLE, and a
   * Session stream's session ends (its stream with it: no stop will ever be pushed again).
   */
  private onGone(detail: string): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    this.pendingStop = undefined;
    this.events.publish({ kind: "backendLost", detail });
    waiter?.reject(errors.backendUnavailable(this.id, detail));
    const s = this.session;
    if (s?.push) {
      void this.end(s.id, "backend_lost");
    }
  }

  /** The live session with this id (renewing its lease), else NOT_ATTACHED. */
  private requireSession(sessionId: string): Session {
    this.assertOpen();
    if (!sessionId) {
      throw serverError(
        Code.FailedPrecondition,
        "NOT_ATTACHED",
        `this call controls VM "${this.id}" and needs the session_id that Attach returned`,
        { vm: this.id },
      );
    }
    const s = this.session;
    if (!s || s.id !== sessionId) {
      throw serverError(
        Code.FailedPrecondition,
        "NOT_ATTACHED",
        `session ${sessionId.slice(0, 8)}… is not attached to VM "${this.id}" (it detached, its lease lapsed, or it never existed): call Attach`,
        { vm: this.id, session_id: sessionId.slice(0, 8) },
      );
    }
    this.renew();
    return s;
  }

  private renew(): void {
    const s = this.session;
    if (!s || s.push) return;
    const leaseMs = this.options.leaseMs;
    s.leaseExpiresAtMs = Date.now() + leaseMs;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => this.onLeaseTimer(s.id), leaseMs);
    s.timer.unref();
  }

  private onLeaseTimer(sessionId: string): void {
    if (this.session?.id !== sessionId) return;
    if (this.waiter) {
      this.renew(); // a Resume in flight keeps the session alive
      return;
    }
    void this.mutex
      .run(async () => {
        const s = this.session;
        if (s?.id !== sessionId || this.closed) return "renewed";
        if (this.waiter || Date.now() < s.leaseExpiresAtMs) {
          if (this.waiter) this.renew();
          return "renewed";
        }
        await this.endSession("lease_expired");
        return "ok";
      })
      .then(
        (outcome) => {
          if (outcome === "ok") this.options.onSessionEnded?.(this.id, sessionId, "lease_expired", "ok");
        },
        (e: unknown) =>
          this.options.onSessionEnded?.(this.id, sessionId, "lease_expired", `error: ${e instanceof Error ? e.message : String(e)}`),
      );
  }

  /**
   * Detach semantics: forget the session and the pending stop, fail a waiting Resume, clear every
   * VP's debug state, and resume the VM if the debugger had stopped it. Runs under the mutex.
   */
  private async endSession(cause: DetachCause): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    if (s.timer) clearTimeout(s.timer);
    s.onEnded?.(cause);
    this.pendingStop = undefined;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) {
      waiter.reject(
        cause === "server_shutdown"
          ? serverError(Code.Unavailable, "SERVER_SHUTTING_DOWN", `the server is shutting down; VM "${this.id}" was detached and resumed`, {
              vm: this.id,
            })
          : serverError(
              Code.Aborted,
              "SESSION_ENDED",
              `the session ended (${cause === "requested" ? "Detach was called" : "its lease lapsed"}) while this Resume waited; VM "${this.id}" runs on`,
              // "detached" is the wire name this metadata has always used for a Detach.
              { vm: this.id, cause: cause === "requested" ? "detached" : cause },
            ),
      );
    }

    const core = this.core;
    const debuggerStopped = this.debuggerStopped;
    this.debuggerStopped = false;
    try {
      const state = core.runState();
      if (state === "gone") return;
      // The core changes debug state only while stopped: stop a running VM briefly (the stop is
      // nobody's to report now that the session is gone), clear, and let it go again.
      const haltedHere = state === "running";
      this.ending = true;
      try {
        if (haltedHere) await core.halt();
        for (let vp = 0; vp < core.vpCount; vp++) await core.setDebugState(vp, emptyDebugState());
        await core.softwareBreakpoints?.clear();
      } finally {
        this.ending = false;
      }
      if ((haltedHere || debuggerStopped) && core.runState() === "stopped") await core.resume();
    } finally {
      this.events.publish({ kind: "detached", cause });
    }
  }

  /** The core's software breakpoints, or SOFTWARE_BREAKPOINT_UNSUPPORTED when its backend has none. */
  private softwareBreakpoints(): SoftwareBreakpoints {
    const sw = this.core.softwareBreakpoints;
    if (!sw) {
      throw serverError(
        Code.FailedPrecondition,
        "SOFTWARE_BREAKPOINT_UNSUPPORTED",
        `VM "${this.id}" runs on the ${this.core.backend} backend, which does not support software breakpoints yet: use SetDebugState's four hardware execute slots`,
        { vm: this.id, backend: this.core.backend },
      );
    }
    return sw;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw serverError(Code.Unavailable, "SERVER_SHUTTING_DOWN", `the server is shutting down and no longer serves VM "${this.id}"`, {
        vm: this.id,
      });
    }
  }
}

function cancelled() {
  return serverError(Code.Cancelled, "CANCELLED", "the Resume was cancelled; the VM keeps running and its next stop goes to the next Resume");
}
