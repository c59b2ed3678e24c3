// Runs one corpus guest to completion on one machine: its console, checksum and how it ended.
import type { Backend } from "./backends";
import { hex, symbolize, type CorpusGuest } from "./corpus";
import type { ImageDecoder } from "./disasm";
import type { KnownDifferences } from "./known";

const EXCEPTION = /^crt0: unexpected exception vector 0x([0-9a-f]+) error 0x([0-9a-f]+) rip 0x([0-9a-f]+)$/;
const VECTOR_NAMES: Record<number, string> = { 0: "#DE", 1: "#DB", 3: "#BP", 6: "#UD", 7: "#NM", 8: "#DF", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 19: "#XM" };

export interface CompletionRun {
  backend: string;
  /** powerOff, tripleFault, timeout, … */
  stop: string;
  console: string[];
  checksum?: string;
  exitCode?: string;
  /** The unexpected exception crt0 reported, with the instruction at its RIP. */
  exception?: { vector: number; name: string; error: string; rip: string; where: string; instruction: string; family: string };
  /** RIP when it stopped some other way (timeout, triple fault). */
  rip?: string;
  ms: number;
  /** Instructions retired (embedded machine). */
  retired?: number;
}

/** A line crt0 prints last: "exit 0x…" or the exception report. */
export function isFinalLine(line: string): boolean {
  return /^exit 0x[0-9a-f]+$/.test(line) || EXCEPTION.test(line);
}

export async function runToCompletion(guest: CorpusGuest, b: Backend, dec: ImageDecoder, known: KnownDifferences, timeoutMs: number): Promise<CompletionRun> {
  const t0 = performance.now();
  const stopped = b.nextStop(timeoutMs);
  await b.core.resume();
  const stop = await stopped;
  const ms = performance.now() - t0;
  let rip: string | undefined;
  if (stop === "timeout") {
    await b.core.halt();
  }
  if (stop === "timeout" || stop === "gone" || stop.kind !== "powerOff") {
    try {
      const s = await b.core.getVpState(0);
      if (s.arch === "x86_64") rip = `${hex(s.state.rip)} <${symbolize(guest, s.state.rip)}>: ${dec.text(s.state.rip)}`;
    } catch {
      // gone
    }
  } else {
    // QEMU's output pipe may lag its power-off event: wait (bounded) for crt0's last line.
    await b.waitConsole(isFinalLine, 5000);
  }
  const lines = b.console.filter((l) => !known.consoleIgnored(l));
  const run: CompletionRun = { backend: b.name, stop: typeof stop === "string" ? stop : stop.kind, console: lines, ms: Math.round(ms) };
  if (rip) run.rip = rip;
  if (b.retired) run.retired = b.retired();
  for (const line of lines) {
    const c = /^checksum (0x[0-9a-f]+)$/.exec(line);
    if (c) run.checksum = c[1];
    const x = /^exit (0x[0-9a-f]+)$/.exec(line);
    if (x) run.exitCode = x[1];
    const e = EXCEPTION.exec(line);
    if (e) {
      const vector = parseInt(e[1], 16);
      const at = BigInt("0x" + e[3]);
      const d = dec.at(at);
      run.exception = {
        vector,
        name: VECTOR_NAMES[vector] ?? "",
        error: "0x" + BigInt("0x" + e[2]).toString(16),
        rip: hex(at),
        where: symbolize(guest, at),
        instruction: d?.text ?? "(outside the image)",
        family: d?.family ?? "?",
      };
    }
  }
  return run;
}

/** A one-line account of how a run ended. */
export function describeRun(r: CompletionRun): string {
  if (r.exception) {
    const x = r.exception;
    return `${r.backend}: exception vector ${x.vector} ${x.name} at ${x.rip} <${x.where}>: ${x.instruction} [${x.family}]`;
  }
  if (r.stop !== "powerOff") return `${r.backend}: stopped by ${r.stop}${r.rip ? ` at ${r.rip}` : ""}`;
  return `${r.backend}: checksum ${r.checksum ?? "(none)"} exit ${r.exitCode ?? "?"}`;
}
