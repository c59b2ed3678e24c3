// The README's walkthrough and SDK example run as written against a real server.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { startHarness, sym, type Harness } from "./harness";

const run = promisify(execFile);
const root = join(__dirname, "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The first fenced block of `lang` after the heading line `heading`. */
function block(heading: string, lang: string): string {
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`README has no "${heading}"`);
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(readme.slice(at));
  if (!m) throw new Error(`README has no ${lang} block after "${heading}"`);
  return m[1];
}

/** The README's text from the line `from` starts to `to`. */
function section(from: string, to: string): string {
  const at = readme.indexOf(from);
  const end = readme.indexOf(to, at);
  if (at < 0 || end < 0) throw new Error(`README has no "${from}" … "${to}"`);
  return readme.slice(at, end);
}

/** Every top-level JSON object in `text` (buf curl prints one per answer, indented). */
function jsonObjects(text: string): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  for (const m of text.matchAll(/^\{$[\s\S]*?^\}$/gm)) found.push(JSON.parse(m[0]) as Record<string, unknown>);
  return found;
}

describe("README", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterAll(async () => {
    await h.close();
  });

  it("shows the SDK example exactly as examples/sdk-quickstart.ts", () => {
    expect(block("## The TypeScript SDK", "ts")).toBe(readFileSync(join(root, "examples/sdk-quickstart.ts"), "utf8"));
  });

  it("runs the SDK example", async () => {
    const { stdout } = await run(process.execPath, ["--require", require.resolve("tsx/cjs"), "examples/sdk-quickstart.ts"], {
      cwd: root,
      env: { ...process.env, VMM_DEBUG_ADDRESS: h.address },
      timeout: 60_000,
    });
    expect(stdout).toContain("stop: { kind: 'break' }");
    expect(stdout).toContain("stop: hwBreakpoint on vp 0 slot 0");
    expect(stdout).toMatch(/counter = [1-9]\d*n/);
    expect(stdout).toContain("step: { kind: 'singleStep', vp: 0 }");
  });

  it("shows the Session stream example exactly as examples/session-stream.ts", () => {
    expect(block("## The Session stream and the event feed", "ts")).toBe(readFileSync(join(root, "examples/session-stream.ts"), "utf8"));
  });

  it("runs the Session stream example", async () => {
    const { stdout } = await run(process.execPath, ["--require", require.resolve("tsx/cjs"), "examples/session-stream.ts"], {
      cwd: root,
      env: { ...process.env, VMM_DEBUG_ADDRESS: h.address },
      timeout: 60_000,
    });
    expect(stdout).toContain("stop: { kind: 'break' }");
    expect(stdout).toMatch(/event #\d+: stopped break/);
    expect(stdout).toContain("ranges: 8 bytes, GPA_UNMAPPED");
    expect(stdout).toContain("stop: hwBreakpoint");
    expect(stdout).toMatch(/step: \d+ instructions, last pc 0x[0-9a-f]+, stop hwBreakpoint/);
    expect(stdout).toMatch(/event #\d+: detached streamClosed/);
    expect(stdout).toContain("after close: running detached");
  });

  it("runs the buf curl walkthrough verbatim (on this test's port)", async () => {
    const script = block("## Walkthrough with `buf curl`", "sh").replaceAll("127.0.0.1:50051", h.address);
    // About 25 `buf curl` runs, each starting buf afresh: a minute on a loaded 2-core machine.
    const { stdout, stderr } = await run("bash", ["-e", "-o", "pipefail", "-c", script], { cwd: root, timeout: 240_000 });
    expect(stdout).toContain("vmm.debug.v1.DebugService");
    // "What comes back" shows what buf curl really printed: the translation, the partial read and
    // the error (with its reason readable under "debug") are the README's blocks exactly.
    const answers = jsonObjects(stdout);
    const shown = jsonObjects(section("What comes back", "## The TypeScript SDK"));
    const translation = answers.find((a) => "pagingMode" in a);
    expect(translation).toEqual(shown.find((a) => "pagingMode" in a));
    expect(translation).toMatchObject({ mapped: true, gpa: BigInt(sym("counter").gpa).toString() });
    const partial = answers.find((a) => "unreadable" in a);
    expect(partial).toEqual(shown.find((a) => "unreadable" in a));
    expect(stdout).toContain("buf curl exit status 72");
    expect(jsonObjects(stderr)).toEqual(shown.filter((a) => "code" in a));
    expect(stdout).toContain('"break": {}');
    expect(stdout).toContain('"hwBreakpoint"');
    expect(stdout).toContain('"singleStep": {}');
    expect(stdout).toMatch(/"rip": "\d+"/);
    const tick = BigInt(sym("tick").gva).toString();
    const flat = stdout.replace(/\s+/g, " ");
    expect(flat).toMatch(new RegExp(`"softwareBreakpoint": \\{ ("vp": 1, )?"address": "${tick}", "id": "\\d+" \\}`));
    expect(flat).toMatch(new RegExp(`"address": \\{ "gva": \\{ "gva": "${tick}" \\} \\}, "hitCount": "1"`));
    // Detach let the VM run again.
    expect((await h.client.getVm("demo")).runState).toBe("running");
  }, 300_000);
});
