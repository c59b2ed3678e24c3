// Run control of a QEMU VM: its run state as one tagged union, the loop that lets the VM run and
// turns gdbstub stops into debugger stops, brief pauses for reads, and batched steps.
import {
  type DebugStopReason,
  type GoneListener,
  type RunState,
  type StepResult,
  type StepTrace,
  type StopListener,
  Code,
  VmmError,
  errors,
} from "../core";
import { type StopReply, type ThreadId, sameThread } from "../rsp";
import type { QemuBreakpoints } from "./breakpoints";
import type { QemuConnection } from "./connection";
import type { QmpEvent } from "./qmp-client";
import type { QemuRegisters } from "./registers";
import { GdbSignal } from "./rsp-names";
import { type Stepper, isWatchStop } from "./stepping";

/** Why the VM should stop at the run loop's next checkpoint, besides a debug event. */
export type StopRequest = "break" | "reset" | "watchdog";

/**
 * The VM's run state: exactly one of these holds. Callers of halt() wait on the `waiters` of
 * the phase they want ended, and leaving that phase releases them.
 */
export type RunPhase =
  /** Stopped; `last` is the stop reported last (a resume right after a reset ignores its echo). */
  | { kind: "stopped"; last?: DebugStopReason }
  /** The run loop lets the VM go: continue, or single steps of the VP whose flag is set. */
  | { kind: "running"; request?: StopRequest; resetEchoUntil: number; waiters: (() => void)[] }
  /** A batched step (VmmCore.step) owns the gdbstub; runState() says "running", reads wait for it. */
  | { kind: "stepping"; vp: number; request?: StopRequest; resetEchoUntil: number; waiters: (() => void)[] }
  /** The guest powered off; `exited` says so once QEMU is gone too (RAM stays readable through its file). */
  | { kind: "poweredOff"; exited?: string }
  | { kind: "gone"; cause: string };

/** SeaBIOS resets the machine a second time 45–120 ms after a reset: within this, it is the same reset. */
const RESET_ECHO_MS = 500;

export class RunLoop {
  private phase: RunPhase = { kind: "stopped" };
  private readonly stopListeners = new Set<StopListener>();
  private readonly goneListeners = new Set<GoneListener>();
  private readonly pauses = new ReadPauses();
  /** Serialises stopped-time gdbstub sequences (Hg then g …) and batches; resume() waits for it. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly conn: QemuConnection,
    private readonly registers: QemuRegisters,
    private readonly breakpoints: QemuBreakpoints,
    private readonly stepper: Stepper,
  ) {}

  runState(): RunState {
    const kind = this.phase.kind;
    return kind === "stepping" ? "running" : kind;
  }

  /** Whether the VM is stopped now (what a stopped VM lets us cache holds). */
  isStopped(): boolean {
    return this.phase.kind === "stopped";
  }

  onStop(listener: StopListener): () => void {
    this.stopListeners.add(listener);
    return () => this.stopListeners.delete(listener);
  }

  onGone(listener: GoneListener): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  async resume(): Promise<void> {
    if (this.checkRunnable()) return;
    await this.chain; // let a stopped-time sequence finish first
    await this.conn.markOwner();
    if (this.checkRunnable()) return;
    const last = this.phase.kind === "stopped" ? this.phase.last : undefined;
    this.enter({ kind: "running", resetEchoUntil: echoDeadline(last), waiters: [] });
    void this.run(); // run() ends every path itself, failures included
  }

  async halt(): Promise<void> {
    const phase = this.phase;
    if (phase.kind !== "running" && phase.kind !== "stepping") return;
    const stopped = new Promise<void>((resolve) => phase.waiters.push(resolve));
    this.request("break");
    await stopped;
  }

