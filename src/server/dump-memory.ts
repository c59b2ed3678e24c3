// DumpMemory: the VM as an ELF core file, streamed with its progress.
//
// The VM must be stopped; the dump holds DebuggerState's lock from the registers to the last byte,
// so Resume, Step, Detach and every other locked operation wait until the dump ends (or is
// cancelled: the lock is released the moment the call's signal aborts). RAM is read straight
// from the core by GPA, `chunkBytes` per message, each message's bytes reserved in the call's
// send budget before they are read (as ReadMemoryStream does).
import { create } from "@bufbuild/protobuf";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { Code, elfCoreLayout, type DebuggerVpState } from "../core";
import { serverError } from "./errors";
import type { DebuggerState } from "./debugger-state";
import type { OperationContext } from "./operations";

/** Bytes an answer holds beyond its data, for the send budget (as operations.ts counts). */
const ANSWER_OVERHEAD = 64;

/** One message's worth of the file: bytes at hand, zeros (alignment), or RAM at a GPA. */
type Piece = { offset: bigint; length: number } & ({ kind: "bytes"; data: Uint8Array } | { kind: "zero" } | { kind: "ram"; gpa: bigint });

export async function dumpMemory(
  target: DebuggerState,
  req: ds.DumpMemoryRequest,
  ctx: OperationContext,
  chunkBytes: number,
): Promise<AsyncIterable<ds.DumpMemoryResponse>> {
  // The server closing ends the hold (its close waits for the lock): the dump then fails.
  let interrupted = false;
  const release = await target.holdStopped("DumpMemory", () => (interrupted = true));
  let held = true;
  const unhold = () => {
    if (!held) return;
    held = false;
    ctx.signal.removeEventListener("abort", unhold);
    release();
  };
  ctx.signal.addEventListener("abort", unhold, { once: true });

  let pieces: Piece[];
  let total: bigint;
  try {
    if (ctx.signal.aborted) throw cancelled();
    const core = target.core;
    // The core's own reads: DebuggerState's would wait for the lock this call holds.
    const vps: DebuggerVpState[] = [];
    for (let vp = 0; vp < core.vpCount; vp++) vps.push(await core.getVpState(vp));
    const layout = elfCoreLayout({
      arch: core.arch,
      vps,
      regions: core.memoryRegions,
      name: core.id,
      args: `vmm-debug ${core.backend} VM ${core.id}`,
    });
    total = layout.totalBytes;
    pieces = plan(layout.head, layout.segments, chunkBytes);
  } catch (e) {
    unhold();
    throw e;
  }

  const sessionId = req.sessionId;
  const account = ctx.account;
  return (async function* () {
    try {
      let done = 0n;
      for (const p of pieces) {
        if (ctx.signal.aborted) return;
        if (interrupted) throw shuttingDown(target.id);
        // A long dump keeps the session it names alive.
        if (sessionId !== "" && target.hasSession(sessionId)) target.touch(sessionId);
        const ticket = await account?.reserve(ANSWER_OVERHEAD + p.length);
        let message: ds.DumpMemoryResponse;
        try {
          if (ctx.signal.aborted) {
            ticket?.release();
            return;
          }
          if (interrupted) throw shuttingDown(target.id);
          const data =
            p.kind === "bytes" ? p.data : p.kind === "zero" ? new Uint8Array(p.length) : await target.readMemory({ kind: "gpa", gpa: p.gpa }, p.length);
          done += BigInt(p.length);
          message = create(ds.DumpMemoryResponseSchema, { offset: p.offset, data, bytesDone: done, bytesTotal: total });
          ticket?.attach(message);
        } catch (e) {
          ticket?.release();
          throw e;
        }
        yield message;
      }
    } finally {
      unhold();
    }
  })();
}

/** The file in file order, cut into messages of at most `chunkBytes`. */
function plan(head: Uint8Array, segments: readonly { gpa: bigint; size: bigint; offset: bigint }[], chunkBytes: number): Piece[] {
  const chunk = BigInt(chunkBytes);
  const out: Piece[] = [];
  for (let at = 0; at < head.length; at += chunkBytes) {
    const data = head.subarray(at, Math.min(head.length, at + chunkBytes));
    out.push({ kind: "bytes", offset: BigInt(at), length: data.length, data });
  }
  let end = BigInt(head.length);
  for (const s of segments) {
    for (let at = end; at < s.offset; at += chunk) {
      out.push({ kind: "zero", offset: at, length: Number(min(chunk, s.offset - at)) });
    }
    for (let o = 0n; o < s.size; o += chunk) {
      out.push({ kind: "ram", offset: s.offset + o, length: Number(min(chunk, s.size - o)), gpa: s.gpa + o });
    }
    end = s.offset + s.size;
  }
  return out;
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

function cancelled() {
  return serverError(Code.Cancelled, "CANCELLED", "the DumpMemory call was cancelled");
}

function shuttingDown(vm: string) {
  return serverError(Code.Unavailable, "SERVER_SHUTTING_DOWN", `the server is shutting down: the dump of VM "${vm}" ended`, { vm });
}
