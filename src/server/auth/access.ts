// The one access table: the role every RPC and every Session-stream operation needs. The
// interceptor checks RPCs by path before a handler runs; the executor checks each operation
// (unary or on a stream) by name. A test walks both tables for every role.
import type { OperationName } from "../operations";
import type { Role } from "./principal";

/**
 * What each RPC needs, by full method path. "open": answered without authentication (health
 * checks, for load balancers and orchestrators).
 */
export const RPC_ACCESS: Readonly<Record<string, Role | "open">> = {
  "/vmm.debug.v1.VmService/ListVms": "viewer",
  "/vmm.debug.v1.VmService/GetVm": "viewer",
  "/vmm.debug.v1.VmService/WatchEvents": "viewer",
  "/vmm.debug.v1.VmService/WatchConsole": "viewer",
  "/vmm.debug.v1.DebugService/Attach": "debugger",
  "/vmm.debug.v1.DebugService/Detach": "debugger",
  "/vmm.debug.v1.DebugService/Resume": "debugger",
  "/vmm.debug.v1.DebugService/Break": "debugger",
  "/vmm.debug.v1.DebugService/SetDebugState": "debugger",
  "/vmm.debug.v1.DebugService/GetVpState": "viewer",
  "/vmm.debug.v1.DebugService/SetVpState": "debugger",
  "/vmm.debug.v1.DebugService/ReadMemory": "viewer",
  "/vmm.debug.v1.DebugService/WriteMemory": "debugger",
  "/vmm.debug.v1.DebugService/ReadMemoryStream": "viewer",
  "/vmm.debug.v1.DebugService/TranslateGva": "viewer",
  // A dump holds the VM stopped until it ends (control calls wait): not for viewers.
  "/vmm.debug.v1.DebugService/DumpMemory": "debugger",
  "/vmm.debug.v1.DebugService/Step": "debugger",
  "/vmm.debug.v1.DebugService/ReadMemoryMany": "viewer",
  "/vmm.debug.v1.DebugService/GetVpStates": "viewer",
  "/vmm.debug.v1.DebugService/InsertSoftwareBreakpoint": "debugger",
  "/vmm.debug.v1.DebugService/RemoveSoftwareBreakpoint": "debugger",
  "/vmm.debug.v1.DebugService/ListSoftwareBreakpoints": "debugger",
  // A Session stream exists to hold a session: opening one needs what Attach needs.
  "/vmm.debug.v1.DebugService/Session": "debugger",
  "/grpc.health.v1.Health/Check": "open",
  "/grpc.health.v1.Health/Watch": "open",
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": "viewer",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "viewer",
};

/** What each operation needs, unary or on a Session stream (the same operation, the same role). */
export const OPERATION_ACCESS: Readonly<Record<OperationName, Role>> = {
  attach: "debugger",
  detach: "debugger",
  resume: "debugger",
  break: "debugger",
  setDebugState: "debugger",
  getVpState: "viewer",
  setVpState: "debugger",
  readMemory: "viewer",
  writeMemory: "debugger",
  readMemoryStream: "viewer",
  step: "debugger",
  readMemoryMany: "viewer",
  getVpStates: "viewer",
  insertSoftwareBreakpoint: "debugger",
  removeSoftwareBreakpoint: "debugger",
  listSoftwareBreakpoints: "debugger",
  translateGva: "viewer",
  dumpMemory: "debugger",
};

/** The role an RPC path needs; a path not in the table (a method added without a row) needs admin. */
export function rpcAccess(path: string): Role | "open" {
  return RPC_ACCESS[path] ?? "admin";
}
