// Wire messages (gen/) ⇄ SDK types, for the client side: requests out, responses in.
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Status } from "nice-grpc";
import * as wire from "../../gen/vmm/debug/v1/types_pb";
import { BreakpointSize as WireSize, BreakpointType as WireType } from "../../gen/vmm/debug/v1/breakpoint_pb";
import * as vmWire from "../../gen/vmm/debug/v1/vm_service_pb";
import * as dsWire from "../../gen/vmm/debug/v1/debug_service_pb";
import { statusFromWire } from "../wire";
import { VmmDebugError } from "./errors";
import type {
  Arch,
  BreakpointSize,
  BreakpointType,
  Capabilities,
  DebugState,
  DebugStopReason,
  DebuggerVpState,
  DetachCause,
  GuestAddress,
  HardwareBreakpoint,
  MemoryRange,
  PartialRead,
  ReadManyResult,
  RunState,
  SegmentRegister,
  SessionStop,
  SoftwareBreakpoint,
  SoftwareBreakpointAddress,
  StepResult,
  StepTrace,
  Translation,
  TranslationFault,
  UnreadableRange,
  VmEvent,
  VmEventBody,
  VmInfo,
  VpStateEntry,
} from "./types";

export function guestAddressToWire(address: GuestAddress): wire.GuestAddress {
  if ("gpa" in address) return create(wire.GuestAddressSchema, { kind: { case: "gpa", value: address.gpa } });
  return create(wire.GuestAddressSchema, {
    kind: { case: "gva", value: create(wire.GuestAddress_GvaSchema, { vp: address.vp ?? 0, gva: address.gva }) },
  });
}

export function softwareBreakpointAddressToWire(address: SoftwareBreakpointAddress): wire.SoftwareBreakpointAddress {
  if ("gpa" in address) return create(wire.SoftwareBreakpointAddressSchema, { kind: { case: "gpa", value: address.gpa } });
  return create(wire.SoftwareBreakpointAddressSchema, {
    kind: { case: "gva", value: create(wire.SoftwareBreakpointAddress_GvaSchema, { gva: address.gva, vp: address.vp }) },
  });
}

function softwareBreakpointAddressFromWire(address: wire.SoftwareBreakpointAddress | undefined): SoftwareBreakpointAddress {
  switch (address?.kind.case) {
    case "gpa":
      return { gpa: address.kind.value };
    case "gva": {
      const { gva, vp } = address.kind.value;
      return vp === undefined ? { gva } : { gva, vp };
    }
    default:
      throw unexpected("a software breakpoint without its address");
  }
}

export function softwareBreakpointsFromWire(res: dsWire.ListSoftwareBreakpointsResponse): SoftwareBreakpoint[] {
  return res.breakpoints.map((b) => ({
    id: Number(b.id),
    address: softwareBreakpointAddressFromWire(b.address),
    oneShot: b.oneShot,
    hitCount: Number(b.hitCount),
  }));
}

const TYPE_TO_WIRE: Record<BreakpointType, WireType> = {
  execute: WireType.EXECUTE,
  write: WireType.WRITE,
  readWrite: WireType.READ_OR_WRITE,
};
const SIZE_TO_WIRE: Record<BreakpointSize, WireSize> = {
  1: WireSize.BYTE,
  2: WireSize.WORD,
  4: WireSize.DWORD,
  8: WireSize.QWORD,
};

export function hardwareBreakpointToWire(bp: HardwareBreakpoint): wire.HardwareBreakpoint {
  const type = TYPE_TO_WIRE[bp.type];
  const size = SIZE_TO_WIRE[bp.size];
  if (type === undefined) throw invalid(`unknown breakpoint type "${String(bp.type)}" (use execute, write or readWrite)`);
  if (size === undefined) throw invalid(`unknown breakpoint size ${String(bp.size)} (use 1, 2, 4 or 8)`);
  return create(wire.HardwareBreakpointSchema, { address: bp.address, type, size });
}

