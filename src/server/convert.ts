// The one place wire messages (protobuf-es, gen/) become domain values (src/core) and back.
// Requests are validated here, before anything changes: every refusal is a VmmError with a reason.
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  Code,
  VmmError,
  checkedLength,
  emptyDebugState,
  hex,
  softwareBreakpointNotFound,
  validateDebugState,
  validateVpState,
  type Aarch64VpState,
  type Arch,
  type Capabilities,
  type DebugState,
  type DebugStopReason,
  type DebuggerVpState,
  type GuestAddress,
  type GvaTranslation,
  type HardwareBreakpoint,
  type MemoryReadsWhileRunning,
  type RunState,
  type SegmentRegister,
  type SoftwareBreakpoint,
  type SoftwareBreakpointAddress,
  type StepResult,
  type StepTrace,
  type TranslationFault,
  type UnreadablePiece,
  type VmmCore,
  type WalkDecision,
  type X86FpState,
  type X86VpState,
  x86Fp,
} from "../core";
import * as wire from "../../gen/vmm/debug/v1/types_pb";
import * as vmWire from "../../gen/vmm/debug/v1/vm_service_pb";
import * as dsWire from "../../gen/vmm/debug/v1/debug_service_pb";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { ERROR_DOMAIN } from "../wire";

const U64_END = 1n << 64n;
const X86_GP_COUNT = 16;
const AARCH64_X_COUNT = 31;

// ---------------------------------------------------------------------------------------------
// Requests: wire → domain, validated against the VM they address.

/** A GuestAddress with exactly one kind set (the VMM core checks a GVA's VP). */
export function guestAddressFromWire(address: wire.GuestAddress | undefined, field = "address"): GuestAddress {
  if (!address) throw missingField(field, "a GuestAddress with `gva` or `gpa` set");
  switch (address.kind.case) {
    case "gva":
      return { kind: "gva", vp: address.kind.value.vp, gva: address.kind.value.gva };
    case "gpa":
      return { kind: "gpa", gpa: address.kind.value };
    default:
      throw missingField(`${field}.kind`, "set `gva` (with `vp`) or `gpa`");
  }
}

/** A SoftwareBreakpointAddress with exactly one kind set (the VMM core checks a GVA's VP and a GPA's RAM). */
export function softwareBreakpointAddressFromWire(address: wire.SoftwareBreakpointAddress | undefined, field = "address"): SoftwareBreakpointAddress {
  if (!address) throw missingField(field, "a SoftwareBreakpointAddress with `gva` (optionally with `vp`) or `gpa` set");
  switch (address.kind.case) {
    case "gva": {
      const { vp, gva } = address.kind.value;
      return vp === undefined ? { kind: "gva", gva } : { kind: "gva", gva, vp };
    }
    case "gpa":
      return { kind: "gpa", gpa: address.kind.value };
    default:
      throw missingField(`${field}.kind`, "set `gva` (with `vp` for one VP only) or `gpa`");
  }
}

/** A software breakpoint id; one past 2^53 can name no breakpoint (ids count inserts). */
export function softwareBreakpointIdFromWire(id: bigint): number {
  if (id > BigInt(Number.MAX_SAFE_INTEGER)) throw softwareBreakpointNotFound(id);
  return Number(id);
}

/**
 * The byte count of a read: at most `cap` (else RESOURCE_EXHAUSTED / READ_TOO_LARGE, with `hint`
 * saying where to go instead), and a GPA range must not run past 2^64 (a GVA range wraps, as
 * linear addresses do). Zero is a length like any other: the VMM core checks a zero-length access
 * as a one-byte access at the same address and answers no bytes (`checkedLength`), so the last
 * byte, 2^64 - 1, takes lengths 0 and 1.
 */
export function readLengthFromWire(length: bigint, address: GuestAddress, cap: number, hint: string): number {
  if (length > BigInt(cap)) {
    throw new VmmError(
      Code.ResourceExhausted,
      "READ_TOO_LARGE",
      `read of ${length} bytes exceeds this server's limit of ${cap} bytes: ${hint}`,
      { length: String(length), max: String(cap) },
    );
  }
  checkGpaRange(address, length);
  return Number(length);
}

