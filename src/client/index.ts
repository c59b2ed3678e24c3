// vmm-debug client SDK: connect to a vmm-debug server and debug its VMs.
export { connect, VmmDebugClient } from "./client";
export type { ConnectOptions, RawClients } from "./client";
export { Session } from "./session";
export { VmmDebugError, decodeStatusDetails, vmmDebugClientMiddleware, STATUS_DETAILS_KEY } from "./errors";
export type { DeadlineOptions, ErrorDetails } from "./errors";
export type {
  Aarch64VpState,
  Arch,
  Attachment,
  BreakpointSize,
  BreakpointType,
  CallOptions,
  DebugState,
  DebugStopReason,
  DebuggerVpState,
  GuestAddress,
  HardwareBreakpoint,
  MemoryRegion,
  RunState,
  SegmentRegister,
  VmInfo,
  Watchpoint,
  X86VpState,
} from "./types";
// nice-grpc definitions of the services (protobuf-es descriptors adapted); the server uses them too.
export { createServiceDefinition, DebugServiceDefinition, HealthServiceDefinition, VmServiceDefinition } from "./definitions";
export type { NiceMessageType, NiceMethodDefinition, NiceServiceDefinition } from "./definitions";
