// `vmm-debug console`: the guest's console output, raw bytes to stdout (what the server holds, and
// with --follow what comes next until the guest powers off).
import type { ConsoleChunk, ConsoleSource } from "../../client";
import { type Context, interrupt } from "../context";
import { CliError, EXIT } from "../exit-codes";
import { UsageError } from "../args";

export interface ConsoleOptions {
  follow?: boolean;
  new?: boolean;
  from?: string;
  source?: string;
}

const SOURCES: Record<string, ConsoleSource> = { debugcon: "debugcon", com1: "com1", qemu: "qemuStdio" };

export async function consoleCommand(ctx: Context, opts: ConsoleOptions): Promise<void> {
  if (opts.new && opts.from !== undefined) throw new UsageError("give either --new or --from, not both");
  let fromOffset: bigint | undefined = 0n;
  if (opts.from !== undefined) {
    if (!/^(\d+|0x[0-9a-f]+)$/i.test(opts.from)) throw new UsageError(`--from must be a byte offset (decimal or 0x…), got "${opts.from}"`);
    fromOffset = BigInt(opts.from);
  }
  if (opts.new) fromOffset = undefined;
  const follow = opts.follow === true || opts.new === true;
  let only: Set<ConsoleSource> | undefined;
  if (opts.source !== undefined) {
    only = new Set();
    for (const name of opts.source.split(",")) {
      const s = SOURCES[name.trim()];
      if (!s) throw new UsageError(`--source takes ${Object.keys(SOURCES).join(", ")} (comma-separated), got "${name}"`);
      only.add(s);
    }
  }
  const info = await ctx.vm();
  const out = process.stdout;
  // A reader that goes away (`vmm-debug console -f | head`) ends the command quietly, as `cat` does.
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  interrupt.signal.addEventListener("abort", onInterrupt, { once: true });
  let closed = false;
  const onError = (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") return;
    closed = true;
    stop.abort();
    out.emit("drain"); // a write waiting for room waits no more
  };
  out.on("error", onError);
  let end: Extract<ConsoleChunk, { kind: "end" }> | undefined;
  try {
    for await (const chunk of ctx.client.watchConsole(info.id, { fromOffset, stopAtEnd: !follow, signal: stop.signal })) {
      if (closed) break;
      if (ctx.json) {
        await write(out, JSON.stringify(chunkJson(chunk)) + "\n");
      } else if (chunk.kind === "output") {
        if (!only || only.has(chunk.source)) await write(out, chunk.data);
      } else if (chunk.kind === "gap") {
        process.stderr.write(`\nvmm-debug: console output before offset ${chunk.nextOffset} is gone (the server keeps the last 1 MiB)\n`);
      }
      if (chunk.kind === "end") end = chunk;
    }
  } catch (e) {
    if (interrupt.signal.aborted) throw new CliError("interrupted", EXIT.interrupted);
    if (closed) return;
    throw e;
  } finally {
    interrupt.signal.removeEventListener("abort", onInterrupt);
  }
  if (interrupt.signal.aborted) throw new CliError("interrupted", EXIT.interrupted);
  if (closed) return;
  if (end && follow && !ctx.json) {
    process.stderr.write(`vmm-debug: VM "${info.id}" ${end.reason === "poweredOff" ? "powered off" : "is gone (its backend was lost)"}; its console output ended at offset ${end.endOffset}\n`);
  }
  if (end?.reason === "backendLost" && follow) throw new CliError(`VM "${info.id}" is gone: its backend was lost`, EXIT.unreachable, "BACKEND_UNAVAILABLE");
}

function chunkJson(chunk: ConsoleChunk): unknown {
  switch (chunk.kind) {
    case "output":
      return { offset: String(chunk.offset), source: chunk.source, data: Buffer.from(chunk.data).toString("base64") };
    case "gap":
      return { gap: { nextOffset: String(chunk.nextOffset) } };
    case "end":
      return { end: { endOffset: String(chunk.endOffset), reason: chunk.reason } };
  }
}

/** Writes and waits while stdout is full (a slow pipe holds the stream back, not this process's memory). */
function write(out: NodeJS.WriteStream, data: Uint8Array | string): Promise<void> {
  if (out.write(data)) return Promise.resolve();
  return new Promise((resolve) => out.once("drain", resolve));
}
