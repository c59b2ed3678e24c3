// QEMU as a VMM core: composes the connection, run loop, breakpoints, registers and memory of one
// QEMU VM behind the VmmCore port.
import {
  type Arch,
  BreakpointSize,
  BreakpointType,
  type Capabilities,
  type ConsoleLog,
  type DebugState,
  type DebuggerVpState,
  type GoneListener,
  type GuestAddress,
  type GvaTranslation,
  type PartialRead,
  type MemoryRegion,
  type RunState,
  type SoftwareBreakpoint,
  type SoftwareBreakpointAddress,
  type SoftwareBreakpoints,
  type StepResult,
  type StepTrace,
  type StopListener,
  type VmmCore,
  checkStepCount,
  Code,
  MAX_STEP_COUNT,
  SLOT_COUNT,
  VmmError,
  checkVp,
  errors,
} from "../core";
import { QemuBreakpoints } from "./breakpoints";
import { type QemuConnection, type QemuVmOptions, connectQemu } from "./connection";
import { QemuMemory } from "./memory";
import type { QemuMemoryMap } from "./memory-map";
import { QemuRegisters, qemuWritableFields } from "./registers";
import { RunLoop } from "./run-loop";
import { Stepper } from "./stepping";

export { OWNER_MARKER_ID } from "./connection";
export type { QemuVmOptions } from "./connection";

/**
 * Connects to a QEMU (launched by us or already running) and returns it as a VmmCore. What a
 * debugger that is gone left behind is cleared, and such a VM runs on (see connectQemu).
 */
export async function createQemuVm(options: QemuVmOptions): Promise<QemuVm> {
  const { connection, map, run } = await connectQemu(options);
  let vm: QemuVm | undefined;
  try {
    // Asked once: KVM decides what software breakpoints can do (and capabilities() says so).
    const kvm = await connection.qmp.execute<{ enabled: boolean }>("query-kvm", {}).then(
      (r) => r.enabled,
      () => false, // a QEMU without the command has no KVM to speak of
    );
    vm = new QemuVm(options, connection, map, kvm);
    if (run) await vm.resume();
    return vm;
  } catch (e) {
    vm?.releaseFile();
    await connection.disconnect(); // never rejects
    throw e;
  }
}

export class QemuVm implements VmmCore {
  readonly id: string;
  readonly backend = "qemu";
  readonly arch: Arch;
  readonly vpCount: number;
  readonly memoryRegions: readonly MemoryRegion[];
  /** The QEMU process, when this VM launched it. */
  readonly pid: number | undefined;
  /** QEMU's stdout as console output, when this server launched it (an attached QEMU has none). */
  readonly console?: ConsoleLog;

  private readonly registers: QemuRegisters;
  private readonly breakpoints: QemuBreakpoints;
  private readonly memory: QemuMemory;
  private readonly runLoop: RunLoop;

  constructor(
    options: QemuVmOptions,
    private readonly connection: QemuConnection,
    map: QemuMemoryMap,
    /** QEMU runs with KVM (query-kvm at connect). */
    private readonly kvm: boolean,
  ) {
    this.id = options.id;
    this.arch = connection.arch;
    this.vpCount = connection.threads.length;
    this.pid = options.launched?.pid;
    this.console = options.console;
    this.registers = new QemuRegisters(connection, () => this.runLoop.isStopped());
    this.breakpoints = new QemuBreakpoints(connection.rsp, this.vpCount, this.arch, (m) => connection.log(m));
    const stepper = new Stepper(connection, this.registers, this.breakpoints);
    this.runLoop = new RunLoop(connection, this.registers, this.breakpoints, stepper);
    this.memory = new QemuMemory(connection, map, this.registers, (e, what) => this.runLoop.refusal(e, what), options);
    this.memoryRegions = this.memory.regions;
    connection.watch({ event: (e) => this.runLoop.onQmpEvent(e), lost: (detail) => this.runLoop.lost(detail) });
  }

