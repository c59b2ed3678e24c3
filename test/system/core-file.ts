// Reading a DumpMemory core file with the real tools: readelf (binutils) and gdb / gdb-multiarch.
import { spawn, spawnSync } from "node:child_process";

export function haveTool(binary: string): boolean {
  return spawnSync(binary, ["--version"], { stdio: "ignore" }).status === 0;
}

/** Runs a tool to completion (bounded), with its stdout and stderr together. */
export function run(binary: string, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${binary} did not finish within ${timeoutMs} ms; output so far:\n${output}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export interface ReadelfCore {
  type: string;
  machine: string;
  loads: { offset: bigint; vaddr: bigint; paddr: bigint; filesz: bigint; memsz: bigint }[];
  notes: string[];
  output: string;
}

/** `readelf -h -l -n -W` of a core file, parsed. */
export async function readelfCore(path: string): Promise<ReadelfCore> {
  const { code, output } = await run("readelf", ["-h", "-l", "-n", "-W", path]);
  if (code !== 0) throw new Error(`readelf failed (${code}):\n${output}`);
  const field = (name: string) => new RegExp(`^\\s*${name}:\\s+(.*)$`, "m").exec(output)?.[1].trim() ?? "";
  const loads = [...output.matchAll(/^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)/gm)].map((m) => ({
    offset: BigInt(m[1]),
    vaddr: BigInt(m[2]),
    paddr: BigInt(m[3]),
    filesz: BigInt(m[4]),
    memsz: BigInt(m[5]),
  }));
  const notes = [...output.matchAll(/^\s*CORE\s+0x[0-9a-f]+\s+(NT_\w+)/gm)].map((m) => m[1]);
  return { type: field("Type"), machine: field("Machine"), loads, notes, output };
}

/** Runs `gdb -batch` on a core file (no executable) with these commands. */
export async function gdbCore(binary: string, core: string, commands: string[], preamble: string[] = []): Promise<string> {
  const args = ["-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off"];
  for (const c of preamble) args.push("-ex", c);
  args.push("-ex", `core-file ${core}`);
  for (const c of commands) args.push("-ex", c);
  const { output } = await run(binary, args);
  return output;
}

/** A register's value in `info registers` output. */
export function register(text: string, name: string): bigint {
  const m = new RegExp(`^${name}\\s+0x([0-9a-f]+)`, "m").exec(text);
  if (!m) throw new Error(`no ${name} in gdb's output:\n${text}`);
  return BigInt("0x" + m[1]);
}

/** The quadwords `x/Ngx ADDR` printed. */
export function quadwords(text: string, address: bigint): bigint[] {
  const m = new RegExp(`^0x0*${address.toString(16)}:\\s+((?:0x[0-9a-f]+\\s*)+)$`, "m").exec(text);
  if (!m) throw new Error(`no x/gx line for 0x${address.toString(16)} in gdb's output:\n${text}`);
  return m[1].trim().split(/\s+/).map((v) => BigInt(v));
}

/** The text gdb printed between two `echo` markers. */
export function between(output: string, from: string, to: string): string {
  const a = output.indexOf(from);
  const b = a < 0 ? -1 : output.indexOf(to, a + from.length);
  if (a < 0 || b < 0) throw new Error(`markers ${from}/${to} not in gdb output:\n${output}`);
  return output.slice(a + from.length, b);
}
