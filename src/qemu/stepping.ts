// Stepping a QEMU VP: one `vCont;s` (retrying QEMU's x86 steps that did nothing), stepping off a
// breakpoint before running on, and batched steps (VmmCore.step) with their traces.
import type { Arch, DebugStopReason, RegisterDelta, StepResult, StepTrace } from "../core";
import { diffRegisters } from "../core";
import type { StopReason, StopReply, ThreadId } from "../rsp";
import type { Inserted, QemuBreakpoints } from "./breakpoints";
import type { QemuRegisters } from "./registers";
import type { RspClient } from "./rsp-client";
import { GdbSignal } from "./rsp-names";

/** A step of the run loop has no bound: a halted VP steps only when 0x03 (a Break) ends it. */
const STEP_FOREVER_MS = 2 ** 31 - 1;
/** A step of a batch that takes longer than this is a VP sitting in HLT/WFI (QEMU never completes it). */
const HALTED_STEP_TIMEOUT_MS = 1000;
/** How often an x86 step that did nothing is tried again (QEMU reports about 1 in 10,000 so). */
const NO_OP_STEP_RETRIES = 2;

export interface StepTarget {
  readonly rsp: RspClient;
  readonly arch: Arch;
  readonly threads: readonly ThreadId[];
  /** QMP said the guest powered off (a `W`/`X` stop then means power-off, not a lost QEMU). */
  readonly guestPoweredOff: boolean;
}

/** What one `vCont;s` did. */
interface Stepped {
  stop: StopReply;
  /** The step finished only when interrupted (a halted VP never completes a step; see RspClient.step). */
  interrupted: boolean;
  /** The VP's `g` block after the step, when it was read. */
  g?: string;
}

/** Whether a stop reason is a watchpoint's (QEMU reports the watched range's start). */
export function isWatchStop(reason: StopReason | undefined): reason is Extract<StopReason, { address: bigint }> {
  return reason?.kind === "watch" || reason?.kind === "rwatch" || reason?.kind === "awatch";
}

export class Stepper {
  constructor(
    private readonly target: StepTarget,
    private readonly registers: QemuRegisters,
    private readonly breakpoints: QemuBreakpoints,
  ) {}

  /**
   * Single-steps one VP for the run loop (its single-step flag is set), stepping past its own
   * execute breakpoint. In a run of steps this costs the step and one `g` (kept to compare with
   * the next).
   */
  async single(vp: number): Promise<StopReply> {
    const { registers, breakpoints } = this;
    const hit = breakpoints.lastHit;
    breakpoints.lastHit = undefined;
    let lifted: Inserted[] = [];
    if (hit || breakpoints.anyExecute()) {
      await registers.select(vp);
      const pc = await registers.readPc();
      lifted = breakpoints.stoppingAt(pc, hit?.kind === "watch" && hit.vp === vp && hit.pc === pc);
    }
    return breakpoints.withLifted(lifted, async () => {
      const kept = registers.takeStepG(vp);
      const before = this.target.arch === "x86_64" ? kept ?? (await registers.readG(vp)) : undefined;
      const { stop, g } = await this.stepVp(vp, before, { timeoutMs: STEP_FOREVER_MS, readG: false });
      if (g !== undefined) registers.keepStepG(vp, g);
      return stop;
    });
  }

  /**
   * Before continuing: a VP stopped on an execute breakpoint would hit it again at once, and on
   * aarch64 a VP stopped before a watched access would too. Step that VP with them lifted.
   */
  async stepOverLastHit(): Promise<void> {
    const { registers, breakpoints } = this;
    const hit = breakpoints.lastHit;
    breakpoints.lastHit = undefined;
    if (!hit) return;
    await registers.select(hit.vp);
    if ((await registers.readPc()) !== hit.pc) return; // the debugger moved it: nothing to step over
    const lifted = breakpoints.stoppingAt(hit.pc, hit.kind === "watch");
    if (lifted.length === 0) return;
    await breakpoints.withLifted(lifted, async () => {
      const result = await this.target.rsp.step(this.target.threads[hit.vp], { timeoutMs: STEP_FOREVER_MS });
      registers.noteStop(result.stop);
      if (result.stop.kind !== "signal") throw new Error("QEMU ended while stepping over a breakpoint");
    });
  }

