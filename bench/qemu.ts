// QEMU figures for `npm run bench`: our API against gdb on the same guest (the x86-64 demo guest
// booted with qemuArgsForGuest), in the same run.
//
// Our side: this file run with `--serve` is a server process (like bench/peer.ts) that launches
// QEMU with launchQemuVm (shared RAM file) and serves it; the bench process measures through
// gRPC + the SDK. Their side: bench/gdb-peer.ts, a second QEMU with `-gdb tcp:127.0.0.1:PORT`
// and a batch-mode gdb. The two QEMUs run one after the other, so they do not share the CPUs.
//
// What is timed:
// - qemu_read_memory_mibps: session.readMemory({gpa: 0x100000}, 16 MiB) with the VM stopped (after
//   Break), repeated for ~2 s after one warm-up read; wall time in the bench process.
//   gdb_dump_memory_mibps: `dump binary memory FILE 0x100000 0x1100000` with the VM stopped (gdb
//   stops it on connect), PhyMemMode on; time.perf_counter() inside gdb around that command only.
// - qemu_single_steps_per_s: single_step on VP 0, then one unary Resume per step for ~3 s or
//   20,000 steps. gdb_stepi_per_s: `stepi 2000` after `stepi 10`, timed inside gdb likewise.
// - gdb_bridge_qemu_stepi_per_s: the same gdb `stepi 2000` through the gdb bridge (src/gdb, in
//   this process) to our server's QEMU VM, timed inside gdb the same way (bench/gdb-bridge.ts).
// - qemu_stream_single_steps_per_s: over a Session stream, one Step of 1 per message, each
//   awaited, for ~3 s. qemu_batched_steps_per_s: three Steps of 10,000 with a PC trace.
// - qemu_stream_close_to_detached_p50_ms: a stream session stops the VM and arms a breakpoint,
//   then closes; time until GetVm shows the VM running with nobody attached (10 times).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { connect } from "../src/client";
import { hasExecutable, launchQemuVm, qemuArgsForGuest, qemuPackage } from "../src/qemu";
import { createVmmDebugServer, silentLogger } from "../src/server";
import { BRIDGE_STEPS, measureBridgeStepi } from "./gdb-bridge";
import { gdbExecutable, measureGdbPeer } from "./gdb-peer";

type Emit = (name: string, value: number, unit: string, extra?: Record<string, unknown>) => void;

const MIB = 1024 * 1024;
const MANIFEST = join(__dirname, "..", "guests", "build", "demo-x86_64.json");
const VM_ID = "qemu-demo";
const READ_GPA = 0x10_0000n;
const READ_BYTES = 16 * MIB;
const STREAM_BYTES = 64 * MIB;
const GDB_STEPS = 2000;
const BOOT_MS = 20_000;

/**
 * Bench entry: emits the QEMU figures, or qemu_skipped when QEMU or gdb is absent. Never throws.
 * Answers gdb_stepi_per_s when it was measured (the gdb_bridge section's baseline).
 */
