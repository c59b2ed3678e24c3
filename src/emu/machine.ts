// The embedded machine as a VMM core: guest RAM in shared buffers, VPs run by one worker thread.
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import {
  type Capabilities,
  ConsoleLog,
  type DebugState,
  type DebugStopReason,
  type DebuggerVpState,
  type GuestAddress,
  type GvaTranslation,
  type MemoryRegion,
  type PartialRead,
  type ReadPiece,
  type RegisterDelta,
  type RunState,
  type SoftwareBreakpoint,
  type SoftwareBreakpointAddress,
  type SoftwareBreakpoints,
  type StepResult,
  type StepTrace,
  type GoneListener,
  type StopListener,
  type VmmCore,
  BreakpointSize,
  BreakpointType,
  Code,
  MAX_STEP_COUNT,
  SLOT_COUNT,
  VmmError,
  breakpointLength,
  checkStepCount,
  checkVp,
  REGISTER_COUNT,
  SoftwareBreakpointTable,
  emptyDebugState,
  errors,
  PartialReadBuilder,
  translateRange,
  translateRangePartial,
  vpStateFieldNames,
  walkX86,
  walkX86Detailed,
} from "../core";
import { CONSOLE_DEVICES, type ConsoleSource } from "./devices";
import { bootMachine, type GuestImage } from "./image";
import { GuestMemory, type RegionSpec } from "./memory";
import {
  CTL_INVALIDATE_SEQ,
  CTL_RING,
  CTL_RING_SIZE,
  CTL_MAILBOX,
  CTL_STEP_COUNT,
  CTL_STEP_DONE,
  CTL_STEP_EXECUTED,
  CTL_STEP_EXIT,
  CTL_STEP_LINGER,
  CTL_STEP_REQ,
  CTL_STEP_SLOT,
  CTL_STEP_VP,
  CTL_STOP_REQUEST,
  CTL_WORDS,
  STATS_EXIT_STATUS,
  STATS_RETIRED,
  STATS_WORDS,
  STEP_EXIT,
  type FromWorker,
  type HaltReason,
  stepHalt,
  type ToWorker,
  type WorkerInit,
} from "./protocol";
import type { SwBreakpointSpec, X86Exit, X86VpDebug } from "./x86_64";
import { VP_WORDS } from "./x86_64/vp-layout";
import {
  checkRunnableX86State,
  X86_REGISTER_OF_WORD,
  X86_REGISTER_WORDS,
  readX86PagingRegs,
  readX86Register,
  readX86VpState,
  writeX86VpState,
} from "./x86-vp-state";

export interface EmuMachineOptions {
  id: string;
  image: GuestImage;
  /** Number of VPs (1..64). Default 1. */
  vpCount?: number;
  /** Guest RAM layout. Default: 256 MiB at GPA 0. */
  memory?: RegionSpec[];
  /** Instructions per VP turn in the round-robin run loop. Default 1000. */
  quantum?: number;
  /**
   * Receives each line the guest writes to the debug console (port 0xE9) or the COM1 UART
   * (0x3F8; each device has its own line buffer). `source` says which; the machine's own notes
   * ("[emu] ...") come without one.
   */
  onConsole?: (line: string, source?: ConsoleSource) => void;
  /** Start running at once (default true), or wait stopped for a debugger's first Resume. */
  startRunning?: boolean;
  /** Bytes of raw console output held for WatchConsole (the `console` log). Default 1 MiB. */
  consoleHistoryBytes?: number;
}

const MIB = 1024 * 1024;
export const DEFAULT_EMU_MEMORY: RegionSpec[] = [{ gpa: 0, size: 256 * MIB, name: "ram" }];

/** Creates, boots and (by default) starts an embedded x86-64 machine. */
export async function createEmuMachine(options: EmuMachineOptions): Promise<EmuMachine> {
  const machine = new EmuMachine(options);
  await machine.ready;
  if (options.startRunning ?? true) await machine.resume();
  return machine;
}

