// `npm run bench`: one JSON object per line {"name","value","unit"} for every figure, measured
// against a server in a second process; the bare grpc-js floor is measured in the same pair.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { connect, type Session, type SoftwareBreakpointAddress } from "../src/client";
import { existsSync } from "node:fs";
import { createEmuMachine, loadGuestImage } from "../src/emu";
import { BreakpointSize, BreakpointType } from "../src/core/types";
import { measureFloor, percentile } from "./floor";
import { benchGdbBridge } from "./gdb-bridge";
import { benchDump } from "./dump";
import { benchFairness } from "./fairness";
import { benchLoad } from "./load";
import { benchQemu } from "./qemu";

const MIB = 1024 * 1024;
const manifest = join(__dirname, "..", "guests", "build", "demo-x86_64.json");
const image = loadGuestImage(manifest);

/** VMM_DEBUG_BENCH_ONLY=mips,sw_breakpoints runs only those sections (default: every section). */
const ONLY = process.env.VMM_DEBUG_BENCH_ONLY?.split(",").map((s) => s.trim()).filter((s) => s !== "");
const SECTIONS = ["server", "session_stream", "stream_read", "sw_breakpoints", "mips", "load", "fairness", "qemu", "gdb_bridge", "dump"] as const;
const want = (section: (typeof SECTIONS)[number]) => ONLY === undefined || ONLY.includes(section);

function emit(name: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ name, value: Number(value.toPrecision(4)), unit, ...extra }) + "\n");
}

/** Starts bench/peer.ts in a child process; resolves to its addresses. */
async function startPeer() {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), join(__dirname, "peer.ts")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("bench peer did not start within 30 s")), 30_000);
    createInterface({ input: child.stdout! }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once("exit", (code) => reject(new Error(`bench peer exited with ${code}`)));
  });
  const addresses = JSON.parse(line) as { floor: string; vmm: string };
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.stdin!.end(); // the peer exits when its stdin closes
      setTimeout(() => child.kill(), 5000).unref();
    });
  return { ...addresses, stop };
}

async function timeLoop(count: number, body: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    await body();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return samples;
}