export function hardwareBreakpointFromWire(bp: wire.HardwareBreakpoint): HardwareBreakpoint {
  const type = (Object.keys(TYPE_TO_WIRE) as BreakpointType[]).find((k) => TYPE_TO_WIRE[k] === bp.type);
  const size = (Object.keys(SIZE_TO_WIRE).map(Number) as BreakpointSize[]).find((k) => SIZE_TO_WIRE[k] === bp.size);
  if (type === undefined || size === undefined) throw unexpected(`breakpoint type ${bp.type} / size ${bp.size}`);
  return { address: bp.address, type, size };
}

export function debugStateToWire(state: DebugState): wire.DebugState {
  return create(wire.DebugStateSchema, {
    singleStep: state.singleStep,
    breakpoints: state.breakpoints.map((bp) =>
      create(wire.BreakpointSlotSchema, bp ? { breakpoint: hardwareBreakpointToWire(bp) } : {}),
    ),
  });
}

export function vpStateToWire(state: DebuggerVpState): wire.DebuggerVpState {
  if (state.arch === "x86_64") {
    const s = state.state;
    const seg = (r: SegmentRegister) => create(wire.SegmentRegisterSchema, { ...r });
    return create(wire.DebuggerVpStateSchema, {
      arch: {
        case: "x8664",
        value: create(wire.X86VpStateSchema, {
          gp: [...s.gp],
          rip: s.rip,
          rflags: s.rflags,
          cr0: s.cr0,
          cr2: s.cr2,
          cr3: s.cr3,
          cr4: s.cr4,
          cr8: s.cr8,
          efer: s.efer,
          kernelGsBase: s.kernelGsBase,
          es: seg(s.es),
          cs: seg(s.cs),
          ss: seg(s.ss),
          ds: seg(s.ds),
          fs: seg(s.fs),
          gs: seg(s.gs),
          fp: s.fp
            ? create(wire.X86FpStateSchema, { ...s.fp, xmm: s.fp.xmm.map((b) => Uint8Array.from(b)), st: s.fp.st.map((b) => Uint8Array.from(b)) })
            : undefined,
        }),
      },
    });
  }
  const s = state.state;
  return create(wire.DebuggerVpStateSchema, {
    arch: {
      case: "aarch64",
      value: create(wire.Aarch64VpStateSchema, {
        x: [...s.x],
        spEl0: s.spEl0,
        spEl1: s.spEl1,
        pc: s.pc,
        cpsr: s.cpsr,
        sctlrEl1: s.sctlrEl1,
        tcrEl1: s.tcrEl1,
        ttbr0El1: s.ttbr0El1,
        ttbr1El1: s.ttbr1El1,
      }),
    },
  });
}

export function vpStateFromWire(state: wire.DebuggerVpState | undefined): DebuggerVpState {
  switch (state?.arch.case) {
    case "x8664": {
      const s = state.arch.value;
      const seg = (r: wire.SegmentRegister | undefined): SegmentRegister => ({
        base: r?.base ?? 0n,
        limit: r?.limit ?? 0,
        selector: r?.selector ?? 0,
        attributes: r?.attributes ?? 0,
      });
      return {
        arch: "x86_64",
        state: {
          gp: [...s.gp],
          rip: s.rip,
          rflags: s.rflags,
          cr0: s.cr0,
          cr2: s.cr2,
          cr3: s.cr3,
          cr4: s.cr4,
          cr8: s.cr8,
          efer: s.efer,
          kernelGsBase: s.kernelGsBase,
          es: seg(s.es),
          cs: seg(s.cs),
          ss: seg(s.ss),
          ds: seg(s.ds),
          fs: seg(s.fs),
          gs: seg(s.gs),
          ...(s.fp
            ? {
                fp: {
                  xmm: s.fp.xmm.map((b) => Uint8Array.from(b)),
                  mxcsr: s.fp.mxcsr,
                  st: s.fp.st.map((b) => Uint8Array.from(b)),
                  fcw: s.fp.fcw,
                  fsw: s.fp.fsw,
                  ftw: s.fp.ftw,
                  fop: s.fp.fop,
                  fip: s.fp.fip,
                  fdp: s.fp.fdp,
                  ...(s.fp.xcr0 !== undefined ? { xcr0: s.fp.xcr0 } : {}),
                },
              }
            : {}),
        },
      };
    }
    case "aarch64": {
      const s = state.arch.value;
      return {
        arch: "aarch64",
        state: {
          x: [...s.x],
          spEl0: s.spEl0,
          spEl1: s.spEl1,
          pc: s.pc,
          cpsr: s.cpsr,
          sctlrEl1: s.sctlrEl1,
          tcrEl1: s.tcrEl1,
          ttbr0El1: s.ttbr0El1,
          ttbr1El1: s.ttbr1El1,
        },
      };
    }
    default:
      throw unexpected("a register state without an architecture");
  }
}

