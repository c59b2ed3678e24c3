// The SDK side of DumpMemory: an ELF core file of a VM as a stream of pieces with progress.
import type { CallOptions } from "./types";
import type { RawClients } from "./client";

/** One piece of the core file: `data` belongs at `offset`; `bytesDone` of `bytesTotal` are written. */
export interface DumpPiece {
  offset: bigint;
  data: Uint8Array;
  bytesDone: bigint;
  bytesTotal: bigint;
}

export async function* dumpMemory(_rpc: RawClients, _vm: string, _opts: CallOptions = {}): AsyncGenerator<DumpPiece, void, undefined> {
  throw new Error("dumpMemory is not implemented yet");
}
