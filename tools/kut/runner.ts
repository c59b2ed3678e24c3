// kvm-unit-tests on the embedded machine, through the server: each image of
// ../shared/peer-suites/kvm-unit-tests/emu/ boots on an EmuMachine served by a real vmm-debug
// server on an ephemeral loopback port; a client attaches and resumes it and the run ends at the
// guest's power-off (isa-debug-exit) or at an instruction budget (then the client breaks in). The UART
// lines give PASS/FAIL/SKIP/SUMMARY, GetVm gives the exit status.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { connect } from "../../src/client";
import { createEmuMachine, loadGuestImage } from "../../src/emu";
import { createVmmDebugServer, type Logger } from "../../src/server";

/** Where the suite lives (read in place, never copied into the project); KUT_DIR overrides it. */
export const KUT_DIR = process.env.KUT_DIR ?? resolve(__dirname, "../../../shared/peer-suites/kvm-unit-tests");
export const KUT_EMU_DIR = join(KUT_DIR, "emu");
export const EXPECTED_EMU = resolve(__dirname, "../../test/kut/expected-emu.tsv");
export const EXPECTED_QEMU = join(KUT_DIR, "expected-qemu-tcg.tsv");

export interface KutResult {
  /** The image name without "kut-" (e.g. "setjmp"). */
  test: string;
  /** The exit status the guest powered off with (QEMU's convention: 1 all passed); undefined when it did not exit. */
  status: number | undefined;
  /** How the run ended: "exit" (power-off), "timeout", "tripleFault", or another stop's kind. */
  end: string;
  pass: number;
  fail: number;
  skip: number;
  /** The names of the FAIL lines (text after "FAIL: "). */
  failures: string[];
  /** The SUMMARY line's text, if any. */
  summary: string;
  /** Every console line (UART and debug console). */
  lines: string[];
  /** Instructions retired when the run ended. */
  instructions: number;
  /** Wall time of the run in milliseconds. */
  ms: number;
}

/** The tests that have an image for the embedded machine, by name, sorted. */
export function kutTests(dir = KUT_EMU_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith("kut-") && f.endsWith(".json"))
    .map((f) => f.slice(4, -5))
    .sort();
}

/** Counts PASS/FAIL/SKIP lines (kvm-unit-tests' report(): "PASS: name"; XFAIL counts as a pass, XPASS as a failure). */
export function parseKutOutput(lines: readonly string[]): Pick<KutResult, "pass" | "fail" | "skip" | "failures" | "summary"> {
  let pass = 0;
  let fail = 0;
  let skip = 0;
  let summary = "";
  const failures: string[] = [];
  for (const line of lines) {
    const m = /^(PASS|FAIL|SKIP|XFAIL|XPASS|SUMMARY): ?(.*)$/.exec(line);
    if (!m) continue;
    switch (m[1]) {
      case "PASS":
      case "XFAIL":
        pass++;
        break;
      case "FAIL":
      case "XPASS":
        fail++;
        failures.push(m[2]);
        break;
      case "SKIP":
        skip++;
        break;
      case "SUMMARY":
        summary = `SUMMARY: ${m[2]}`;
        break;
    }
  }
  return { pass, fail, skip, failures, summary };
}

