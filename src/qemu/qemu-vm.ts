// QEMU as a VMM core: run control and debug state over the gdbstub, events over QMP, guest RAM
// through the shared memory-backend file when there is one.
import { closeSync, openSync, readSync } from "node:fs";
import {
  type Aarch64PagingRegs,
  type Arch,
  type DebugState,
  type DebugStopReason,
  type DebuggerVpState,
  type GoneListener,
  type GuestAddress,
  type HardwareBreakpoint,
  type MemoryRegion,
  type RegisterDelta,
  type RunState,
  type SegmentRegister,
  type StepResult,
  type StepTrace,
  type StopListener,
  type VmmCore,
  type X86PagingRegs,
  BreakpointType,
  Code,
  VmmError,
  breakpointLength,
  checkStepCount,
  checkVp,
  diffRegisters,
  emptyDebugState,
  errors,
  flattenVpState,
  hex,
  translateRange,
  walkAarch64,
  walkX86,
} from "../core";
import { type StopReply, type ThreadId, leHexToBigint, sameThread } from "../rsp";
import type { LaunchedQemu } from "./launch";
import { type QemuMemoryMap, isMapped, memoryMapOf, parseFlatView, splitByRam } from "./memory-map";
import { type QmpClient, type QmpEvent, createQmpClient } from "./qmp-client";
import { AARCH64_SYSREGS, X86_GP_NAMES, X86_SCALARS, aarch64StateFromQemu, currentSpField, x86StateFromQemu } from "./registers";
import { type BreakpointType as ZType, type RspClient, createRspClient } from "./rsp-client";
import type { QemuSocketAddress } from "./rsp-socket";
import { qemuArchOf } from "./target-xml";
import { SEGMENT_NAMES, type SegmentName, parseInfoRegistersSegments } from "./x86-segments";

export interface QemuVmOptions {
  id: string;
  /** QEMU's gdbstub and QMP endpoints. */
  gdb: QemuSocketAddress;
  qmp: QemuSocketAddress;
  /** The shared RAM backend file, read directly for GPA reads inside RAM. */
  ramFile?: string;
  /** Read RAM through `ramFile` (default true when there is one); false reads everything through the gdbstub. */
  fastMemory?: boolean;
  /** The QEMU process, when we launched it: killed by close(). */
  launched?: LaunchedQemu;
  /**
   * Let the VM run once connected. Default: run if we launched it, if it was running before we
   * connected, or if a debugger that is gone left it stopped (see createQemuVm); a VM paused on
   * purpose stays paused.
   */
  startRunning?: boolean;
  log?: (message: string) => void;
}

interface Inserted {
  type: ZType;
  address: bigint;
  kind: number;
  vps: Set<number>;
}

/** The stop the run loop last reported or stepped past, for stepping over it on the next run. */
interface LastHit {
  vp: number;
  kind: "exec" | "watch";
  pc: bigint;
}

const STEP_FOREVER_MS = 2 ** 31 - 1;
/** A step of a batch that takes longer than this is a VP sitting in HLT/WFI (QEMU never completes it). */
const HALTED_STEP_TIMEOUT_MS = 1000;
/** gdb's SIGTRAP: a step, breakpoint or watchpoint stop. */
const SIGTRAP = 5;

/** What one step of a batch did. */
type BatchStep =
  /** `halted`: the step only finished when interrupted (it ran HLT/WFI): the VP waits now. */
  | { kind: "stepped"; g: string; stop: StopReply; halted: boolean }
  | { kind: "halted" }
  | { kind: "ended"; stop: StopReply };

/** Follows a VP's registers through a batch for the registers trace (see QemuVm.step). */
interface RegisterTracer {
  /** The state after the latest step, given its `g` block. */
  next(g: string): Promise<bigint[]>;
  flat: bigint[];
}

type PagingRegs = ({ arch: "x86_64" } & X86PagingRegs) | ({ arch: "aarch64" } & Aarch64PagingRegs);

/**
 * The QOM object an attached QEMU carries while a vmm-debug server has let it run: found at
 * connect, it says the server before us ended without closing (a clean close deletes it).
 */
export const OWNER_MARKER_ID = "vmm-debug-owner";

/**
 * Connects to a QEMU (launched by us or already running) and returns it as a VmmCore.
 *
 * A debugger that ended without detaching (a server killed by SIGKILL, gdb killed) leaves QEMU
 * with its breakpoints and watchpoints armed, and usually stopped. QEMU serves one gdbstub client,
 * so once we are connected that debugger is gone: we send `?` (QEMU 7.2's handler takes it for a
 * fresh gdb connection and removes every breakpoint and watchpoint), and we let the VM run when
 * it was left stopped by that debugger: QMP status `debug` (a gdbstub stop: breakpoint,
 * watchpoint, step), or `paused` while OWNER_MARKER_ID is present (a vmm-debug server let it run
 * and died; its Break, or a read's brief pause, pauses with `paused`). Any other stopped status —
 * `paused` without the marker (a QMP or monitor `stop`), `prelaunch` (-S), `shutdown`,
 * `guest-panicked` … — is somebody's intent and stays as it is.
 */
export async function createQemuVm(options: QemuVmOptions): Promise<QemuVm> {
  const qmp = await createQmpClient(options.qmp);
  let rsp: RspClient | undefined;
  try {
    const status = await qmp.execute<{ running: boolean; status: string }>("query-status");
    const marked = options.launched ? false : await hasOwnerMarker(qmp);
    rsp = await createRspClient(options.gdb); // connecting pauses a running VM (and keeps `debug` as it is)
    await rsp.stopReason(); // removes whatever breakpoints and watchpoints a previous client left armed
    const abandoned = !status.running && (status.status === "debug" || (status.status === "paused" && marked));
    if (abandoned) {
      options.log?.(
        `[qemu ${options.id}] QEMU was left ${status.status === "debug" ? "stopped by a gdbstub client" : "paused by a vmm-debug server"} that is gone: ` +
          `its breakpoints were removed${options.startRunning === false ? "" : " and the VM runs on"}`,
      );
    }
    const desc = rsp.targetDescription!;
    const arch = qemuArchOf(desc);
    if (!arch) throw new Error(`QEMU's target is "${desc.architecture ?? "unknown"}"; only x86-64 and aarch64 are supported`);
    const threads = await rsp.listThreads();
    await rsp.setPhysicalMemoryMode(true);
    const map = memoryMapOf(parseFlatView(await qmp.humanMonitorCommand("info mtree -f")));
    const vm = new QemuVm(options, qmp, rsp, arch, threads, map, marked);
    if (options.startRunning ?? (options.launched !== undefined || status.running || abandoned)) await vm.resume();
    return vm;
  } catch (e) {
    await rsp?.close().catch(() => undefined);
    await qmp.close().catch(() => undefined);
    throw e;
  }
}