/** Runs `body` repeatedly for about `seconds` (and at most `maxCount` times); returns operations per second. */
async function rate(seconds: number, maxCount: number, body: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  let n = 0;
  while (n < maxCount && process.hrtime.bigint() < end) {
    await body();
    n++;
  }
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function benchServer(address: string, echoP50: number): Promise<void> {
  const client = connect(address);
  const session: Session = await client.attach("demo", { transport: "unary" });
  try {
    // The peer stopped the demo VM after boot (see bench/peer.ts): nothing to break.
    await timeLoop(200, () => session.getVpState(0));
    const rtt = await timeLoop(3000, () => session.getVpState(0));
    const p50 = percentile(rtt, 50);
    emit("get_vp_state_rtt_p50_us", p50, "us", { vs_echo_floor: Number((p50 / echoP50).toFixed(2)), target_max_ratio: 1.3 });
    emit("get_vp_state_rtt_p99_us", percentile(rtt, 99), "us");

    const unary = await rate(3, 200, () => session.readMemory({ gpa: 0n }, 4 * MIB));
    emit("read_memory_unary_4mib_mibps", unary * 4, "MiB/s");

    await benchRun(session);
  } finally {
    await session.detach().catch(() => undefined);
    client.close();
  }
}

async function benchStream(address: string, streamFloor: number, wideFloor: number): Promise<void> {
  const client = connect(address);
  // Hold the guest stopped while reading, so it does not take a core from the figure.
  const holder = await client.attach("demo", { transport: "unary" });
  await holder.break();
  try {
    await client.readMemoryStream("demo", { gpa: 0n }, 16 * MIB); // warm-up
    const t0 = process.hrtime.bigint();
    const data = await client.readMemoryStream("demo", { gpa: 0n }, 256 * MIB);
    const mibps = data.length / MIB / (Number(process.hrtime.bigint() - t0) / 1e9);
    emit("read_memory_stream_256mib_mibps", mibps, "MiB/s", {
      vs_stream_floor: Number((mibps / streamFloor).toFixed(2)),
      target_min_ratio: 0.8,
      vs_same_window_floor: Number((mibps / wideFloor).toFixed(2)),
    });
  } finally {
    await holder.detach().catch(() => undefined);
    client.close();
  }
}

async function benchRun(session: Session): Promise<void> {
  // Single steps through the SDK: session.step() keeps single-step on between steps, so each
  // step is one Resume.
  const steps = await rate(3, 20_000, () => session.step(0));
  emit("single_steps_per_s", steps, "steps/s");

  // Hardware breakpoint hits: an execute breakpoint on `tick`, one Resume per hit.
  await session.setBreakpoint(0, image.symbols.tick.gva, 0);
  const hits = await rate(3, 20_000, () => session.resume());
  emit("hw_breakpoint_hits_per_s", hits, "hits/s");
  await session.clearBreakpoint(0, 0);
}

/**
 * The Session stream (the SDK's default transport) against the bare bidi ping-pong floor: one
 * operation per message, each awaited; batched steps; breakpoint hits with 0 and 16 observers.
 */
async function benchSessionStream(address: string, pingPongP50: number): Promise<void> {
  const client = connect(address);
  const session = await client.attach("demo");
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  const stepFloor = 1e6 / pingPongP50;
  try {
    // Stop the guest if an earlier section's Detach let it run, and collect the Break's stop.
    if ((await client.getVm("demo")).runState === "running") {
      await session.break();
      await session.resume();
    }
    await timeLoop(200, () => session.getVpState(0));
    const rtt = await timeLoop(3000, () => session.getVpState(0));
    const p50 = percentile(rtt, 50);
    emit("stream_get_vp_state_rtt_p50_us", p50, "us", { vs_pingpong_floor: ratio(p50, pingPongP50), target_max_ratio: 1.5 });

    await session.step(0, { count: 1, trace: "none" });
    const single = await rate(3, 50_000, () => session.step(0, { count: 1, trace: "none" }));
    emit("stream_single_steps_per_s", single, "steps/s", { vs_pingpong_floor_rate: ratio(single, stepFloor), target_min_ratio: 0.7 });

    let executed = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 10 && (i < 3 || process.hrtime.bigint() - t0 < 3_000_000_000n); i++) {
      const r = await session.step(0, { count: 100_000, trace: "pc" });
      if (r.pcs.length !== r.executed) throw new Error(`a PC trace of ${r.pcs.length} for ${r.executed} steps`);
      executed += r.executed;
    }
    const batched = executed / (Number(process.hrtime.bigint() - t0) / 1e9);
    emit("batched_steps_per_s", batched, "steps/s", { count: 100_000, trace: "pc", target_min: 1_000_000 });

    // Breakpoint hits: an execute breakpoint on `tick`, resume() per hit (a resume message, then
    // the pushed stop). Then the same with 16 observers reading the VM's event feed.
    await session.setBreakpoint(0, image.symbols.tick.gva, 0);
    const hits0 = await rate(3, 20_000, () => session.resume());
    emit("stream_hw_breakpoint_hits_per_s", hits0, "hits/s", { observers: 0 });
    // 16 observers in another process (as other programs would be), subscribed before timing.
    const observers = await startObservers(address, "demo", 16, () => session.resume());
    const hits16 = await rate(3, 20_000, () => session.resume());
    const seen = await observers.stop();
    emit("stream_hw_breakpoint_hits_per_s_16_observers", hits16, "hits/s", {
      observers: 16,
      vs_no_observers: ratio(hits16, hits0),
      target_min_ratio: 0.9,
      stops_seen_per_observer_min: Math.min(...seen.stopped),
      gaps: seen.gaps,
    });
    await session.clearBreakpoint(0, 0);

  } finally {
    await session.detach().catch(() => undefined);
  }
  try {
    // Closing a stream detaches at once: time from close() until GetVm shows the VM running with
    // no session (polled back to back, each poll a unary round trip).
    const closeMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const s = await client.attach("demo");
      await s.break();
      await s.setBreakpoint(0, image.symbols.tick.gva, 0);
      const t1 = process.hrtime.bigint();
      await s.close();
      for (let polls = 0; polls < 100_000; polls++) {
        const vm = await client.getVm("demo");
        if (!vm.attached && vm.runState === "running") break;
      }
      closeMs.push(Number(process.hrtime.bigint() - t1) / 1e6);
    }
    emit("stream_close_to_detached_p50_ms", percentile(closeMs, 50), "ms", { max_ms: Number(Math.max(...closeMs).toFixed(1)), target_max: 100 });
  } finally {
    client.close();
  }
}

