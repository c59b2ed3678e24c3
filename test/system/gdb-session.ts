// Helpers for system tests that drive a real gdb (batch mode) through the gdb bridge: running gdb,
// cutting its output at `echo` markers, and letting the test look at the VM through the SDK while
// gdb holds it stopped.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { type AddressInfo, createServer } from "node:net";

export const hex = (v: bigint) => "0x" + v.toString(16);

/** Whether `binary --version` runs. */
export function haveBinary(binary: string): boolean {
  return spawnSync(binary, ["--version"], { stdio: "ignore" }).status === 0;
}

export interface GdbRun {
  child: ChildProcess;
  sofar: () => string;
  result: Promise<{ code: number | null; output: string }>;
}

/**
 * Starts `gdb -batch -nx` with these commands against the bridge on `port`; `result` is its
 * output (stdout and stderr). gdb is killed if it has not finished within `timeoutMs`.
 */
export function startGdb(binary: string, port: number, commands: string[], timeoutMs: number, preamble: string[] = []): GdbRun {
  const args = ["-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off"];
  for (const c of preamble) args.push("-ex", c);
  args.push("-ex", `target remote 127.0.0.1:${port}`);
  for (const c of commands) args.push("-ex", c);
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const result = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${binary} did not finish within ${timeoutMs} ms; output so far:\n${output}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  return { child, sofar: () => output, result };
}

/** The text gdb printed between two `echo` markers (the first `from`, then the next `to`). */
export function between(output: string, from: string, to: string): string {
  const a = output.indexOf(from);
  const b = a < 0 ? -1 : output.indexOf(to, a + from.length);
  if (a < 0 || b < 0) throw new Error(`markers ${from}/${to} not in gdb output:\n${output}`);
  return output.slice(a + from.length, b);
}

/**
 * A loopback hook gdb calls with `shell` (gdb waits for it): for each call, the test runs
 * `check(label)` (typically SDK reads while gdb holds the VM stopped), records its result under the
 * label, and only then lets gdb go on. `command(label)` is the gdb command that calls it.
 */
export interface TestHook<T> {
  command(label: string): string;
  results: Map<string, T>;
  errors: Map<string, unknown>;
  close(): void;
}

export async function startTestHook<T>(check: (label: string) => Promise<T>, timeoutMs = 20_000): Promise<TestHook<T>> {
  const results = new Map<string, T>();
  const errors = new Map<string, unknown>();
  const server = createServer((socket) => {
    let label = "";
    socket.on("data", (d: Buffer) => {
      label += d.toString();
      if (!label.endsWith("\n")) return;
      const name = label.trim();
      void check(name).then(
        (r) => {
          results.set(name, r);
          socket.end("go");
        },
        (e) => {
          errors.set(name, e);
          socket.end("failed");
        },
      );
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    results,
    errors,
    command: (name) =>
      `shell '${process.execPath}' -e 'const s=require("net").connect(${port},"127.0.0.1",()=>s.write("${name}\\n"));` +
      `s.on("data",()=>process.exit(0));setTimeout(()=>process.exit(1),${timeoutMs})'`,
    close: () => server.close(),
  };
}

/** Values of `PC=0x…` lines (from `echo PC=` + `output/x $pc`). */
export function pcLines(text: string): bigint[] {
  return text
    .split("\n")
    .map((l) => /^PC=(0x[0-9a-f]+)$/.exec(l.trim())?.[1])
    .filter((p): p is string => p !== undefined)
    .map((p) => BigInt(p));
}