export class QemuVm implements VmmCore {
  readonly id: string;
  readonly backend = "qemu";
  readonly vpCount: number;
  readonly memoryRegions: readonly MemoryRegion[];
  /** The QEMU process, when this VM launched it. */
  readonly pid: number | undefined;
  /** Whether GPA reads inside RAM use the shared RAM file (when there is one). */
  fastMemory: boolean;

  private state: RunState = "stopped";
  private readonly debug: DebugState[];
  private readonly inserted = new Map<string, Inserted>();
  private readonly stopListeners = new Set<StopListener>();
  private readonly goneListeners = new Set<GoneListener>();
  private stopWaiters: (() => void)[] = [];
  private ramFd: number | undefined;
  private lastHit: LastHit | undefined;
  /** The thread QEMU's `g`/`p` currently read, when known. */
  private gThread: ThreadId | undefined;
  /** A VP's `g` block right after its last single step (compared with the next step's). */
  private lastG: { vp: number; text: string } | undefined;
  /** Set by halt(); the run loop reports Break at its next stop. */
  private breakRequested = false;
  /** A QMP event that stopped the VM on purpose: reported instead of Break. */
  private pendingEvent: "reset" | "watchdog" | undefined;
  private shutdownSeen = false;
  private lastReason: DebugStopReason | undefined;
  private resumedAt = 0;
  /** Callers that need the VM paused for a moment (reads while running). */
  private pauseUsers = 0;
  private pauseGate: Promise<void> | undefined;
  private releasePause: (() => void) | undefined;
  private pausedAck: { promise: Promise<void>; resolve: () => void } | undefined;
  private inContinue = false;
  /** Adding OWNER_MARKER_ID to an attached QEMU (once, at the first resume). */
  private marking: Promise<void> | undefined;
  /** A batched step (step()) owns the gdbstub: reads wait for it on the serial chain. */
  private stepping = false;
  /** Hex characters of the PC inside a `g` reply. */
  private pcInG: { at: number; chars: number } | undefined;
  /** Serialises stopped-time gdbstub sequences (Hg then g …). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Per VP, what is costly to fetch and cannot change while the VM stays stopped. */
  private stoppedCache = new Map<number, { paging?: PagingRegs; segments?: string }>();
  /** Set when QEMU ended (gone, or powered off and exited). */
  private goneDetail: string | undefined;
  /** Set when the loss of QEMU was first noticed, before it is settled. */
  private lossDetail: string | undefined;

  constructor(
    private readonly options: QemuVmOptions,
    private readonly qmp: QmpClient,
    private readonly rsp: RspClient,
    readonly arch: Arch,
    private readonly threads: ThreadId[],
    private readonly map: QemuMemoryMap,
    /** OWNER_MARKER_ID is present in the attached QEMU (ours from now on). */
    private ownerMarked = false,
  ) {
    this.id = options.id;
    this.vpCount = threads.length;
    this.memoryRegions = map.ram.map(({ gpa, size }) => ({ gpa, size, name: "ram" }));
    this.debug = Array.from({ length: this.vpCount }, emptyDebugState);
    if (options.ramFile) this.ramFd = openSync(options.ramFile, "r");
    this.fastMemory = options.fastMemory ?? true;
    this.pid = options.launched?.pid;
    qmp.onEvent("*", (e) => this.onQmpEvent(e));
    qmp.on("closed", () => this.lose("QEMU's QMP connection closed"));
    rsp.on("close", () => this.lose("QEMU's gdbstub connection closed"));
    options.launched?.exited.then((code) => this.lose(`QEMU exited (${code})`));
  }

  runState(): RunState {
    return this.state;
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
    this.assertAlive();
    if (this.state === "poweredOff") throw errors.poweredOff(this.id);
    if (this.state === "running") return;
    await this.chain; // let a stopped-time sequence finish first
    if (!this.ownerMarked && !this.options.launched) await (this.marking ??= this.markOwner());
    if ((this.state as RunState) === "running") return;
    this.state = "running";
    this.breakRequested = false;
    this.pendingEvent = undefined;
    this.stoppedCache.clear();
    this.resumedAt = Date.now();
    void this.runLoop();
  }

  async halt(): Promise<void> {
    if (this.state !== "running") return;
    const stopped = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    this.breakRequested = true;
    // A batch looks at breakRequested between instructions; a 0x03 racing its steps is not needed.
    if (!this.stepping) void this.rsp.interrupt().catch(() => undefined);
    await stopped;
  }

  setDebugState(vp: number, state: DebugState): Promise<void> {
    this.checkVp(vp);
    return this.whileStopped("SetDebugState", async () => {
      const before = this.debug[vp];
      this.debug[vp] = state;
      try {
        await this.syncBreakpoints();
      } catch (e) {
        this.debug[vp] = before;
        await this.syncBreakpoints().catch(() => undefined);
        throw this.refusal(e, "QEMU refused the breakpoint");
      }
    });
  }

