// npm run kut [-- [--update] [--instructions N] [--budget SECONDS] [--verbose] [TEST...]]
//
// Boots every kvm-unit-tests image (or the ones named) on the embedded machine through the
// server, prints a table (test, embedded machine, QEMU TCG) and exits 1 when a test regresses
// against test/kut/expected-emu.tsv. --update rewrites the expectations file from this run.

import { writeFileSync } from "node:fs";
import {
  EXPECTED_EMU,
  KUT_EMU_DIR,
  describeResult,
  expectationLine,
  kutTests,
  readExpectations,
  readQemuResults,
  regressions,
  runKutTest,
  type KutResult,
} from "./runner";

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let update = false;
  let verbose = false;
  // Unset: each test's own (runner.ts LONG_TESTS) or the defaults.
  let budgetMs: number | undefined;
  let instructionBudget: number | undefined;
  const only: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--update") update = true;
    else if (a === "--verbose") verbose = true;
    else if (a === "--budget") budgetMs = Number(args[++i]) * 1000;
    else if (a === "--instructions") instructionBudget = Number(args[++i]);
    else if (a.startsWith("-")) {
      process.stderr.write(`unknown option ${a}\nusage: npm run kut -- [--update] [--instructions N] [--budget SECONDS] [--verbose] [TEST...]\n`);
      return 2;
    } else only.push(a.replace(/^kut-/, ""));
  }
  if (instructionBudget !== undefined && (!Number.isInteger(instructionBudget) || instructionBudget <= 0)) {
    process.stderr.write("--instructions needs a positive whole number\n");
    return 2;
  }
  if (budgetMs !== undefined && (!Number.isFinite(budgetMs) || budgetMs <= 0)) {
    process.stderr.write("--budget needs a positive number of seconds\n");
    return 2;
  }
  const all = kutTests();
  if (all.length === 0) {
    process.stderr.write(`no kvm-unit-tests images in ${KUT_EMU_DIR}\n`);
    return 2;
  }
  const unknown = only.filter((t) => !all.includes(t));
  if (unknown.length) {
    process.stderr.write(`no image for ${unknown.join(", ")} in ${KUT_EMU_DIR}\n`);
    return 2;
  }
  const tests = only.length ? only : all;
  const expected = readExpectations();
  const qemu = readQemuResults();
  const results: KutResult[] = [];
  const rows: string[][] = [["test", "embedded machine", "QEMU TCG", "expected", "verdict"]];
  let regressed = 0;
  for (const test of tests) {
    const r = await runKutTest(test, { budgetMs, instructionBudget, log: verbose ? (l) => process.stderr.write(l + "\n") : undefined });
    results.push(r);
    if (verbose) for (const l of r.lines) process.stderr.write(`  ${l}\n`);
    const e = expected.get(test);
    const bad = regressions(r, e);
    if (bad.length) regressed++;
    const exp = e ? `${e.status === undefined ? "-" : `exit ${e.status}`}, ${e.pass}/${e.fail}/${e.skip}` : "(none)";
    rows.push([test, describeResult(r), qemu.get(test) ?? "", exp, bad.length ? `REGRESSED: ${bad.join("; ")}` : "ok"]);
    process.stderr.write(`${test}: ${describeResult(r)} in ${(r.ms / 1000).toFixed(1)} s, ${r.instructions} instructions${bad.length ? ` - REGRESSED: ${bad.join("; ")}` : ""}\n`);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) process.stdout.write(row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd() + "\n");
  process.stdout.write("(pass/fail/skip counts; exit status as QEMU's isa-debug-exit gives it: 1 all passed, 3 failures, 77 skipped)\n");
  if (update) {
    const keep = [...expected.values()].filter((e) => !tests.includes(e.test));
    const lines = [
      "# kvm-unit-tests on the embedded machine (npm run kut): test, exit status (- when it does not exit), PASS, FAIL, SKIP, expected failures (\" | \"), note",
      ...[...keep.map((e) => [e.test, e.status ?? "-", e.pass, e.fail, e.skip, e.expectedFailures.join(" | "), e.note].join("\t")), ...results.map((r) => expectationLine(r))].sort(),
    ];
    writeFileSync(EXPECTED_EMU, lines.join("\n") + "\n");
    process.stderr.write(`wrote ${EXPECTED_EMU}\n`);
    return 0;
  }
  if (regressed) process.stderr.write(`${regressed} test(s) regressed against ${EXPECTED_EMU}\n`);
  return regressed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  },
);