  /**
   * Batched stepping (VmmCore.step), as a loop of `vCont;s` steps of that VP's thread with one `g`
   * after each (the PC, and for the registers trace the registers). `checkpoint` says whether to
   * stop before the next instruction (a Break, a reset, a watchdog). A powered-off guest ends the
   * batch with stop `powerOff`; the caller updates the run state. The registers trace is exact
   * for everything `g` carries (x86: gp, rip, rflags, selectors, fs/gs bases, CRs, EFER; aarch64:
   * x0–x30, sp, pc, cpsr) and see QemuRegisters.createTracer for the rest.
   */
  async batch(
    vp: number,
    count: number,
    trace: StepTrace,
    signal: AbortSignal | undefined,
    checkpoint: () => DebugStopReason | undefined,
  ): Promise<StepResult> {
    const { registers, breakpoints } = this;
    const pcs = trace === "none" ? undefined : new BigUint64Array(count);
    const deltas: RegisterDelta[] | undefined = trace === "registers" ? [] : undefined;
    const tracer = trace === "registers" ? await registers.createTracer(vp) : undefined;
    let g = await registers.readG(vp);
    let pc = registers.pcOfG(g);
    const hit = breakpoints.lastHit;
    if (hit?.vp === vp) breakpoints.lastHit = undefined; // another VP's pending hit stays for its next run
    // The first instruction steps off an execute breakpoint here (and, on aarch64, off a watched
    // access it stopped before), as a single step does.
    let lifted = breakpoints.stoppingAt(pc, hit?.kind === "watch" && hit.vp === vp && hit.pc === pc);
    registers.forgetStepG();
    let executed = 0;
    let stop: DebugStopReason | undefined;
    let halted = false;
    while (executed < count) {
      stop = signal?.aborted ? { kind: "break" } : checkpoint();
      if (stop) break;
      if (executed > 0) {
        const own = breakpoints.executeSlot(vp, pc);
        if (own) {
          stop = { kind: "hwBreakpoint", vp, breakpoint: own };
          breakpoints.lastHit = { vp, kind: "exec", pc };
          break;
        }
        const software = breakpoints.softwareAt(vp, pc);
        if (software) {
          stop = { kind: "softwareBreakpoint", vp, address: pc, id: software.id };
          breakpoints.lastHit = { vp, kind: "exec", pc };
          await breakpoints.hitSoftware(software.id);
          break;
        }
      }
      const step = await breakpoints.withLifted(lifted, () => this.stepVp(vp, g, { timeoutMs: HALTED_STEP_TIMEOUT_MS, readG: true }));
      lifted = [];
      if (step.stop.kind !== "signal" || step.g === undefined) {
        stop = this.target.guestPoweredOff || step.stop.kind === "exited" ? { kind: "powerOff" } : { kind: "break" };
        break;
      }
      if (step.interrupted && step.g === g) {
        halted = true; // interrupted before it ran anything: the VP waits in HLT/WFI
        break;
      }
      const reason = step.stop.reason;
      if (isWatchStop(reason)) {
        const breakpoint = breakpoints.watchSlot(vp, reason.address);
        if (this.target.arch === "aarch64") {
          // Stopped before the access: nothing ran. This VP's slot ends the batch (the next run
          // steps over it); another VP's watchpoint is lifted for a second try.
          if (breakpoint) {
            stop = { kind: "hwBreakpoint", vp, breakpoint };
            breakpoints.lastHit = { vp, kind: "watch", pc };
            break;
          }
          lifted = breakpoints.stoppingAt(pc, true);
          continue;
        }
        if (breakpoint) stop = { kind: "hwBreakpoint", vp, breakpoint }; // x86: after the access
      } else if (step.stop.signal !== GdbSignal.SIGTRAP && step.g === g) {
        stop = { kind: "break" }; // stopped by something else before the step ran
        break;
      }
      g = step.g;
      pc = registers.pcOfG(g);
      if (pcs) pcs[executed] = pc;
      if (tracer && deltas) {
        const before = tracer.flat;
        deltas.push(diffRegisters(before, await tracer.next(g)));
      }
      executed++;
      if (step.interrupted) halted = true; // it ran HLT/WFI, and waits now
      if (stop || halted) break;
      lifted = breakpoints.stoppingAt(pc, false); // another VP's execute breakpoint here (QEMU's are machine-wide)
    }
    registers.keepStepG(vp, g);
    const result: StepResult = { executed };
    if (stop) result.stop = stop;
    if (halted) result.halted = true;
    if (pcs) result.pcs = executed === count ? pcs : pcs.slice(0, executed);
    if (deltas) result.deltas = deltas;
    return result;
  }

  /**
   * One `vCont;s` of VP `vp`, for the run loop and for batches alike. QEMU occasionally reports
   * an x86 step that did nothing at all: a SIGTRAP without a reason whose `g` still equals
   * `before` is stepped again (at most NO_OP_STEP_RETRIES times). `g` is read after the step when
   * `readG` asks for it, and on x86 for that check.
   */
  private async stepVp(vp: number, before: string | undefined, options: { timeoutMs: number; readG: boolean }): Promise<Stepped> {
    const x86 = this.target.arch === "x86_64";
    for (let attempt = 0; ; attempt++) {
      const { stop, interrupted } = await this.target.rsp.step(this.target.threads[vp], { timeoutMs: options.timeoutMs });
      this.registers.noteStop(stop);
      if (stop.kind !== "signal") return { stop, interrupted };
      const trap = stop.signal === GdbSignal.SIGTRAP;
      if (!options.readG && !(x86 && trap)) return { stop, interrupted };
      const g = await this.registers.readG(vp);
      const noOp = x86 && trap && !stop.reason && !interrupted && before !== undefined && g === before;
      if (!noOp || attempt >= NO_OP_STEP_RETRIES) return { stop, interrupted, g };
    }
  }
}