  /**
   * Batched stepping, as a loop of `vCont;s` steps of that VP's thread with one `g` after each
   * (the PC, and for the registers trace the registers). runState() is "running" meanwhile, and
   * reads wait for the batch on the serial chain. The registers trace is exact for everything
   * `g` carries (x86: gp, rip, rflags, selectors, fs/gs bases, CRs, EFER; aarch64: x0–x30, sp,
   * pc, cpsr); x86 segment descriptor caches are re-read from the monitor when a selector changes
   * (a reload of an unchanged selector goes unseen); aarch64 system registers are read after
   * every instruction.
   */
  step(vp: number, count: number, trace: StepTrace, signal?: AbortSignal): Promise<StepResult> {
    try {
      this.checkVp(vp);
      checkStepCount(count);
      this.assertAlive();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.state === "running") return Promise.reject(errors.vmRunning(this.id, "Step"));
    if (this.state === "poweredOff") return Promise.reject(errors.poweredOff(this.id));
    this.state = "running";
    this.stepping = true;
    this.breakRequested = false;
    this.pendingEvent = undefined;
    return this.serial(async () => {
      try {
        return await this.stepBatch(vp, count, trace, signal);
      } catch (e) {
        throw this.refusal(e, "QEMU failed during a batched step");
      } finally {
        this.stepping = false;
        this.stoppedCache.clear();
        if (this.state === "running") this.state = "stopped";
        this.breakRequested = false;
        this.pendingEvent = undefined;
        this.releaseStopWaiters();
      }
    });
  }

  getVpState(vp: number): Promise<DebuggerVpState> {
    this.checkVp(vp);
    return this.whileStopped("GetVpState", () => this.readVpState(vp));
  }

  setVpState(vp: number, state: DebuggerVpState): Promise<void> {
    this.checkVp(vp);
    if (state.arch !== this.arch) return Promise.reject(errors.archMismatch(this.arch, state.arch));
    return this.whileStopped("SetVpState", () => this.writeVpState(vp, state));
  }

  async readMemory(address: GuestAddress, length: number): Promise<Uint8Array> {
    this.assertAlive();
    if (address.kind === "gva") this.checkVp(address.vp);
    // Whatever lies inside RAM with a backing file is read without touching the VM.
    if (address.kind === "gpa" && this.fileReads) {
      const pieces = splitByRam(this.map.ram, address.gpa, length);
      if (pieces.every((p) => p.fileOffset !== undefined)) return this.readFile(pieces);
    }
    return this.withVmPaused(async () => {
      const pieces = await this.physicalPieces(address, length);
      for (const p of pieces) this.checkMapped(p.gpa, p.length);
      const out = new Uint8Array(length);
      let o = 0;
      for (const piece of pieces) {
        out.set(await this.readPhysical(piece.gpa, piece.length), o);
        o += piece.length;
      }
      return out;
    });
  }

  async writeMemory(address: GuestAddress, data: Uint8Array): Promise<void> {
    this.assertAlive();
    if (address.kind === "gva") this.checkVp(address.vp);
    // Writes go through the gdbstub even inside RAM: QEMU then drops translated code for the
    // pages written, which a write to the backing file would not.
    await this.withVmPaused(async () => {
      const pieces = await this.physicalPieces(address, data.length);
      for (const p of pieces) this.checkMapped(p.gpa, p.length);
      let o = 0;
      for (const p of pieces) {
        await this.rspCall(() => this.rsp.writeMemory(p.gpa, data.subarray(o, o + p.length)), p.gpa, p.length);
        o += p.length;
      }
    });
  }

  async close(): Promise<void> {
    if (this.state === "gone" && !this.options.launched) return;
    const launched = this.options.launched;
    this.goneDetail ??= "the VM was closed";
    this.state = "gone";
    if (this.ramFd !== undefined) closeSync(this.ramFd);
    this.ramFd = undefined;
    if (launched) {
      await this.rsp.close().catch(() => undefined);
      await this.qmp.close().catch(() => undefined);
      await launched.kill();
    } else {
      // A QEMU we attached to keeps running without us: detach (D;1 resumes it), clear breakpoints first.
      for (const ins of this.inserted.values()) await this.rsp.removeBreakpoint(ins.type, ins.address, ins.kind).catch(() => undefined);
      await this.marking?.catch(() => undefined);
      if (this.ownerMarked) await this.qmp.execute("object-del", { id: OWNER_MARKER_ID }).catch(() => undefined);
      await this.rsp.detach().catch(() => undefined);
      await this.qmp.close().catch(() => undefined);
    }
    this.releaseStopWaiters();
  }

  /**
   * Runs a QEMU human-monitor command (e.g. `x /16xb 0x…`, `info mtree`) on VP `vp`'s CPU and
   * returns its text. The QMP connection is this VM's own: QEMU serves one QMP client at a time.
   */
  async humanMonitorCommand(command: string, vp = 0): Promise<string> {
    this.assertAlive();
    this.checkVp(vp);
    return this.qmp.execute<string>("human-monitor-command", { "command-line": command, "cpu-index": vp });
  }

  /**
   * Marks an attached QEMU as run by this server (see createQemuVm): if we die, the server after
   * us lets a VM we left paused run. A refusal only costs that, so it is logged, not thrown.
   */
  private async markOwner(): Promise<void> {
    try {
      await this.qmp.execute("object-add", { "qom-type": "authz-simple", id: OWNER_MARKER_ID, identity: `vmm-debug server pid ${process.pid}` });
    } catch (e) {
      if (!(await hasOwnerMarker(this.qmp).catch(() => false))) {
        this.options.log?.(`[qemu ${this.id}] could not mark QEMU as run by this server: ${(e as Error).message}`);
        return;
      }
    }
    this.ownerMarked = true;
  }

  // ---------------------------------------------------------------- run loop

  private async runLoop(): Promise<void> {
    try {
      for (let turns = 0; ; turns++) {
        const early = this.checkpointReason();
        if (early) return this.stopped(early);
        await this.pauseCheckpoint();
        if ((this.state as RunState) !== "running") return;

        const stepVp = this.debug.findIndex((d) => d.singleStep);
        let reply: StopReply;
        if (stepVp >= 0) {
          reply = await this.stepOnce(stepVp);
        } else {
          await this.stepOverLastHit();
          const again = this.checkpointReason();
          if (again) return this.stopped(again);
          await this.pauseCheckpoint();
          this.inContinue = true;
          this.lastG = undefined;
          try {
            reply = await this.rsp.continue();
          } finally {
            this.inContinue = false;
          }
          this.noteStop(reply);
        }
        const outcome = await this.classify(reply, stepVp >= 0 ? stepVp : undefined);
        if (outcome === "continue") continue;
        return this.stopped(outcome);
      }
    } catch (e) {
      if (this.state === "gone" || this.state === "poweredOff") return;
      if (this.rsp.isClosed) return this.lose(`QEMU's gdbstub connection failed: ${(e as Error).message}`);
      this.options.log?.(`[qemu ${this.id}] run loop error: ${(e as Error).message}`);
      this.stopped({ kind: "break" });
    }
  }