/**
 * `count` software breakpoint addresses the demo guest never executes (VP 0's stack page, 4 bytes
 * apart), half by GVA for every VP and half by GPA, so both lookups hold `count / 2` entries.
 */
function idleBreakpoints(count: number): SoftwareBreakpointAddress[] {
  const stacks = image.symbols.stacks;
  return Array.from({ length: count }, (_, i) => (i % 2 === 0 ? { gva: stacks.gva + BigInt(4 * i) } : { gpa: stacks.gpa + BigInt(4 * i) }));
}

/**
 * Software breakpoint hits on the Session stream: one at `tick` for VP 0, resume() per hit, with
 * that one armed and with 999 more armed where the guest never executes. The two alternate in
 * four rounds of a second each, so drift in the machine does not fall on one of them.
 */
async function benchSoftwareBreakpoints(address: string): Promise<void> {
  const client = connect(address);
  const session = await client.attach("demo");
  try {
    // The peer stops the VM after boot; an earlier section's Detach may have let it run.
    if ((await client.getVm("demo")).runState === "running") {
      await session.break();
      await session.resume(); // reports the Break
    }
    const tick = await session.insertSoftwareBreakpoint({ gva: image.symbols.tick.gva, vp: 0 });
    await rate(0.5, 20_000, () => session.resume()); // warm-up
    let one = 0;
    let many = 0;
    let idle: { id: number }[] = [];
    const arm = async () => {
      idle = await Promise.all(idleBreakpoints(999).map((a) => session.insertSoftwareBreakpoint(a)));
      if ((await session.listSoftwareBreakpoints()).length !== 1000) throw new Error("expected 1,000 software breakpoints armed");
    };
    const disarm = () => Promise.all(idle.map(({ id }) => session.removeSoftwareBreakpoint(id)));
    const ROUNDS = 4;
    for (let round = 0; round < ROUNDS; round++) {
      // Each order twice, so neither figure always runs second.
      if (round % 2 === 0) {
        one += await rate(1, 20_000, () => session.resume());
        await arm();
        many += await rate(1, 20_000, () => session.resume());
      } else {
        many += await rate(1, 20_000, () => session.resume());
        await disarm();
        one += await rate(1, 20_000, () => session.resume());
      }
    }
    const hits = (await session.listSoftwareBreakpoints()).find((b) => b.id === tick.id)?.hitCount ?? 0;
    emit("sw_breakpoint_hits_per_s", one / ROUNDS, "hits/s", { armed: 1 });
    emit("sw_breakpoint_hits_per_s_1000_armed", many / ROUNDS, "hits/s", {
      armed: 1000,
      vs_1_armed: Number((many / one).toFixed(3)),
      target_min_ratio: 0.95,
      hit_count: hits,
    });
  } finally {
    await session.detach().catch(() => undefined);
    client.close();
  }
}

/** Starts bench/observers.ts; `poke` makes events until every observer has seen one. */
async function startObservers(address: string, vm: string, count: number, poke: () => Promise<unknown>) {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), join(__dirname, "observers.ts"), address, vm, String(count)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let ready = false;
  const first = lines.next().then((l) => (ready = l.value === "ready"));
  for (let i = 0; i < 10_000 && !ready; i++) {
    await poke();
    await Promise.race([first, new Promise((r) => setTimeout(r, 20))]);
  }
  if (!ready) throw new Error("the observers did not subscribe");
  return {
    async stop(): Promise<{ stopped: number[]; gaps: number }> {
      child.stdin!.end();
      const line = await lines.next();
      return JSON.parse(String(line.value)) as { stopped: number[]; gaps: number };
    },
  };
}

