// The README's "Command line" section runs as written: every `npx vmm-debug` line of its sh blocks,
// on the built binary against a real server (the address through $VMM_DEBUG_SERVER), exit 0 unless
// the line says `# exits N`.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { EXIT_TABLE } from "../../src/cli/exit-codes";
import { buildCli, root } from "./cli-build";
import { startHarness, sym, type Harness } from "./harness";

const readme = readFileSync(join(root, "README.md"), "utf8");

function section(heading: string): string {
  const at = readme.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README has no "${heading}"`);
  const next = readme.indexOf("\n## ", at + heading.length + 2);
  return readme.slice(at, next < 0 ? undefined : next);
}

/** The section's sh blocks as one bash script: `npx vmm-debug` runs the built binary, `# exits N` lines must exit N. */
function script(text: string): { script: string; commands: number } {
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  const out = ["set -e -o pipefail", `trap 'echo "README line failed (exit $?): $BASH_COMMAND" >&2' ERR`];
  let commands = 0;
  for (const line of blocks.join("\n").split("\n")) {
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const cmd = line.replaceAll("npx vmm-debug", `node ${JSON.stringify(join(root, "dist/src/cli/main.js"))}`);
    if (cmd !== line) commands++;
    const exits = /#\s*exits (\d+)/.exec(line);
    if (exits) {
      const bare = cmd.replace(/\s+#.*$/, "");
      out.push(
        `set +e; ${bare}; rc=$?; set -e`,
        `if [ "$rc" -ne ${exits[1]} ]; then echo "README line exited $rc, not ${exits[1]}: ${line.replace(/["$`\\]/g, "\\$&")}" >&2; exit 99; fi`,
      );
    } else {
      out.push(cmd);
    }
  }
  return { script: out.join("\n") + "\n", commands };
}

describe("README: Command line", () => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vmm-debug-readme-cli-"));
    await Promise.all([buildCli(), (async () => (h = await startHarness({ vpCount: 2 })))()]);
  }, 600_000);
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows the exit-code table the CLI prints", () => {
    const rows = [...section("## Command line").matchAll(/^\| (\d+) \| (.+) \|$/gm)].map((m) => [Number(m[1]), m[2].replaceAll("`", "")]);
    expect(rows).toEqual(EXIT_TABLE.map(([code, text]) => [code, text]));
  });

  it("runs every npx vmm-debug line verbatim (on this test's server)", async () => {
    const { script: text, commands } = script(section("## Command line"));
    expect(commands).toBeGreaterThanOrEqual(20);
    const { stdout, stderr } = await promisify(execFile)("bash", ["-c", text], {
      cwd: root,
      env: { ...process.env, VMM_DEBUG_SERVER: h.address, VMM_DEBUG_SESSION: "", VMM_DEBUG_SYMBOLS: "", XDG_RUNTIME_DIR: dir, TMPDIR: dir },
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const tick = sym("tick").gva.toString(16);
    expect(stdout).toMatch(/^demo\s+x86_64\s+2\s+running\s+emu\s+-$/m);
    expect(stdout).toMatch(new RegExp(`^breakpoint 1 at 0x${tick} <tick> \\(every VP\\)$`, "m"));
    expect(stdout).toMatch(new RegExp(`^stopped: software breakpoint 1 on VP \\d; VP \\d pc 0x${tick} <tick>$`, "m"));
    expect(stdout).toContain("covers the aligned range 0xffffffff80107000..0xffffffff80107008 (8 bytes)");
    expect(stdout).toMatch(/^stopped: write watchpoint at 0xffffffff80107000 \(8 bytes\) on VP 0; VP 0 pc 0x[0-9a-f]+ <tick\+0x[0-9a-f]+>$/m);
    expect(stdout).toContain(`-> GPA 0x${sym("counter").gpa.toString(16)}  page 4 KiB`);
    expect(stdout).toMatch(/^wrote .*demo\.core: ELF core of VM "demo" \(2 VPs\), \d+ bytes/m);
    expect(stdout).toMatch(/^detached from VM "demo"/m);
    expect(stderr).toContain("(reason GVA_NOT_MAPPED)");
    expect(stderr).toContain("(reason VM_NOT_FOUND)");
    expect(stderr).toContain("unreadable: GPA_UNMAPPED");
    const info = await h.client.getVm("demo");
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
  }, 300_000);
});