export class EmuMachine implements VmmCore {
  readonly id: string;
  readonly arch = "x86_64" as const;
  readonly backend = "emu";
  readonly vpCount: number;
  readonly memoryRegions: readonly MemoryRegion[];
  /** Resolves once the worker is up. */
  readonly ready: Promise<void>;
  /** Raw output of the debug console (0xE9) and the COM1 UART (0x3F8), for WatchConsole. */
  readonly console: ConsoleLog;

  private readonly memory: GuestMemory;
  private readonly regs: Uint32Array;
  private readonly ctl: Int32Array;
  private readonly stats: Float64Array;
  private readonly worker: Worker;
  private readonly debugStates: DebugState[];
  private readonly listeners = new Set<StopListener>();
  private readonly goneListeners = new Set<GoneListener>();
  private stopWaiters: (() => void)[] = [];
  private state: RunState = "stopped";
  /** The last stop was a triple fault: the next resume resets the machine first (as OpenVMM does). */
  private resetOnResume = false;
  /** The batched step the worker is running, waiting for its "stepped". */
  private pendingStep: PendingStep | undefined;
  /** The software breakpoints' bookkeeping; the worker holds the same set and checks it at fetch. */
  private readonly swTable = new SoftwareBreakpointTable();

  /**
   * Software breakpoints, checked by the interpreter at instruction fetch (guest memory is never
   * patched). By GVA (every VP or one) or by GPA (guest RAM only).
   */
  readonly softwareBreakpoints: SoftwareBreakpoints = {
    insert: (address, oneShot) => this.insertSoftwareBreakpoint(address, oneShot),
    remove: (id) => this.removeSoftwareBreakpoint(id),
    list: () => this.swTable.list(),
    clear: () => this.clearSoftwareBreakpoints(),
  };

  constructor(private readonly options: EmuMachineOptions) {
    if (options.image.arch !== "x86_64") throw new Error(`the embedded machine runs x86_64 images, not ${options.image.arch}`);
    const vpCount = options.vpCount ?? 1;
    if (!Number.isInteger(vpCount) || vpCount < 1 || vpCount > 64) throw new Error(`vpCount must be 1..64, got ${vpCount}`);
    this.id = options.id;
    this.vpCount = vpCount;
    this.console = new ConsoleLog({ capacityBytes: options.consoleHistoryBytes });
    this.memory = GuestMemory.allocate(options.memory ?? DEFAULT_EMU_MEMORY);
    this.memoryRegions = this.memory.regions.map((r) => ({ gpa: BigInt(r.gpa), size: BigInt(r.size), name: r.name }));
    this.regs = new Uint32Array(new SharedArrayBuffer(vpCount * VP_WORDS * 4));
    this.ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
    const statsBuffer = new SharedArrayBuffer(8 * STATS_WORDS);
    this.stats = new Float64Array(statsBuffer);
    this.debugStates = Array.from({ length: vpCount }, emptyDebugState);
    bootMachine(this.memory, this.regs, options.image, vpCount);

    const init: WorkerInit = {
      regions: this.memory.regions.map((r) => ({
        gpa: r.gpa,
        size: r.size,
        name: r.name,
        buffer: r.bytes.buffer as SharedArrayBuffer,
      })),
      regs: this.regs.buffer as SharedArrayBuffer,
      ctl: this.ctl.buffer as SharedArrayBuffer,
      stats: statsBuffer,
      vpCount,
      quantum: options.quantum ?? 1000,
      image: {
        bytes: options.image.bytes,
        loadGpa: "0x" + options.image.loadGpa.toString(16),
        entry: "0x" + options.image.entry.toString(16),
        arch: "x86_64",
      },
    };
    // Under ts-jest or tsx the worker is TypeScript and needs tsx's loader; a build runs the .js.
    const isTs = __filename.endsWith(".ts");
    this.worker = new Worker(join(__dirname, isTs ? "worker.ts" : "worker.js"), {
      workerData: init,
      execArgv: isTs ? ["--require", require.resolve("tsx/cjs")] : [],
    });
    this.worker.unref();
    this.worker.on("message", (msg: FromWorker) => this.onWorkerMessage(msg));
    this.ready = new Promise((resolve, reject) => {
      this.worker.once("online", resolve);
      this.worker.once("error", reject);
    });
    this.worker.on("error", (err) => this.onWorkerGone(`worker failed: ${err.message}`));
    this.worker.on("exit", (code) => this.onWorkerGone(`worker exited with code ${code}`));
  }