  /** A batched step of VP `vp` (see Stepper.batch); the VM is stopped before and after. */
  step(vp: number, count: number, trace: StepTrace, signal?: AbortSignal): Promise<StepResult> {
    const phase = this.phase;
    if (phase.kind === "gone") return Promise.reject(this.goneError());
    if (phase.kind === "running" || phase.kind === "stepping") return Promise.reject(errors.vmRunning(this.conn.id, "Step"));
    if (phase.kind === "poweredOff") return Promise.reject(errors.poweredOff(this.conn.id));
    this.enter({ kind: "stepping", vp, resetEchoUntil: echoDeadline(phase.last), waiters: [] });
    return this.serial(async () => {
      let stop: DebugStopReason | undefined;
      try {
        const result = await this.stepper.batch(vp, count, trace, signal, () => this.checkpointReason());
        stop = result.stop;
        return result;
      } catch (e) {
        throw this.refusal(e, "QEMU failed during a batched step");
      } finally {
        // Unless QEMU ended meanwhile (poweredOff or gone), the VM is stopped again; no onStop.
        if (this.phase.kind === "stepping") this.enter(stop?.kind === "powerOff" ? { kind: "poweredOff" } : { kind: "stopped", last: stop });
      }
    });
  }

  /** Runs `fn` on the serial chain if the VM is stopped; VM_RUNNING otherwise. */
  whileStopped<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      this.assertAlive();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.phase.kind === "running" || this.phase.kind === "stepping") return Promise.reject(errors.vmRunning(this.conn.id, what));
    return this.serial(fn);
  }

  /** Runs `fn` with the VM stopped: at once when it is, else paused briefly and transparently. */
  async withVmPaused<T>(fn: () => Promise<T>): Promise<T> {
    if (this.phase.kind !== "running") return this.serial(fn); // after the batch, if one runs
    // The run loop parks at its next checkpoint; a continue is interrupted to get it there.
    if (this.pauses.enter() && this.conn.rsp.running) this.interrupt();
    try {
      await this.pauses.parked();
      this.assertAlive();
      return await this.serial(fn);
    } finally {
      this.pauses.leave();
    }
  }

  /** QMP events that stop a running VM on purpose: reported instead of Break. */
  onQmpEvent(e: QmpEvent): void {
    const phase = this.phase;
    if (phase.kind !== "running" && phase.kind !== "stepping") return;
    if (e.event === "RESET" && e.data.guest !== false && Date.now() >= phase.resetEchoUntil) this.request("reset");
    else if (e.event === "WATCHDOG") this.request("watchdog");
  }

  /**
   * QEMU is gone (QemuConnection settled it). After the guest powered off the VM stays powered
   * off (memory stays readable through the RAM file; everything else answers
   * BACKEND_UNAVAILABLE); otherwise it is gone, and onGone says why.
   */
  lost(detail: string): void {
    const phase = this.phase;
    if (phase.kind === "gone" || (phase.kind === "poweredOff" && phase.exited)) return;
    this.pauses.releaseAll();
    if (this.conn.guestPoweredOff) {
      this.enter({ kind: "poweredOff", exited: "QEMU exited after the guest powered off" });
      // A batch reports the power-off itself; a VM already powered off was reported.
      if (phase.kind === "running" || phase.kind === "stopped") this.notifyStop({ kind: "powerOff" });
      return;
    }
    this.enter({ kind: "gone", cause: detail });
    for (const l of [...this.goneListeners]) {
      try {
        l(detail);
      } catch (e) {
        this.conn.log(`a gone listener failed: ${(e as Error).message}`);
      }
    }
    this.goneListeners.clear();
  }

  /** close(): the VM is gone for good (no onGone: whoever closes it knows). Whether it was gone already. */
  end(): boolean {
    const phase = this.phase;
    if (phase.kind === "gone") return true;
    this.enter({ kind: "gone", cause: phase.kind === "poweredOff" && phase.exited ? phase.exited : "the VM was closed" });
    this.pauses.releaseAll();
    return false;
  }

  assertAlive(): void {
    if (this.phase.kind === "gone") throw this.goneError();
  }

  /** A client error as a VmmError: a lost connection is BACKEND_UNAVAILABLE, anything else says what QEMU did. */
  refusal(e: unknown, what: string): VmmError {
    if (e instanceof VmmError) return e;
    const phase = this.phase;
    if (phase.kind === "gone" || this.conn.rsp.isClosed) {
      const detail = phase.kind === "gone" ? phase.cause : phase.kind === "poweredOff" && phase.exited ? phase.exited : (e as Error).message;
      return errors.backendUnavailable(this.conn.id, detail);
    }
    return new VmmError(Code.FailedPrecondition, "BACKEND_REFUSED", `${what}: ${(e as Error).message}`, { vm: this.conn.id });
  }

  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    // The chain only orders the sequences: each caller gets its own sequence's failure from `run`.
    this.chain = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------- the loop

  private async run(): Promise<void> {
    try {
      for (;;) {
        const early = this.checkpointReason();
        if (early) return this.stopped(early);
        await this.pauses.checkpoint();
        if (this.phase.kind !== "running") return;

        const stepVp = this.breakpoints.singleStepVp();
        let reply: StopReply;
        if (stepVp >= 0) {
          reply = await this.stepper.single(stepVp);
        } else {
          await this.stepper.stepOverLastHit();
          const again = this.checkpointReason();
          if (again) return this.stopped(again);
          await this.pauses.checkpoint();
          this.registers.forgetStepG();
          reply = await this.conn.rsp.continue();
          this.registers.noteStop(reply);
        }
        const outcome = await this.classify(reply, stepVp >= 0 ? stepVp : undefined);
        if (outcome === "continue") continue;
        return this.stopped(outcome);
      }
    } catch (e) {
      if (this.phase.kind !== "running") return; // QEMU ended, or the VM was closed
      // A closed gdbstub is QEMU's loss: the connection settles it (its close event came first).
      if (this.conn.rsp.isClosed) return this.conn.lose(`QEMU's gdbstub connection failed: ${(e as Error).message}`);
      this.conn.log(`run loop error: ${(e as Error).message}`);
      this.stopped({ kind: "break" });
    }
  }

  /** A reason to stop before running on: a Break or a QMP event that arrived between operations. */
  private checkpointReason(): DebugStopReason | undefined {
    const phase = this.phase;
    if (phase.kind !== "running" && phase.kind !== "stepping") return undefined;
    return phase.request ? { kind: phase.request } : undefined;
  }

  /** Asks the running VM to stop at the next checkpoint; an event says why better than a Break does. */
  private request(request: StopRequest): void {
    const phase = this.phase;
    if (phase.kind !== "running" && phase.kind !== "stepping") return;
    if (request !== "break" || phase.request === undefined) phase.request = request;
    // A batch looks at the request between instructions; a 0x03 racing its steps is not needed.
    if (phase.kind === "running") this.interrupt();
  }

  /** 0x03 to the gdbstub: the run loop's pending continue or step ends with the stop it causes. */
  private interrupt(): void {
    // Its failure (the connection closed, or timed out and was closed) is the one the run loop's
    // own request gets and handles: this copy of it has nobody else to tell.
    this.conn.rsp.interrupt().catch(() => undefined);
  }

  /** Turns a stop reply into a DebugStopReason, or "continue" for a stop that is not the debugger's. */
  private async classify(reply: StopReply, steppedVp: number | undefined): Promise<DebugStopReason | "continue"> {
    if (reply.kind !== "signal") {
      return this.conn.guestPoweredOff || reply.kind === "exited" ? { kind: "powerOff" } : { kind: "break" };
    }
    const { registers, breakpoints } = this;
    const vp = this.vpOf(reply.thread) ?? steppedVp ?? 0;
    if (reply.signal === GdbSignal.SIGTRAP) {
      const reason = reply.reason;
      if (isWatchStop(reason)) {
        const breakpoint = breakpoints.watchSlot(vp, reason.address);
        await registers.select(vp);
        const pc = await registers.readPc();
        // aarch64 stops before the access: the next run must step over it.
        if (this.conn.arch === "aarch64") breakpoints.lastHit = { vp, kind: "watch", pc };
        if (breakpoint) return { kind: "hwBreakpoint", vp, breakpoint };
        return steppedVp !== undefined ? { kind: "singleStep", vp } : "continue"; // another VP's watchpoint
      }
      if (steppedVp !== undefined) return { kind: "singleStep", vp: steppedVp };
      await registers.select(vp);
      const pc = await registers.readPc();
      const breakpoint = breakpoints.executeSlot(vp, pc);
      if (breakpoint) {
        breakpoints.lastHit = { vp, kind: "exec", pc };
        return { kind: "hwBreakpoint", vp, breakpoint };
      }
      const software = breakpoints.softwareAt(vp, pc);
      if (software) {
        breakpoints.lastHit = { vp, kind: "exec", pc };
        await breakpoints.hitSoftware(software.id);
        return { kind: "softwareBreakpoint", vp, address: pc, id: software.id };
      }
      if (breakpoints.executeAt(pc)) {
        breakpoints.lastHit = { vp, kind: "exec", pc }; // another VP's breakpoint: step past it and run on
        return "continue";
      }
    }
    const early = this.checkpointReason();
    if (early) return early;
    if (this.pauses.wanted) {
      await this.pauses.checkpoint();
      return "continue";
    }
    return { kind: "break" }; // stopped by something else (a QMP stop, an unexplained trap)
  }

  /** The run loop stopped for `reason`: report it. */
  private stopped(reason: DebugStopReason): void {
    if (this.phase.kind !== "running") return;
    this.pauses.acknowledge();
    this.enter(reason.kind === "powerOff" ? { kind: "poweredOff" } : { kind: "stopped", last: reason });
    this.notifyStop(reason);
  }

  /** Every change of phase: halt()'s waiters of the phase left go, and what a stopped VM cached is dropped. */
  private enter(next: RunPhase): void {
    const left = this.phase;
    this.phase = next;
    this.registers.forgetStopped();
    if (left.kind === "running" || left.kind === "stepping") for (const w of left.waiters) w();
  }

  /** Tells every stop listener; one that throws is logged and the others still hear it. */
  private notifyStop(reason: DebugStopReason): void {
    for (const l of [...this.stopListeners]) {
      try {
        l(reason);
      } catch (e) {
        this.conn.log(`a stop listener failed on ${reason.kind}: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Resume unless it has nothing to do: true when running already (or a batch runs), an error
   * when the VM is gone or powered off.
   */
  private checkRunnable(): boolean {
    this.assertAlive();
    if (this.phase.kind === "poweredOff") throw errors.poweredOff(this.conn.id);
    return this.phase.kind === "running" || this.phase.kind === "stepping";
  }

  private goneError(): VmmError {
    return errors.backendUnavailable(this.conn.id, this.phase.kind === "gone" ? this.phase.cause : "QEMU is gone");
  }

  private vpOf(thread: ThreadId | undefined): number | undefined {
    if (!thread) return undefined;
    const i = this.conn.threads.findIndex((t) => sameThread(t, thread));
    return i >= 0 ? i : undefined;
  }
}

/** When a RESET stops being the echo of the reset `last` reported. */
function echoDeadline(last: DebugStopReason | undefined): number {
  return last?.kind === "reset" ? Date.now() + RESET_ECHO_MS : 0;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Reads that need the running VM paused for a moment (the gdbstub answers nothing while it
 * runs): the run loop parks at its next checkpoint until the last of them is done.
 */
class ReadPauses {
  private users = 0;
  /** Resolved once the run loop parked, or the VM stopped: the reads may go. */
  private parkedAt: Deferred | undefined;
  /** Resolved when the last read is done: the run loop goes on. */
  private done: Deferred | undefined;

  get wanted(): boolean {
    return this.users > 0;
  }

  /** One more read wants the VM paused; true for the first (who must get the run loop to a checkpoint). */
  enter(): boolean {
    if (this.users++ > 0) return false;
    this.parkedAt = deferred();
    this.done = deferred();
    return true;
  }

  parked(): Promise<void> {
    return this.parkedAt!.promise;
  }

  leave(): void {
    if (--this.users === 0) this.done?.resolve();
  }

  /** The VM stopped: the reads may go. */
  acknowledge(): void {
    this.parkedAt?.resolve();
  }

  /** In the run loop: if reads want the VM paused, let them go and wait until they are done. */
  async checkpoint(): Promise<void> {
    if (this.users === 0) return;
    this.parkedAt?.resolve();
    await this.done?.promise;
  }

  /** QEMU is gone or closed: nobody waits for anybody. */
  releaseAll(): void {
    this.parkedAt?.resolve();
    this.done?.resolve();
  }
}