export function stopReasonFromWire(reason: wire.DebugStopReason | undefined): DebugStopReason {
  const r = reason?.reason;
  switch (r?.case) {
    case "break":
      return { kind: "break" };
    case "powerOff":
      return r.value.exitStatus === undefined ? { kind: "powerOff" } : { kind: "powerOff", exitStatus: r.value.exitStatus };
    case "reset":
      return { kind: "reset" };
    case "tripleFault":
      return { kind: "tripleFault", vp: r.value.vp };
    case "singleStep":
      return { kind: "singleStep", vp: r.value.vp };
    case "hwBreakpoint":
      if (!r.value.breakpoint) throw unexpected("an HwBreakpoint stop without its breakpoint");
      return { kind: "hwBreakpoint", vp: r.value.vp, breakpoint: hardwareBreakpointFromWire(r.value.breakpoint) };
    case "watchdog":
      return { kind: "watchdog" };
    case "softwareBreakpoint":
      return { kind: "softwareBreakpoint", vp: r.value.vp, address: r.value.address, id: Number(r.value.id) };
    default:
      throw unexpected("a stop without a reason");
  }
}

export function vmInfoFromWire(vm: vmWire.VmInfo | undefined): VmInfo {
  if (!vm) throw unexpected("a response without its VmInfo");
  const info: VmInfo = {
    id: vm.id,
    arch: archFromWire(vm.arch),
    vpCount: vm.vpCount,
    memoryRegions: vm.memoryRegions.map((r) => ({ gpa: r.gpa, size: r.size, name: r.name })),
    runState: runStateFromWire(vm.runState),
    backend: vm.backend,
  };
  if (vm.capabilities) info.capabilities = capabilitiesFromWire(vm.capabilities);
  if (vm.exitStatus !== undefined) info.exitStatus = vm.exitStatus;
  if (vm.attached) {
    info.attached = {
      holder: vm.attached.holder,
      attachedAt: vm.attached.attachedAt ? timestampDate(vm.attached.attachedAt) : new Date(0),
      leaseExpiresAt: vm.attached.leaseExpiresAt ? timestampDate(vm.attached.leaseExpiresAt) : new Date(0),
    };
  }
  return info;
}

/** A newer server's values this SDK does not know are left out of the lists (it cannot ask for them). */
function capabilitiesFromWire(c: vmWire.Capabilities): Capabilities {
  const types = c.watchpointTypes
    .map((t) => (t === WireType.WRITE ? "write" : t === WireType.READ_OR_WRITE ? "readWrite" : undefined))
    .filter((t) => t !== undefined);
  const sizes = c.watchpointSizes
    .map((z) => (Object.keys(SIZE_TO_WIRE).map(Number) as BreakpointSize[]).find((k) => SIZE_TO_WIRE[k] === z))
    .filter((z) => z !== undefined);
  const traces: StepTrace[] = ["none"];
  if (c.batchedStepping?.pcTrace) traces.push("pc");
  if (c.batchedStepping?.registerTrace) traces.push("registers");
  return {
    hardwareSlotsPerVp: c.hardwareSlotsPerVp,
    watchpointTypes: types,
    watchpointSizes: sizes,
    softwareBreakpoints: {
      gva: c.softwareBreakpoints?.gva ?? false,
      perVp: c.softwareBreakpoints?.perVp ?? false,
      gpa: c.softwareBreakpoints?.gpa ?? false,
    },
    setVpStateFields: [...c.setVpStateFields],
    memoryReadsWhileRunning: readsWhileRunningFromWire(c.memoryReadsWhileRunning),
    batchedStepping: { maxCount: c.batchedStepping?.maxCount ?? 0, traces },
  };
}

