// The gdb side of the QEMU figures: a QEMU of its own running the same guest with its gdbstub on
// a free loopback TCP port, and one batch-mode gdb against it. The timings come from gdb itself:
// Python's time.perf_counter() read just before and just after the one command being measured,
// so gdb's start-up, the connection and the target-description download are not counted.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasExecutable, launchQemu, qemuArgsForGuest } from "../src/qemu";

/** gdb, or gdb-multiarch when that is what is installed. */
export function gdbExecutable(): string | undefined {
  return ["gdb", "gdb-multiarch"].find((g) => hasExecutable(g));
}

export interface GdbPeerFigures {
  /** 16 MiB `dump binary memory` from GPA `dumpGpa`, physical-memory mode. */
  dumpMib: number;
  dumpSeconds: number;
  /** `stepi <steps>`. */
  steps: number;
  stepiSeconds: number;
  /** The dump's first bytes (to check gdb read real guest memory). */
  dumpHead: Uint8Array;
  /** gdb's whole run (start-up, connect, both commands, detach), for reference. */
  gdbProcessSeconds: number;
}

export interface GdbPeerOptions {
  manifest: string;
  gdb: string;
  dumpGpa: bigint;
  dumpBytes: number;
  steps: number;
  /** Bound on the whole thing (QEMU start, boot, gdb run). */
  timeoutMs: number;
}

function killPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

interface PeerQemu {
  port: number;
  /** Stops QEMU by its PID (SIGTERM, SIGKILL after 2 s) and removes its files. */
  stop(): Promise<void>;
}

/** Starts QEMU with the guest and its gdbstub on a free loopback TCP port; resolves once the guest has booted. */
async function startPeerQemu(manifest: string, deadline: number): Promise<PeerQemu> {
  const { arch, args } = qemuArgsForGuest(manifest);
  if (arch !== "x86_64") throw new Error(`${manifest} is not an x86-64 guest`);
  let booted = false;
  let output = "";
  const qemu = await launchQemu({
    arch,
    args,
    paused: false,
    sharedMemory: false,
    gdbTcp: { host: "127.0.0.1", port: 0 },
    onOutput: (line) => {
      output = (output + line + "\n").slice(-4000);
      if (line.includes("running on vp")) booted = true;
    },
  });
  let exited = false;
  void qemu.exited.then(() => (exited = true));
  try {
    while (!booted) {
      if (exited) throw new Error(`the gdb peer's QEMU exited before the guest booted:\n${output.trim()}`);
      if (Date.now() > deadline) throw new Error(`the gdb peer's QEMU did not boot the guest in time:\n${output.trim()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { port: (qemu.gdb as { port: number }).port, stop: () => qemu.kill() };
  } catch (e) {
    await qemu.kill();
    throw e;
  }
}

/** Runs gdb with `args`; kills it (by its PID) at `deadline`. */
export function runGdb(gdb: string, args: string[], deadline: number): Promise<{ stdout: string; stderr: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(gdb, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const timer = setTimeout(() => killPid(child.pid, "SIGKILL"), Math.max(0, deadline - Date.now()));
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`gdb exited (${code ?? signal}):\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
      else resolve({ stdout, stderr, seconds });
    });
  });
}

/**
 * One QEMU, one gdb run: connect, physical-memory mode, time `dump binary memory` of
 * `dumpBytes` from `dumpGpa`; virtual mode again, a 10-step warm-up, time `stepi <steps>`; detach.
 */
export async function measureGdbPeer(options: GdbPeerOptions): Promise<GdbPeerFigures> {
  const deadline = Date.now() + options.timeoutMs;
  const qemu = await startPeerQemu(options.manifest, deadline);
  const dir = mkdtempSync(join(tmpdir(), "vmm-debug-bench-dump-"));
  try {
    const dumpFile = join(dir, "dump.bin");
    const start = `0x${options.dumpGpa.toString(16)}`;
    const end = `0x${(options.dumpGpa + BigInt(options.dumpBytes)).toString(16)}`;
    const py = (code: string) => ["-ex", `python ${code}`];
    const ex = (cmd: string) => ["-ex", cmd];
    const args = [
      "-batch",
      "-nx",
      ...ex("set pagination off"),
      ...ex("set confirm off"),
      ...ex("set architecture i386:x86-64"),
      ...ex(`target remote 127.0.0.1:${qemu.port}`),
      ...ex("maintenance packet Qqemu.PhyMemMode:1"),
      ...py("import time"),
      ...py("t0 = time.perf_counter()"),
      ...ex(`dump binary memory ${dumpFile} ${start} ${end}`),
      ...py('print("BENCH dump %.6f" % (time.perf_counter() - t0))'),
      // QEMU keeps the mode across commands (and connections): steps read memory at virtual PCs.
      ...ex("maintenance packet Qqemu.PhyMemMode:0"),
      ...ex("stepi 10"),
      ...py("t0 = time.perf_counter()"),
      ...ex(`stepi ${options.steps}`),
      ...py('print("BENCH stepi %.6f" % (time.perf_counter() - t0))'),
      ...ex("detach"),
    ];
    const run = await runGdb(options.gdb, args, deadline);
    const dump = /BENCH dump ([\d.]+)/.exec(run.stdout);
    const stepi = /BENCH stepi ([\d.]+)/.exec(run.stdout);
    if (!dump || !stepi) throw new Error(`gdb printed no timings:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`);
    const size = existsSync(dumpFile) ? statSync(dumpFile).size : 0;
    if (size !== options.dumpBytes) throw new Error(`gdb's dump has ${size} bytes, not ${options.dumpBytes}:\n${run.stderr.slice(-2000)}`);
    const head = new Uint8Array(readFileSync(dumpFile).subarray(0, 4096));
    return {
      dumpMib: options.dumpBytes / (1024 * 1024),
      dumpSeconds: Number(dump[1]),
      steps: options.steps,
      stepiSeconds: Number(stepi[1]),
      dumpHead: head,
      gdbProcessSeconds: run.seconds,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await qemu.stop();
  }
}
