// Builds dist/ (the `vmm-debug` binary) once for the CLI test files, even when several of them run
// at once in jest workers: one build at a time (a lock directory), and a build another worker
// finished after this one started waiting is reused rather than rewritten under its feet. A dist/
// newer than every source it is built from (as `npm ci` leaves it, through `prepare`) is used as
// it is.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

export const root = join(__dirname, "../..");
export const bin = join(root, "dist/src/cli/main.js");
const lock = join(root, "dist/.cli-build-lock");
const stamp = join(root, "dist/.cli-build-stamp");

export async function buildCli(): Promise<void> {
  const asked = Date.now();
  mkdirSync(join(root, "dist"), { recursive: true });
  const deadline = asked + 600_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (Date.now() > deadline) throw new Error(`${lock} held for 10 minutes: remove it if no test is building`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    let built = 0;
    try {
      built = Number(readFileSync(stamp, "utf8"));
    } catch {
      built = 0;
    }
    if (built >= asked || builtAfterSources()) return;
    try {
      await promisify(execFile)("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, timeout: 300_000 });
    } catch (e) {
      const { stdout, stderr } = e as { stdout?: string; stderr?: string };
      throw new Error(`npx tsc -p tsconfig.build.json failed:\n${stdout ?? ""}${stderr ?? ""}`);
    }
    writeFileSync(stamp, String(Date.now()));
  } finally {
    rmdirSync(lock);
  }
}

/** Whether the binary was written after every file it is built from last changed. */
function builtAfterSources(): boolean {
  let binTime: number;
  try {
    binTime = statSync(bin).mtimeMs;
  } catch {
    return false;
  }
  const newest = (dir: string): number => {
    let latest = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) latest = Math.max(latest, newest(path));
      else if (entry.name.endsWith(".ts") || entry.name.endsWith(".json")) latest = Math.max(latest, statSync(path).mtimeMs);
    }
    return latest;
  };
  const sources = Math.max(newest(join(root, "src")), newest(join(root, "gen")), statSync(join(root, "tsconfig.build.json")).mtimeMs, statSync(join(root, "tsconfig.json")).mtimeMs);
  return binTime > sources;
}
