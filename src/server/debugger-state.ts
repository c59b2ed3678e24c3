// Per-VM debugger state, like OpenVMM's DebuggerState: the one session, its lease, the stop not
// yet reported, and the Resume waiting for a stop. Control operations on one VM run one at a time.
import { randomBytes } from "node:crypto";
import {
  Code,
  emptyDebugState,
  errors,
  type DebugState,
  type DebugStopReason,
  type DebuggerVpState,
  type GuestAddress,
  type VmmCore,
} from "../core";
import type { AttachmentInfo } from "./convert";
import { serverError } from "./errors";
import { Mutex } from "./mutex";

interface Session {
  id: string;
  holder: string;
  attachedAtMs: number;
  leaseExpiresAtMs: number;
  timer?: NodeJS.Timeout;
}

interface ResumeWaiter {
  sessionId: string;
  resolve(reason: DebugStopReason): void;
  reject(error: unknown): void;
}

/** Why a session ended, as audit lines and the waiting Resume's error tell it. */
export type SessionEnd = "detached" | "lease_expired" | "server_shutdown";

export interface DebuggerStateOptions {
  leaseMs: number;
  /** Called when the server ends a session on its own (lease lapse); the dispatcher audits it. */
  onSessionLapsed?(vm: string, sessionId: string, outcome: string): void;
}

export class DebuggerState {
  private session: Session | undefined;
  /** A stop that happened while attached and has not been reported by a Resume. */
  private pendingStop: DebugStopReason | undefined;
  private waiter: ResumeWaiter | undefined;
  /** The VM is stopped because of the debugger (a stop while attached), so Detach resumes it. */
  private debuggerStopped = false;
  private readonly mutex = new Mutex();
  private readonly unsubscribe: () => void;
  private closed = false;
  /** endSession is stopping the VM itself: that stop is nobody's, and the VM must stay stopped. */
  private ending = false;

  constructor(
    readonly core: VmmCore,
    private readonly options: DebuggerStateOptions,
  ) {
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
    return s && { holder: s.holder, attachedAtMs: s.attachedAtMs, leaseExpiresAtMs: s.leaseExpiresAtMs };
  }

  attach(holder: string): Promise<{ sessionId: string; leaseMs: number }> {
    return this.mutex.run(async () => {
      this.assertOpen();
      if (this.core.runState() === "gone") throw errors.backendUnavailable(this.id, "the VMM backend is gone");
      const live = this.session;
      if (live) {
        const attachedAt = new Date(live.attachedAtMs).toISOString();
        const expiresAt = new Date(live.leaseExpiresAtMs).toISOString();
        throw serverError(
          Code.FailedPrecondition,
          "SESSION_CONFLICT",
          `VM "${this.id}" is already being debugged by ${live.holder} (attached ${attachedAt}, lease expires ${expiresAt}): ` +
            `that session must Detach, or its lease lapse, before another Attach`,
          { vm: this.id, holder: live.holder, attached_at: attachedAt, lease_expires_at: expiresAt },
        );
      }
      const now = Date.now();
      this.session = { id: randomBytes(16).toString("hex"), holder, attachedAtMs: now, leaseExpiresAtMs: now };
      this.pendingStop = undefined;
      this.debuggerStopped = false;
      this.renew();
      return { sessionId: this.session.id, leaseMs: this.options.leaseMs };
    });
  }