  /** Whether GPA reads inside RAM use the shared RAM file (when there is one). */
  get fastMemory(): boolean {
    return this.memory.fastMemory;
  }

  set fastMemory(on: boolean) {
    this.memory.fastMemory = on;
  }

  /**
   * Slots map onto QEMU's Z1 (execute), Z2 (write) and Z4 (read or write) with the slot's length
   * (QemuBreakpoints); software breakpoints are Z0 by GVA, none under KVM; SetVpState writes what
   * the gdbstub can set (qemuWritableFields); a running VM's reads pause it unless they are GPA
   * reads of RAM served from the shared RAM file (QemuMemory).
   */
  capabilities(): Capabilities {
    const software = !this.kvm;
    return {
      hardwareSlotsPerVp: SLOT_COUNT,
      watchpointTypes: [BreakpointType.Write, BreakpointType.ReadOrWrite],
      watchpointSizes: [BreakpointSize.Byte, BreakpointSize.Word, BreakpointSize.DWord, BreakpointSize.QWord],
      softwareBreakpoints: { gva: software, perVp: software, gpa: false },
      setVpStateFields: qemuWritableFields(this.arch),
      memoryReadsWhileRunning: this.memory.fileReads ? "noPauseGpaRam" : "pauses",
      batchedStepping: { maxCount: MAX_STEP_COUNT, traces: ["none", "pc", "registers"] },
    };
  }

  runState(): RunState {
    return this.runLoop.runState();
  }

  onStop(listener: StopListener): () => void {
    return this.runLoop.onStop(listener);
  }

  onGone(listener: GoneListener): () => void {
    return this.runLoop.onGone(listener);
  }

  resume(): Promise<void> {
    return this.runLoop.resume();
  }

  halt(): Promise<void> {
    return this.runLoop.halt();
  }

  setDebugState(vp: number, state: DebugState): Promise<void> {
    this.checkVp(vp);
    return this.runLoop.whileStopped("SetDebugState", async () => {
      try {
        await this.breakpoints.set(vp, state);
      } catch (e) {
        throw this.runLoop.refusal(e, "QEMU refused the breakpoint");
      }
    });
  }

  /**
   * Software breakpoints as QEMU's Z0, by virtual address only (Z0 matches a vCPU's PC, on every
   * vCPU: a breakpoint for one VP is stepped past on the others, as hardware slots are). A
   * breakpoint by GPA, or any under KVM (where Z0 writes a breakpoint instruction into guest
   * memory), is refused with SOFTWARE_BREAKPOINT_UNSUPPORTED before anything changes.
   */
  readonly softwareBreakpoints: SoftwareBreakpoints = {
    insert: (address, oneShot) => this.insertSoftwareBreakpoint(address, oneShot),
    remove: (id) =>
      this.runLoop.whileStopped("RemoveSoftwareBreakpoint", () =>
        this.breakpoints.removeSoftware(id).catch((e: unknown) => {
          throw this.runLoop.refusal(e, "QEMU refused to remove the software breakpoint");
        }),
      ),
    list: () => this.breakpoints.listSoftware(),
    clear: () =>
      this.runLoop.whileStopped("Clearing software breakpoints", () =>
        this.breakpoints.clearSoftware().catch((e: unknown) => {
          throw this.runLoop.refusal(e, "QEMU refused to remove a software breakpoint");
        }),
      ),
  };

