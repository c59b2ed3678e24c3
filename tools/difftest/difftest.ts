// The differential test of one corpus guest: to completion on both machines, then lockstep.
import { qemuAvailable, startEmu, startQemu, type Backend } from "./backends";
import { runToCompletion, type CompletionRun } from "./completion";
import { loadCorpusGuest } from "./corpus";
import { ImageDecoder } from "./disasm";
import { KnownDifferences } from "./known";
import { Lockstep, type LockstepOptions, type LockstepResult } from "./lockstep";

export interface GuestOptions {
  completion: boolean;
  lockstep: boolean;
  lockstepOptions: LockstepOptions;
  /** Bound for a run to completion (ms). */
  timeoutMs: number;
  known?: KnownDifferences;
  log?: (line: string) => void;
}

export interface GuestResult {
  guest: string;
  program: string;
  variant: string;
  emu?: CompletionRun;
  qemu?: CompletionRun;
  /** Both completed with the same console output and checksum. */
  sameCompletion?: boolean;
  completionDifference?: string;
  lockstep?: LockstepResult;
  /** Set when something failed outside the comparison (a backend would not start …). */
  error?: string;
}

async function withBackends<T>(starts: (() => Promise<Backend>)[], fn: (b: Backend[]) => Promise<T>): Promise<T> {
  const settled = await Promise.allSettled(starts.map((s) => s()));
  const ok = settled.filter((s): s is PromiseFulfilledResult<Backend> => s.status === "fulfilled").map((s) => s.value);
  try {
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;
    return await fn(ok);
  } finally {
    await Promise.allSettled(ok.map((b) => b.close()));
  }
}

/** Both machines, or neither (a failed start closes the one that came up). */
async function withStarted(starts: (() => Promise<Backend>)[]): Promise<[Backend, Backend]> {
  const settled = await Promise.allSettled(starts.map((s) => s()));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await Promise.allSettled(settled.filter((s): s is PromiseFulfilledResult<Backend> => s.status === "fulfilled").map((s) => s.value.close()));
    throw failed.reason;
  }
  const [a, b] = settled.map((s) => (s as PromiseFulfilledResult<Backend>).value);
  return [a, b];
}

export function compareCompletion(emu: CompletionRun, qemu: CompletionRun): string | undefined {
  if (emu.stop !== "powerOff" || qemu.stop !== "powerOff") return `ended differently: emu ${emu.stop}, qemu ${qemu.stop}`;
  const n = Math.max(emu.console.length, qemu.console.length);
  for (let i = 0; i < n; i++) {
    if (emu.console[i] !== qemu.console[i]) {
      return `console line ${i + 1} differs: emu ${JSON.stringify(emu.console[i] ?? "(none)")}, qemu ${JSON.stringify(qemu.console[i] ?? "(none)")}`;
    }
  }
  if (!emu.checksum) return "no checksum line";
  return undefined;
}

export async function diffGuest(name: string, options: GuestOptions): Promise<GuestResult> {
  const guest = loadCorpusGuest(name);
  const known = options.known ?? new KnownDifferences();
  const dec = new ImageDecoder(guest);
  const result: GuestResult = { guest: name, program: guest.program, variant: guest.variant };
  const q = qemuAvailable();
  if (!q.ok) throw new Error(q.why);
  try {
    if (options.completion) {
      const [emu, qemu] = await Promise.all([
        withBackends([() => startEmu(guest)], ([b]) => runToCompletion(guest, b, dec, known, options.timeoutMs)),
        withBackends([() => startQemu(guest)], ([b]) => runToCompletion(guest, b, dec, known, options.timeoutMs)),
      ]);
      result.emu = emu;
      result.qemu = qemu;
      result.completionDifference = compareCompletion(emu, qemu);
      result.sameCompletion = result.completionDifference === undefined;
    }
    if (options.lockstep) {
      const start = () => withStarted([() => startEmu(guest), () => startQemu(guest)]);
      result.lockstep = await new Lockstep(guest, start, dec, known, { ...options.lockstepOptions, log: options.log }).run();
    }
  } catch (e) {
    result.error = (e as Error).stack ?? String(e);
  } finally {
    dec.free();
  }
  return result;
}