  /** A reason to stop before running on: a Break or a QMP event that arrived between operations. */
  private checkpointReason(): DebugStopReason | undefined {
    if (this.pendingEvent === "reset") return { kind: "reset" };
    if (this.pendingEvent === "watchdog") return { kind: "watchdog" };
    if (this.breakRequested) return { kind: "break" };
    return undefined;
  }

  /**
   * Single-steps one VP, stepping past its own execute breakpoint, retrying QEMU's x86 no-op
   * steps. In a run of steps this costs the step and one `g` (kept to compare with the next).
   */
  private async stepOnce(vp: number): Promise<StopReply> {
    const thread = this.threads[vp];
    const hit = this.lastHit;
    this.lastHit = undefined;
    let lifted: Inserted[] = [];
    if (hit || [...this.inserted.values()].some((i) => i.type === 1)) {
      await this.selectThread(vp);
      const pc = await this.readPc(vp);
      lifted = this.stoppingAt(pc, hit?.kind === "watch" && hit.vp === vp && hit.pc === pc);
    }
    return this.withLifted(lifted, async () => {
      const x86 = this.arch === "x86_64";
      let before = !x86 ? "" : this.lastG?.vp === vp ? this.lastG.text : await this.readG(vp);
      this.lastG = undefined;
      for (let attempt = 0; ; attempt++) {
        const stop = (await this.rsp.step(thread, { timeoutMs: STEP_FOREVER_MS })).stop;
        this.noteStop(stop);
        if (!x86 || stop.kind !== "signal" || stop.signal !== 5) return stop;
        // QEMU occasionally reports an x86 step that did nothing at all: step again.
        const after = await this.readG(vp);
        if (after !== before || attempt >= 2) {
          this.lastG = { vp, text: after };
          return stop;
        }
        before = after;
      }
    });
  }

  private async stepBatch(vp: number, count: number, trace: StepTrace, signal: AbortSignal | undefined): Promise<StepResult> {
    const pcs = trace === "none" ? undefined : new BigUint64Array(count);
    const deltas: RegisterDelta[] | undefined = trace === "registers" ? [] : undefined;
    const tracer = trace === "registers" ? await this.createRegisterTracer(vp) : undefined;
    let g = await this.readG(vp);
    let pc = this.pcOfG(g);
    const hit = this.lastHit;
    if (hit?.vp === vp) this.lastHit = undefined; // another VP's pending hit stays for its next run
    // The first instruction steps off an execute breakpoint here (and, on aarch64, off a watched
    // access it stopped before), as a single step does.
    let lifted = this.stoppingAt(pc, hit?.kind === "watch" && hit.vp === vp && hit.pc === pc);
    this.lastG = undefined;
    let executed = 0;
    let stop: DebugStopReason | undefined;
    let halted = false;
    while (executed < count) {
      stop = signal?.aborted ? { kind: "break" } : this.checkpointReason();
      if (stop) break;
      if (executed > 0) {
        const own = this.debug[vp].breakpoints.find((b) => b && b.type === BreakpointType.Execute && b.address === pc);
        if (own) {
          stop = { kind: "hwBreakpoint", vp, breakpoint: own };
          this.lastHit = { vp, kind: "exec", pc };
          break;
        }
      }
      const step = await this.withLifted(lifted, () => this.stepInBatch(vp, g));
      lifted = [];
      if (step.kind === "halted") {
        halted = true;
        break;
      }
      if (step.kind === "ended") {
        stop = this.shutdownSeen || step.stop.kind === "exited" ? { kind: "powerOff" } : { kind: "break" };
        if (stop.kind === "powerOff") this.state = "poweredOff";
        break;
      }
      const reason = step.stop.kind === "signal" ? step.stop.reason : undefined;
      if (reason && (reason.kind === "watch" || reason.kind === "rwatch" || reason.kind === "awatch")) {
        const breakpoint = this.debug[vp].breakpoints.find(
          (b) => b && b.type !== BreakpointType.Execute && reason.address >= b.address && reason.address < b.address + BigInt(breakpointLength(b.size)),
        );
        if (this.arch === "aarch64") {
          // Stopped before the access: nothing ran. This VP's slot ends the batch (the next run
          // steps over it); another VP's watchpoint is lifted for a second try.
          if (breakpoint) {
            stop = { kind: "hwBreakpoint", vp, breakpoint };
            this.lastHit = { vp, kind: "watch", pc };
            break;
          }
          lifted = this.stoppingAt(pc, true);
          continue;
        }
        if (breakpoint) stop = { kind: "hwBreakpoint", vp, breakpoint }; // x86: after the access
      } else if (step.stop.kind === "signal" && step.stop.signal !== SIGTRAP && step.g === g) {
        stop = { kind: "break" }; // stopped by something else before the step ran
        break;
      }
      g = step.g;
      pc = this.pcOfG(g);
      if (pcs) pcs[executed] = pc;
      if (tracer && deltas) {
        const before = tracer.flat;
        deltas.push(diffRegisters(before, await tracer.next(g)));
      }
      executed++;
      if (step.halted) halted = true;
      if (stop || halted) break;
      lifted = this.stoppingAt(pc, false); // another VP's execute breakpoint here (QEMU's are machine-wide)
    }
    this.lastG = { vp, text: g };
    const result: StepResult = { executed };
    if (stop) result.stop = stop;
    if (halted) result.halted = true;
    if (pcs) result.pcs = executed === count ? pcs : pcs.slice(0, executed);
    if (deltas) result.deltas = deltas;
    return result;
  }

  /**
   * One step of a batch: `vCont;s` and the `g` after it, retrying QEMU's x86 no-op steps as
   * stepOnce does. A step that does not finish is a halted VP.
   */
  private async stepInBatch(vp: number, before: string): Promise<BatchStep> {
    const thread = this.threads[vp];
    for (let attempt = 0; ; attempt++) {
      const result = await this.rsp.step(thread, { timeoutMs: HALTED_STEP_TIMEOUT_MS });
      const stop = result.stop;
      this.noteStop(stop);
      if (stop.kind !== "signal") return { kind: "ended", stop };
      const after = await this.readG(vp);
      if (result.interrupted) return after === before ? { kind: "halted" } : { kind: "stepped", g: after, stop, halted: true };
      if (this.arch === "x86_64" && stop.signal === SIGTRAP && !stop.reason && after === before && attempt < 2) continue;
      return { kind: "stepped", g: after, stop, halted: false };
    }
  }