/** A GPA range may not run past 2^64 (a GVA range wraps, as linear addresses do); reads and writes alike. */
export function checkGpaRange(address: GuestAddress, length: bigint): void {
  if (address.kind === "gpa" && address.gpa + BigInt(checkedLength(Number(length))) > U64_END) {
    throw new VmmError(Code.InvalidArgument, "VALUE_OUT_OF_RANGE", `range ${hex(address.gpa)}+${length} runs past the end of the 64-bit address space`, {
      field: "length",
      gpa: hex(address.gpa),
      length: String(length),
    });
  }
}

/** A DebugState: unset means "single-step off, every slot disabled"; then the DR7 rules. */
export function debugStateFromWire(state: wire.DebugState | undefined): DebugState {
  if (!state) return emptyDebugState();
  return validateDebugState({
    singleStep: state.singleStep,
    breakpoints: state.breakpoints.map((slot) => (slot.breakpoint ? hardwareBreakpointFromWire(slot.breakpoint) : null)),
  });
}

function hardwareBreakpointFromWire(bp: wire.HardwareBreakpoint): HardwareBreakpoint {
  // Unknown enum numbers pass through; validateDebugState refuses them with INVALID_ENUM.
  return { address: bp.address, type: bp.type as number, size: bp.size as number };
}

/**
 * A complete register state, every array of its exact length, that the architecture allows
 * (`validateVpState`: INVALID_ARGUMENT / VP_STATE_INVALID otherwise). Whether its architecture is
 * the VM's is the VMM core's check (ARCH_MISMATCH): a state of the other architecture is not held
 * to that architecture's rules, so the caller learns the mismatch first.
 */
export function vpStateFromWire(state: wire.DebuggerVpState | undefined, vmArch: Arch, field = "state"): DebuggerVpState {
  if (!state) throw missingField(field, "the complete register state (DebuggerVpState)");
  const checked = (s: DebuggerVpState) => (s.arch === vmArch ? validateVpState(s, field) : s);
  switch (state.arch.case) {
    case "x8664":
      return checked({ arch: "x86_64", state: x86FromWire(state.arch.value, `${field}.x86_64`) });
    case "aarch64":
      return checked({ arch: "aarch64", state: aarch64FromWire(state.arch.value, `${field}.aarch64`) });
    default:
      throw missingField(`${field}.arch`, `set \`x86_64\` or \`aarch64\` (this VM is ${vmArch})`);
  }
}

function x86FromWire(s: wire.X86VpState, field: string): X86VpState {
  checkLength(s.gp, X86_GP_COUNT, `${field}.gp`, "RAX RCX RDX RBX RSP RBP RSI RDI R8-R15");
  if (s.cr8 > 0xfn) throw outOfRange(`${field}.cr8`, hex(s.cr8), "0xf", "CR8 holds a 4-bit task priority");
  return {
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
    es: segmentFromWire(s.es, `${field}.es`),
    cs: segmentFromWire(s.cs, `${field}.cs`),
    ss: segmentFromWire(s.ss, `${field}.ss`),
    ds: segmentFromWire(s.ds, `${field}.ds`),
    fs: segmentFromWire(s.fs, `${field}.fs`),
    gs: segmentFromWire(s.gs, `${field}.gs`),
    ...(s.fp ? { fp: fpFromWire(s.fp, `${field}.fp`) } : {}),
  };
}