export interface RunOptions {
  /**
   * Instruction budget of one test (default 500 million, or the test's own in LONG_TESTS): a test still running after that many
   * retired instructions is stopped as "timeout". An instruction count, unlike wall time, gives the
   * same cut on a fast and on a loaded machine (one VP runs deterministically; the TSC counts
   * instructions), so a test that hangs ends with the same output everywhere.
   */
  instructionBudget?: number;
  /** Wall-time bound of one test in milliseconds (default 300 s, or the test's own in LONG_TESTS): only a safety net. */
  budgetMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

const MIB = 1024 * 1024;
export const DEFAULT_INSTRUCTION_BUDGET = 500_000_000;
/**
 * Tests that need more than the default to finish, with their own instruction budget and wall
 * safety net (measured here: instructions to the end, and wall time with the machine loaded):
 * sieve 8.07 billion (227 s), access 6.64 billion (390 s: 9,338,888 page-permission checks with
 * SMEP and protection keys, then its 5-level paging part needs compatibility mode), vmexit_cpuid
 * 2.42 billion (229 s) and
 * vmexit_mov_to_cr8 2.15 billion (278 s), which loop until the TSC (one tick per instruction)
 * has advanced 2^30.
 */
export const LONG_TESTS: Readonly<Record<string, { instructions: number; wallMs: number }>> = {
  sieve: { instructions: 9_000_000_000, wallMs: 1_200_000 },
  access: { instructions: 7_000_000_000, wallMs: 1_500_000 },
  vmexit_cpuid: { instructions: 3_000_000_000, wallMs: 900_000 },
  vmexit_mov_to_cr8: { instructions: 3_000_000_000, wallMs: 900_000 },
};

/** Boots `kut-<test>` on the embedded machine through a server and collects its result. */
export async function runKutTest(test: string, options: RunOptions = {}, dir = KUT_EMU_DIR): Promise<KutResult> {
  const long = LONG_TESTS[test];
  const budgetMs = options.budgetMs ?? long?.wallMs ?? 300_000;
  const instructionBudget = options.instructionBudget ?? long?.instructions ?? DEFAULT_INSTRUCTION_BUDGET;
  const image = loadGuestImage(join(dir, `kut-${test}.json`));
  const lines: string[] = [];
  const vmId = `kut-${test}`;
  // MEMSIZE=256 in the adapter's environment: 256 MiB at GPA 0, one VP (NR_CPUS=1).
  const vm = await createEmuMachine({
    id: vmId,
    image,
    vpCount: 1,
    memory: [{ gpa: 0, size: 256 * MIB, name: "ram" }],
    startRunning: false,
    onConsole: (line, source) => {
      if (source !== undefined) lines.push(line);
      else options.log?.(`${vmId}: ${line}`);
    },
  });
  const quiet: Logger = { info: () => {}, warn: (m, f) => options.log?.(`${vmId}: server: ${m} ${f ? JSON.stringify(f) : ""}`) };
  const server = createVmmDebugServer({ vms: [vm], logger: quiet });
  const started = Date.now();
  try {
    const { port } = await server.listen("127.0.0.1:0");
    const client = connect(`127.0.0.1:${port}`);
    try {
      const session = await client.attach(vmId);
      const stopIt = () => void session.break().catch(() => undefined);
      const timer = setTimeout(stopIt, budgetMs);
      // Polled: the cut lands within a few milliseconds of guest time after the budget.
      const poll = setInterval(() => {
        if (vm.instructionsRetired() >= instructionBudget) {
          clearInterval(poll);
          stopIt();
        }
      }, 10);
      let end: string;
      let stopStatus: number | undefined;
      try {
        const stop = await session.resume();
        end = stop.kind === "powerOff" ? "exit" : stop.kind === "break" ? "timeout" : stop.kind;
        if (stop.kind === "powerOff") stopStatus = stop.exitStatus;
      } catch (e) {
        end = "error";
        options.log?.(`${vmId}: resume failed after ${Date.now() - started} ms: ${(e as Error).message}`);
      } finally {
        clearTimeout(timer);
        clearInterval(poll);
      }
      // The status as the server reports it: in the stop, and in GetVm while powered off.
      const info = await client.getVm(vmId);
      const status = end === "exit" ? stopStatus ?? info.exitStatus : undefined;
      if (end === "exit" && stopStatus !== info.exitStatus) options.log?.(`${vmId}: the stop says exit status ${stopStatus}, GetVm ${info.exitStatus}`);
      await session.detach().catch(() => undefined);
      return { test, status, end, ...parseKutOutput(lines), lines, instructions: vm.instructionsRetired(), ms: Date.now() - started };
    } finally {
      client.close();
    }
  } finally {
    await server.close();
    await vm.close();
  }
}

// ------------------------------------------------------------------ expectations

export interface Expectation {
  test: string;
  /** Expected exit status ("-" in the file: the test does not exit, e.g. it times out). */
  status: number | undefined;
  pass: number;
  fail: number;
  skip: number;
  /** Names of the failures this machine is known to have. */
  expectedFailures: string[];
  /** Why (free text). */
  note: string;
}

/** Reads test/kut/expected-emu.tsv: test, status, pass, fail, skip, expected failures (joined by " | "), note. */
export function readExpectations(file = EXPECTED_EMU): Map<string, Expectation> {
  const out = new Map<string, Expectation>();
  if (!existsSync(file)) return out;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    if (!raw.trim() || raw.startsWith("#")) continue;
    const [test, status, pass, fail, skip, failures = "", note = ""] = raw.split("\t");
    out.set(test, {
      test,
      status: status === "-" ? undefined : Number(status),
      pass: Number(pass),
      fail: Number(fail),
      skip: Number(skip),
      expectedFailures: failures ? failures.split(" | ") : [],
      note,
    });
  }
  return out;
}

/** Formats one expectations line for a result (what `npm run kut -- --update` writes). */
export function expectationLine(r: KutResult, note = ""): string {
  return [r.test, r.status === undefined ? "-" : String(r.status), r.pass, r.fail, r.skip, r.failures.join(" | "), note || r.end].join("\t");
}

/**
 * Regressions of a result against its expectation: a different exit status (other than 1, all
 * passed, which only improves on a failing, skipping or hanging run), fewer passes, or a failure
 * not named in the expectation.
 */
export function regressions(r: KutResult, e: Expectation | undefined): string[] {
  if (e === undefined) return [];
  const out: string[] = [];
  if (r.status !== e.status && r.status !== 1) {
    out.push(`exit status ${r.status ?? "-"} (expected ${e.status ?? "-"})`);
  }
  if (r.pass < e.pass) out.push(`${r.pass} passed (expected ${e.pass})`);
  const known = new Set(e.expectedFailures);
  for (const f of r.failures) if (!known.has(f)) out.push(`unexpected FAIL: ${f}`);
  return out;
}

/** QEMU TCG's results from the suite's expected-qemu-tcg.tsv, by test name. */
export function readQemuResults(file = EXPECTED_QEMU): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(file)) return out;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    if (!raw.startsWith("kut-")) continue;
    const [name, rc, counts] = raw.split("\t");
    const m = /PASS=(\d+) FAIL=(\d+) SKIP=(\d+)/.exec(counts ?? "");
    out.set(name.slice(4), `${rc.replace("rc=", "exit ")}${m ? `, ${m[1]}/${m[2]}/${m[3]}` : ""}`);
  }
  return out;
}

/** One result as table text: "exit 1, 10/0/0" (pass/fail/skip) or "timeout, 3/0/0". */
export function describeResult(r: KutResult): string {
  const how = r.end === "exit" ? `exit ${r.status ?? "?"}` : r.end;
  return `${how}, ${r.pass}/${r.fail}/${r.skip}`;
}
