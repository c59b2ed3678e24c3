// `vmm-debug token add|list|remove` as a user runs it: exit codes, the file's mode, the printed
// token verifying against the file, duplicates refused, rotation and removal.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TokenStore } from "../../src/server/auth/tokens";

const root = join(__dirname, "../..");
const main = join(root, "src/cli/main.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `vmm-debug ARGS` in `cwd` (bounded: 30 s). */
function vmmDebug(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), main, ...args], {
      cwd,
      env: { ...process.env, VMM_DEBUG_TOKENS: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`vmm-debug ${args.join(" ")} did not exit within 30 s: ${stderr}`));
    }, 30_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vmm-token-cli-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function verify(file: string, token: string) {
  const store = TokenStore.open(file, { watch: false });
  try {
    return store.verify(token);
  } finally {
    store.close();
  }
}

describe("vmm-debug token", () => {
  it("adds a token (file created 0600, token printed once, only its hash stored), lists, refuses a duplicate, rotates, removes", async () => {
    // VMM_DEBUG_TOKENS empty: the default ./vmm-debug-tokens in the working directory.
    const add = await vmmDebug(["token", "add", "ci-farm", "--role", "debugger"], dir);
    expect(add.code).toBe(0);
    const token = add.stdout.trim();
    expect(token).toMatch(/^vmmd_[A-Za-z0-9_-]{43}$/);
    const file = join(dir, "vmm-debug-tokens");
    expect(add.stderr).toContain("shown only once");
    expect(add.stderr).toContain(file);
    if (process.platform !== "win32") expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).not.toContain(token);
    expect(verify(file, token)).toEqual({ name: "ci-farm", role: "debugger" });

    const viewer = await vmmDebug(["token", "add", "dashboard", "--role", "viewer"], dir);
    expect(viewer.code).toBe(0);

    const list = await vmmDebug(["token", "list"], dir);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n").filter(Boolean).map((l) => l.split(/\s+/))).toEqual([
      ["ci-farm", "debugger"],
      ["dashboard", "viewer"],
    ]);
    expect(list.stdout).not.toContain("sha256");

    const duplicate = await vmmDebug(["token", "add", "ci-farm", "--role", "admin"], dir);
    expect(duplicate.code).toBe(1); // not a usage error: the command line was fine, the file says no
    expect(duplicate.stdout).toBe("");
    expect(duplicate.stderr).toMatch(/"ci-farm" already has a token; --replace/);
    expect(verify(file, token)).toEqual({ name: "ci-farm", role: "debugger" });

    const rotate = await vmmDebug(["token", "add", "ci-farm", "--role", "admin", "--replace"], dir);
    expect(rotate.code).toBe(0);
    const rotated = rotate.stdout.trim();
    expect(rotated).not.toBe(token);
    expect(verify(file, token)).toBeUndefined();
    expect(verify(file, rotated)).toEqual({ name: "ci-farm", role: "admin" });
    if (process.platform !== "win32") expect(statSync(file).mode & 0o777).toBe(0o600);

    const remove = await vmmDebug(["token", "remove", "ci-farm"], dir);
    expect(remove.code).toBe(0);
    expect(verify(file, rotated)).toBeUndefined();
    const after = await vmmDebug(["token", "list"], dir);
    expect(after.stdout.trim().split(/\s+/)).toEqual(["dashboard", "viewer"]);

    const again = await vmmDebug(["token", "remove", "ci-farm"], dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no token named "ci-farm"/);
  }, 180_000); // nine CLI runs, each compiling the CLI through tsx: slow on a loaded machine

  it("takes the file from --tokens or VMM_DEBUG_TOKENS, and keeps comments and other lines", async () => {
    const file = join(dir, "fleet.tokens");
    writeFileSync(file, "# fleet principals\n", { mode: 0o600 });
    const a = await vmmDebug(["token", "add", "collector@fleet", "--role", "viewer", "--tokens", file], dir);
    expect(a.code).toBe(0);
    const b = await vmmDebug(["token", "add", "ops", "--role", "admin"], dir, { VMM_DEBUG_TOKENS: file });
    expect(b.code).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text.startsWith("# fleet principals\n")).toBe(true);
    expect(verify(file, a.stdout.trim())).toEqual({ name: "collector@fleet", role: "viewer" });
    expect(verify(file, b.stdout.trim())).toEqual({ name: "ops", role: "admin" });
    const list = await vmmDebug(["token", "list", `--tokens=${file}`], dir);
    expect(list.stdout.split("\n").filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(["collector@fleet", "ops"]);
  }, 120_000);

  it("refuses to edit a file that does not parse, naming the line", async () => {
    const file = join(dir, "vmm-debug-tokens");
    writeFileSync(file, "# ok\nalice admin not-a-hash\n", { mode: 0o600 });
    const r = await vmmDebug(["token", "add", "bob", "--role", "viewer"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:2:`);
    expect(readFileSync(file, "utf8")).toBe("# ok\nalice admin not-a-hash\n");
  });

  it.each([
    [["token"], /needs a subcommand/],
    [["token", "rename", "x"], /unknown token subcommand "rename"/],
    [["token", "add", "x"], /needs --role/],
    [["token", "add", "x", "--role", "root"], /--role must be one of viewer, debugger, admin/],
    [["token", "add", "bad name", "--role", "viewer"], /token name "bad name"/],
    [["token", "add", "--role", "viewer"], /needs a NAME/],
    [["token", "add", "a", "b", "--role", "viewer"], /unexpected argument "b"/],
    [["token", "list", "--role", "viewer"], /unknown option --role/],
    [["token", "remove"], /needs a NAME/],
  ])("exits 2 on the usage error %j", async (args, message) => {
    const r = await vmmDebug(args, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe("");
  });

  it("prints usage for --help", async () => {
    const top = await vmmDebug(["token", "--help"], dir);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/usage: vmm-debug token add NAME --role ROLE/);
    expect(top.stdout).toMatch(/vmm-debug token remove NAME/);
    const add = await vmmDebug(["token", "add", "--help"], dir);
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/usage: vmm-debug token add NAME --role ROLE/);
    expect(add.stdout).toMatch(/--replace/);
  }, 120_000);
});
