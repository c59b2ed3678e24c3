// DumpMemory: the VM as an ELF core file, streamed with its progress.
import type * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { Code } from "../core";
import { type ServerReason, serverError } from "./errors";
import type { DebuggerState } from "./debugger-state";
import type { OperationContext } from "./operations";

export async function dumpMemory(
  _target: DebuggerState,
  _req: ds.DumpMemoryRequest,
  _ctx: OperationContext,
  _chunkBytes: number,
): Promise<AsyncIterable<ds.DumpMemoryResponse>> {
  throw serverError(Code.Unimplemented, "UNIMPLEMENTED" as ServerReason, "DumpMemory is not implemented yet");
}