export async function benchQemu(emit: Emit): Promise<number | undefined> {
  if (!hasExecutable("qemu-system-x86_64")) {
    emit("qemu_skipped", 0, "", { reason: `qemu-system-x86_64 not found (Debian package ${qemuPackage("x86_64")})` });
    return undefined;
  }
  const gdb = gdbExecutable();
  if (!gdb) {
    emit("qemu_skipped", 0, "", { reason: "gdb not found (Debian package gdb or gdb-multiarch)" });
    return undefined;
  }
  try {
    const ours = await measureOurs(gdb);
    const theirs = await measureGdbPeer({
      manifest: MANIFEST,
      gdb,
      dumpGpa: READ_GPA,
      dumpBytes: READ_BYTES,
      steps: GDB_STEPS,
      timeoutMs: 90_000,
    });
    // Both sides must have read the same guest bytes (the image is loaded at 0x100000).
    const image = readFileSync(join(__dirname, "..", "guests", "build", "demo-x86_64.bin")).subarray(0, 256);
    const same = (a: Uint8Array) => Buffer.from(a.subarray(0, image.length)).equals(image);
    if (!same(ours.head) || !same(theirs.dumpHead)) {
      throw new Error("the bytes read at 0x100000 are not the guest image (ours or gdb's)");
    }

    const gdbDump = theirs.dumpMib / theirs.dumpSeconds;
    const gdbSteps = theirs.steps / theirs.stepiSeconds;
    const ratio = (a: number, b: number) => Number((a / b).toPrecision(3));
    emit("qemu_read_memory_mibps", ours.readMibps, "MiB/s", { bytes: READ_BYTES, reads: ours.reads, vs_gdb: ratio(ours.readMibps, gdbDump), target_min_ratio: 30 });
    emit("qemu_read_memory_stream_64mib_mibps", ours.streamMibps, "MiB/s", { vs_gdb: ratio(ours.streamMibps, gdbDump) });
    emit("gdb_dump_memory_mibps", gdbDump, "MiB/s", { bytes: READ_BYTES, seconds: Number(theirs.dumpSeconds.toFixed(3)) });
    emit("qemu_single_steps_per_s", ours.stepsPerS, "steps/s", { steps: ours.steps, vs_gdb: ratio(ours.stepsPerS, gdbSteps), target_min_ratio: 1 });
    emit("gdb_stepi_per_s", gdbSteps, "steps/s", { steps: theirs.steps, seconds: Number(theirs.stepiSeconds.toFixed(3)) });
    const bridgeSteps = ours.bridge.steps / ours.bridge.stepiSeconds;
    emit("gdb_bridge_qemu_stepi_per_s", bridgeSteps, "steps/s", {
      steps: ours.bridge.steps,
      seconds: Number(ours.bridge.stepiSeconds.toFixed(3)),
      backend: "qemu",
      vs_gdb: ratio(bridgeSteps, gdbSteps),
      target_min_ratio: 0.7,
    });
    emit("qemu_stream_single_steps_per_s", ours.streamStepsPerS, "steps/s", { vs_gdb: ratio(ours.streamStepsPerS, gdbSteps), target_min_ratio: 1 });
    emit("qemu_batched_steps_per_s", ours.batchedStepsPerS, "steps/s", { count: 10_000, trace: "pc", vs_gdb: ratio(ours.batchedStepsPerS, gdbSteps), target_min_ratio: 1.5 });
    const sorted = [...ours.closeMs].sort((a, b) => a - b);
    emit("qemu_stream_close_to_detached_p50_ms", sorted[Math.floor(sorted.length / 2)], "ms", { max_ms: Number(sorted[sorted.length - 1].toFixed(1)), target_max: 100 });
    return gdbSteps;
  } catch (e) {
    // Not a missing tool: say so, mark the run failed, and let the rest of the bench finish.
    emit("qemu_failed", 0, "", { reason: (e as Error).message.split("\n")[0] });
    console.error(e);
    process.exitCode = 1;
    return undefined;
  }
}

interface OurFigures {
  readMibps: number;
  reads: number;
  streamMibps: number;
  stepsPerS: number;
  steps: number;
  head: Uint8Array;
  streamStepsPerS: number;
  batchedStepsPerS: number;
  closeMs: number[];
  bridge: { steps: number; stepiSeconds: number };
}