/** X86FpState with its exact counts and byte lengths and 16-bit words (MXCSR's reserved bits are validateVpState's). */
function fpFromWire(s: wire.X86FpState, field: string): X86FpState {
  checkLength(s.xmm, x86Fp.XMM_COUNT, `${field}.xmm`, "XMM0-XMM15");
  s.xmm.forEach((b, i) => checkLength([...b], x86Fp.XMM_BYTES, `${field}.xmm[${i}]`, `the bytes of XMM${i}, little-endian`));
  checkLength(s.st, x86Fp.ST_COUNT, `${field}.st`, "ST(0)-ST(7)");
  s.st.forEach((b, i) => checkLength([...b], x86Fp.ST_BYTES, `${field}.st[${i}]`, `the 80-bit value of ST(${i}): significand then sign and exponent, little-endian`));
  for (const [name, value, max, why] of [
    ["fcw", s.fcw, 0xffff, "the x87 control word is 16 bits"],
    ["fsw", s.fsw, 0xffff, "the x87 status word is 16 bits"],
    ["ftw", s.ftw, 0xffff, "the full x87 tag word is 16 bits"],
    ["fop", s.fop, x86Fp.FOP_MASK, "the x87 opcode is 11 bits"],
  ] as const) {
    if (value > max) throw outOfRange(`${field}.${name}`, hex(BigInt(value)), hex(BigInt(max)), why);
  }
  return {
    xmm: s.xmm.map((b) => Uint8Array.from(b)),
    mxcsr: s.mxcsr,
    st: s.st.map((b) => Uint8Array.from(b)),
    fcw: s.fcw,
    fsw: s.fsw,
    ftw: s.ftw,
    fop: s.fop,
    fip: s.fip,
    fdp: s.fdp,
    ...(s.xcr0 !== undefined ? { xcr0: s.xcr0 } : {}),
  };
}

function segmentFromWire(s: wire.SegmentRegister | undefined, field: string): SegmentRegister {
  if (!s) throw missingField(field, "every segment register (SetVpState writes the complete state)");
  if (s.selector > 0xffff) throw outOfRange(`${field}.selector`, hex(BigInt(s.selector)), "0xffff", "a selector is 16 bits");
  if (s.attributes > 0xffff) {
    throw outOfRange(`${field}.attributes`, hex(BigInt(s.attributes)), "0xffff", "the attributes are packed into 16 bits");
  }
  if ((s.attributes & 0x0f00) !== 0) {
    throw outOfRange(`${field}.attributes`, hex(BigInt(s.attributes)), "0xf0ff", "bits 8-11 are reserved and must be 0");
  }
  return { base: s.base, limit: s.limit, selector: s.selector, attributes: s.attributes };
}

function aarch64FromWire(s: wire.Aarch64VpState, field: string): Aarch64VpState {
  checkLength(s.x, AARCH64_X_COUNT, `${field}.x`, "X0-X30");
  return {
    x: [...s.x],
    spEl0: s.spEl0,
    spEl1: s.spEl1,
    pc: s.pc,
    cpsr: s.cpsr,
    sctlrEl1: s.sctlrEl1,
    tcrEl1: s.tcrEl1,
    ttbr0El1: s.ttbr0El1,
    ttbr1El1: s.ttbr1El1,
  };
}

function checkLength(values: readonly unknown[], expected: number, field: string, what: string): void {
  if (values.length !== expected) {
    throw new VmmError(
      Code.InvalidArgument,
      "INVALID_ARRAY_LENGTH",
      `${field} has ${values.length} values; it needs exactly ${expected} (${what})`,
      { field, length: String(values.length), expected: String(expected) },
    );
  }
}

function missingField(field: string, what: string): VmmError {
  return new VmmError(Code.InvalidArgument, "MISSING_FIELD", `${field} is not set: ${what}`, { field });
}

function outOfRange(field: string, value: string, max: string, why: string): VmmError {
  return new VmmError(Code.InvalidArgument, "VALUE_OUT_OF_RANGE", `${field} = ${value} is out of range (${why})`, {
    field,
    value,
    max,
  });
}

// ---------------------------------------------------------------------------------------------
// Responses: domain → wire.

export function vpStateToWire(state: DebuggerVpState): wire.DebuggerVpState {
  if (state.arch === "x86_64") {
    const s = state.state;
    const x86 = create(wire.X86VpStateSchema, {
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
      es: segmentToWire(s.es),
      cs: segmentToWire(s.cs),
      ss: segmentToWire(s.ss),
      ds: segmentToWire(s.ds),
      fs: segmentToWire(s.fs),
      gs: segmentToWire(s.gs),
      fp: s.fp ? fpToWire(s.fp) : undefined,
    });
    return create(wire.DebuggerVpStateSchema, { arch: { case: "x8664", value: x86 } });
  }
  const s = state.state;
  const a64 = create(wire.Aarch64VpStateSchema, {
    x: [...s.x],
    spEl0: s.spEl0,
    spEl1: s.spEl1,
    pc: s.pc,
    cpsr: s.cpsr,
    sctlrEl1: s.sctlrEl1,
    tcrEl1: s.tcrEl1,
    ttbr0El1: s.ttbr0El1,
    ttbr1El1: s.ttbr1El1,
  });
  return create(wire.DebuggerVpStateSchema, { arch: { case: "aarch64", value: a64 } });
}