  /** The PC in a `g` reply. */
  private pcOfG(g: string): bigint {
    if (!this.pcInG) {
      const name = this.arch === "x86_64" ? "rip" : "pc";
      let at = 0;
      for (const reg of this.rsp.targetDescription!.registers) {
        const chars = Math.ceil(reg.bitsize / 8) * 2;
        if (reg.name === name) {
          this.pcInG = { at, chars };
          break;
        }
        at += chars;
      }
      if (!this.pcInG) throw new VmmError(Code.Internal, "INTERNAL", `QEMU's g packet carries no ${name}`);
    }
    const { at, chars } = this.pcInG;
    return leHexToBigint(g.slice(at, at + chars));
  }

  /** Follows VP `vp`'s flattened state through a batch, starting from a full read. */
  private async createRegisterTracer(vp: number): Promise<RegisterTracer> {
    const start = await this.readVpState(vp);
    if (start.arch === "x86_64") {
      const segs = Object.fromEntries(SEGMENT_NAMES.map((n) => [n, start.state[n]])) as Record<SegmentName, SegmentRegister>;
      const tracer: RegisterTracer = {
        flat: flattenVpState(start),
        next: async (g) => {
          const regs = this.rsp.parseRegisters(g);
          // The descriptor caches come only from the monitor: read them again when a selector moved.
          if (SEGMENT_NAMES.some((n) => regs.get(n) !== undefined && regs.get(n) !== BigInt(segs[n].selector))) {
            const text = await this.qmp.execute<string>("human-monitor-command", { "command-line": "info registers", "cpu-index": vp });
            Object.assign(segs, parseInfoRegistersSegments(text));
          }
          tracer.flat = flattenVpState({ arch: "x86_64", state: x86StateFromQemu(regs, segs) });
          return tracer.flat;
        },
      };
      return tracer;
    }
    const tracer: RegisterTracer = {
      flat: flattenVpState(start),
      next: async (g) => {
        const core = this.rsp.parseRegisters(g);
        const sys = new Map<string, bigint>();
        for (const name of Object.values(AARCH64_SYSREGS)) sys.set(name, await this.rsp.readRegister(name));
        tracer.flat = flattenVpState({ arch: "aarch64", state: aarch64StateFromQemu(core, sys) });
        return tracer.flat;
      },
    };
    return tracer;
  }

  /**
   * What would stop a VP at `pc` again without progress: an execute breakpoint there, and after
   * an aarch64 watchpoint stop (before the access) every watchpoint.
   */
  private stoppingAt(pc: bigint, watchHit: boolean): Inserted[] {
    return [...this.inserted.values()].filter((i) => (i.type === 1 && i.address === pc) || (watchHit && i.type !== 1));
  }

  /** Runs `fn` with these breakpoints removed from QEMU, putting them back afterwards. */
  private async withLifted<T>(lifted: readonly Inserted[], fn: () => Promise<T>): Promise<T> {
    for (const i of lifted) await this.rsp.removeBreakpoint(i.type, i.address, i.kind);
    try {
      return await fn();
    } finally {
      for (const i of lifted) await this.rsp.insertBreakpoint(i.type, i.address, i.kind);
    }
  }

  /** The raw `g` register block of a VP. */
  private async readG(vp: number): Promise<string> {
    await this.selectThread(vp);
    return this.rsp.requestText("g");
  }

  /** Points `g`/`p`/`P` at a VP's thread (`Hg`), unless QEMU already points there. */
  private async selectThread(vp: number): Promise<void> {
    const thread = this.threads[vp];
    if (this.gThread && sameThread(this.gThread, thread)) return;
    await this.rsp.setThread("g", thread);
    this.gThread = thread;
  }

  /** After a stop QEMU points `g` at the thread that stopped. */
  private noteStop(stop: StopReply): void {
    this.gThread = stop.kind === "signal" ? stop.thread : undefined;
  }

  /**
   * Before continuing: a VP stopped on an execute breakpoint would hit it again at once, and on
   * aarch64 a VP stopped before a watched access would too. Step that VP with them lifted.
   */
  private async stepOverLastHit(): Promise<void> {
    const hit = this.lastHit;
    this.lastHit = undefined;
    if (!hit) return;
    const thread = this.threads[hit.vp];
    await this.selectThread(hit.vp);
    if ((await this.readPc(hit.vp)) !== hit.pc) return; // the debugger moved it: nothing to step over
    const lifted = this.stoppingAt(hit.pc, hit.kind === "watch");
    if (lifted.length === 0) return;
    await this.withLifted(lifted, async () => {
      const result = await this.rsp.step(thread, { timeoutMs: STEP_FOREVER_MS });
      this.noteStop(result.stop);
      if (result.stop.kind !== "signal") throw new Error("QEMU ended while stepping over a breakpoint");
    });
  }