  /**
   * Batched stepping (see Stepper.batch). runState() is "running" meanwhile, and reads wait for
   * the batch on the serial chain.
   */
  step(vp: number, count: number, trace: StepTrace, signal?: AbortSignal): Promise<StepResult> {
    try {
      this.checkVp(vp);
      checkStepCount(count);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.runLoop.step(vp, count, trace, signal);
  }

  getVpState(vp: number): Promise<DebuggerVpState> {
    this.checkVp(vp);
    return this.runLoop.whileStopped("GetVpState", () => this.registers.readVpState(vp));
  }

  setVpState(vp: number, state: DebuggerVpState): Promise<void> {
    this.checkVp(vp);
    if (state.arch !== this.arch) return Promise.reject(errors.archMismatch(this.arch, state.arch));
    return this.runLoop.whileStopped("SetVpState", () => this.registers.writeVpState(vp, state));
  }

  async readMemory(address: GuestAddress, length: number): Promise<Uint8Array> {
    this.runLoop.assertAlive();
    if (address.kind === "gva") this.checkVp(address.vp);
    // Whatever lies inside RAM with a backing file is read without touching the VM.
    return this.memory.readFromFile(address, length) ?? this.runLoop.withVmPaused(() => this.memory.read(address, length));
  }

  async readMemoryPartial(address: GuestAddress, length: number): Promise<PartialRead> {
    this.runLoop.assertAlive();
    if (address.kind === "gva") this.checkVp(address.vp);
    const fromFile = this.memory.readFromFile(address, length);
    if (fromFile) return { data: fromFile, unreadable: [] };
    return this.runLoop.withVmPaused(() => this.memory.readPartial(address, length));
  }

  translateGva(vp: number, gva: bigint): Promise<GvaTranslation> {
    try {
      this.checkVp(vp);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.runLoop.whileStopped("TranslateGva", () => this.memory.translate(vp, gva));
  }

  async writeMemory(address: GuestAddress, data: Uint8Array): Promise<void> {
    this.runLoop.assertAlive();
    if (address.kind === "gva") this.checkVp(address.vp);
    await this.runLoop.withVmPaused(() => this.memory.write(address, data));
  }

  /**
   * Leaves QEMU: one we launched is stopped; one we attached to runs on without our breakpoints
   * (see QemuConnection.close).
   */
  async close(): Promise<void> {
    const wasGone = this.runLoop.end();
    if (wasGone && !this.connection.launched) return;
    this.releaseFile();
    if (!this.connection.launched) await this.breakpoints.removeAll();
    await this.connection.close();
  }

  /**
   * Runs a QEMU human-monitor command (e.g. `x /16xb 0x…`, `info mtree`) on VP `vp`'s CPU and
   * returns its text. The QMP connection is this VM's own: QEMU serves one QMP client at a time.
   */
  async humanMonitorCommand(command: string, vp = 0): Promise<string> {
    this.runLoop.assertAlive();
    this.checkVp(vp);
    return this.connection.qmp.execute<string>("human-monitor-command", { "command-line": command, "cpu-index": vp });
  }

  /** @internal Closes the RAM file (createQemuVm's failure path, close()). */
  releaseFile(): void {
    this.memory.close();
  }

  private checkVp(vp: number): void {
    checkVp(vp, this.vpCount);
  }

  private insertSoftwareBreakpoint(address: SoftwareBreakpointAddress, oneShot: boolean): Promise<{ breakpoint: SoftwareBreakpoint; existing: boolean }> {
    if (address.kind === "gpa") {
      return Promise.reject(
        unsupported(
          this.id,
          "QEMU's gdbstub places breakpoints by virtual address only (Z0 matches a vCPU's PC): insert this breakpoint by GVA (for every VP, or for one)",
        ),
      );
    }
    try {
      if (address.vp !== undefined) this.checkVp(address.vp);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.runLoop.whileStopped("InsertSoftwareBreakpoint", async () => {
      if (this.kvm) {
        throw unsupported(
          this.id,
          "this QEMU runs with KVM, where a Z0 breakpoint is an INT3/BRK written into guest memory that reads and the guest would see: use SetDebugState's hardware execute slots",
        );
      }
      try {
        return await this.breakpoints.insertSoftware(address, oneShot);
      } catch (e) {
        throw this.runLoop.refusal(e, "QEMU refused the software breakpoint");
      }
    });
  }
}

function unsupported(vm: string, detail: string): VmmError {
  return new VmmError(Code.FailedPrecondition, "SOFTWARE_BREAKPOINT_UNSUPPORTED", `VM "${vm}" (QEMU): ${detail}`, { vm, backend: "qemu" });
}