function fpToWire(fp: X86FpState): wire.X86FpState {
  return create(wire.X86FpStateSchema, {
    xmm: fp.xmm.map((b) => Uint8Array.from(b)),
    mxcsr: fp.mxcsr,
    st: fp.st.map((b) => Uint8Array.from(b)),
    fcw: fp.fcw,
    fsw: fp.fsw,
    ftw: fp.ftw,
    fop: fp.fop,
    fip: fp.fip,
    fdp: fp.fdp,
    xcr0: fp.xcr0,
  });
}

function segmentToWire(s: SegmentRegister): wire.SegmentRegister {
  return create(wire.SegmentRegisterSchema, { base: s.base, limit: s.limit, selector: s.selector, attributes: s.attributes });
}

export function hardwareBreakpointToWire(bp: HardwareBreakpoint): wire.HardwareBreakpoint {
  return create(wire.HardwareBreakpointSchema, { address: bp.address, type: bp.type as number, size: bp.size as number });
}

export function stopReasonToWire(reason: DebugStopReason): wire.DebugStopReason {
  const r = (value: wire.DebugStopReason["reason"]) => create(wire.DebugStopReasonSchema, { reason: value });
  switch (reason.kind) {
    case "break":
      return r({ case: "break", value: create(wire.DebugStopReason_BreakSchema) });
    case "powerOff":
      return r({ case: "powerOff", value: create(wire.DebugStopReason_PowerOffSchema, { exitStatus: reason.exitStatus }) });
    case "reset":
      return r({ case: "reset", value: create(wire.DebugStopReason_ResetSchema) });
    case "tripleFault":
      return r({ case: "tripleFault", value: create(wire.DebugStopReason_TripleFaultSchema, { vp: reason.vp }) });
    case "singleStep":
      return r({ case: "singleStep", value: create(wire.DebugStopReason_SingleStepSchema, { vp: reason.vp }) });
    case "hwBreakpoint":
      return r({
        case: "hwBreakpoint",
        value: create(wire.DebugStopReason_HwBreakpointSchema, {
          vp: reason.vp,
          breakpoint: hardwareBreakpointToWire(reason.breakpoint),
        }),
      });
    case "watchdog":
      return r({ case: "watchdog", value: create(wire.DebugStopReason_WatchdogSchema) });
    case "softwareBreakpoint":
      return r({
        case: "softwareBreakpoint",
        value: create(wire.DebugStopReason_SoftwareBreakpointSchema, { vp: reason.vp, address: reason.address, id: BigInt(reason.id) }),
      });
  }
}

export function softwareBreakpointAddressToWire(a: SoftwareBreakpointAddress): wire.SoftwareBreakpointAddress {
  return create(wire.SoftwareBreakpointAddressSchema, {
    kind:
      a.kind === "gpa"
        ? { case: "gpa", value: a.gpa }
        : { case: "gva", value: create(wire.SoftwareBreakpointAddress_GvaSchema, { gva: a.gva, vp: a.vp }) },
  });
}

export function softwareBreakpointToWire(bp: SoftwareBreakpoint): dsWire.SoftwareBreakpointEntry {
  return create(dsWire.SoftwareBreakpointEntrySchema, {
    id: BigInt(bp.id),
    address: softwareBreakpointAddressToWire(bp.address),
    oneShot: bp.oneShot,
    hitCount: BigInt(bp.hitCount),
  });
}

/** Who holds a VM's session, as VmInfo.attached reports it. */
export interface AttachmentInfo {
  holder: string;
  attachedAtMs: number;
  /** Undefined for a Session stream (no lease). */
  leaseExpiresAtMs?: number;
}