  /** Turns a stop reply into a DebugStopReason, or "continue" for a stop that is not the debugger's. */
  private async classify(reply: StopReply, steppedVp: number | undefined): Promise<DebugStopReason | "continue"> {
    if (reply.kind !== "signal") {
      return this.shutdownSeen || reply.kind === "exited" ? { kind: "powerOff" } : { kind: "break" };
    }
    const vp = this.vpOf(reply.thread) ?? steppedVp ?? 0;
    if (reply.signal === 5) {
      const reason = reply.reason;
      if (reason && (reason.kind === "watch" || reason.kind === "rwatch" || reason.kind === "awatch")) {
        const breakpoint = this.debug[vp].breakpoints.find(
          (b) => b && b.type !== BreakpointType.Execute && reason.address >= b.address && reason.address < b.address + BigInt(breakpointLength(b.size)),
        );
        await this.selectThread(vp);
        const pc = await this.readPc(vp);
        // aarch64 stops before the access: the next run must step over it.
        if (this.arch === "aarch64") this.lastHit = { vp, kind: "watch", pc };
        if (breakpoint) return { kind: "hwBreakpoint", vp, breakpoint };
        return steppedVp !== undefined ? { kind: "singleStep", vp } : "continue"; // another VP's watchpoint
      }
      if (steppedVp !== undefined) return { kind: "singleStep", vp: steppedVp };
      await this.selectThread(vp);
      const pc = await this.readPc(vp);
      const breakpoint = this.debug[vp].breakpoints.find((b) => b && b.type === BreakpointType.Execute && b.address === pc);
      if (breakpoint) {
        this.lastHit = { vp, kind: "exec", pc };
        return { kind: "hwBreakpoint", vp, breakpoint };
      }
      if ([...this.inserted.values()].some((i) => i.type === 1 && i.address === pc)) {
        this.lastHit = { vp, kind: "exec", pc }; // another VP's breakpoint: step past it and run on
        return "continue";
      }
    }
    const early = this.checkpointReason();
    if (early) return early;
    if (this.pauseUsers > 0) {
      await this.pauseCheckpoint();
      return "continue";
    }
    return { kind: "break" }; // stopped by something else (a QMP stop, an unexplained trap)
  }

  private stopped(reason: DebugStopReason): void {
    if (this.state === "gone") return;
    this.state = reason.kind === "powerOff" ? "poweredOff" : "stopped";
    this.lastReason = reason;
    this.breakRequested = false;
    this.pendingEvent = undefined;
    this.stoppedCache.clear();
    this.pausedAck?.resolve();
    this.releaseStopWaiters();
    for (const l of [...this.stopListeners]) l(reason);
  }

  private releaseStopWaiters(): void {
    const waiters = this.stopWaiters;
    this.stopWaiters = [];
    for (const w of waiters) w();
  }

  private onQmpEvent(e: QmpEvent): void {
    switch (e.event) {
      case "RESET":
        if (this.state !== "running" || e.data.guest === false) return;
        // SeaBIOS resets the machine a second time right after a reset: that is the same reset.
        if (this.lastReason?.kind === "reset" && Date.now() - this.resumedAt < 500) return;
        this.pendingEvent = "reset";
        if (!this.stepping) void this.rsp.interrupt().catch(() => undefined);
        return;
      case "WATCHDOG":
        if (this.state !== "running") return;
        this.pendingEvent = "watchdog";
        if (!this.stepping) void this.rsp.interrupt().catch(() => undefined);
        return;
      case "SHUTDOWN":
        if (e.data.guest === true) this.shutdownSeen = true;
        return;
      case "GUEST_PANICKED":
        this.options.log?.(`[qemu ${this.id}] guest panicked: ${JSON.stringify(e.data)}`);
        return;
    }
  }

  /**
   * QEMU went away. Its sockets close in no set order as it exits, so first let QMP deliver what
   * it still has (a SHUTDOWN event makes this a power-off), then settle: powered off, or gone.
   */
  private lose(detail: string): void {
    if (this.lossDetail !== undefined || this.goneDetail !== undefined) return;
    this.lossDetail = detail;
    const qmpDone = this.qmp.isClosed ? Promise.resolve() : new Promise<void>((r) => this.qmp.once("closed", () => r()));
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((r) => (timer = setTimeout(r, 2000)));
    void Promise.race([qmpDone, waited]).then(() => {
      clearTimeout(timer);
      this.settleLoss(detail);
    });
  }

  private settleLoss(detail: string): void {
    if (this.goneDetail !== undefined) return;
    if (this.shutdownSeen) {
      // The guest powered off and QEMU exited: the VM stays powered off (memory stays readable
      // through the RAM file; everything else answers BACKEND_UNAVAILABLE).
      this.goneDetail = "QEMU exited after the guest powered off";
      if (this.stepping) this.state = "poweredOff"; // the batch reports it, not onStop
      else if (this.state !== "poweredOff") this.stopped({ kind: "powerOff" });
      this.pausedAck?.resolve();
      this.releasePause?.();
      return;
    }
    this.goneDetail = detail;
    this.state = "gone";
    this.releaseStopWaiters();
    this.pausedAck?.resolve();
    this.releasePause?.();
    for (const l of [...this.goneListeners]) l(detail);
    this.goneListeners.clear();
  }

  // ---------------------------------------------------------------- pausing for a read

  /** Runs `fn` with the VM stopped: at once when it is, else paused briefly and transparently. */
  private async withVmPaused<T>(fn: () => Promise<T>): Promise<T> {
    if (this.state !== "running" || this.stepping) return this.serial(fn); // after the batch, if one runs

    this.pauseUsers++;
    if (this.pauseUsers === 1) {
      this.pauseGate = new Promise((resolve) => (this.releasePause = resolve));
      let resolve!: () => void;
      this.pausedAck = { promise: new Promise((r) => (resolve = r)), resolve };
      this.pausedAck.resolve = resolve;
      if (this.inContinue) void this.rsp.interrupt().catch(() => undefined);
    }
    try {
      await this.pausedAck!.promise;
      this.assertAlive();
      return await this.serial(fn);
    } finally {
      if (--this.pauseUsers === 0) this.releasePause?.();
    }
  }

  /** In the run loop: if somebody asked for a pause, acknowledge it and wait until they are done. */
  private async pauseCheckpoint(): Promise<void> {
    if (this.pauseUsers === 0) return;
    this.pausedAck?.resolve();
    await this.pauseGate;
  }

  // ---------------------------------------------------------------- breakpoints

  /** Makes QEMU's inserted breakpoints the union of every VP's slots (QEMU's are machine-wide). */
  private async syncBreakpoints(): Promise<void> {
    const wanted = new Map<string, Inserted>();
    this.debug.forEach((state, vp) => {
      for (const bp of state.breakpoints) {
        if (!bp) continue;
        const z = zOf(bp);
        const key = `${z.type}:${z.address}:${z.kind}`;
        const entry = wanted.get(key) ?? { ...z, vps: new Set<number>() };
        entry.vps.add(vp);
        wanted.set(key, entry);
      }
    });
    for (const [key, ins] of [...this.inserted]) {
      if (!wanted.has(key)) {
        await this.rsp.removeBreakpoint(ins.type, ins.address, ins.kind);
        this.inserted.delete(key);
      }
    }
    for (const [key, ins] of wanted) {
      if (!this.inserted.has(key)) await this.rsp.insertBreakpoint(ins.type, ins.address, ins.kind);
      this.inserted.set(key, ins);
    }
  }

