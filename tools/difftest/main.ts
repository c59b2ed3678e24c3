// npm run difftest -- [guest…] [options]: the C corpus on the embedded machine and on QEMU.
import { qemuAvailable } from "./backends";
import { describeRun } from "./completion";
import { selectGuests } from "./corpus";
import { diffGuest, type GuestResult } from "./difftest";
import { KnownDifferences } from "./known";

const USAGE = `usage: npm run difftest -- [guest…] [options]
  guest             c-crc32-O2, crc32 (every variant), O2 (every program), crc32-O2; none: the whole corpus
  --steps N         instructions compared in lockstep from the entry (default 200000)
  --window N        then windows of N instructions at each instruction family (default 1000; 0: none)
  --batch N         instructions per traced step batch (default 1000)
  --sample          CI's lockstep sample: --steps 2000 --window 200, at most 2 restarts per guest
  --no-lockstep     only run to completion
  --no-completion   only lockstep
  --timeout S       bound for each run to completion / run to a window, seconds (default 180)
  --verbose         progress lines
  --json            only the final JSON line
Exit status: 0 when every guest agrees (known differences applied), 1 otherwise, 2 on bad usage.`;

interface Args {
  selectors: string[];
  steps: number;
  window: number;
  batch: number;
  completion: boolean;
  lockstep: boolean;
  timeoutMs: number;
  verbose: boolean;
  jsonOnly: boolean;
  maxRestarts: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { selectors: [], steps: 200_000, window: 1000, batch: 1000, completion: true, lockstep: true, timeoutMs: 180_000, verbose: false, jsonOnly: false, maxRestarts: 3 };
  const num = (i: number, name: string): number => {
    const v = Number(argv[i]);
    if (argv[i] === undefined || !Number.isInteger(v) || v < 0) throw new Error(`${name} needs a whole number, got ${argv[i] ?? "nothing"}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    if (s === "--steps") a.steps = num(++i, s);
    else if (s === "--window") a.window = num(++i, s);
    else if (s === "--batch") a.batch = Math.max(1, num(++i, s));
    else if (s === "--sample") {
      a.steps = 2000;
      a.window = 200;
      a.maxRestarts = 2;
    } else if (s === "--no-lockstep") a.lockstep = false;
    else if (s === "--no-completion") a.completion = false;
    else if (s === "--timeout") a.timeoutMs = num(++i, s) * 1000;
    else if (s === "--verbose") a.verbose = true;
    else if (s === "--json") a.jsonOnly = true;
    else if (s === "--help" || s === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (s.startsWith("--")) throw new Error(`unknown option ${s}`);
    else a.selectors.push(s);
  }
  return a;
}

function summaryLine(r: GuestResult): string {
  const parts = [r.guest.padEnd(18)];
  if (r.error) return `${parts[0]} ERROR ${r.error.split("\n")[0]}`;
  if (r.emu && r.qemu) {
    if (r.sameCompletion) {
      parts.push(`completion: same (checksum ${r.emu.checksum}, emu ${(r.emu.ms / 1000).toFixed(1)} s${r.emu.retired ? ` ${(r.emu.retired / 1e6).toFixed(2)} M insns` : ""}, qemu ${(r.qemu.ms / 1000).toFixed(1)} s)`);
    } else {
      parts.push(`completion: DIFFERS — ${r.completionDifference}; ${describeRun(r.emu)}; ${describeRun(r.qemu)}`);
    }
  }
  const l = r.lockstep;
  if (l) {
    const w = l.windows.length ? ` + ${l.windows.length} windows` : "";
    if (l.divergence) parts.push(`lockstep: DIVERGES at step ${l.divergence.step} (${l.divergence.pc} ${l.divergence.instruction}): ${l.divergence.what.split(";")[0]}`);
    else parts.push(`lockstep: ${l.stepsCompared} steps agree${w} (${l.end})${l.familiesNotReached.length ? `, families not reached: ${l.familiesNotReached.join(" ")}` : ""}`);
  }
  return parts.join("  ");
}

async function main(): Promise<number> {
  let args: Args;
  let names: string[];
  try {
    args = parseArgs(process.argv.slice(2));
    names = selectGuests(args.selectors);
  } catch (e) {
    console.error(`difftest: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const q = qemuAvailable();
  if (!q.ok) {
    console.error(`difftest: ${q.why}; nothing compared`);
    console.log(JSON.stringify({ difftest: { skipped: q.why } }));
    return 1;
  }
  const known = new KnownDifferences();
  const out = (line: string) => {
    if (!args.jsonOnly) console.log(line);
  };
  const results: GuestResult[] = [];
  const t0 = performance.now();
  for (const name of names) {
    const r = await diffGuest(name, {
      completion: args.completion,
      lockstep: args.lockstep,
      timeoutMs: args.timeoutMs,
      known,
      lockstepOptions: { steps: args.steps, window: args.window, batch: args.batch, timeoutMs: args.timeoutMs, maxRestarts: args.maxRestarts },
      log: args.verbose ? (line) => out(`  ${name}: ${line.trim()}`) : undefined,
    });
    results.push(r);
    out(summaryLine(r));
    if (r.lockstep?.divergence) out(r.lockstep.divergence.report.replace(/^/gm, "    "));
    if (r.error) out(r.error.replace(/^/gm, "    "));
  }

  // Every variant of a program should print the same checksum on QEMU.
  const byProgram = new Map<string, Set<string>>();
  for (const r of results) if (r.qemu?.checksum) (byProgram.get(r.program) ?? byProgram.set(r.program, new Set()).get(r.program)!).add(r.qemu.checksum);
  const inconsistent = [...byProgram].filter(([, s]) => s.size > 1).map(([p]) => p);
  for (const p of inconsistent) out(`variants of ${p} disagree on QEMU: ${[...byProgram.get(p)!].join(", ")}`);

  const lockstepRuns = results.filter((r) => r.lockstep);
  const sum = (f: (r: GuestResult) => number) => lockstepRuns.reduce((s, r) => s + f(r), 0);
  const rate = (k: "emuStepsPerSec" | "qemuStepsPerSec") => {
    const rs = lockstepRuns.map((r) => r.lockstep![k]).filter((v) => v > 0);
    return rs.length ? Math.round(rs.reduce((a, b) => a + b, 0) / rs.length) : 0;
  };
  const summary = {
    guests: results.length,
    completionSame: results.filter((r) => r.sameCompletion).length,
    completionDiffer: results.filter((r) => r.sameCompletion === false).map((r) => ({ guest: r.guest, difference: r.completionDifference, emu: r.emu && describeRun(r.emu), qemu: r.qemu && describeRun(r.qemu) })),
    emuExceptions: results.filter((r) => r.emu?.exception).map((r) => ({ guest: r.guest, ...r.emu!.exception! })),
    lockstepStepsCompared: sum((r) => r.lockstep!.stepsCompared),
    lockstepWindows: sum((r) => r.lockstep!.windows.length),
    divergences: lockstepRuns.filter((r) => r.lockstep!.divergence).map((r) => ({ guest: r.guest, step: r.lockstep!.divergence!.step, pc: r.lockstep!.divergence!.pc, instruction: r.lockstep!.divergence!.instruction, what: r.lockstep!.divergence!.what })),
    maskedFlagDiffs: lockstepRuns.reduce<Record<string, number>>((acc, r) => {
      for (const [m, n] of Object.entries(r.lockstep!.maskedFlagDiffs)) acc[m] = (acc[m] ?? 0) + n;
      return acc;
    }, {}),
    emuStepsPerSec: rate("emuStepsPerSec"),
    qemuStepsPerSec: rate("qemuStepsPerSec"),
    errors: results.filter((r) => r.error).map((r) => ({ guest: r.guest, error: r.error!.split("\n")[0] })),
    variantsDisagree: inconsistent,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  };
  console.log(JSON.stringify({ difftest: summary }));
  const bad = summary.completionDiffer.length + summary.divergences.length + summary.errors.length + inconsistent.length;
  return bad === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