export function vmInfoToWire(core: VmmCore, attachment: AttachmentInfo | undefined): vmWire.VmInfo {
  return create(vmWire.VmInfoSchema, {
    id: core.id,
    arch: archToWire(core.arch),
    vpCount: core.vpCount,
    memoryRegions: core.memoryRegions.map((r) => create(vmWire.MemoryRegionSchema, { gpa: r.gpa, size: r.size, name: r.name })),
    runState: runStateToWire(core.runState()),
    backend: core.backend,
    capabilities: capabilitiesToWire(core.capabilities()),
    exitStatus: core.runState() === "poweredOff" ? core.exitStatus?.() : undefined,
    attached: attachment
      ? create(vmWire.AttachmentSchema, {
          holder: attachment.holder,
          attachedAt: timestampFromMs(attachment.attachedAtMs),
          leaseExpiresAt: attachment.leaseExpiresAtMs === undefined ? undefined : timestampFromMs(attachment.leaseExpiresAtMs),
          stream: attachment.leaseExpiresAtMs === undefined,
        })
      : undefined,
  });
}

const READS_WHILE_RUNNING_TO_WIRE: Record<MemoryReadsWhileRunning, vmWire.MemoryReadsWhileRunning> = {
  noPause: vmWire.MemoryReadsWhileRunning.NO_PAUSE,
  noPauseGpaRam: vmWire.MemoryReadsWhileRunning.NO_PAUSE_GPA_RAM,
  pauses: vmWire.MemoryReadsWhileRunning.PAUSES,
};

/** The backend's capabilities as VmInfo carries them (the domain enums keep the wire's values). */
export function capabilitiesToWire(c: Capabilities): vmWire.Capabilities {
  return create(vmWire.CapabilitiesSchema, {
    hardwareSlotsPerVp: c.hardwareSlotsPerVp,
    watchpointTypes: c.watchpointTypes.map((t) => t as number),
    watchpointSizes: c.watchpointSizes.map((z) => z as number),
    softwareBreakpoints: create(vmWire.SoftwareBreakpointSupportSchema, c.softwareBreakpoints),
    setVpStateFields: [...c.setVpStateFields],
    memoryReadsWhileRunning: READS_WHILE_RUNNING_TO_WIRE[c.memoryReadsWhileRunning],
    batchedStepping: create(vmWire.BatchedSteppingSchema, {
      maxCount: c.batchedStepping.maxCount,
      pcTrace: c.batchedStepping.traces.includes("pc"),
      registerTrace: c.batchedStepping.traces.includes("registers"),
    }),
  });
}

export function leaseToWire(leaseMs: number) {
  return durationFromMs(leaseMs);
}

function archToWire(arch: Arch): vmWire.Architecture {
  return arch === "x86_64" ? vmWire.Architecture.X86_64 : vmWire.Architecture.AARCH64;
}

function runStateToWire(state: RunState): vmWire.RunState {
  switch (state) {
    case "running":
      return vmWire.RunState.RUNNING;
    case "stopped":
      return vmWire.RunState.STOPPED;
    case "poweredOff":
      return vmWire.RunState.POWERED_OFF;
    case "gone":
      return vmWire.RunState.GONE;
  }
}

// ---------------------------------------------------------------------------------------------
// Batched operations.

/** STEP_TRACE_* → the core's trace (unspecified is none); an unknown number is INVALID_ENUM. */
export function stepTraceFromWire(trace: number): StepTrace {
  switch (trace) {
    case dsWire.StepTrace.UNSPECIFIED:
    case dsWire.StepTrace.NONE:
      return "none";
    case dsWire.StepTrace.PC:
      return "pc";
    case dsWire.StepTrace.REGISTERS:
      return "registers";
    default:
      throw new VmmError(Code.InvalidArgument, "INVALID_ENUM", `trace = ${trace} is not a StepTrace value (STEP_TRACE_NONE, _PC, _REGISTERS)`, {
        field: "trace",
        value: String(trace),
      });
  }
}

export function stepResultToWire(result: StepResult): dsWire.StepResponse {
  const pcs = result.pcs;
  return create(dsWire.StepResponseSchema, {
    executed: result.executed,
    stop: result.stop ? stopReasonToWire(result.stop) : undefined,
    halted: result.halted ?? false,
    // Little-endian u64s: a BigUint64Array's own bytes on every host we run on (checked at load).
    pcTrace: pcs ? new Uint8Array(pcs.buffer, pcs.byteOffset, pcs.byteLength) : new Uint8Array(0),
    registerTrace: (result.deltas ?? []).map((d) => create(wire.RegisterDeltaSchema, { registers: d.registers, values: d.values })),
  });
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("vmm-debug's wire encoding of step traces assumes a little-endian host");
}