async function measureOurs(gdb: string): Promise<OurFigures> {
  const server = await startServerProcess();
  const client = connect(server.address);
  try {
    const session = await client.attach(VM_ID, { deadlineMs: 10_000, transport: "unary" });
    try {
      await session.break({ deadlineMs: 10_000 });
      const first = await session.resume({ deadlineMs: 10_000 }); // collects the Break
      if (first.kind !== "break") throw new Error(`the first stop was ${first.kind}, not break`);

      // Reads with the VM stopped, as gdb's are.
      const warm = await session.readMemory({ gpa: READ_GPA }, READ_BYTES, { deadlineMs: 30_000 });
      let reads = 0;
      const t0 = process.hrtime.bigint();
      const until = t0 + 2_000_000_000n;
      while (reads < 3 || process.hrtime.bigint() < until) {
        const data = await session.readMemory({ gpa: READ_GPA }, READ_BYTES, { deadlineMs: 30_000 });
        if (data.length !== READ_BYTES) throw new Error(`read ${data.length} bytes, not ${READ_BYTES}`);
        reads++;
      }
      const readMibps = (reads * READ_BYTES) / MIB / (Number(process.hrtime.bigint() - t0) / 1e9);

      const s0 = process.hrtime.bigint();
      const streamed = await client.readMemoryStream(VM_ID, { gpa: READ_GPA }, STREAM_BYTES, { deadlineMs: 60_000 });
      const streamMibps = streamed.length / MIB / (Number(process.hrtime.bigint() - s0) / 1e9);

      // Single steps: single_step stays armed on VP 0, one unary Resume per step.
      const noSlots = [null, null, null, null] as const;
      await session.setDebugState(0, { singleStep: true, breakpoints: [...noSlots] }, { deadlineMs: 10_000 });
      let steps = 0;
      const p0 = process.hrtime.bigint();
      const end = p0 + 3_000_000_000n;
      while (steps < 20_000 && process.hrtime.bigint() < end) {
        const stop = await session.resume({ deadlineMs: 10_000 });
        if (stop.kind !== "singleStep") throw new Error(`step ${steps} stopped with ${stop.kind}, not singleStep`);
        steps++;
      }
      const stepsPerS = steps / (Number(process.hrtime.bigint() - p0) / 1e9);
      await session.setDebugState(0, { singleStep: false, breakpoints: [...noSlots] }, { deadlineMs: 10_000 });
      await session.detach({ deadlineMs: 5000 });
      const streamed2 = await measureStreamSteps(client);
      // gdb through the bridge last: the VM runs released after the close-to-detached rounds,
      // and the bridge stops it on connect as gdb expects.
      const bridge = await measureBridgeStepi({ gdb, server: server.address, vm: VM_ID, steps: BRIDGE_STEPS, timeoutMs: 90_000 });
      return { readMibps, reads, streamMibps, stepsPerS, steps, head: warm.subarray(0, 4096), ...streamed2, bridge };
    } finally {
      await session.detach({ deadlineMs: 5000 }).catch(() => undefined);
    }
  } finally {
    client.close();
    await server.stop();
  }
}

/**
 * Over a Session stream: one Step of 1 per message, each awaited, for ~3 s; then batched Steps
 * of 10,000 with a PC trace (the loop runs inside the QEMU backend: one vCont step and one `g`
 * per instruction).
 */
async function measureStreamSteps(client: ReturnType<typeof connect>): Promise<{ streamStepsPerS: number; batchedStepsPerS: number; closeMs: number[] }> {
  const session = await client.attach(VM_ID, { deadlineMs: 10_000 });
  try {
    await session.break({ deadlineMs: 10_000 });
    await session.resume({ deadlineMs: 10_000 }); // collects the Break
    let steps = 0;
    const t0 = process.hrtime.bigint();
    while (steps < 20_000 && process.hrtime.bigint() - t0 < 3_000_000_000n) {
      const r = await session.step(0, { count: 1, trace: "none", deadlineMs: 10_000 });
      if (r.executed !== 1) throw new Error(`stream step ${steps} executed ${r.executed}`);
      steps++;
    }
    const streamStepsPerS = steps / (Number(process.hrtime.bigint() - t0) / 1e9);
    let executed = 0;
    const b0 = process.hrtime.bigint();
    for (let i = 0; i < 3; i++) {
      const r = await session.step(0, { count: 10_000, trace: "pc", deadlineMs: 60_000 });
      if (r.pcs.length !== r.executed) throw new Error(`a PC trace of ${r.pcs.length} for ${r.executed} steps`);
      executed += r.executed;
    }
    const batchedStepsPerS = executed / (Number(process.hrtime.bigint() - b0) / 1e9);
    await session.detach({ deadlineMs: 5000 });
    return { streamStepsPerS, batchedStepsPerS, closeMs: await measureCloseToReleased(client) };
  } finally {
    await session.detach({ deadlineMs: 5000 }).catch(() => undefined);
  }
}