  /**
   * The interpreter checks all four slots of a VP with the DR7 data types and lengths
   * (X86VpDebug), software breakpoints at fetch by GVA or GPA, and writes every register field
   * (refusing only states it cannot run, see checkRunnableX86State); reads come from guest RAM
   * and registers in shared buffers, never stopping the worker.
   */
  capabilities(): Capabilities {
    return {
      hardwareSlotsPerVp: SLOT_COUNT,
      watchpointTypes: [BreakpointType.Write, BreakpointType.ReadOrWrite],
      watchpointSizes: [BreakpointSize.Byte, BreakpointSize.Word, BreakpointSize.DWord, BreakpointSize.QWord],
      softwareBreakpoints: { gva: true, perVp: true, gpa: true },
      setVpStateFields: vpStateFieldNames("x86_64"),
      memoryReadsWhileRunning: "noPause",
      batchedStepping: { maxCount: MAX_STEP_COUNT, traces: ["none", "pc", "registers"] },
    };
  }

  runState(): RunState {
    return this.state;
  }

  /** Guest instructions retired by all VPs, as of the last stop. */
  instructionsRetired(): number {
    return this.stats[STATS_RETIRED];
  }

  /**
   * The status the guest powered off with through isa-debug-exit (port 0xF4: (value << 1) | 1,
   * as QEMU exits), or undefined when it gave none since the last reset.
   */
  exitStatus(): number | undefined {
    const v = this.stats[STATS_EXIT_STATUS];
    return Number.isNaN(v) ? undefined : v;
  }

  async resume(): Promise<void> {
    if (this.state === "running") return;
    this.assertAlive();
    if (this.state === "poweredOff") throw errors.poweredOff(this.id);
    if (this.resetOnResume) {
      this.resetOnResume = false;
      this.post({ type: "reset" });
    }
    Atomics.store(this.ctl, CTL_STOP_REQUEST, 0);
    this.state = "running";
    this.post({ type: "run" });
  }

  async halt(): Promise<void> {
    if (this.state !== "running") return;
    const stopped = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    Atomics.store(this.ctl, CTL_STOP_REQUEST, 1);
    Atomics.notify(this.ctl, CTL_STOP_REQUEST);
    await stopped;
  }