async function benchMips(): Promise<void> {
  const vm = await createEmuMachine({ id: "mips", image, vpCount: 1 });
  try {
    await new Promise((r) => setTimeout(r, 500)); // boot and warm the decode cache
    await vm.halt();
    /** MIPS over `ms` of running (the VM is stopped before and after). */
    const mips = async (ms: number) => {
      const before = vm.instructionsRetired();
      const t0 = process.hrtime.bigint();
      await vm.resume();
      await new Promise((r) => setTimeout(r, ms));
      await vm.halt();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      return (vm.instructionsRetired() - before) / seconds / 1e6;
    };
    const unarmed = await mips(3000);
    emit("emu_mips_demo", unarmed, "MIPS", { vps: 1 });
    if (want("sw_breakpoints")) {
      // The same guest with 1,000 software breakpoints armed where it never executes: the
      // interpreter checks them per decoded block, so the figure must stay close.
      const sw = vm.softwareBreakpoints;
      for (const a of idleBreakpoints(1000)) {
        await sw.insert("gpa" in a ? { kind: "gpa", gpa: a.gpa } : { kind: "gva", gva: a.gva }, false);
      }
      const armed = await mips(3000);
      emit("emu_mips_demo_1000_sw_breakpoints", armed, "MIPS", {
        vps: 1,
        armed: sw.list().length,
        vs_unarmed: Number((armed / unarmed).toFixed(3)),
        target_min_ratio: 0.9,
      });
    }
  } finally {
    await vm.close();
  }
}

/**
 * Compiled C from the corpus (guests/c, -O2): `emu_mips_c` with no debugger, `emu_mips_c_4hw`
 * with four execute slots armed where the program never goes, `emu_mips_c_1000sw` with 1,000
 * software breakpoints there. The program's pass count (corpus_passes) is raised so it computes
 * for the whole run; the three settings alternate in rounds after a warm-up, each figure is the
 * median of its rounds. VMM_DEBUG_BENCH_C_MANIFEST names another manifest.
 */
