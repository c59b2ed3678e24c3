// The VP worker: runs every VP of one VM, interleaved deterministically, until asked to stop.
import { parentPort, workerData } from "node:worker_threads";
import type { GuestBus, MachineRequest } from "./bus";
import { PortDevices } from "./devices";
import { bootMachine, type GuestImage } from "./image";
import { GuestMemory } from "./memory";
import {
  CTL_INVALIDATE_SEQ,
  CTL_RING,
  CTL_RING_SIZE,
  CTL_MAILBOX,
  CTL_STEP_COUNT,
  CTL_STEP_DONE,
  CTL_STEP_EXECUTED,
  CTL_STEP_EXIT,
  CTL_STEP_LINGER,
  CTL_STEP_REQ,
  CTL_STEP_SLOT,
  CTL_STEP_VP,
  CTL_STOP_REQUEST,
  STATS_EXIT_STATUS,
  STEP_EXIT,
  type FromWorker,
  type HaltReason,
  stepHalt,
  type ToWorker,
  type WorkerInit,
} from "./protocol";
import { SwBreakpointSet, X86Vp, type X86StepOutcome } from "./x86_64";
import { resetPlatform } from "./x86_64/msr";
import { VP_WORDS } from "./x86_64/vp-layout";
import { X86_REGISTER_WORDS } from "./x86-vp-state";

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

const memory = new GuestMemory(
  init.regions.map((r) => ({ gpa: r.gpa, size: r.size, name: r.name, bytes: new Uint8Array(r.buffer) })),
);
const regs = new Uint32Array(init.regs);
const ctl = new Int32Array(init.ctl);
const stats = new Float64Array(init.stats);
const image: GuestImage = {
  name: "boot",
  arch: init.image.arch,
  bytes: init.image.bytes,
  loadGpa: BigInt(init.image.loadGpa),
  entry: BigInt(init.image.entry),
  symbols: {},
};

const vps: X86Vp[] = [];
const retiredTotal = () => vps.reduce((sum, vp) => sum + vp.retired, 0);
const devices = new PortDevices(
  {
    consoleLine: (line, source) => post({ type: "console", line, source }),
    consoleBytes: (data, runs) => post({ type: "consoleBytes", data, runs }, [data.buffer as ArrayBuffer]),
  },
  retiredTotal,
);

const bus: GuestBus = {
  regions: memory.regions,
  regionAt: (gpa) => memory.regionAt(gpa),
  portOut: (p, size, value): MachineRequest => {
    const req = devices.portOut(p, size, value);
    // The exit status is published before the VP stops, so every stop path (run, step, the
    // step channel) finds it: STATS_EXIT_STATUS, NaN when the guest gave none.
    if (req === "powerOff") stats[STATS_EXIT_STATUS] = devices.exitStatus ?? Number.NaN;
    return req;
  },
  portIn: (p, size) => devices.portIn(p, size),
  noteGuestWrite: () => {},
  mmioRead: (gpa, size) => devices.mmioRead(gpa, size),
  mmioWrite: (gpa, size, value) => devices.mmioWrite(gpa, size, value),
};
/** The machine's software breakpoints, checked by every VP at instruction fetch. */
const swBreakpoints = new SwBreakpointSet();
for (let i = 0; i < init.vpCount; i++) vps.push(new X86Vp(regs, i, bus, swBreakpoints));

let seenInvalidations = Atomics.load(ctl, CTL_INVALIDATE_SEQ);

/** Drops decoded code for pages the server wrote since the last look. */
function processInvalidations(): void {
  const seq = Atomics.load(ctl, CTL_INVALIDATE_SEQ);
  if (seq === seenInvalidations) return;
  if (seq - seenInvalidations > CTL_RING_SIZE) {
    for (const vp of vps) vp.invalidateAllCode();
  } else {
    for (let i = seenInvalidations; i < seq; i++) {
      const page = ctl[CTL_RING + (i % CTL_RING_SIZE)];
      for (const vp of vps) vp.invalidateCode(page * 4096, 4096);
    }
    // The ring may have lapped while we read it: then we cannot trust what we read.
    if (Atomics.load(ctl, CTL_INVALIDATE_SEQ) - seenInvalidations > CTL_RING_SIZE) {
      for (const vp of vps) vp.invalidateAllCode();
    }
  }
  seenInvalidations = seq;
}

