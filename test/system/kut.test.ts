// kvm-unit-tests through the runner (tools/kut): a quick subset of the suite's images boots on the
// embedded machine through a real server on a loopback port, and each result must match
// test/kut/expected-emu.tsv (the full suite: `npm run kut`). The suite is read in place from
// ../shared/peer-suites/kvm-unit-tests; without it the tests skip with a message saying so.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { KUT_EMU_DIR, parseKutOutput, readExpectations, regressions, runKutTest, type Expectation, type KutResult } from "../../tools/kut/runner";

const SUBSET = ["setjmp", "idt_test", "hypercall", "debug", "umip"];
const present = SUBSET.every((t) => existsSync(join(KUT_EMU_DIR, `kut-${t}.json`)));
const maybe = present ? describe : describe.skip;
if (!present) {
  // eslint-disable-next-line no-console
  console.warn(`kvm-unit-tests images are missing from ${KUT_EMU_DIR}: the kut tests are skipped`);
}

maybe("kvm-unit-tests on the embedded machine, through the server", () => {
  const expected = readExpectations();

  it.each(SUBSET)("%s gives its expected result", async (test) => {
    const r = await runKutTest(test, { budgetMs: 60_000 });
    const e = expected.get(test);
    expect(e).toBeDefined();
    // The run ended by the guest's own exit, with the status and failures on record.
    expect(r.end).toBe("exit");
    expect({ test, regressions: regressions(r, e) }).toEqual({ test, regressions: [] });
    expect(r.status).toBe(e!.status);
    expect(r.pass).toBe(e!.pass);
    expect(r.failures).toEqual(e!.expectedFailures);
  }, 120_000);

  it("setjmp prints its ten PASS lines and a SUMMARY on the UART, and exits with status 1", async () => {
    const r = await runKutTest("setjmp", { budgetMs: 60_000 });
    expect(r.lines).toContain("SUMMARY: 10 tests");
    expect(r.lines.filter((l) => l.startsWith("PASS: "))).toHaveLength(10);
    expect(r.status).toBe(1);
  }, 120_000);
});

describe("the kut runner's verdicts", () => {
  const lines = ["PASS: a", "FAIL: b", "SKIP: c", "XFAIL: d", "SUMMARY: 4 tests, 1 unexpected failures, 1 skipped"];
  const result = (status: number | undefined, over: Partial<KutResult> = {}): KutResult => ({
    test: "t", status, end: status === undefined ? "timeout" : "exit", ...parseKutOutput(lines), lines, instructions: 0, ms: 0, ...over,
  });
  const expectation = (status: number | undefined, pass: number, failures: string[]): Expectation => ({
    test: "t", status, pass, fail: failures.length, skip: 0, expectedFailures: failures, note: "",
  });

  it("counts PASS (and XFAIL), FAIL, SKIP and keeps the SUMMARY and the failures' names", () => {
    expect(parseKutOutput(lines)).toEqual({ pass: 2, fail: 1, skip: 1, failures: ["b"], summary: "SUMMARY: 4 tests, 1 unexpected failures, 1 skipped" });
  });

  it("a known failure is no regression; a new failure, fewer passes or another status is", () => {
    expect(regressions(result(3), expectation(3, 2, ["b"]))).toEqual([]);
    expect(regressions(result(3), expectation(3, 2, []))).toEqual(["unexpected FAIL: b"]);
    expect(regressions(result(3), expectation(3, 3, ["b"]))).toEqual(["2 passed (expected 3)"]);
    expect(regressions(result(127), expectation(3, 2, ["b"]))).toEqual(["exit status 127 (expected 3)"]);
  });

  it("status 1 (all passed) only improves on a failing or hanging run", () => {
    expect(regressions(result(1, { failures: [] }), expectation(undefined, 2, []))).toEqual([]);
    expect(regressions(result(1, { failures: [] }), expectation(3, 2, ["b"]))).toEqual([]);
    expect(regressions(result(undefined, { failures: [] }), expectation(1, 2, []))).toEqual(["exit status - (expected 1)"]);
  });
});
