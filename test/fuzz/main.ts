// `npm run test:fuzz`: the long fuzzing run (FUZZ_COUNT requests, default 100,000; FUZZ_SEED to
// repeat a run). Prints the seed first and one summary at the end; exits 1 on any crash, state
// change or audit mismatch.
import { randomInt } from "node:crypto";
import { formatSummary, runFuzz } from "./run-fuzz";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return v;
}

async function main(): Promise<void> {
  const seed = envInt("FUZZ_SEED", randomInt(0, 2 ** 32));
  const count = envInt("FUZZ_COUNT", 100_000);
  const concurrency = envInt("FUZZ_CONCURRENCY", 32);
  const batch = envInt("FUZZ_BATCH", 96);
  console.log(`fuzz: seed ${seed} (repeat with FUZZ_SEED=${seed}), ${count} requests, concurrency ${concurrency}, batch ${batch}`);
  const summary = await runFuzz({ seed, count, concurrency, batch, log: (line) => console.log(line) });
  console.log(formatSummary(summary));
  const failed = summary.crashes.length > 0 || summary.stateChanges.length > 0 || summary.auditMismatches.length > 0 || summary.requests < count;
  process.exitCode = failed ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