/** Ten times: a stream session stops the VM and arms a breakpoint; time from close() until GetVm shows the VM released. */
async function measureCloseToReleased(client: ReturnType<typeof connect>): Promise<number[]> {
  const tick = BigInt((JSON.parse(readFileSync(MANIFEST, "utf8")) as { symbols: { tick: { gva: string } } }).symbols.tick.gva);
  const ms: number[] = [];
  for (let i = 0; i < 10; i++) {
    const s = await client.attach(VM_ID, { deadlineMs: 10_000 });
    await s.break({ deadlineMs: 10_000 });
    await s.setBreakpoint(0, tick, undefined, { deadlineMs: 10_000 });
    const t0 = process.hrtime.bigint();
    await s.close();
    for (let polls = 0; polls < 100_000; polls++) {
      const vm = await client.getVm(VM_ID, { deadlineMs: 10_000 });
      if (!vm.attached && vm.runState === "running") break;
    }
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return ms;
}

/** Starts this file with --serve in a child process; resolves to its gRPC address. */
async function startServerProcess(): Promise<{ address: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), __filename, "--serve"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end(); // the server process closes the VM (which kills its QEMU) and exits
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000); // QEMU's guard then kills QEMU
    await exited;
    clearTimeout(timer);
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the QEMU bench server did not start within ${BOOT_MS + 10_000} ms`)), BOOT_MS + 10_000);
      createInterface({ input: child.stdout! }).once("line", (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the QEMU bench server exited with ${code}`));
      });
    });
    return { address: (JSON.parse(line) as { vmm: string }).vmm, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The server process: QEMU with the demo guest (booted to its main loop), served on a loopback port. */
async function serve(): Promise<void> {
  const { arch, args } = qemuArgsForGuest(MANIFEST);
  let booted!: () => void;
  const bannerSeen = new Promise<void>((resolve) => (booted = resolve));
  const vm = await launchQemuVm({
    id: VM_ID,
    arch,
    args,
    onOutput: (line) => line.includes("running on vp") && booted(),
  });
  const close = async () => {
    await vm.close();
    process.exit(0);
  };
  process.stdin.resume();
  process.stdin.on("end", () => void close());
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    bannerSeen,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("the demo guest did not boot on QEMU")), BOOT_MS))),
  ]).catch(async (e) => {
    await vm.close();
    throw e;
  });
  clearTimeout(timer);
  // The figure is for the fast path: reads inside one RAM region, from the shared RAM file.
  const end = READ_GPA + BigInt(Math.max(READ_BYTES, STREAM_BYTES));
  if (!vm.fastMemory || !vm.memoryRegions.some((r) => r.gpa <= READ_GPA && end <= r.gpa + r.size)) {
    await vm.close();
    throw new Error(`QEMU's fast memory path does not cover GPA 0x${READ_GPA.toString(16)}-0x${end.toString(16)}: ${JSON.stringify(vm.memoryRegions, (_, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v))}`);
  }
  const server = createVmmDebugServer({ vms: [vm], logger: silentLogger });
  const { port } = await server.listen("127.0.0.1:0");
  process.stdin.removeAllListeners("end");
  process.stdin.on("end", async () => {
    await server.close();
    await close();
  });
  process.stdout.write(JSON.stringify({ vmm: `127.0.0.1:${port}` }) + "\n");
}

if (require.main === module && process.argv.includes("--serve")) {
  serve().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