  detach(sessionId: string): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      await this.endSession("detached");
    });
  }

  /**
   * Answers an unreported stop at once; otherwise lets the VM run and waits (outside the mutex)
   * for the next stop. Cancelling leaves the VM running and keeps its next stop pending.
   */
  async resume(sessionId: string, signal: AbortSignal): Promise<DebugStopReason> {
    const started = await this.mutex.run(async () => {
      this.requireSession(sessionId);
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
        return { stop, waiter: undefined };
      }
      if (signal.aborted) throw cancelled();
      let waiter!: ResumeWaiter;
      const stopped = new Promise<DebugStopReason>((resolve, reject) => {
        waiter = { sessionId, resolve, reject };
      });
      this.waiter = waiter;
      const wasDebuggerStopped = this.debuggerStopped;
      this.debuggerStopped = false;
      try {
        await this.core.resume();
      } catch (e) {
        if (this.waiter === waiter) this.waiter = undefined;
        this.debuggerStopped = wasDebuggerStopped;
        throw e;
      }
      return { stop: undefined, waiter, stopped };
    });
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
      return await stopped;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Stops a running VM (its stop goes to the waiting Resume or stays pending); no-op if stopped. */
  break(sessionId: string): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      const state = this.core.runState();
      if (state === "gone") throw errors.backendUnavailable(this.id, "the VMM backend is gone");
      if (state === "running") await this.core.halt();
    });
  }

  setDebugState(sessionId: string, vp: number, state: DebugState): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      this.requireStopped("SetDebugState");
      await this.core.setDebugState(vp, state);
    });
  }

  getVpState(vp: number): Promise<DebuggerVpState> {
    return this.mutex.run(async () => {
      this.requireStopped("GetVpState");
      return this.core.getVpState(vp);
    });
  }

  setVpState(sessionId: string, vp: number, state: DebuggerVpState): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      this.requireStopped("SetVpState");
      await this.core.setVpState(vp, state);
    });
  }

  /** Reads need no session and no lock: the core serves them while the VM runs. */
  readMemory(address: GuestAddress, length: number): Promise<Uint8Array> {
    this.assertOpen();
    return this.core.readMemory(address, length);
  }

  writeMemory(sessionId: string, address: GuestAddress, data: Uint8Array): Promise<void> {
    return this.mutex.run(async () => {
      this.requireSession(sessionId);
      await this.core.writeMemory(address, data);
    });
  }

  /** Ends any session as Detach would (so no VM stays frozen) and stops listening to the VM. */
  close(): Promise<void> {
    return this.mutex.run(async () => {
      if (this.closed) return;
      try {
        if (this.session) await this.endSession("server_shutdown");
      } finally {
        this.closed = true;
        this.unsubscribe();
      }
    });
  }

  // -------------------------------------------------------------------------------------------

  private onStop(reason: DebugStopReason): void {
    if (!this.session) {
      // Nobody is debugging: a VM that reset, triple-faulted or hit its watchdog carries on as a
      // VM without a debugger would (a triple fault resets it); only a power-off stops it for good.
      if (!this.ending && !this.closed && reason.kind !== "powerOff" && reason.kind !== "break") {
        void this.core.resume().catch(() => undefined);
      }
      return;
    }
    if (reason.kind !== "powerOff") this.debuggerStopped = true;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      this.renew();
      waiter.resolve(reason);
    } else {
      this.pendingStop = reason;
    }
  }

  /** The backend is gone: a waiting Resume fails with UNAVAILABLE / BACKEND_UNAVAILABLE. */
  private onGone(detail: string): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    this.pendingStop = undefined;
    waiter?.reject(errors.backendUnavailable(this.id, detail));
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

  private requireStopped(rpc: string): void {
    const state = this.core.runState();
    if (state === "running") throw errors.vmRunning(this.id, rpc);
    if (state === "gone") throw errors.backendUnavailable(this.id, "the VMM backend is gone");
  }

  private renew(): void {
    const s = this.session;
    if (!s) return;
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
          if (outcome === "ok") this.options.onSessionLapsed?.(this.id, sessionId, "ok");
        },
        (e: unknown) => this.options.onSessionLapsed?.(this.id, sessionId, `error: ${e instanceof Error ? e.message : String(e)}`),
      );
  }

  /**
   * Detach semantics: forget the session and the pending stop, fail a waiting Resume, clear every
   * VP's debug state, and resume the VM if the debugger had stopped it. Runs under the mutex.
   */
  private async endSession(cause: SessionEnd): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    if (s.timer) clearTimeout(s.timer);
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
              `the session ended (${cause === "detached" ? "Detach was called" : "its lease lapsed"}) while this Resume waited; VM "${this.id}" runs on`,
              { vm: this.id, cause },
            ),
      );
    }

    const core = this.core;
    const debuggerStopped = this.debuggerStopped;
    this.debuggerStopped = false;
    const state = core.runState();
    if (state === "gone") return;
    // The core changes debug state only while stopped: stop a running VM briefly (the stop is
    // nobody's to report now that the session is gone), clear, and let it go again.
    const haltedHere = state === "running";
    this.ending = true;
    try {
      if (haltedHere) await core.halt();
      for (let vp = 0; vp < core.vpCount; vp++) await core.setDebugState(vp, emptyDebugState());
    } finally {
      this.ending = false;
    }
    if ((haltedHere || debuggerStopped) && core.runState() === "stopped") await core.resume();
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