  // ---------------------------------------------------------------- registers

  private async readPc(vp: number): Promise<bigint> {
    void vp; // the caller selected the thread with Hg
    return this.rsp.readRegister(this.arch === "x86_64" ? "rip" : "pc");
  }

  private async readVpState(vp: number): Promise<DebuggerVpState> {
    await this.selectThread(vp);
    const regs = await this.rsp.readRegisters();
    if (this.arch === "x86_64") {
      for (const name of ["fs_base", "gs_base", "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"]) {
        if (!regs.has(name)) regs.set(name, await this.rsp.readRegister(name));
      }
      // The monitor is the only source of the segment caches, and the slowest call here (~0.8 ms).
      let text = this.stoppedCache.get(vp)?.segments;
      if (text === undefined) {
        text = await this.qmp.execute<string>("human-monitor-command", { "command-line": "info registers", "cpu-index": vp });
        if (this.state === "stopped") this.stoppedCache.set(vp, { ...this.stoppedCache.get(vp), segments: text });
      }
      return { arch: "x86_64", state: x86StateFromQemu(regs, parseInfoRegistersSegments(text)) };
    }
    const sys = new Map<string, bigint>();
    for (const name of Object.values(AARCH64_SYSREGS)) sys.set(name, await this.rsp.readRegister(name));
    return { arch: "aarch64", state: aarch64StateFromQemu(regs, sys) };
  }

  /**
   * Writes every field that differs. Fields QEMU cannot set (segment descriptor caches, aarch64
   * system registers) are refused before anything is written; every write is read back.
   */
  private async writeVpState(vp: number, target: DebuggerVpState): Promise<void> {
    const current = await this.readVpState(vp);
    const writes: [string, bigint, string][] = []; // gdb register, value, field for messages
    const refused: string[] = [];
    if (target.arch === "x86_64" && current.arch === "x86_64") {
      const want = target.state;
      const have = current.state;
      X86_GP_NAMES.forEach((name, i) => want.gp[i] !== have.gp[i] && writes.push([name, want.gp[i], `gp[${i}]`]));
      for (const [field, name] of X86_SCALARS) {
        const w = want[field] as bigint;
        if (w !== (have[field] as bigint)) writes.push([name, field === "rflags" ? w | 2n : w, field]);
      }
      for (const seg of SEGMENT_NAMES) {
        const w = want[seg];
        const h = have[seg];
        const selectorChanges = w.selector !== h.selector;
        if (selectorChanges) writes.push([seg, BigInt(w.selector), `${seg}.selector`]);
        if ((seg === "fs" || seg === "gs") && w.base !== h.base) writes.push([`${seg}_base`, w.base, `${seg}.base`]);
        const hiddenDiffers =
          (seg !== "fs" && seg !== "gs" && w.base !== h.base) || w.limit !== h.limit || w.attributes !== h.attributes;
        // A new selector reloads the hidden part from the GDT: checked after the write.
        if (hiddenDiffers && !selectorChanges) refused.push(`${seg}.base/limit/attributes`);
      }
    } else if (target.arch === "aarch64" && current.arch === "aarch64") {
      const want = target.state;
      const have = current.state;
      want.x.forEach((v, i) => v !== have.x[i] && writes.push([`x${i}`, v, `x[${i}]`]));
      if (want.pc !== have.pc) writes.push(["pc", want.pc, "pc"]);
      if (want.cpsr !== have.cpsr) writes.push(["cpsr", want.cpsr, "cpsr"]);
      const live = currentSpField(want.cpsr);
      if (want[live] !== have[live]) writes.push(["sp", want[live], live]);
      for (const field of ["sctlrEl1", "tcrEl1", "ttbr0El1", "ttbr1El1", "spEl0", "spEl1"] as const) {
        if (field !== live && want[field] !== have[field]) refused.push(field);
      }
    }
    if (refused.length) {
      throw new VmmError(
        Code.FailedPrecondition,
        "UNSUPPORTED_REGISTER",
        `QEMU's gdbstub cannot set ${refused.join(", ")} on VP ${vp}; nothing was written (send the current values of those fields)`,
        { vp: String(vp), fields: refused.join(",") },
      );
    }
    this.stoppedCache.delete(vp);
    this.lastG = undefined;
    await this.selectThread(vp);
    const notApplied: string[] = [];
    for (const [name, value, field] of writes) {
      const check = await this.rsp.writeRegisterVerified(name, value, name === "cr8" ? 0xfn : undefined);
      if (!check.applied) notApplied.push(`${field} (wrote ${hex(value)}, reads ${hex(check.readBack)})`);
    }
    if (target.arch === "x86_64") {
      const after = await this.readVpState(vp);
      if (after.arch === "x86_64") {
        for (const seg of SEGMENT_NAMES) {
          const w = target.state[seg];
          const a = after.state[seg];
          if (w.limit !== a.limit || w.attributes !== a.attributes || (seg !== "fs" && seg !== "gs" && w.base !== a.base)) {
            notApplied.push(`${seg} (the GDT descriptor for selector ${hex(BigInt(w.selector))} gives base ${hex(a.base)} limit ${hex(BigInt(a.limit))} attributes ${hex(BigInt(a.attributes))})`);
          }
        }
      }
    }
    if (notApplied.length) {
      throw new VmmError(
        Code.FailedPrecondition,
        "UNSUPPORTED_REGISTER",
        `QEMU did not take these values on VP ${vp}: ${notApplied.join("; ")}; the other fields were written`,
        { vp: String(vp) },
      );
    }
  }

  // ---------------------------------------------------------------- memory