function readsWhileRunningFromWire(mode: vmWire.MemoryReadsWhileRunning): Capabilities["memoryReadsWhileRunning"] {
  switch (mode) {
    case vmWire.MemoryReadsWhileRunning.NO_PAUSE:
      return "noPause";
    case vmWire.MemoryReadsWhileRunning.NO_PAUSE_GPA_RAM:
      return "noPauseGpaRam";
    case vmWire.MemoryReadsWhileRunning.PAUSES:
      return "pauses";
    default:
      throw unexpected(`memory_reads_while_running ${mode}`);
  }
}

function archFromWire(arch: vmWire.Architecture): Arch {
  if (arch === vmWire.Architecture.X86_64) return "x86_64";
  if (arch === vmWire.Architecture.AARCH64) return "aarch64";
  throw unexpected(`architecture ${arch}`);
}

function runStateFromWire(state: vmWire.RunState): RunState {
  switch (state) {
    case vmWire.RunState.RUNNING:
      return "running";
    case vmWire.RunState.STOPPED:
      return "stopped";
    case vmWire.RunState.POWERED_OFF:
      return "poweredOff";
    case vmWire.RunState.GONE:
      return "gone";
    default:
      throw unexpected(`run state ${state}`);
  }
}

const TRACE_TO_WIRE: Record<StepTrace, dsWire.StepTrace> = {
  none: dsWire.StepTrace.NONE,
  pc: dsWire.StepTrace.PC,
  registers: dsWire.StepTrace.REGISTERS,
};

export function stepTraceToWire(trace: StepTrace): dsWire.StepTrace {
  const t = TRACE_TO_WIRE[trace];
  if (t === undefined) throw invalid(`unknown step trace "${String(trace)}" (use none, pc or registers)`);
  return t;
}

export function stepResultFromWire(res: dsWire.StepResponse): StepResult {
  const bytes = res.pcTrace;
  if (bytes.length % 8 !== 0) throw unexpected(`a PC trace of ${bytes.length} bytes (not whole u64s)`);
  // Little-endian u64s on the wire whatever the host; a DataView reads them at any alignment.
  const pcs = new BigUint64Array(bytes.length / 8);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < pcs.length; i++) pcs[i] = view.getBigUint64(i * 8, true);
  return {
    executed: res.executed,
    ...(res.stop ? { stop: stopReasonFromWire(res.stop) } : {}),
    halted: res.halted,
    pcs,
    deltas: res.registerTrace.map((d) => {
      if (d.registers.length !== d.values.length) throw unexpected("a register delta whose numbers and values differ in count");
      return { registers: [...d.registers], values: [...d.values] };
    }),
  };
}

export function memoryRangeToWire(range: MemoryRange): dsWire.MemoryRange {
  if (!Number.isSafeInteger(range.length) || range.length < 0) throw badLength(range.length);
  return create(dsWire.MemoryRangeSchema, { address: guestAddressToWire(range.address), length: BigInt(range.length) });
}

export function readManyFromWire(res: dsWire.ReadMemoryManyResponse, expected: number): ReadManyResult[] {
  if (res.results.length !== expected) throw unexpected(`${res.results.length} results for ${expected} ranges`);
  return res.results.map((r) => {
    switch (r.result.case) {
      case "data":
        return { data: r.result.value };
      case "error":
        return { error: VmmDebugError.fromDetails(statusFromWire(r.result.value)) };
      default:
        throw unexpected("a range result with neither data nor error");
    }
  });
}