/** Reset: reload the image, put every VP in its boot state, forget all cached code. */
function resetMachine(): void {
  bootMachine(memory, regs, image, vps.length);
  devices.reset();
  resetPlatform(bus);
  stats[STATS_EXIT_STATUS] = Number.NaN;
  for (const vp of vps) {
    vp.invalidateAllCode();
    vp.flushTlb();
  }
}

/** Runs until a stop; returns why. */
function runUntilStop(): HaltReason {
  const quantum = init.quantum;
  for (let turn = 0; ; turn++) {
    if (Atomics.load(ctl, CTL_STOP_REQUEST) !== 0) return { kind: "requested" };
    // The running total, for a server watching progress (every 16 turns: a few microseconds of guest time).
    if ((turn & 15) === 0) stats[0] = retiredTotal();
    processInvalidations();
    let active = false;
    for (let i = 0; i < vps.length; i++) {
      const exit = vps[i].run(quantum);
      if (exit.kind === "budget") {
        active = true;
        continue;
      }
      if (exit.kind === "halted") continue;
      if (exit.kind === "reset") resetMachine();
      return { kind: "vp", vp: i, exit };
    }
    if (devices.watchdogExpired()) return { kind: "watchdog" };
    // Every VP sits in HLT: sleep until the server asks us to stop, instead of spinning (what the
    // console holds goes first; otherwise it goes once its first byte has waited a few ms).
    if (!active) {
      devices.flushRawConsole();
      Atomics.wait(ctl, CTL_STOP_REQUEST, 0, 20);
    } else devices.pollConsole();
  }
}

/** Records, after each instruction, which register words changed (the registers trace). */
function createChangeRecorder(vp: number) {
  const base = vp * VP_WORDS;
  const prev = regs.slice(base, base + X86_REGISTER_WORDS);
  let out = new Uint32Array(4096);
  out.set(prev); // the stream starts with the VP's words before the batch
  let used = X86_REGISTER_WORDS;
  return {
    afterStep(): void {
      if (used + 1 + 2 * X86_REGISTER_WORDS > out.length) {
        const bigger = new Uint32Array(out.length * 2);
        bigger.set(out.subarray(0, used));
        out = bigger;
      }
      const at = used++;
      let k = 0;
      for (let w = 0; w < X86_REGISTER_WORDS; w++) {
        const v = regs[base + w];
        if (v !== prev[w]) {
          prev[w] = v;
          out[used++] = w;
          out[used++] = v;
          k++;
        }
      }
      out[at] = k;
    },
    result: () => ({ buffer: out.buffer as ArrayBuffer, words: used }),
  };
}

/** Runs only VP `vp` for up to `count` instructions (see X86Vp.stepBatch), as both step paths do. */
function runBatch(vp: number, count: number, pcs: Uint32Array | null, afterStep: ((i: number) => void) | null): X86StepOutcome {
  processInvalidations();
  const out = vps[vp].stepBatch(count, pcs, afterStep, () => {
    processInvalidations();
    return Atomics.load(ctl, CTL_STOP_REQUEST) !== 0;
  });
  if (out.exit.kind === "reset") resetMachine();
  devices.flushConsole();
  stats[0] = retiredTotal();
  return out;
}

/** A batched step with a trace: answered by a "stepped" message carrying the trace buffers. */
function stepVp(msg: Extract<ToWorker, { type: "step" }>): void {
  const pcs = msg.trace === "none" ? null : new Uint32Array(2 * msg.count);
  const recorder = msg.trace === "registers" ? createChangeRecorder(msg.vp) : null;
  const out = runBatch(msg.vp, msg.count, pcs, recorder && recorder.afterStep);
  const transfer: ArrayBuffer[] = [];
  let changes: { buffer: ArrayBuffer; words: number } | undefined;
  if (pcs) transfer.push(pcs.buffer as ArrayBuffer);
  if (recorder) transfer.push((changes = recorder.result()).buffer);
  post(
    {
      type: "stepped",
      executed: out.executed,
      halt: stepHalt(msg.vp, out.exit, out.requested),
      halted: out.exit.kind === "halted",
      pcs: pcs?.buffer as ArrayBuffer | undefined,
      changes: changes?.buffer,
      changeWords: changes?.words,
    },
    transfer,
  );
}

