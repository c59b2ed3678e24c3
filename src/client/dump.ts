// The SDK side of DumpMemory: an ELF core file of a VM as a stream of pieces with progress, and
// writeCoreFile, which puts one in a file.
import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Status } from "nice-grpc";
import type { CallOptions } from "./types";
import type { RawClients, VmmDebugClient } from "./client";
import { VmmDebugError } from "./errors";

/** One piece of the core file: `data` belongs at `offset`; `bytesDone` of `bytesTotal` are written. */
export interface DumpPiece {
  offset: bigint;
  data: Uint8Array;
  bytesDone: bigint;
  bytesTotal: bigint;
}

/**
 * DumpMemory's pieces as they arrive, checked to follow one another with no gap and to end at
 * `bytesTotal` (else INTERNAL). Server errors come as VmmDebugError (FAILED_PRECONDITION /
 * VM_RUNNING when the VM runs); aborting `opts.signal` ends it with CANCELLED.
 */
export async function* dumpMemory(rpc: RawClients, vm: string, opts: CallOptions = {}): AsyncGenerator<DumpPiece, void, undefined> {
  let next = 0n;
  let total: bigint | undefined;
  for await (const m of rpc.debug.dumpMemory({ vm }, opts)) {
    if (m.offset !== next) {
      throw new VmmDebugError(Status.INTERNAL, `the server sent core file bytes at offset ${m.offset}, expected ${next}`);
    }
    if (total !== undefined && m.bytesTotal !== total) {
      throw new VmmDebugError(Status.INTERNAL, `the core file's size changed from ${total} to ${m.bytesTotal} bytes mid-dump`);
    }
    total = m.bytesTotal;
    next += BigInt(m.data.length);
    if (next > total) throw new VmmDebugError(Status.INTERNAL, `the server sent ${next} bytes of a ${total}-byte core file`);
    yield { offset: m.offset, data: m.data, bytesDone: m.bytesDone, bytesTotal: m.bytesTotal };
  }
  if (total === undefined || next !== total) {
    throw new VmmDebugError(Status.INTERNAL, `the dump ended after ${next} of ${total ?? "?"} bytes`);
  }
}

export interface WriteCoreFileOptions extends CallOptions {
  /** Called after each piece is written, with the bytes written so far and the file's size. */
  onProgress?: (bytesDone: bigint, bytesTotal: bigint) => void;
}

/**
 * Dumps VM `vm` (which must be stopped) to the ELF core file `path`, for `gdb -c path` or
 * readelf. Writes a temporary file beside it and renames it to `path` once complete; if the dump
 * fails or `opts.signal` aborts, the temporary file is removed and `path` is left as it was.
 * Resolves with the file's size.
 */
export async function writeCoreFile(client: VmmDebugClient, vm: string, path: string, opts: WriteCoreFileOptions = {}): Promise<bigint> {
  const { onProgress, ...call } = opts;
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.partial`);
  const file = await open(temp, "wx");
  let size = 0n;
  try {
    for await (const piece of client.dumpMemory(vm, call)) {
      let written = 0;
      while (written < piece.data.length) {
        const { bytesWritten } = await file.write(piece.data, written, piece.data.length - written, Number(piece.offset) + written);
        written += bytesWritten;
      }
      size = piece.bytesTotal;
      onProgress?.(piece.bytesDone, piece.bytesTotal);
    }
    await file.close();
    await rename(temp, path);
    return size;
  } catch (e) {
    await file.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}
