// gdb through the gdb bridge (src/gdb) for `npm run bench`: the same `stepi N` that
// bench/gdb-peer.ts times against QEMU's own gdbstub, here against a bridge in the bench process
// whose SDK session (a Session stream) runs on a vmm-debug server in another process. Timed inside
// gdb the same way: Python's time.perf_counter() just before and just after `stepi N`, after a
// `stepi 10` warm-up, so gdb's start-up, the connection and target.xml are not counted.
//
// Two servers: this file with --serve (the embedded x86-64 demo machine, 2 VPs as in
// bench/peer.ts, left running after boot: the bridge stops it when gdb connects; the gdb_bridge
// section, here) and bench/qemu.ts --serve (QEMU; the qemu section calls measureBridgeStepi while
// its server runs). gdb steps thread 1 (VP 0); the other VP stays stopped.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { connect } from "../src/client";
import { createEmuMachine, loadGuestImage } from "../src/emu";
import { createGdbBridge } from "../src/gdb";
import { serveUntilStdinEnds } from "./child-server";
import { gdbExecutable, runGdb } from "./gdb-peer";

type Emit = (name: string, value: number, unit: string, extra?: Record<string, unknown>) => void;

export const BRIDGE_STEPS = 2000;

export interface BridgeStepiFigures {
  steps: number;
  stepiSeconds: number;
  /** gdb's whole run (start-up, connect, both stepi commands, detach), for reference. */
  gdbProcessSeconds: number;
}

/**
 * One gdb run against a bridge (in this process) to VM `vm` of the server at `server`: connect,
 * `stepi 10`, time `stepi <steps>`, detach (the VM runs on). The bridge and its client are closed
 * before this returns, and gdb is killed (by its PID) at the deadline.
 */
export async function measureBridgeStepi(options: { gdb: string; server: string; vm: string; steps: number; timeoutMs: number }): Promise<BridgeStepiFigures> {
  const deadline = Date.now() + options.timeoutMs;
  const client = connect(options.server);
  const log: string[] = [];
  const bridge = createGdbBridge({ client, vm: options.vm, log: (l) => log.push(l) });
  try {
    const { port } = await bridge.listen("127.0.0.1", 0);
    const py = (code: string) => ["-ex", `python ${code}`];
    const ex = (cmd: string) => ["-ex", cmd];
    const args = [
      "-batch",
      "-nx",
      ...ex("set pagination off"),
      ...ex("set confirm off"),
      ...ex("set architecture i386:x86-64"),
      ...ex(`target remote 127.0.0.1:${port}`),
      ...ex("stepi 10"),
      ...py("import time"),
      ...py("t0 = time.perf_counter()"),
      ...ex(`stepi ${options.steps}`),
      ...py('print("BENCH stepi %.6f" % (time.perf_counter() - t0))'),
      ...ex("detach"),
    ];
    const run = await runGdb(options.gdb, args, deadline);
    const stepi = /BENCH stepi ([\d.]+)/.exec(run.stdout);
    if (!stepi) throw new Error(`gdb (through the bridge) printed no timing:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}\n${log.join("\n")}`);
    return { steps: options.steps, stepiSeconds: Number(stepi[1]), gdbProcessSeconds: run.seconds };
  } finally {
    await bridge.close();
    client.close();
  }
}

/** Starts this file with --serve (the embedded demo machine, running); resolves to its vmm-debug address. */
async function startEmbeddedPeer(): Promise<{ vmm: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), __filename, "--serve"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end(); // the peer exits when its stdin closes
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the gdb bridge bench server did not start within 30 s")), 30_000);
      createInterface({ input: child.stdout! }).once("line", (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the gdb bridge bench server exited with ${code}`));
      });
    });
    return { vmm: (JSON.parse(line) as { vmm: string }).vmm, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * The gdb_bridge section: `stepi 2000` through the bridge on the embedded demo machine, against
 * gdb_stepi_per_s from the same run's qemu section (`gdbStepsPerS`, undefined when it did not run
 * or failed: then the ratio is absent). Emits gdb_bridge_skipped without gdb. Never throws.
 */
export async function benchGdbBridge(emit: Emit, gdbStepsPerS: number | undefined): Promise<void> {
  const gdb = gdbExecutable();
  if (!gdb) {
    emit("gdb_bridge_skipped", 0, "", { reason: "gdb not found (Debian package gdb or gdb-multiarch)" });
    return;
  }
  let peer: Awaited<ReturnType<typeof startEmbeddedPeer>> | undefined;
  try {
    peer = await startEmbeddedPeer();
    const r = await measureBridgeStepi({ gdb, server: peer.vmm, vm: "demo", steps: BRIDGE_STEPS, timeoutMs: 90_000 });
    const perS = r.steps / r.stepiSeconds;
    emit("gdb_bridge_stepi_per_s", perS, "steps/s", {
      steps: r.steps,
      seconds: Number(r.stepiSeconds.toFixed(3)),
      backend: "emu",
      ...(gdbStepsPerS === undefined
        ? { vs_gdb: null, note: "gdb_stepi_per_s not measured in this run (qemu section off, skipped or failed)" }
        : { vs_gdb: Number((perS / gdbStepsPerS).toPrecision(3)) }),
      target_min_ratio: 1.5,
    });
  } catch (e) {
    emit("gdb_bridge_failed", 0, "", { reason: (e as Error).message.split("\n")[0] });
    console.error(e);
    process.exitCode = 1;
  } finally {
    await peer?.stop();
  }
}

/**
 * The server process: the embedded demo machine (2 VPs), booted into its loop and left running
 * (the bridge stops it when gdb connects), served on a loopback port until stdin closes.
 */
async function serve(): Promise<void> {
  const image = loadGuestImage(join(__dirname, "..", "guests", "build", "demo-x86_64.json"));
  const vm = await createEmuMachine({ id: "demo", image, vpCount: 2 });
  for (let i = 0; i < 200; i++) {
    const b = await vm.readMemory({ kind: "gpa", gpa: image.symbols.counter.gpa }, 8);
    if (new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) > 1000n) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await serveUntilStdinEnds(vm);
}

if (require.main === module && process.argv.includes("--serve")) {
  serve().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