/** Runs the step-channel request `seq` and publishes its answer. */
function serveStepChannel(seq: number): void {
  const out = runBatch(Atomics.load(ctl, CTL_STEP_VP), Atomics.load(ctl, CTL_STEP_COUNT), null, null);
  ctl[CTL_STEP_EXECUTED] = out.executed;
  ctl[CTL_STEP_EXIT] = STEP_EXIT.indexOf(out.requested ? "requested" : out.exit.kind);
  ctl[CTL_STEP_SLOT] = out.exit.kind === "hwBreakpoint" ? out.exit.slot : out.exit.kind === "swBreakpoint" ? out.exit.id : 0;
  Atomics.store(ctl, CTL_STEP_DONE, seq);
  Atomics.notify(ctl, CTL_STEP_DONE);
}

/** Most a worker lingers on the step channel after its last request, before it returns to its port. */
const LINGER_MS = 2;

/**
 * Answers step-channel requests while they keep coming (a debugger stepping), then returns to
 * the message port: after LINGER_MS without one, or at once when the server posts a message.
 * It spins rather than sleeping in Atomics.wait: on this project's VMs a sleeping thread takes
 * ~35 us to wake and a spinning one ~3 us, and a step is ~5 us. The flag handshake (LINGER
 * cleared, then the request checked again) means a request is never left waiting: the server
 * posts a "stepChannel" message whenever it sees the flag clear. The server uses the channel
 * only while no message is outstanding, so requests keep their order.
 */
function serveSteps(): void {
  const REQ = CTL_STEP_REQ;
  const DONE = CTL_STEP_DONE;
  const MAILBOX = CTL_MAILBOX;
  let deadline = performance.now() + LINGER_MS;
  Atomics.store(ctl, CTL_STEP_LINGER, 1);
  // Bounded: each turn answers a request or spins a little, and the clock ends the linger.
  for (let turns = 0; turns < 10_000_000; turns++) {
    const req = Atomics.load(ctl, REQ);
    if (req !== Atomics.load(ctl, DONE)) {
      serveStepChannel(req);
      deadline = performance.now() + LINGER_MS;
      continue;
    }
    if (Atomics.load(ctl, MAILBOX) !== 0) break;
    for (let spin = 0; spin < 1024 && Atomics.load(ctl, REQ) === req && Atomics.load(ctl, MAILBOX) === 0; spin++);
    if (performance.now() > deadline) break;
  }
  Atomics.store(ctl, CTL_STEP_LINGER, 0);
  const req = Atomics.load(ctl, REQ);
  if (req !== Atomics.load(ctl, DONE)) serveStepChannel(req);
}

port.on("message", (msg: ToWorker) => {
  Atomics.sub(ctl, CTL_MAILBOX, 1);
  try {
    switch (msg.type) {
      case "run": {
        const halt = runUntilStop();
        devices.flushConsole();
        stats[0] = retiredTotal();
        post({ type: "stopped", halt });
        break;
      }
      case "setDebug":
        vps[msg.vp].setDebug(msg.debug);
        break;
      case "swInsert":
        swBreakpoints.add(msg.breakpoint);
        break;
      case "swRemove":
        swBreakpoints.remove(msg.id);
        break;
      case "swClear":
        swBreakpoints.clear();
        break;
      case "flushTlb":
        vps[msg.vp].flushTlb();
        break;
      case "reset":
        resetMachine();
        break;
      case "step":
        stepVp(msg);
        break;
      case "stepChannel":
        serveSteps();
        break;
      case "consoleSync":
        devices.flushRawConsole();
        post({ type: "consoleSynced" });
        break;
    }
  } catch (e) {
    const err = e as Error;
    post({ type: "crashed", message: `${err.message}\n${err.stack ?? ""}` });
  }
});

stats[0] = 0;
stats[STATS_EXIT_STATUS] = Number.NaN;