  private async physicalPieces(address: GuestAddress, length: number): Promise<{ gpa: bigint; length: number }[]> {
    if (address.kind === "gpa") return [{ gpa: address.gpa, length }];
    const vp = address.vp;
    const paging = await this.pagingRegs(vp);
    // The walkers read entries synchronously: fetch missing entries and walk again (≤ 5 levels).
    const entries = new Map<bigint, bigint | undefined>();
    const missing: bigint[] = [];
    const readEntry = (gpa: bigint) => {
      if (entries.has(gpa)) return entries.get(gpa);
      missing.push(gpa);
      return 0n; // looks not present; the walk is redone once it is fetched
    };
    for (let round = 0; round < 64; round++) {
      missing.length = 0;
      try {
        const pieces = translateRange(vp, address.gva, length, (gva) =>
          paging.arch === "x86_64" ? walkX86(paging, gva, readEntry) : walkAarch64(paging, gva, readEntry),
        );
        if (missing.length === 0) return pieces;
      } catch (e) {
        if (missing.length === 0) throw e; // a real translation failure, not an entry still to fetch
      }
      for (const gpa of missing) entries.set(gpa, await this.readEntry(gpa));
    }
    throw new VmmError(Code.Internal, "INTERNAL", `page walk of ${hex(address.gva)} did not settle`);
  }

  /** A translation-table entry (u64) at `gpa`, or undefined outside RAM. */
  private async readEntry(gpa: bigint): Promise<bigint | undefined> {
    const pieces = splitByRam(this.map.ram, gpa, 8);
    if (pieces.some((p) => p.fileOffset === undefined)) return undefined;
    const bytes = this.fileReads ? this.readFile(pieces) : await this.rsp.readMemory(gpa, 8);
    return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  }

  private async pagingRegs(vp: number): Promise<PagingRegs> {
    const cached = this.stoppedCache.get(vp)?.paging;
    if (cached) return cached;
    await this.selectThread(vp);
    const read = (name: string) => this.rsp.readRegister(name);
    const regs: PagingRegs =
      this.arch === "x86_64"
        ? { arch: "x86_64", cr0: await read("cr0"), cr3: await read("cr3"), cr4: await read("cr4"), efer: await read("efer") }
        : {
            arch: "aarch64",
            sctlrEl1: await read(AARCH64_SYSREGS.sctlrEl1),
            tcrEl1: await read(AARCH64_SYSREGS.tcrEl1),
            ttbr0El1: await read(AARCH64_SYSREGS.ttbr0El1),
            ttbr1El1: await read(AARCH64_SYSREGS.ttbr1El1),
          };
    if (this.state === "stopped") this.stoppedCache.set(vp, { ...this.stoppedCache.get(vp), paging: regs });
    return regs;
  }

  /** Reads physical memory: RAM from the backing file when there is one, the rest (and all without a file) through the gdbstub. */
  private async readPhysical(gpa: bigint, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let o = 0;
    for (const p of splitByRam(this.map.ram, gpa, length)) {
      if (p.fileOffset !== undefined && this.fileReads) out.set(this.readFile([p]), o);
      else out.set(await this.rspCall(() => this.rsp.readMemory(p.gpa, p.length), p.gpa, p.length), o);
      o += p.length;
    }
    return out;
  }

  private readFile(pieces: { length: number; fileOffset?: bigint }[]): Uint8Array {
    const total = pieces.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of pieces) {
      let done = 0;
      while (done < p.length) {
        const n = readSync(this.ramFd!, out, o + done, p.length - done, Number(p.fileOffset!) + done);
        if (n <= 0) throw errors.backendUnavailable(this.id, "the shared RAM file is shorter than guest RAM");
        done += n;
      }
      o += p.length;
    }
    return out;
  }

  /** Only what QEMU maps (RAM, ROM, MMIO) can be accessed; anything else is GPA_UNMAPPED. */
  private checkMapped(gpa: bigint, length: number): void {
    if (!isMapped(this.map.mapped, gpa, length)) throw errors.gpaUnmapped(gpa, BigInt(length));
  }

  /** Runs a gdbstub memory access, mapping QEMU's `E xx` to GPA_UNMAPPED. */
  private async rspCall<T>(fn: () => Promise<T>, gpa: bigint, length: number): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if ((e as { code?: string }).code === "error-reply") throw errors.gpaUnmapped(gpa, BigInt(length));
      throw this.refusal(e, "QEMU's gdbstub failed");
    }
  }

  // ---------------------------------------------------------------- helpers

  private get fileReads(): boolean {
    return this.fastMemory && this.ramFd !== undefined;
  }

  private whileStopped<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.assertAlive();
    if (this.state === "running") return Promise.reject(errors.vmRunning(this.id, what));
    return this.serial(fn);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private vpOf(thread: ThreadId | undefined): number | undefined {
    if (!thread) return undefined;
    const i = this.threads.findIndex((t) => sameThread(t, thread));
    return i >= 0 ? i : undefined;
  }

  private checkVp(vp: number): void {
    checkVp(vp, this.vpCount);
  }

  private assertAlive(): void {
    if (this.state === "gone") throw errors.backendUnavailable(this.id, this.goneDetail ?? "QEMU is gone");
  }

  /** A client error as a VmmError: a lost connection is BACKEND_UNAVAILABLE, anything else says what QEMU did. */
  private refusal(e: unknown, what: string): VmmError {
    if (e instanceof VmmError) return e;
    if (this.state === "gone" || this.rsp.isClosed) return errors.backendUnavailable(this.id, this.goneDetail ?? (e as Error).message);
    return new VmmError(Code.FailedPrecondition, "BACKEND_REFUSED", `${what}: ${(e as Error).message}`, { vm: this.id });
  }
}

/** Whether the attached QEMU carries OWNER_MARKER_ID. */
async function hasOwnerMarker(qmp: QmpClient): Promise<boolean> {
  const objects = await qmp.execute<{ name: string }[]>("qom-list", { path: "/objects" });
  return objects.some((o) => o.name === OWNER_MARKER_ID);
}

/** Z packet for a hardware slot: Z1 execute, Z2 write, Z4 read-or-write; kind = length. */
function zOf(bp: HardwareBreakpoint): { type: ZType; address: bigint; kind: number } {
  const kind = breakpointLength(bp.size);
  switch (bp.type) {
    case BreakpointType.Execute:
      return { type: 1, address: bp.address, kind: 1 };
    case BreakpointType.Write:
      return { type: 2, address: bp.address, kind };
    default:
      return { type: 4, address: bp.address, kind };
  }
}
