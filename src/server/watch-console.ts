// VmService.WatchConsole: one VM's guest console output as raw bytes, replayed from an offset and
// followed live, for any number of watchers (no session needed).
//
// The bytes live in the core's ConsoleLog (a bounded ring the backend appends to and never waits
// on); each call reads through its own cursor. A call writes its next message only when the
// transport has drained the previous one (nice-grpc waits for grpc-js's write callback, which
// fires once HTTP/2 has buffered it) and after reserving the message's bytes in the send budget,
// so a watcher that stops reading holds a few messages (up to three measured under load) and its
// cursor: when the ring moves past the cursor, it gets a gap and skips ahead.
import { create } from "@bufbuild/protobuf";
import type { CallContext } from "nice-grpc";
import * as vmWire from "../../gen/vmm/debug/v1/vm_service_pb";
import { Code, VmmError, type ConsoleEndReason, type ConsoleItem, type ConsoleSource } from "../core";
import { serverError } from "./errors";
import type { ObserverLane } from "./observer-lane";
import type { VmRegistry } from "./registry";
import type { SendBudget } from "./send-budget";

/** WatchConsole response header: the end of the VM's output when the call subscribed (a live-only watcher gets every byte from there). */
export const CONSOLE_OFFSET_HEADER = "vmm-console-offset";

/** Bytes a message holds beyond its data, for the send budget. */
const MESSAGE_OVERHEAD = 64;

/**
 * The handler. `shutdown` aborts when the server closes: open calls then end with UNAVAILABLE /
 * SERVER_SHUTTING_DOWN (the SDK resumes at the next byte on a server that serves the VM again).
 */
export function createWatchConsole(registry: VmRegistry, lane: ObserverLane, budget: SendBudget | undefined, shutdown?: AbortSignal) {
  // One listener on the server's signal for every open call (not one each: no listener limit).
  const open = new Set<() => void>();
  shutdown?.addEventListener("abort", () => {
    for (const end of [...open]) end();
  }, { once: true });
  return async function* watchConsole(req: vmWire.WatchConsoleRequest, ctx: CallContext): AsyncGenerator<vmWire.WatchConsoleResponse, void, undefined> {
    const d = registry.resolve(req.vm);
    const log = d.core.console;
    if (!log) {
      throw serverError(
        Code.FailedPrecondition,
        "CONSOLE_UNAVAILABLE",
        `VM "${d.id}" (${d.core.backend}) has no captured console: this server sees the console of the embedded machine and of a QEMU it launched, not of a QEMU it attached to`,
        { vm: d.id, backend: d.core.backend },
      );
    }
    const endOffset = log.endOffset;
    if (req.fromOffset !== undefined && req.fromOffset > endOffset) {
      throw new VmmError(
        Code.InvalidArgument,
        "VALUE_OUT_OF_RANGE",
        `from_offset = ${req.fromOffset} is past the end of VM "${d.id}"'s console output (${endOffset} bytes so far): resume from an offset the server sent, or leave it unset to follow from now on`,
        { field: "from_offset", value: String(req.fromOffset), end_offset: String(endOffset) },
      );
    }
    if (shutdown?.aborted) throw shuttingDown(d.id);
    // The feed ends when the call does or the server closes.
    const ended = new AbortController();
    const end = () => ended.abort();
    ctx.signal.addEventListener("abort", end, { once: true });
    open.add(end);
    const feed = log.subscribe(req.fromOffset, ended.signal, { stopAtEnd: req.stopAtEnd });
    // Sent at once: a live-only watcher learns it is subscribed, and from which offset on.
    ctx.header.set(CONSOLE_OFFSET_HEADER, String(endOffset));
    ctx.sendHeader();
    const account = budget?.open(ctx.signal);
    try {
      for await (const item of feed) {
        await lane.turn(); // the debugger and the VM go first; see ObserverLane
        const ticket = await account?.reserve(MESSAGE_OVERHEAD + (item.kind === "output" ? item.data.length : 0));
        if (ctx.signal.aborted || shutdown?.aborted) {
          ticket?.release();
          break;
        }
        const message = consoleItemToWire(d.id, item);
        ticket?.attach(message);
        yield message;
      }
    } finally {
      ctx.signal.removeEventListener("abort", end);
      open.delete(end);
    }
    if (shutdown?.aborted && !ctx.signal.aborted) throw shuttingDown(d.id);
  };
}

function shuttingDown(vm: string) {
  return serverError(Code.Unavailable, "SERVER_SHUTTING_DOWN", `the server is shutting down: the console feed of VM "${vm}" ended`, { vm });
}

export function consoleItemToWire(vm: string, item: ConsoleItem): vmWire.WatchConsoleResponse {
  switch (item.kind) {
    case "output":
      return create(vmWire.WatchConsoleResponseSchema, {
        vm,
        item: {
          case: "output",
          value: create(vmWire.ConsoleOutputSchema, { offset: item.offset, source: consoleSourceToWire(item.source), data: item.data }),
        },
      });
    case "gap":
      return create(vmWire.WatchConsoleResponseSchema, {
        vm,
        item: { case: "gap", value: create(vmWire.ConsoleGapSchema, { nextOffset: item.nextOffset }) },
      });
    case "end":
      return create(vmWire.WatchConsoleResponseSchema, {
        vm,
        item: { case: "end", value: create(vmWire.ConsoleEndSchema, { endOffset: item.endOffset, reason: endReasonToWire(item.reason) }) },
      });
  }
}

function consoleSourceToWire(source: ConsoleSource): vmWire.ConsoleSource {
  switch (source) {
    case "debugcon":
      return vmWire.ConsoleSource.DEBUGCON;
    case "com1":
      return vmWire.ConsoleSource.COM1;
    case "qemuStdio":
      return vmWire.ConsoleSource.QEMU_STDIO;
  }
}

function endReasonToWire(reason: ConsoleEndReason): vmWire.ConsoleEndReason {
  return reason === "poweredOff" ? vmWire.ConsoleEndReason.POWERED_OFF : vmWire.ConsoleEndReason.BACKEND_LOST;
}