/** Most ranges one ReadMemoryMany may carry. */
export const MAX_READ_RANGES = 4096;

/**
 * The ranges of a ReadMemoryMany: at most MAX_READ_RANGES, their lengths within `cap` together.
 * Each range is converted on its own: a range that is malformed becomes that range's error.
 */
export function memoryRangesFromWire(
  ranges: readonly dsWire.MemoryRange[],
  cap: number,
): ({ address: GuestAddress; length: number } | { error: VmmError })[] {
  if (ranges.length > MAX_READ_RANGES) {
    throw outOfRange("ranges", String(ranges.length), String(MAX_READ_RANGES), `at most ${MAX_READ_RANGES} ranges per call`);
  }
  const total = ranges.reduce((sum, r) => sum + r.length, 0n);
  if (total > BigInt(cap)) {
    throw new VmmError(
      Code.ResourceExhausted,
      "READ_TOO_LARGE",
      `the ranges add up to ${total} bytes, over this server's limit of ${cap} bytes per call: split them over several calls`,
      { length: String(total), max: String(cap) },
    );
  }
  return ranges.map((r, i) => {
    try {
      const address = guestAddressFromWire(r.address, `ranges[${i}].address`);
      return { address, length: readLengthFromWire(r.length, address, cap, "") };
    } catch (e) {
      if (e instanceof VmmError) return { error: e };
      throw e;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// TranslateGva and partial reads

const WALK_DECISIONS: Record<WalkDecision, dsWire.WalkDecision> = {
  table: dsWire.WalkDecision.TABLE,
  page: dsWire.WalkDecision.PAGE,
  notPresent: dsWire.WalkDecision.NOT_PRESENT,
  reserved: dsWire.WalkDecision.RESERVED,
};

const TRANSLATION_FAULTS: Record<TranslationFault, dsWire.TranslationFault> = {
  nonCanonical: dsWire.TranslationFault.NON_CANONICAL,
  notPresent: dsWire.TranslationFault.NOT_PRESENT,
  reserved: dsWire.TranslationFault.RESERVED,
  tableOutsideRam: dsWire.TranslationFault.TABLE_OUTSIDE_RAM,
  unsupported: dsWire.TranslationFault.UNSUPPORTED,
};

export function translationToWire(t: GvaTranslation): dsWire.TranslateGvaResponse {
  return create(dsWire.TranslateGvaResponseSchema, {
    gva: t.gva,
    pagingMode: t.pagingMode,
    rootGpa: t.rootGpa,
    levels: t.levels.map((l) =>
      create(dsWire.WalkLevelSchema, { level: l.level, name: l.name, entryGpa: l.entryGpa, entry: l.entry, decision: WALK_DECISIONS[l.decision] }),
    ),
    mapped: t.mapped,
    gpa: t.mapped ? t.gpa : 0n,
    pageSize: t.mapped ? t.pageSize : 0n,
    writable: t.mapped && t.writable,
    user: t.mapped && t.user,
    executable: t.mapped && t.executable,
    fault: t.fault ? TRANSLATION_FAULTS[t.fault] : dsWire.TranslationFault.UNSPECIFIED,
    faultLevel: t.mapped ? 0 : (t.faultLevel ?? 0),
    faultDetail: t.mapped ? "" : (t.faultDetail ?? ""),
  });
}

/** Unreadable ranges of a partial read, offsets moved by `base` (a stream chunk's offset). */
export function unreadableToWire(ranges: readonly UnreadablePiece[], base = 0): dsWire.UnreadableRange[] {
  return ranges.map((r) =>
    create(dsWire.UnreadableRangeSchema, {
      offset: BigInt(base + r.offset),
      length: BigInt(r.length),
      reason: create(ErrorInfoSchema, { reason: r.error.reason, domain: ERROR_DOMAIN, metadata: { ...r.error.metadata } }),
    }),
  );
}
