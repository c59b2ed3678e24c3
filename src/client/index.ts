// vmm-debug client SDK: connect to a vmm-debug server and debug its VMs.
export { bearerTokenMiddleware, connect, VmmDebugClient } from "./client";
export type { ConnectOptions, ConnectTlsOptions, Pem, RawClients } from "./client";
export { Session } from "./session";
export type { DumpPiece } from "./dump";
export { writeCoreFile, type WriteCoreFileOptions } from "./dump";
export { VmmDebugError, vmmDebugClientMiddleware } from "./errors";
export type { DeadlineOptions } from "./errors";
export { STATUS_DETAILS_KEY, decodeStatusDetails } from "../wire";
export type { ErrorDetails } from "../wire";
export { MAX_BUFFERED_STOPS } from "./stream-transport";
export type {
  Aarch64VpState,
  Arch,
  AttachOptions,
  Attachment,
  BreakpointSize,
  BreakpointType,
  CallOptions,
  Capabilities,
  DebugState,
  DebugStopReason,
  DebuggerVpState,
  DetachCause,
  GuestAddress,
  HardwareBreakpoint,
  InsertSoftwareBreakpointOptions,
  MemoryRange,
  MemoryRegion,
  PartialRead,
  ReadManyResult,
  RegisterDelta,
  RunState,
  SegmentRegister,
  SessionStop,
  SoftwareBreakpoint,
  SoftwareBreakpointAddress,
  StepOptions,
  StepResult,
  StepTrace,
  Translation,
  TranslationFault,
  Transport,
  UnreadableRange,
  VmEvent,
  VmEventBody,
  VmInfo,
  VpStateEntry,
  WalkDecision,
  WalkLevel,
  WatchEventsOptions,
  Watchpoint,
  X86FpState,
  X86VpState,
} from "./types";
export type { ConsoleChunk, ConsoleSource, WatchConsoleOptions } from "./watch-console";
export { x87FromNumber, x87Parts, x87ToNumber, xmmFromBigint, xmmToBigint } from "./fp";
// nice-grpc definitions of the services (protobuf-es descriptors adapted), for raw calls.
export { createServiceDefinition, DebugServiceDefinition, HealthServiceDefinition, VmServiceDefinition } from "../wire";
export type { NiceMessageType, NiceMethodDefinition, NiceServiceDefinition } from "../wire";