export function vpStatesFromWire(res: dsWire.GetVpStatesResponse): VpStateEntry[] {
  return res.states.map((s) => ({ vp: s.vp, state: vpStateFromWire(s.state) }));
}

export function sessionStopFromWire(stop: dsWire.SessionStop): SessionStop {
  return { reason: stopReasonFromWire(stop.reason), sequence: stop.sequence, ...(stop.vp !== undefined ? { vp: stop.vp } : {}) };
}

export function vmEventFromWire(msg: vmWire.WatchEventsResponse): VmEvent {
  return {
    sequence: msg.sequence,
    time: msg.time ? timestampDate(msg.time) : new Date(),
    vm: msg.vm,
    event: eventBodyFromWire(msg.event),
  };
}

function eventBodyFromWire(e: vmWire.WatchEventsResponse["event"]): VmEventBody {
  switch (e.case) {
    case "attached":
      return { kind: "attached", holder: e.value.holder, stream: e.value.stream };
    case "detached":
      return { kind: "detached", cause: detachCauseFromWire(e.value.cause) };
    case "resumed":
      return { kind: "resumed" };
    case "stopped":
      return { kind: "stopped", reason: stopReasonFromWire(e.value.reason) };
    case "stepped":
      return {
        kind: "stepped",
        vp: e.value.vp,
        executed: e.value.executed,
        ...(e.value.stop ? { stop: stopReasonFromWire(e.value.stop) } : {}),
      };
    case "debugStateChanged":
      return { kind: "debugStateChanged", vp: e.value.vp };
    case "poweredOff":
      return { kind: "poweredOff" };
    case "reset":
      return { kind: "reset" };
    case "backendLost":
      return { kind: "backendLost", detail: e.value.detail };
    case "gap":
      return { kind: "gap", nextSequence: e.value.nextSequence };
    default:
      throw unexpected("an event without a kind");
  }
}

function detachCauseFromWire(cause: vmWire.DetachCause): DetachCause {
  switch (cause) {
    case vmWire.DetachCause.REQUESTED:
      return "requested";
    case vmWire.DetachCause.LEASE_EXPIRED:
      return "leaseExpired";
    case vmWire.DetachCause.STREAM_CLOSED:
      return "streamClosed";
    case vmWire.DetachCause.SERVER_SHUTDOWN:
      return "serverShutdown";
    case vmWire.DetachCause.STREAM_OVERFLOW:
      return "streamOverflow";
    case vmWire.DetachCause.BACKEND_LOST:
      return "backendLost";
    case vmWire.DetachCause.FORCED:
      return "forced";
    default:
      throw unexpected(`detach cause ${cause}`);
  }
}

function walkDecisionFromWire(d: dsWire.WalkDecision): Translation["levels"][number]["decision"] {
  switch (d) {
    case dsWire.WalkDecision.TABLE:
      return "table";
    case dsWire.WalkDecision.PAGE:
      return "page";
    case dsWire.WalkDecision.NOT_PRESENT:
      return "notPresent";
    case dsWire.WalkDecision.RESERVED:
      return "reserved";
    default:
      throw unexpected(`walk decision ${d}`);
  }
}

function translationFaultFromWire(f: dsWire.TranslationFault): TranslationFault {
  switch (f) {
    case dsWire.TranslationFault.NON_CANONICAL:
      return "nonCanonical";
    case dsWire.TranslationFault.NOT_PRESENT:
      return "notPresent";
    case dsWire.TranslationFault.RESERVED:
      return "reserved";
    case dsWire.TranslationFault.TABLE_OUTSIDE_RAM:
      return "tableOutsideRam";
    case dsWire.TranslationFault.UNSUPPORTED:
      return "unsupported";
    default:
      throw unexpected(`translation fault ${f}`);
  }
}