async function benchMipsC(): Promise<void> {
  const path = process.env.VMM_DEBUG_BENCH_C_MANIFEST ?? join(__dirname, "..", "guests", "build", "c-crc32-O2.json");
  if (!existsSync(path)) {
    process.stderr.write(`emu_mips_c skipped: ${path} is not built (npm run guests)\n`);
    return;
  }
  const prog = loadGuestImage(path);
  const passes = prog.symbols.corpus_passes;
  const stackTop = prog.symbols.crt0_stack_top;
  if (passes === undefined || stackTop === undefined) throw new Error(`${path}: no corpus_passes or crt0_stack_top symbol`);
  const vm = await createEmuMachine({ id: "mips-c", image: prog, vpCount: 1, startRunning: false });
  try {
    const count = new Uint8Array(4);
    new DataView(count.buffer).setInt32(0, 0x7fffffff, true);
    await vm.writeMemory({ kind: "gpa", gpa: passes.gpa }, count);
    /** Instructions per wall second, and per second of this process's CPU time (the VP's worker thread, nearly all of it). */
    const cpuMips: number[] = [];
    const mips = async (ms: number) => {
      const before = vm.instructionsRetired();
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await vm.resume();
      await new Promise((r) => setTimeout(r, ms));
      await vm.halt();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      if (vm.runState() !== "stopped") throw new Error(`the C guest stopped running (${vm.runState()})`);
      const n = vm.instructionsRetired() - before;
      cpuMips.push(n / ((cpu.user + cpu.system) / 1e6) / 1e6);
      return n / seconds / 1e6;
    };
    await mips(1500); // boot, decode and warm the JIT
    // Where the program never executes: its stack (below crt0_stack_top).
    const idle = (i: number) => stackTop.gpa - 0x8000n + BigInt(8 * i);
    const hw = {
      singleStep: false,
      breakpoints: [0, 1, 2, 3].map((i) => ({ address: idle(i), type: BreakpointType.Execute, size: BreakpointSize.Byte })),
    };
    const none = { singleStep: false, breakpoints: [null, null, null, null] };
    const sw = vm.softwareBreakpoints;
    const rounds = 5;
    const plain: number[] = [];
    const hw4: number[] = [];
    const sw1000: number[] = [];
    const cpuOf: number[][] = [[], [], []];
    const take = (k: number) => cpuOf[k].push(cpuMips[cpuMips.length - 1]);
    for (let round = 0; round < rounds; round++) {
      plain.push(await mips(1000));
      take(0);
      await vm.setDebugState(0, hw);
      hw4.push(await mips(1000));
      take(1);
      await vm.setDebugState(0, none);
      for (let i = 0; i < 1000; i++) {
        const a = idle(16 + i);
        await sw.insert(i % 2 === 0 ? { kind: "gpa", gpa: a } : { kind: "gva", gva: a }, false);
      }
      sw1000.push(await mips(1000));
      take(2);
      await sw.clear();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const r1 = (x: number) => Number(x.toFixed(1));
    const base = median(plain);
    const baseCpu = median(cpuOf[0]);
    // per_cpu_s: the same instructions per second of CPU time, which a loaded machine disturbs less.
    emit("emu_mips_c", base, "MIPS", { vps: 1, guest: prog.name, rounds: plain.map(r1), per_cpu_s: r1(baseCpu), target_min: 100 });
    const h = median(hw4);
    const hCpu = median(cpuOf[1]);
    emit("emu_mips_c_4hw", h, "MIPS", {
      vps: 1, guest: prog.name, vs_unarmed: Number((h / base).toFixed(3)), per_cpu_s: r1(hCpu), per_cpu_s_vs_unarmed: Number((hCpu / baseCpu).toFixed(3)), target_min_ratio: 0.9,
    });
    const s1 = median(sw1000);
    const sCpu = median(cpuOf[2]);
    emit("emu_mips_c_1000sw", s1, "MIPS", {
      vps: 1, guest: prog.name, vs_unarmed: Number((s1 / base).toFixed(3)), per_cpu_s: r1(sCpu), per_cpu_s_vs_unarmed: Number((sCpu / baseCpu).toFixed(3)), target_min_ratio: 0.9,
    });
  } finally {
    await vm.close();
  }
}

async function main(): Promise<void> {
  if (ONLY?.some((s) => !(SECTIONS as readonly string[]).includes(s))) {
    throw new Error(`VMM_DEBUG_BENCH_ONLY names unknown sections (known: ${SECTIONS.join(", ")})`);
  }
  const peer = want("server") || want("session_stream") || want("stream_read") || want("sw_breakpoints") ? await startPeer() : undefined;
  try {
    if (peer && (want("server") || want("session_stream") || want("stream_read"))) {
      const floor = await measureFloor(peer.floor, 3000, 256);
      emit("grpc_echo_rtt_p50_us", floor.echoP50Us, "us");
      emit("grpc_echo_rtt_p99_us", floor.echoP99Us, "us");
      emit("grpc_bidi_pingpong_rtt_p50_us", floor.pingPongP50Us, "us");
      emit("grpc_stream_mibps", floor.streamMibps, "MiB/s");
      // The SDK opens an 8 MiB HTTP/2 receive window; the same bare stream with that window:
      const wide = await measureFloor(peer.floor, 10, 256, { "grpc-node.flow_control_window": 8 * MIB });
      emit("grpc_stream_8mib_window_mibps", wide.streamMibps, "MiB/s");
      const runTarget = (0.7 * 1e6) / floor.echoP50Us;
      emit("run_control_target_per_s", runTarget, "ops/s", { rule: "0.7 x (1 s / echo p50)" });
      if (want("server")) await benchServer(peer.vmm, floor.echoP50Us);
      if (want("session_stream")) await benchSessionStream(peer.vmm, floor.pingPongP50Us);
      if (want("stream_read")) await benchStream(peer.vmm, floor.streamMibps, wide.streamMibps);
    }
    if (peer && want("sw_breakpoints")) await benchSoftwareBreakpoints(peer.vmm);
  } finally {
    await peer?.stop();
  }
  if (want("mips") || want("sw_breakpoints")) await benchMips();
  if (want("mips")) await benchMipsC();
  if (want("load")) await benchLoad(emit);
  if (want("fairness")) await benchFairness(emit);
  // qemu also measures gdb through the bridge to its QEMU VM (gdb_bridge_qemu_stepi_per_s);
  // gdb_bridge is the embedded machine through the bridge, against the qemu section's gdb_stepi_per_s.
  const gdbStepsPerS = want("qemu") && process.env.VMM_DEBUG_BENCH_QEMU !== "0" ? await benchQemu(emit) : undefined;
  if (want("gdb_bridge")) await benchGdbBridge(emit, gdbStepsPerS);
  if (want("dump")) await benchDump(emit);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