  onStop(listener: StopListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onGone(listener: GoneListener): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  async setDebugState(vp: number, state: DebugState): Promise<void> {
    this.checkVp(vp);
    this.assertStopped("SetDebugState");
    this.debugStates[vp] = state;
    const debug: X86VpDebug = {
      singleStep: state.singleStep,
      slots: state.breakpoints.map((bp) =>
        bp
          ? {
              addressLo: Number(bp.address & 0xffff_ffffn),
              addressHi: Number(bp.address >> 32n),
              type: bp.type as 0 | 2 | 3,
              length: breakpointLength(bp.size),
            }
          : null,
      ),
    };
    this.post({ type: "setDebug", vp, debug });
  }

  private async insertSoftwareBreakpoint(
    address: SoftwareBreakpointAddress,
    oneShot: boolean,
  ): Promise<{ breakpoint: SoftwareBreakpoint; existing: boolean }> {
    if (address.kind === "gva" && address.vp !== undefined) this.checkVp(address.vp);
    this.assertStopped("InsertSoftwareBreakpoint");
    if (address.kind === "gpa") this.memory.pieces(address.gpa, 1); // GPA_UNMAPPED: no instruction can be fetched there
    const { breakpoint, existing, changed } = this.swTable.insert(address, oneShot);
    if (changed) this.post({ type: "swInsert", breakpoint: swSpec(breakpoint) });
    return { breakpoint, existing };
  }

  private async removeSoftwareBreakpoint(id: number): Promise<void> {
    this.assertStopped("RemoveSoftwareBreakpoint");
    this.swTable.remove(id);
    this.post({ type: "swRemove", id });
  }

  private async clearSoftwareBreakpoints(): Promise<void> {
    this.assertStopped("Clearing software breakpoints");
    if (this.swTable.clear() > 0) this.post({ type: "swClear" });
  }

  async step(vp: number, count: number, trace: StepTrace, signal?: AbortSignal): Promise<StepResult> {
    this.checkVp(vp);
    checkStepCount(count);
    this.assertStopped("Step");
    if (this.state === "poweredOff") throw errors.poweredOff(this.id);
    if (signal?.aborted) return { executed: 0, stop: { kind: "break" }, ...(trace === "none" ? {} : { pcs: new BigUint64Array(0) }), ...(trace === "registers" ? { deltas: [] } : {}) };
    if (this.resetOnResume) {
      this.resetOnResume = false;
      this.post({ type: "reset" });
    }
    const onAbort = () => {
      Atomics.store(this.ctl, CTL_STOP_REQUEST, 1);
      Atomics.notify(this.ctl, CTL_STOP_REQUEST);
    };
    const done = new Promise<StepResult>((resolve, reject) => (this.pendingStep = { vp, trace, resolve, reject }));
    Atomics.store(this.ctl, CTL_STOP_REQUEST, 0);
    this.state = "running";
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      // The channel only while no message is outstanding (a reset, a setDebug): order is kept.
      if (trace === "none" && Atomics.load(this.ctl, CTL_MAILBOX) === 0) await this.stepThroughChannel(vp, count);
      else this.post({ type: "step", vp, count, trace });
      return await done;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * A batch without a trace goes over the shared step channel: a worker still lingering after
   * the previous step answers within microseconds, without a message each way. The answer is
   * read back into the same "stepped" path a message would take.
   */
  private async stepThroughChannel(vp: number, count: number): Promise<void> {
    const ctl = this.ctl;
    const DONE = CTL_STEP_DONE; // a local: under tsx every use of an imported binding is a getter call
    const before = Atomics.load(ctl, DONE);
    const seq = (Atomics.load(ctl, CTL_STEP_REQ) + 1) | 0;
    Atomics.store(ctl, CTL_STEP_VP, vp);
    Atomics.store(ctl, CTL_STEP_COUNT, count);
    Atomics.store(ctl, CTL_STEP_REQ, seq);
    Atomics.notify(ctl, CTL_STEP_REQ);
    // A worker that has left (or is leaving) its linger re-checks the channel on this message.
    if (Atomics.load(ctl, CTL_STEP_LINGER) === 0) this.post({ type: "stepChannel" });
    else if (count <= SHORT_STEP) {
      // A lingering worker answers a short batch within microseconds: spin for it right here (at
      // most SHORT_STEP_WAIT_MS of this thread) rather than sleep, as waking takes ~35 us here.
      const until = performance.now() + SHORT_STEP_WAIT_MS;
      for (let turns = 0; turns < 1000 && Atomics.load(ctl, DONE) === before; turns++) {
        for (let spin = 0; spin < 64 && Atomics.load(ctl, DONE) === before; spin++);
        if (performance.now() > until) break;
      }
    }
    // Node 20's Atomics.waitAsync can miss a notify that races with it (seen about once in 5,000
    // steps here): a short timeout turns such a miss into a 1 ms delay instead of a hang.
    for (let turns = 0; turns < 10_000_000 && Atomics.load(ctl, DONE) !== seq; turns++) {
      const wait = waitAsync(ctl, DONE, Atomics.load(ctl, DONE), 1);
      if (wait.async) await wait.value;
      if (this.state === "gone") return; // onWorkerGone has failed the step already
    }
    const kind = STEP_EXIT[Atomics.load(ctl, CTL_STEP_EXIT)];
    const requested = kind === "requested";
    const exit: X86Exit =
      kind === "requested"
        ? { kind: "budget" }
        : kind === "hwBreakpoint"
          ? { kind, slot: Atomics.load(ctl, CTL_STEP_SLOT) }
          : kind === "swBreakpoint"
            ? { kind, id: Atomics.load(ctl, CTL_STEP_SLOT) >>> 0 }
            : { kind };
    this.onStepped({ type: "stepped", executed: Atomics.load(ctl, CTL_STEP_EXECUTED), halt: stepHalt(vp, exit, requested), halted: kind === "halted" });
  }

  async getVpState(vp: number): Promise<DebuggerVpState> {
    this.checkVp(vp);
    this.assertStopped("GetVpState");
    return { arch: "x86_64", state: readX86VpState(this.regs, vp) };
  }

  async setVpState(vp: number, state: DebuggerVpState): Promise<void> {
    this.checkVp(vp);
    this.assertStopped("SetVpState");
    if (state.arch !== "x86_64") throw errors.archMismatch("x86_64", state.arch);
    checkRunnableX86State(vp, state.state);
    writeX86VpState(this.regs, vp, state.state);
    this.post({ type: "flushTlb", vp });
  }

  async readMemory(address: GuestAddress, length: number): Promise<Uint8Array> {
    this.assertAlive();
    const out = new Uint8Array(length);
    let o = 0;
    for (const piece of this.physicalPieces(address, length)) {
      this.memory.readInto(piece.gpa, out.subarray(o, o + piece.length));
      o += piece.length;
    }
    return out;
  }

  async readMemoryPartial(address: GuestAddress, length: number): Promise<PartialRead> {
    this.assertAlive();
    const out = new PartialReadBuilder(length);
    let pieces: ReadPiece[] = [{ gpa: address.kind === "gpa" ? address.gpa : 0n, length }];
    if (address.kind === "gva") {
      this.checkVp(address.vp);
      const paging = readX86PagingRegs(this.regs, address.vp);
      pieces = translateRangePartial(address.vp, address.gva, length, (gva) => walkX86(paging, gva, (gpa) => this.memory.readU64(gpa)));
    }
    for (const piece of pieces) {
      if ("error" in piece) {
        out.skip(piece.length, piece.error);
        continue;
      }
      // RAM regions and the holes between them (a zero-length piece: as its first byte).
      for (const part of this.memory.split(piece.gpa, piece.length)) {
        if (!part.ram) {
          out.skipGpa(part.gpa, part.length);
          continue;
        }
        this.memory.readInto(part.gpa, out.view(part.length));
        out.advance(part.length);
      }
    }
    return out.result();
  }

  async translateGva(vp: number, gva: bigint): Promise<GvaTranslation> {
    this.checkVp(vp);
    this.assertStopped("TranslateGva");
    return walkX86Detailed(readX86PagingRegs(this.regs, vp), gva, (gpa) => this.memory.readU64(gpa));
  }

  async writeMemory(address: GuestAddress, data: Uint8Array): Promise<void> {
    this.assertAlive();
    const pieces = this.physicalPieces(address, data.length);
    // All or nothing: every piece must be RAM before the first byte is written.
    for (const p of pieces) this.memory.pieces(p.gpa, p.length);
    let o = 0;
    for (const p of pieces) {
      this.memory.write(p.gpa, data.subarray(o, o + p.length));
      this.invalidate(p.gpa, p.length);
      o += p.length;
    }
  }

  async close(): Promise<void> {
    if (this.state === "gone") return;
    this.state = "gone";
    this.console.end("backendLost");
    Atomics.store(this.ctl, CTL_STOP_REQUEST, 1);
    Atomics.notify(this.ctl, CTL_STOP_REQUEST);
    await this.worker.terminate();
  }

  private physicalPieces(address: GuestAddress, length: number) {
    if (address.kind === "gpa") {
      this.memory.pieces(address.gpa, length); // throws GPA_UNMAPPED naming the whole range
      return [{ gpa: address.gpa, length }];
    }
    this.checkVp(address.vp);
    const paging = readX86PagingRegs(this.regs, address.vp);
    return translateRange(address.vp, address.gva, length, (gva) =>
      walkX86(paging, gva, (gpa) => this.memory.readU64(gpa)),
    );
  }

  /** Tells the worker to drop decoded code for the pages of [gpa, gpa+length). */
  private invalidate(gpa: bigint, length: number): void {
    if (length === 0) return;
    const first = Number(gpa >> 12n);
    const last = Number((gpa + BigInt(length) - 1n) >> 12n);
    const pages = last - first + 1;
    if (pages > CTL_RING_SIZE) {
      // More pages than the ring holds: jump the sequence so the worker drops everything.
      Atomics.add(this.ctl, CTL_INVALIDATE_SEQ, CTL_RING_SIZE + 1);
      return;
    }
    for (let p = first; p <= last; p++) {
      const seq = Atomics.load(this.ctl, CTL_INVALIDATE_SEQ);
      this.ctl[CTL_RING + (seq % CTL_RING_SIZE)] = p;
      Atomics.store(this.ctl, CTL_INVALIDATE_SEQ, seq + 1);
    }
  }

  /**
   * The worker's `message` listener. A throw here would be an uncaught exception in the server
   * process, so nothing escapes: a message that cannot be handled (a stop that maps to no stop
   * reason) fails this VM alone — logged, gone, its waiters released — and a stop listener that
   * throws is logged and the others still run.
   */
  private onWorkerMessage(msg: FromWorker): void {
    try {
      this.handleWorkerMessage(msg);
    } catch (e) {
      const detail = `the worker's "${msg.type}" message could not be handled: ${(e as Error).message}`;
      this.options.onConsole?.(`[emu] ${detail}`);
      this.onWorkerGone(detail); // state gone, a pending step rejected, halt() and onGone told
      // The worker is left stopped and nobody may use it now. terminate() only resolves (with
      // the exit code), and its "exit" finds the VM gone already.
      void this.worker.terminate();
    }
  }

  private handleWorkerMessage(msg: FromWorker): void {
    switch (msg.type) {
      case "consoleSynced":
        if (this.state === "poweredOff") this.console.end("poweredOff");
        return;
      case "consoleBytes": {
        let at = 0;
        for (let i = 0; i + 1 < msg.runs.length; i += 2) {
          const device = CONSOLE_DEVICES[msg.runs[i]];
          const length = msg.runs[i + 1];
          if (device) this.console.append(device, msg.data.subarray(at, at + length));
          at += length;
        }
        return;
      }
      case "console":
        try {
          this.options.onConsole?.(msg.line, msg.source);
        } catch {
          // The console consumer's failure is its own: the line is dropped, the VM runs on.
        }
        return;
      case "crashed": {
        this.options.onConsole?.(`[emu] worker error: ${msg.message}`);
        const step = this.pendingStep;
        this.pendingStep = undefined;
        step?.reject(new VmmError(Code.Internal, "INTERNAL", "the embedded machine failed while stepping"));
        void this.close(); // close() does not reject: it only awaits terminate()
        return;
      }
      case "stepped":
        this.onStepped(msg);
        return;
      case "stopped": {
        const reason = this.stopReason(msg.halt); // throws for a stop that names no reason
        this.state = reason.kind === "powerOff" ? "poweredOff" : "stopped";
        if (reason.kind === "powerOff") this.console.end("poweredOff"); // its bytes came before this message
        this.resetOnResume = reason.kind === "tripleFault";
        const waiters = this.stopWaiters;
        this.stopWaiters = [];
        for (const w of waiters) w();
        for (const l of [...this.listeners]) {
          try {
            l(reason);
          } catch (e) {
            this.options.onConsole?.(`[emu] a stop listener failed on ${reason.kind}: ${(e as Error).message}`);
          }
        }
        return;
      }
    }
  }

  /** Ends the pending batched step: the VM is stopped again (or powered off); no onStop. */
  private onStepped(msg: Extract<FromWorker, { type: "stepped" }>): void {
    const pending = this.pendingStep;
    this.pendingStep = undefined;
    if (!pending) return;
    let result: StepResult | undefined;
    let failure: unknown;
    try {
      result = { executed: msg.executed };
      if (msg.halt) result.stop = this.stopReason(msg.halt);
      if (msg.halted) result.halted = true;
      if (pending.trace !== "none") result.pcs = pcTrace(msg.pcs!, msg.executed);
      if (pending.trace === "registers") result.deltas = registerDeltas(new Uint32Array(msg.changes!, 0, msg.changeWords), msg.executed);
    } catch (e) {
      failure = e instanceof VmmError ? e : new VmmError(Code.Internal, "INTERNAL", `batched step result: ${(e as Error).message}`, {}, { cause: e });
    }
    if (this.state === "running") this.state = result?.stop?.kind === "powerOff" ? "poweredOff" : "stopped";
    // A batch answered on the step channel may arrive before the console bytes its worker posted:
    // the output ends once the worker has answered a sync behind them.
    if (this.state === "poweredOff" && this.console.ended === undefined) this.post({ type: "consoleSync" });
    this.resetOnResume = result?.stop?.kind === "tripleFault";
    const waiters = this.stopWaiters;
    this.stopWaiters = [];
    for (const w of waiters) w();
    if (result && failure === undefined) pending.resolve(result);
    else pending.reject(failure);
  }

  /** Maps a halt once (a software breakpoint's hit is counted here, and a one-shot one forgotten). */
  private stopReason(halt: HaltReason): DebugStopReason {
    return toStopReason(halt, this.debugStates, (vp, id) => {
      this.swTable.recordHit(id);
      return { kind: "softwareBreakpoint", vp, address: readX86Register(this.regs, vp, RIP_REGISTER), id };
    }, this.exitStatus());
  }

  private onWorkerGone(detail: string): void {
    this.console.end("backendLost");
    if (this.state !== "gone") {
      this.state = "gone";
      this.options.onConsole?.(`[emu] ${detail}`);
    }
    const step = this.pendingStep;
    this.pendingStep = undefined;
    step?.reject(errors.backendUnavailable(this.id, detail));
    for (const l of [...this.goneListeners]) l(detail);
    this.goneListeners.clear();
    const waiters = this.stopWaiters;
    this.stopWaiters = [];
    for (const w of waiters) w();
  }

  private post(msg: ToWorker): void {
    Atomics.add(this.ctl, CTL_MAILBOX, 1);
    this.worker.postMessage(msg);
    // A worker lingering on the step channel goes back to its messages at once.
    Atomics.notify(this.ctl, CTL_STEP_REQ);
  }

  private checkVp(vp: number): void {
    checkVp(vp, this.vpCount);
  }

  private assertAlive(): void {
    if (this.state === "gone") throw errors.backendUnavailable(this.id, "the embedded machine has been shut down");
  }

  private assertStopped(what: string): void {
    this.assertAlive();
    if (this.state === "running") throw errors.vmRunning(this.id, what);
  }
}

/** Batches this short (in instructions) wait synchronously for a lingering worker's answer, at most SHORT_STEP_WAIT_MS. */
const SHORT_STEP = 64;
const SHORT_STEP_WAIT_MS = 0.1;

/** Atomics.waitAsync (Node 16+; not in TypeScript's es2022 lib). */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

interface PendingStep {
  vp: number;
  trace: StepTrace;
  resolve: (result: StepResult) => void;
  reject: (error: unknown) => void;
}

/** The worker's RIP words (low, high per entry) as u64s: a view of the same buffer (little-endian hosts). */
function pcTrace(buffer: ArrayBuffer, executed: number): BigUint64Array {
  const pcs = new BigUint64Array(buffer, 0, executed);
  // Do not keep a buffer sized for a long count alive for a short batch.
  return executed * 2 < pcs.buffer.byteLength / 8 ? pcs.slice() : pcs;
}

/**
 * Replays the worker's changed words over the VP's starting words (the first X86_REGISTER_WORDS
 * of `changes`) and turns each instruction's changes into register numbers and values, as
 * GetVpState would read them.
 */
function registerDeltas(changes: Uint32Array, executed: number): RegisterDelta[] {
  const words = changes.slice(0, X86_REGISTER_WORDS);
  const values = Array.from({ length: REGISTER_COUNT.x86_64 }, (_, n) => readX86Register(words, 0, n));
  const deltas: RegisterDelta[] = [];
  const touched = new Set<number>();
  let at = X86_REGISTER_WORDS;
  for (let i = 0; i < executed; i++) {
    const k = changes[at++];
    touched.clear();
    for (let j = 0; j < k; j++) {
      const word = changes[at++];
      words[word] = changes[at++];
      if (X86_REGISTER_OF_WORD[word] >= 0) touched.add(X86_REGISTER_OF_WORD[word]);
    }
    const delta: RegisterDelta = { registers: [], values: [] };
    for (const n of [...touched].sort((a, b) => a - b)) {
      const v = readX86Register(words, 0, n);
      if (v === values[n]) continue; // a changed word that does not show (masked bits)
      values[n] = v;
      delta.registers.push(n);
      delta.values.push(v);
    }
    deltas.push(delta);
  }
  return deltas;
}

/** Register number of RIP (see REGISTER_COUNT). */
const RIP_REGISTER = 16;

/** The worker's form of a software breakpoint. */
function swSpec(bp: SoftwareBreakpoint): SwBreakpointSpec {
  const a = bp.address;
  const gva = a.kind === "gva" ? a.gva : 0n;
  return {
    id: bp.id,
    kind: a.kind,
    lo: Number(gva & 0xffff_ffffn) | 0,
    hi: Number(gva >> 32n) | 0,
    vp: a.kind === "gva" && a.vp !== undefined ? a.vp : -1,
    gpa: a.kind === "gpa" ? Number(a.gpa) : 0,
    oneShot: bp.oneShot,
  };
}

/**
 * The one place internal halt reasons become debugger-facing stop reasons. `softwareBreakpoint`
 * maps a software breakpoint's stop (and counts its hit).
 */
function toStopReason(
  halt: HaltReason,
  debug: readonly DebugState[],
  softwareBreakpoint: (vp: number, id: number) => DebugStopReason,
  exitStatus: number | undefined,
): DebugStopReason {
  switch (halt.kind) {
    case "requested":
      return { kind: "break" };
    case "watchdog":
      return { kind: "watchdog" };
    case "vp": {
      const { vp, exit } = halt;
      switch (exit.kind) {
        case "singleStep":
          return { kind: "singleStep", vp };
        case "hwBreakpoint": {
          const breakpoint = debug[vp].breakpoints[exit.slot];
          if (!breakpoint) throw new VmmError(Code.Internal, "INTERNAL", `VP ${vp} reported disabled slot ${exit.slot}`);
          return { kind: "hwBreakpoint", vp, breakpoint };
        }
        case "swBreakpoint":
          return softwareBreakpoint(vp, exit.id);
        case "tripleFault":
          return { kind: "tripleFault", vp };
        case "reset":
          return { kind: "reset" };
        case "powerOff":
          return exitStatus === undefined ? { kind: "powerOff" } : { kind: "powerOff", exitStatus };
        case "budget":
        case "halted":
          throw new VmmError(Code.Internal, "INTERNAL", `run loop stopped on a ${exit.kind} exit`);
      }
    }
  }
}
