// VmmDebugClient.watchConsole: one VM's guest console output as an async iterator of byte chunks,
// resuming at the exact byte after a lost connection.
import * as vmWire from "../../gen/vmm/debug/v1/vm_service_pb";
import type { VmmDebugError } from "./errors";
import { DEFAULT_MAX_RETRIES, reconnectAfter } from "./reconnect";
import type { RawClients } from "./client";

/** A console device: the x86 debug console (port 0xE9), the COM1 16550 UART (0x3F8), a launched QEMU's stdout. */
export type ConsoleSource = "debugcon" | "com1" | "qemuStdio" | "unspecified";

/** One piece of a VM's console feed. */
export type ConsoleChunk =
  /** Bytes of one device; `offset` is that of data[0] in the VM's console byte stream. */
  | { kind: "output"; offset: bigint; source: ConsoleSource; data: Uint8Array }
  /** Output lost to this watcher (gone from the server's history); the next byte is `nextOffset`. */
  | { kind: "gap"; nextOffset: bigint }
  /** No more output will come (the guest powered off, or the backend is gone); the feed ends. */
  | { kind: "end"; endOffset: bigint; reason: "poweredOff" | "backendLost" | "unspecified" };

/** Options of VmmDebugClient.watchConsole(). */
export interface WatchConsoleOptions {
  /** Unset: output from now on. Set: from this byte offset (0: everything the server holds). */
  fromOffset?: bigint;
  /** Finish once the output there was at the call's start has been delivered (instead of following). */
  stopAtEnd?: boolean;
  /** Ends the feed (the iterator finishes without an error). */
  signal?: AbortSignal;
  /** Reconnection attempts in a row after UNAVAILABLE before the iterator fails. Default 10. */
  maxRetries?: number;
  /**
   * Called each time the server has subscribed the feed, with the end of the VM's output at that
   * moment: without `fromOffset`, every byte from there on reaches this iterator.
   */
  onSubscribed?: (endOffset: bigint) => void;
  /** Called before each reconnection attempt, with the failure and the wait before the attempt. */
  onRetry?: (error: VmmDebugError, attempt: number, delayMs: number) => void;
}

const OFFSET_HEADER = "vmm-console-offset";

/**
 * Reads WatchConsole; when the call fails with UNAVAILABLE it waits and calls again from the
 * offset after the last byte it delivered, so nothing the server still holds is lost or repeated.
 * Ends without error when `signal` aborts, after an `end`, or (stopAtEnd) when caught up.
 */
export async function* watchConsole(rpc: RawClients["vm"], vm: string, opts: WatchConsoleOptions = {}): AsyncGenerator<ConsoleChunk, void, undefined> {
  const { signal, maxRetries = DEFAULT_MAX_RETRIES, onRetry, onSubscribed, stopAtEnd = false } = opts;
  let from = opts.fromOffset;
  let failures = 0;
  for (;;) {
    if (signal?.aborted) return;
    try {
      const feed = rpc.watchConsole({ vm, fromOffset: from, stopAtEnd }, {
        signal,
        onHeader: (header) => {
          failures = 0;
          const end = header.get(OFFSET_HEADER);
          const endOffset = end !== undefined && /^\d+$/.test(end) ? BigInt(end) : 0n;
          // Live-only: a reconnection resumes from where this subscription began.
          if (from === undefined) from = endOffset;
          try {
            onSubscribed?.(endOffset);
          } catch {
            // A callback's throw must not reach grpc-js's event emitter.
          }
        },
      });
      for await (const msg of feed) {
        const chunk = consoleChunkFromWire(msg);
        if (!chunk) continue;
        if (chunk.kind === "output") from = chunk.offset + BigInt(chunk.data.length);
        else if (chunk.kind === "gap") from = chunk.nextOffset;
        yield chunk;
        if (chunk.kind === "end") return;
      }
      return;
    } catch (e) {
      failures = await reconnectAfter(e, failures, signal, maxRetries, onRetry);
      if (failures < 0) return;
    }
  }
}

export function consoleChunkFromWire(msg: vmWire.WatchConsoleResponse): ConsoleChunk | undefined {
  switch (msg.item.case) {
    case "output":
      return { kind: "output", offset: msg.item.value.offset, source: sourceFromWire(msg.item.value.source), data: msg.item.value.data };
    case "gap":
      return { kind: "gap", nextOffset: msg.item.value.nextOffset };
    case "end": {
      const r = msg.item.value.reason;
      return {
        kind: "end",
        endOffset: msg.item.value.endOffset,
        reason: r === vmWire.ConsoleEndReason.POWERED_OFF ? "poweredOff" : r === vmWire.ConsoleEndReason.BACKEND_LOST ? "backendLost" : "unspecified",
      };
    }
    default:
      return undefined; // an item this SDK does not know (a newer server)
  }
}

function sourceFromWire(source: vmWire.ConsoleSource): ConsoleSource {
  switch (source) {
    case vmWire.ConsoleSource.DEBUGCON:
      return "debugcon";
    case vmWire.ConsoleSource.COM1:
      return "com1";
    case vmWire.ConsoleSource.QEMU_STDIO:
      return "qemuStdio";
    default:
      return "unspecified";
  }
}