export function translationFromWire(res: dsWire.TranslateGvaResponse): Translation {
  const t: Translation = {
    gva: res.gva,
    pagingMode: res.pagingMode,
    rootGpa: res.rootGpa,
    levels: res.levels.map((l) => ({ level: l.level, name: l.name, entryGpa: l.entryGpa, entry: l.entry, decision: walkDecisionFromWire(l.decision) })),
    mapped: res.mapped,
    writable: res.writable,
    user: res.user,
    executable: res.executable,
  };
  if (res.mapped) {
    t.gpa = res.gpa;
    t.pageSize = res.pageSize;
  } else {
    t.fault = translationFaultFromWire(res.fault);
    t.faultLevel = res.faultLevel;
    t.faultDetail = res.faultDetail;
  }
  return t;
}

export function unreadableFromWire(ranges: dsWire.UnreadableRange[]): UnreadableRange[] {
  return ranges.map((r) => ({
    offset: Number(r.offset),
    length: Number(r.length),
    reason: r.reason?.reason ?? "",
    metadata: { ...(r.reason?.metadata ?? {}) },
  }));
}

/** Whether GPA_UNMAPPED range `next` continues `last` physically (by their metadata's gpa). */
function sameRun(last: UnreadableRange, next: UnreadableRange): boolean {
  const a = last.metadata.gpa;
  const b = next.metadata.gpa;
  if (!a || !b || !/^0x[0-9a-f]+$/i.test(a) || !/^0x[0-9a-f]+$/i.test(b)) return false;
  return BigInt(a) + BigInt(last.length) === BigInt(b);
}

/** Puts a streamed read's chunks together, checking they fill exactly `length` bytes. */
export class ReadAssembler {
  private readonly out: Uint8Array;
  private received = 0;
  /** The chunks' unreadable ranges (a partial read), in order, coalesced across chunks. */
  private readonly unreadable: UnreadableRange[] = [];

  constructor(private readonly length: number) {
    this.out = new Uint8Array(length);
  }

  add(chunk: dsWire.ReadMemoryStreamResponse): void {
    const offset = Number(chunk.offset);
    if (offset + chunk.data.length > this.length) {
      throw new VmmDebugError(Status.INTERNAL, `the server sent bytes past the requested ${this.length}`);
    }
    this.out.set(chunk.data, offset);
    this.received += chunk.data.length;
    for (const r of unreadableFromWire(chunk.unreadable)) {
      const last = this.unreadable[this.unreadable.length - 1];
      if (last && last.offset + last.length === r.offset && last.reason === r.reason) {
        // As the server merges within a chunk: GPA_UNMAPPED only where the physical ranges meet,
        // its metadata then naming the merged range; others keep the first address.
        if (r.reason !== "GPA_UNMAPPED") {
          last.length += r.length;
          continue;
        }
        if (sameRun(last, r)) {
          last.length += r.length;
          last.metadata = { ...last.metadata, length: String(last.length) };
          continue;
        }
      }
      this.unreadable.push(r);
    }
  }

  /** The bytes and the unreadable ranges, once the last chunk is in. */
  partialResult(): PartialRead {
    return { data: this.result(), unreadable: this.unreadable };
  }

  /** The bytes, once the last chunk is in. */
  result(): Uint8Array {
    if (this.received !== this.length) {
      throw new VmmDebugError(Status.INTERNAL, `the stream ended after ${this.received} of ${this.length} bytes`);
    }
    return this.out;
  }
}

/** A read length the SDK refuses before sending (INVALID_ARGUMENT / VALUE_OUT_OF_RANGE). */
export function badLength(length: number): VmmDebugError {
  return new VmmDebugError(Status.INVALID_ARGUMENT, `length must be a non-negative integer, got ${length}`, {
    reason: "VALUE_OUT_OF_RANGE",
  });
}

function invalid(message: string): VmmDebugError {
  return new VmmDebugError(Status.INVALID_ARGUMENT, message, { reason: "INVALID_ENUM" });
}

function unexpected(what: string): VmmDebugError {
  return new VmmDebugError(Status.INTERNAL, `the server sent ${what}, which this SDK does not understand (is it newer?)`);
}
