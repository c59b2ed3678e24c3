// The request fuzzer: mutated requests for every DebugService / VmService RPC (and every Session
// stream operation) sent as raw bytes at a live server in a child process, checking that
// - the server stays up (the process lives; ListVms answers after every batch, Health every tenth);
// - every answer is OK or a status carrying our ErrorInfo (anything else is a crash, reported
//   with the request's bytes); grpc-js's own refusals of bytes it cannot decode or that are too
//   large (before any handler runs) are counted apart;
// - no refused request changes a VM: requests go out in batches with the VMs stopped; a batch in
//   which nothing may change a VM (refusals and reads only) must leave both VMs' snapshots equal;
//   the refusals of any other batch wait in a pool and are sent again as a batch of refusals
//   after the VMs are put back (a Resume, Detach or Attach alone), and checked so;
// - every attach/control request the server decoded wrote exactly one audit line, whose outcome
//   is the status the client got.
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import type { DebuggerVpState } from "../../gen/vmm/debug/v1/types_pb";
import { connect, VmmDebugError, type VmmDebugClient } from "../../src/client";
import { STATUS_DETAILS_KEY, decodeStatusDetails, statusFromWire } from "../../src/wire";
import { image } from "../integration/harness";
import { CHUNK_BYTES, SCRATCH_GPA, WINDOWS, chunkAddress, type AuditTuple, type FromChild, type ToChild, type VmDigest } from "./fuzz-server";
import { AUDITED_RPCS, OPERATIONS, createTargets, generateRequest, type FuzzRequest, type GenContext, type Target } from "./requests";
import { hex } from "./wire-mutator";

export interface FuzzOptions {
  seed: number;
  count: number;
  /** Unary requests in flight at once. Default 32. */
  concurrency?: number;
  /** Requests per batch (one state check each). Default 96. */
  batch?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A reply that is neither OK nor a proper refusal, or a server that stopped answering. */
export interface Crash {
  index: number;
  lane: string;
  rpc: string;
  what: string;
  mutations: string[];
  requestHex: string;
}

/** A refused request after which a VM was not as before. */
export interface StateChange {
  indexes: number[];
  rpcs: string[];
  diff: string;
  requestHex: string[];
}

export interface FuzzSummary {
  seed: number;
  requests: number;
  ok: number;
  /** Refused with a status carrying our ErrorInfo. */
  refused: number;
  /** Refused by grpc-js before any handler ran: undecodable bytes (INTERNAL) or over the size limit. */
  refusedUndecoded: number;
  /** Of those, requests to attach/control RPCs (which therefore wrote no audit line). */
  undecodedControl: number;
  /** Resumes (and event watches) that ended at their deadline while the VM ran or no event came. */
  deadlines: number;
  /** Stream-lane requests answered by the end of the stream (their own, or another request's doing). */
  streamEnds: number;
  crashes: Crash[];
  /** Snapshot comparisons that covered refused requests, and the refusals they covered. */
  stateChecks: number;
  refusalsChecked: number;
  /** Refused in a batch where something changed the VM, but OK when sent again on their own. */
  refusalsDependent: number;
  /** Refused in their batch, but neither refused nor OK when sent again (their stream had ended). */
  refusalsUnchecked: number;
  stateChanges: StateChange[];
  auditLines: number;
  auditMismatches: string[];
  restores: number;
  replayed: number;
  serverWarnings: string[];
  reasons: Record<string, number>;
  seconds: number;
  perSecond: number;
}

type Outcome =
  | { kind: "ok" }
  | { kind: "refused"; code: number; reason: string }
  | { kind: "undecoded"; code: number; details: string }
  | { kind: "deadline" }
  | { kind: "streamEnd"; decoded: boolean }
  /** A stream-lane request not sent: the stream had ended earlier in its batch. */
  | { kind: "unsent" }
  | { kind: "crash"; what: string };

interface Sent {
  req: FuzzRequest;
  outcome: Outcome;
  /** The session an OK Attach opened (detached again by the restore). */
  opened?: string;
}

/** An audit line the run expects: exact outcome, any outcome, or one that may be missing. */
interface Expect {
  rpc: string;
  outcome?: string;
  optional?: boolean;
}

/** RPCs that let a VM run, or end or open a session. */
const RUN_RPCS = new Set(["Resume", "Detach", "Attach"]);
/** Refusal reasons that often depend on what other requests of the batch did. */
const DEPENDENT_REASONS = new Set([
  "GVA_NOT_MAPPED",
  "GVA_NON_CANONICAL",
  "SESSION_MISMATCH",
  "NOT_ATTACHED",
  "VM_RUNNING",
  "SOFTWARE_BREAKPOINT_NOT_FOUND",
  "RESUME_IN_PROGRESS",
  "SESSION_CONFLICT",
]);
/** Batches per cycle: one of Session stream requests, one of RUN_RPCS, the rest unary requests. */
const BATCH_CYCLE = 24;

const VM = "fuzz";
const STREAM_VM = "stream";
const SESSION_PATH = "/vmm.debug.v1.DebugService/Session";
const identity = (b: Buffer) => b;
const MIB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The server child.

class ServerChild {
  private nextId = 1;
  private waiters = new Map<number, (msg: FromChild) => void>();
  exited: string | undefined;
  private onExit: ((why: string) => void)[] = [];

  private constructor(private readonly proc: ChildProcess) {
    proc.on("message", (msg: FromChild) => {
      if ("id" in msg) {
        const w = this.waiters.get(msg.id);
        this.waiters.delete(msg.id);
        w?.(msg);
      }
    });
    proc.on("exit", (code, signal) => {
      this.exited = `the server process exited (code ${code}, signal ${signal})`;
      for (const f of this.onExit) f(this.exited);
    });
  }

  static async start(): Promise<{ child: ServerChild; port: number }> {
    const proc = fork(join(__dirname, "fuzz-server.ts"), [], {
      execArgv: ["--require", require.resolve("tsx/cjs")],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const child = new ServerChild(proc);
    const port = await new Promise<number>((resolve, reject) => {
      proc.on("message", (msg: FromChild) => msg.type === "ready" && resolve(msg.port));
      child.onExit.push((why) => reject(new Error(why)));
    });
    return { child, port };
  }

  request<T extends FromChild>(type: "snapshot" | "canonical"): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiters.set(id, resolve as (m: FromChild) => void);
      this.onExit.push((why) => reject(new Error(why)));
      this.proc.send({ type, id } satisfies ToChild);
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
    this.proc.send({ type: "stop" } satisfies ToChild);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Classifying what came back.

/** A failed call's status: our refusal (with ErrorInfo), grpc-js's refusal of the bytes, or a crash. */
function classifyStatus(code: number, details: string, trailer: grpc.Metadata | undefined): Outcome {
  const raw = trailer?.get(STATUS_DETAILS_KEY)[0];
  const info = raw instanceof Buffer ? decodeStatusDetails(raw) : undefined;
  if (info?.domain === "vmm.debug" && info.reason && info.reason !== "INTERNAL" && info.code === code) {
    return { kind: "refused", code, reason: info.reason };
  }
  if (code === grpc.status.DEADLINE_EXCEEDED && !info) return { kind: "deadline" };
  // grpc-js answers bytes it cannot decode, or a message over the size limit, before any handler.
  if (!info && code === grpc.status.INTERNAL && details.startsWith("Error deserializing request")) return { kind: "undecoded", code, details };
  if (!info && code === grpc.status.RESOURCE_EXHAUSTED && /larger than/.test(details)) return { kind: "undecoded", code, details };
  return { kind: "crash", what: `${grpc.status[code]}: ${details}${info ? ` (ErrorInfo ${info.reason})` : " (no ErrorInfo)"}` };
}

function outcomeName(o: Outcome): string {
  switch (o.kind) {
    case "ok":
      return "ok";
    case "refused":
      return `${grpc.status[o.code]}/${o.reason}`;
    default:
      return o.kind;
  }
}

/** The audit `rpc` a stream-lane request is logged under, if the server decoded it and audits it. */
function streamAuditRpc(bytes: Uint8Array): string | undefined {
  let msg: ds.SessionRequest;
  try {
    msg = fromBinary(ds.SessionRequestSchema, bytes);
  } catch {
    return undefined;
  }
  const c = msg.operation.case;
  if (c === undefined) return "Session";
  const op = OPERATIONS.get(c);
  return op && op.kind !== "read" ? op.rpc : undefined;
}

// ---------------------------------------------------------------------------------------------
// The Session stream lane: one raw stream on STREAM_VM, one request in flight at a time.

type LaneAnswer = { answer: ds.SessionResponse } | { ended: { code: number; details: string; trailer?: grpc.Metadata } };

class StreamLane {
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  private waiter: ((a: LaneAnswer) => void) | undefined;
  session = "";
  alive = false;
  /** Set when the server's answers themselves were malformed. */
  fault: string | undefined;

  constructor(private readonly client: grpc.Client) {}

  /** Opens the stream with a valid attach; rejects with the status if the attach is refused. */
  async open(): Promise<void> {
    const call = this.client.makeBidiStreamRequest(SESSION_PATH, identity, identity, new grpc.Metadata(), {});
    this.call = call;
    let opened: ((id: string) => void) | undefined;
    let failed: ((e: Error) => void) | undefined;
    const ready = new Promise<string>((resolve, reject) => {
      opened = resolve;
      failed = reject;
    });
    call.on("data", (buf: Buffer) => {
      let msg: ds.SessionResponse;
      try {
        msg = fromBinary(ds.SessionResponseSchema, buf);
      } catch (e) {
        this.fault = `malformed SessionResponse ${buf.toString("hex").slice(0, 200)}: ${String(e)}`;
        return;
      }
      if (msg.result.case === "opened") opened?.(msg.result.value.sessionId);
      else if (msg.result.case === "stop" || msg.more) return;
      else {
        const w = this.waiter;
        this.waiter = undefined;
        w?.({ answer: msg });
      }
    });
    const end = (ended: { code: number; details: string; trailer?: grpc.Metadata }) => {
      if (this.call !== call) return;
      this.alive = false;
      failed?.(Object.assign(new Error(`${grpc.status[ended.code]}: ${ended.details}`), { outcome: outcomeName(classifyStatus(ended.code, ended.details, ended.trailer)) }));
      const w = this.waiter;
      this.waiter = undefined;
      w?.({ ended });
    };
    call.on("error", (e: grpc.ServiceError) => end({ code: e.code, details: e.details, trailer: e.metadata }));
    call.on("status", (s: grpc.StatusObject) => end({ code: s.code, details: s.details, trailer: s.metadata }));
    call.write(Buffer.from(toBinary(ds.SessionRequestSchema, create(ds.SessionRequestSchema, { id: 0n, operation: { case: "attach", value: { vm: STREAM_VM } } }))));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("the Session stream did not open within 20 s")), 20_000)));
    try {
      this.session = await Promise.race([ready, late]);
    } finally {
      clearTimeout(timer);
    }
    this.alive = true;
  }

  send(bytes: Uint8Array, timeoutMs = 20_000): Promise<LaneAnswer | "timeout"> {
    const call = this.call;
    if (!call || !this.alive) return Promise.resolve({ ended: { code: grpc.status.CANCELLED, details: "stream already ended" } });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve("timeout");
      }, timeoutMs);
      this.waiter = (a) => {
        clearTimeout(timer);
        resolve(a);
      };
      call.write(Buffer.from(bytes));
    });
  }

  close(): void {
    const call = this.call;
    this.call = undefined;
    this.alive = false;
    call?.cancel();
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const { seed, count } = options;
  const concurrency = options.concurrency ?? 32;
  const batchSize = options.batch ?? 96;
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const summary: FuzzSummary = {
    seed,
    requests: 0,
    ok: 0,
    refused: 0,
    refusedUndecoded: 0,
    undecodedControl: 0,
    deadlines: 0,
    streamEnds: 0,
    crashes: [],
    stateChecks: 0,
    refusalsChecked: 0,
    refusalsDependent: 0,
    refusalsUnchecked: 0,
    stateChanges: [],
    auditLines: 0,
    auditMismatches: [],
    restores: 0,
    replayed: 0,
    serverWarnings: [],
    reasons: {},
    seconds: 0,
    perSecond: 0,
  };

  const { child, port } = await ServerChild.start();
  const address = `127.0.0.1:${port}`;
  // The fuzzer's own connection (a local subchannel pool, so it is not shared with the control client's).
  const raw = new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
  });
  const ctl: VmmDebugClient = connect(address, { channelOptions: { "grpc.max_receive_message_length": 64 * MIB } });
  const lane = new StreamLane(raw);
  // FUZZ_ONLY=Step,Session.WriteMemory narrows a run to some targets (for chasing one finding).
  const only = process.env.FUZZ_ONLY?.split(",").filter(Boolean);
  const targets = createTargets().filter((t) => !only || only.includes(`${t.lane === "stream" ? "Session." : ""}${t.rpc}`));
  // Batches come in a cycle of BATCH_CYCLE. Requests that let a VM run or end a session (Resume,
  // Detach, Attach) change what every other control request of their batch finds (VM_RUNNING,
  // NOT_ATTACHED): they have the last batch of the cycle to themselves, so the other batches'
  // refusals mostly do not depend on each other. The Session stream lane sends one request at a
  // time; its requests have a batch of their own too, where no unary load slows them. Which batch
  // a request index falls in is fixed, so a request is generated again the same way.
  const kinds = {
    run: targets.filter((t) => RUN_RPCS.has(t.rpc)),
    stream: targets.filter((t) => t.lane === "stream" && !RUN_RPCS.has(t.rpc)),
    unary: targets.filter((t) => t.lane === "unary" && !RUN_RPCS.has(t.rpc)),
  };
  const targetsOf = (index: number): Target[] => {
    const phase = Math.floor(index / batchSize) % BATCH_CYCLE;
    const pick = phase === BATCH_CYCLE - 1 ? kinds.run : phase === BATCH_CYCLE / 2 ? kinds.stream : kinds.unary;
    return pick.length > 0 ? pick : targets;
  };
  let expected: Expect[] = [];

  /** A control call of the run's own (setup, restore): its audit line is expected too. */
  async function control<T>(rpc: string, call: () => Promise<T>): Promise<T> {
    try {
      const v = await call();
      expected.push({ rpc, outcome: "ok" });
      return v;
    } catch (e) {
      // A call the client gave up on (its deadline) is logged with whatever the server saw.
      if (e instanceof VmmDebugError) expected.push(e.reason ? { rpc, outcome: `${e.codeName}/${e.reason}` } : { rpc });
      throw e;
    }
  }
  const d = ctl.rpc.debug;

  /**
   * Opens the stream lane again (its session attaches STREAM_VM anew). The server ends the old
   * stream's session a moment after the stream ends: until then the attach is SESSION_CONFLICT.
   */
  async function reopenLane(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      lane.close();
      try {
        await lane.open();
        expected.push({ rpc: "Attach", outcome: "ok" });
        ctx.streamSession = lane.session;
        return;
      } catch (e) {
        const outcome = (e as { outcome?: string }).outcome;
        expected.push(outcome && outcome !== "crash" ? { rpc: "Attach", outcome } : { rpc: "Attach", optional: true });
        if (attempt >= 50 || outcome !== "FAILED_PRECONDITION/SESSION_CONFLICT") throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  let ctx!: GenContext;

  try {
    // ---- Setup: the unary session on VM, the stream on STREAM_VM, both VMs stopped, canonical state.
    const session = (await control("Attach", () => d.attach({ vm: VM }))).sessionId;
    await control("Break", () => d.break({ vm: VM, sessionId: session }));
    await control("Resume", () => d.resume({ vm: VM, sessionId: session })); // reports the Break
    const vpCount = 2;
    await lane.open();
    expected.push({ rpc: "Attach", outcome: "ok" });
    await control("Break", () => d.break({ vm: STREAM_VM, sessionId: lane.session }));
    // Every VP single-steps: a Resume that gets through stops again at once, so the VM is not left
    // running (unless every VP sits in HLT: a VP that ran into HLT stays there whatever its
    // registers, and then only a Break stops the VM).
    for (const [vm, sessionId] of [[VM, session], [STREAM_VM, lane.session]]) {
      for (let vp = 0; vp < vpCount; vp++) {
        await control("SetDebugState", () => d.setDebugState({ vm, sessionId, vp, state: { singleStep: true } }));
      }
    }
    const canonicalStates: Record<string, DebuggerVpState[]> = {};
    for (const vm of [VM, STREAM_VM]) {
      canonicalStates[vm] = [];
      for (let vp = 0; vp < vpCount; vp++) canonicalStates[vm].push((await d.getVpState({ vm, vp })).state!);
    }
    await child.request("canonical");
    /** The canonical content of each chunk of the compared RAM, per VM (what a restore writes back). */
    const canonicalChunks: Record<string, Uint8Array[]> = {};
    for (const vm of [VM, STREAM_VM]) {
      canonicalChunks[vm] = [];
      for (const w of WINDOWS) {
        const data = (await d.readMemory({ vm, address: { kind: { case: "gpa", value: w.gpa } }, length: BigInt(w.bytes) })).data;
        for (let o = 0; o < w.bytes; o += CHUNK_BYTES) canonicalChunks[vm].push(data.subarray(o, o + CHUNK_BYTES));
      }
    }

    ctx = {
      vm: VM,
      streamVm: STREAM_VM,
      session,
      streamSession: lane.session,
      vpCount,
      vpStates: canonicalStates[VM],
      scratch: SCRATCH_GPA,
      addresses: [
        SCRATCH_GPA,
        0x1000n,
        image.loadGpa,
        image.symbols.counter.gpa,
        image.symbols.counter.gva,
        image.symbols.tick.gva,
        image.symbols.stacks.gva,
        BigInt(256 * MIB - 8),
        BigInt(256 * MIB),
        0x108000n,
      ],
      // A name of more than ~24 KiB makes the error's trailers too large to send: the call never
      // completes and the connection stalls (a server finding, reported). Until the server
      // bounds what it echoes, names stop at 16 KiB unless FUZZ_LONG_NAMES=1.
      maxNameLength: process.env.FUZZ_LONG_NAMES === "1" ? 65536 : 16384,
      dataGva: image.symbols.counter.gva,
      codeGva: image.symbols.tick.gva,
    };

    // ---- Snapshots.
    interface Snapshot {
      vms: Record<string, VmDigest>;
      attached: Record<string, string>;
    }
    const timing = { snapshot: 0, snapshots: 0, restore: 0, replay: 0, send: 0, unaryLane: 0, streamLane: 0 };
    const snapshot = async (): Promise<Snapshot> => {
      const t = Date.now();
      try {
        return await takeSnapshot();
      } finally {
        timing.snapshot += Date.now() - t;
        timing.snapshots++;
      }
    };
    const takeSnapshot = async (): Promise<Snapshot> => {
      const [snap, list] = await Promise.all([child.request<Extract<FromChild, { type: "snapshot" }>>("snapshot"), ctl.rpc.vm.listVms({})]);
      checkAudits(snap.audits);
      for (const w of snap.warnings) summary.serverWarnings.push(w);
      const attached: Record<string, string> = {};
      for (const v of list.vms) attached[v.id] = v.attached ? `${v.attached.holder}${v.attached.stream ? " (stream)" : ""}` : "";
      return { vms: snap.vms, attached };
    };
    /** What differs between two snapshots ("" when equal); `changes` only when `withChanges`. */
    const diff = (a: Snapshot, b: Snapshot, withChanges: boolean): string => {
      const out: string[] = [];
      for (const vm of [VM, STREAM_VM]) {
        const x = a.vms[vm];
        const y = b.vms[vm];
        if (x.runState !== y.runState) out.push(`${vm} run state ${x.runState} -> ${y.runState}`);
        if (withChanges && x.changes !== y.changes) out.push(`${vm}: ${y.changes - x.changes} calls changed the VM`);
        x.vps.forEach((s, vp) => s !== y.vps[vp] && out.push(`${vm} VP ${vp} registers`));
        if (x.debug !== y.debug) out.push(`${vm} debug state ${x.debug} -> ${y.debug}`);
        if (x.softwareBreakpoints !== y.softwareBreakpoints) out.push(`${vm} software breakpoints ${x.softwareBreakpoints} -> ${y.softwareBreakpoints}`);
        if (JSON.stringify(x.window) !== JSON.stringify(y.window)) out.push(`${vm} RAM chunks ${Object.keys(y.window).join(",") || "(none)"} vs ${Object.keys(x.window).join(",") || "(none)"}`);
        if (a.attached[vm] !== b.attached[vm]) out.push(`${vm} attached "${a.attached[vm]}" -> "${b.attached[vm]}"`);
      }
      return out.join("; ");
    };

    // ---- Audit lines: each snapshot's lines against what the run expected since the last one.
    // A call that ended at its deadline (or with its stream) may be logged a moment later: its
    // expectation waits one more snapshot before a missing line counts.
    let late: Expect[] = [];
    function checkAudits(lines: AuditTuple[]): void {
      summary.auditLines += lines.length;
      const left = [...lines];
      const take = (pred: (l: AuditTuple) => boolean) => {
        const i = left.findIndex(pred);
        if (i >= 0) left.splice(i, 1);
        return i >= 0;
      };
      const exp = expected;
      expected = [];
      for (const e of exp.filter((x) => x.outcome !== undefined && !x.optional)) {
        if (!take((l) => l.rpc === e.rpc && l.outcome === e.outcome)) summary.auditMismatches.push(`no audit line for ${e.rpc} ${e.outcome}`);
      }
      const waited = late;
      late = [];
      for (const e of [...waited, ...exp].filter((x) => x.outcome === undefined && !x.optional)) {
        if (!take((l) => l.rpc === e.rpc)) {
          if (waited.includes(e)) summary.auditMismatches.push(`no audit line for ${e.rpc} (any outcome)`);
          else late.push(e);
        }
      }
      for (const e of [...waited, ...exp].filter((x) => x.optional)) {
        if (!take((l) => l.rpc === e.rpc && (e.outcome === undefined || l.outcome === e.outcome)) && !waited.includes(e)) late.push(e);
      }
      for (const l of left) summary.auditMismatches.push(`an audit line no request explains: ${JSON.stringify(l)}`);
    }

    const canonical = await snapshot();

    // ---- Sending.
    const unaryCall = (req: FuzzRequest): Promise<Outcome & { value?: Buffer }> =>
      new Promise((resolve) => {
        const t = req.target;
        const deadline = Date.now() + (t.rpc === "Resume" ? 500 : t.rpc === "WatchEvents" || t.rpc === "WatchConsole" ? 300 : 30_000);
        if (t.call === "unary") {
          raw.makeUnaryRequest(t.path, identity, identity, Buffer.from(req.bytes), new grpc.Metadata(), { deadline }, (err, value) => {
            if (!err) resolve({ kind: "ok", value });
            else resolve(classifyStatus(err.code, err.details, err.metadata));
          });
          return;
        }
        const stream = raw.makeServerStreamRequest(t.path, identity, identity, Buffer.from(req.bytes), new grpc.Metadata(), { deadline });
        let served = false;
        stream.on("data", () => {
          if (served) return;
          served = true;
          stream.cancel(); // one message is enough: the call was served
        });
        stream.on("error", (err: grpc.ServiceError) => {
          if (served && err.code === grpc.status.CANCELLED) resolve({ kind: "ok" });
          // A watch that saw no event before its deadline was served too.
          else if (err.code === grpc.status.DEADLINE_EXCEEDED && (t.rpc === "WatchEvents" || t.rpc === "WatchConsole")) resolve({ kind: "ok" });
          else resolve(classifyStatus(err.code, err.details, err.metadata));
        });
        stream.on("status", (s: grpc.StatusObject) => s.code === grpc.status.OK && resolve({ kind: "ok" }));
      });

    const streamCall = async (req: FuzzRequest): Promise<Outcome> => {
      const a = await lane.send(req.bytes);
      if (a === "timeout") return { kind: "crash", what: "no answer on the Session stream within 20 s" };
      if ("answer" in a) {
        if (a.answer.result.case !== "error") return { kind: "ok" };
        const e = statusFromWire(a.answer.result.value);
        if (e.domain === "vmm.debug" && e.reason && e.reason !== "INTERNAL") return { kind: "refused", code: e.code, reason: e.reason };
        return { kind: "crash", what: `error answer ${grpc.status[e.code]} ${e.message} (reason ${e.reason ?? "none"})` };
      }
      // The stream ended: by this request (grpc-js could not decode it), or by another's doing.
      const o = classifyStatus(a.ended.code, a.ended.details, a.ended.trailer);
      if (o.kind === "crash" && a.ended.code !== grpc.status.OK && a.ended.code !== grpc.status.CANCELLED && a.ended.code !== grpc.status.ABORTED) return o;
      return { kind: "streamEnd", decoded: o.kind !== "undecoded" };
    };

    /** FUZZ_VERBOSE: each unary call's latency, for the slowest-calls report. */
    const latencies: [number, () => string][] | undefined = process.env.FUZZ_VERBOSE ? [] : undefined;
    const send = async (reqs: FuzzRequest[]): Promise<Sent[]> => {
      const out: Sent[] = new Array(reqs.length);
      const unary = reqs.map((r, i) => [r, i] as const).filter(([r]) => r.target.lane === "unary");
      const stream = reqs.map((r, i) => [r, i] as const).filter(([r]) => r.target.lane === "stream");
      let next = 0;
      const worker = async () => {
        while (next < unary.length) {
          const [r, i] = unary[next++];
          const t = Date.now();
          const o = await unaryCall(r);
          if (latencies) latencies.push([Date.now() - t, () => `${r.target.rpc} ${outcomeName(o)} [${r.mutations.join(", ")}] ${hex(r.bytes).slice(0, 80)}`]);
          const sent: Sent = { req: r, outcome: o.kind === "ok" ? { kind: "ok" } : o };
          if (o.kind === "ok" && r.target.rpc === "Attach" && o.value) sent.opened = fromBinary(ds.AttachResponseSchema, o.value).sessionId;
          out[i] = sent;
        }
      };
      const streamWorker = async () => {
        for (const [r, i] of stream) {
          // A request the server could not decode ended the stream: open another and go on.
          if (!lane.alive) {
            await reopenLane()
              .then(() => control("Break", () => d.break({ vm: STREAM_VM, sessionId: lane.session })))
              .catch((e: unknown) => verbose(`reopening the stream: ${String(e)}`));
          }
          out[i] = { req: r, outcome: lane.alive ? await streamCall(r) : { kind: "unsent" } };
        }
      };
      const t = Date.now();
      await Promise.all([
        Promise.all(Array.from({ length: Math.min(concurrency, unary.length) }, worker)).then(() => (timing.unaryLane += Date.now() - t)),
        streamWorker().then(() => (timing.streamLane += Date.now() - t)),
      ]);
      return out;
    };

    /** Records outcomes and the audit lines they imply; true when nothing in the batch may change a VM. */
    const account = (sent: Sent[], counted: boolean): boolean => {
      let neutral = true;
      for (const s of sent) {
        const { req, outcome } = s;
        const t: Target = req.target;
        if (outcome.kind === "unsent") continue;
        if (counted) {
          summary.requests++;
          if (outcome.kind === "ok") summary.ok++;
          else if (outcome.kind === "refused") summary.refused++;
          else if (outcome.kind === "undecoded") summary.refusedUndecoded++;
          else if (outcome.kind === "deadline") summary.deadlines++;
          else if (outcome.kind === "streamEnd") summary.streamEnds++;
          const key = `${t.lane === "stream" ? "Session." : ""}${t.rpc} ${outcomeName(outcome)}`;
          summary.reasons[key] = (summary.reasons[key] ?? 0) + 1;
        }
        if (outcome.kind === "crash") {
          log(`crash: #${req.index} ${t.lane} ${t.rpc}: ${outcome.what} [${req.mutations.join(", ")}]`);
          summary.crashes.push({ index: req.index, lane: t.lane, rpc: t.rpc, what: outcome.what, mutations: req.mutations, requestHex: hex(req.bytes).slice(0, 4096) });
        }
        // Audit lines the server must have written.
        const rpc = t.lane === "stream" ? streamAuditRpc(req.bytes) : AUDITED_RPCS.has(t.rpc) ? t.rpc : undefined;
        if (rpc) {
          if (outcome.kind === "ok" || outcome.kind === "refused") expected.push({ rpc, outcome: outcomeName(outcome) });
          else if (outcome.kind === "deadline") expected.push({ rpc });
          else if (outcome.kind === "streamEnd") expected.push({ rpc, optional: true });
          else if (outcome.kind === "undecoded" && counted) summary.undecodedControl++;
        }
        // What may change a VM: any control request that went through, a Resume left running,
        // a stream that ended (its session ends with it).
        const read = !AUDITED_RPCS.has(t.rpc);
        if (outcome.kind === "ok" && !read) neutral = false;
        if (outcome.kind === "deadline" && t.rpc !== "WatchEvents" && t.rpc !== "WatchConsole") neutral = false;
        if (outcome.kind === "streamEnd" || outcome.kind === "crash") neutral = false;
        if (t.lane === "stream" && outcome.kind === "ok" && streamAuditRpc(req.bytes) !== undefined) neutral = false;
        if (outcome.kind === "undecoded" && t.lane === "stream") neutral = false;
      }
      return neutral;
    };

    const refusedOf = (sent: Sent[]) => sent.filter((s) => s.outcome.kind === "refused" || (s.outcome.kind === "undecoded" && s.req.target.lane === "unary"));

    // ---- Restoring the canonical state.
    let strays: string[] = [];
    const restore = async (full = true): Promise<Snapshot> => {
      const t = Date.now();
      try {
        return await restoreNow(full);
      } catch (e) {
        // The VMs moved while being put back (a Resume of the batch stopped late): once more, from the top.
        log(`restore: ${String(e)}; again`);
        return await restoreNow(true);
      } finally {
        timing.restore += Date.now() - t;
      }
    };
    const verbose = process.env.FUZZ_VERBOSE ? log : () => undefined;
    /**
     * Puts the VMs back: both stopped, both sessions live, and (when `full`, or when a session had
     * to be opened again) registers, debug state, software breakpoints and RAM as at the start.
     * Without `full`, registers and RAM that drifted stay so: the next batch starts from its
     * snapshot. (A stop left pending by a Break here is harmless: a later Resume answers it.)
     */
    const restoreNow = async (full: boolean): Promise<Snapshot> => {
      summary.restores++;
      verbose(`restore (${full ? "full" : "light"}, ${strays.length} strays, stream ${lane.alive ? "open" : "ended"})`);
      await Promise.all(strays.map((sid) => control("Detach", () => d.detach({ sessionId: sid })).catch(() => undefined)));
      strays = [];
      let now = await snapshot();
      let acted = false;
      // VM: the unary session. If its holder changed, Break tells whether it lives (NOT_ATTACHED: attach again).
      const unaryVm = async () => {
        if (now.attached[VM] !== canonical.attached[VM] || now.vms[VM].runState !== "stopped") {
          acted = true;
          try {
            await control("Break", () => d.break({ vm: VM, sessionId: ctx.session }));
          } catch (e) {
            if (!(e instanceof VmmDebugError) || e.reason !== "NOT_ATTACHED") throw e;
            ctx.session = (await control("Attach", () => d.attach({ vm: VM }))).sessionId;
            await control("Break", () => d.break({ vm: VM, sessionId: ctx.session }));
          }
        }
      };
      // STREAM_VM: the stream's session (a unary Detach may have ended it a moment ago).
      const streamVm = async () => {
        const reopen = reopenLane;
        let reopened = false;
        if (!lane.alive || now.attached[STREAM_VM] !== canonical.attached[STREAM_VM]) {
          await reopen();
          reopened = true;
        }
        if (reopened || now.vms[STREAM_VM].runState !== "stopped") {
          acted = true;
          try {
            await control("Break", () => d.break({ vm: STREAM_VM, sessionId: lane.session }));
          } catch (e) {
            if (!(e instanceof VmmDebugError) || e.reason !== "NOT_ATTACHED") throw e;
            await reopen();
            await control("Break", () => d.break({ vm: STREAM_VM, sessionId: lane.session }));
          }
        }
      };
      await Promise.all([unaryVm(), streamVm()]);
      if (acted) now = await snapshot();
      if (!full && !acted) return now;
      // Registers, debug state and RAM back to canonical, as far as they differ (both VMs at once).
      const fixes: Promise<unknown>[] = [];
      for (const vm of [VM, STREAM_VM]) {
        const sessionId = vm === VM ? ctx.session : lane.session;
        const want = canonical.vms[vm];
        const have = now.vms[vm];
        for (let vp = 0; vp < vpCount; vp++) {
          if (have.vps[vp] !== want.vps[vp]) fixes.push(control("SetVpState", () => d.setVpState({ vm, sessionId, vp, state: canonicalStates[vm][vp] })));
        }
        for (const id of have.softwareBreakpointIds) {
          fixes.push(control("RemoveSoftwareBreakpoint", () => d.removeSoftwareBreakpoint({ vm, sessionId, id: BigInt(id) })));
        }
        if (have.debug !== want.debug) {
          for (let vp = 0; vp < vpCount; vp++) {
            fixes.push(control("SetDebugState", () => d.setDebugState({ vm, sessionId, vp, state: { singleStep: true } })));
          }
        }
        for (const c of Object.keys(have.window).map(Number)) {
          const data = canonicalChunks[vm][c];
          const address = { kind: { case: "gpa" as const, value: chunkAddress(c) } };
          fixes.push(control("WriteMemory", () => d.writeMemory({ vm, sessionId, address, data })));
        }
      }
      await Promise.all(fixes);
      const after = fixes.length > 0 ? await snapshot() : now;
      // Only the holders' ports may differ (a session opened again); everything else is canonical.
      const left = diff(canonical, after, false)
        .split("; ")
        .filter((x) => x && !x.includes(" attached "));
      if (left.length > 0) throw new Error(`could not restore the canonical state: ${left.join("; ")}`);
      canonical.attached = after.attached;
      return after;
    };

    /**
     * Checks that refusals change nothing: they are generated again (with the live session ids)
     * and sent as one batch from `pre`, a restored state. If the batch is all refusals, one
     * snapshot comparison covers them (and a difference is narrowed down by halves to the
     * request that made it). Those that now succeed depended on their batch and are dropped;
     * the rest are sent again after a restore, until a batch of refusals remains.
     */
    const checkRefusals = async (reqs: FuzzRequest[], pre: Snapshot): Promise<Snapshot> => {
      if (reqs.length === 0) return pre;
      // A Resume, Detach or Attach refused in its batch (say NOT_ATTACHED after a Detach) may get
      // through now and change what the others find: each of those goes alone, after the rest.
      const run = reqs.filter((r) => RUN_RPCS.has(r.target.rpc));
      if (run.length > 0 && run.length < reqs.length) {
        let at = await checkRefusals(
          reqs.filter((r) => !RUN_RPCS.has(r.target.rpc)),
          pre,
        );
        for (const r of run) at = await checkRefusals([r], at);
        return at;
      }
      if (run.length > 1) {
        let at = pre;
        for (const r of run) at = await checkRefusals([r], at);
        return at;
      }
      const t = Date.now();
      const again = reqs.map((r) => generateRequest(seed, r.index, targetsOf(r.index), ctx));
      const sent = await send(again);
      summary.replayed += sent.length;
      for (const x of sent) if (x.opened) strays.push(x.opened);
      const neutral = account(sent, false);
      const still = refusedOf(sent).map((x) => x.req);
      timing.replay += Date.now() - t;
      // Those that get through now depended on their batch; those that neither get through nor
      // are refused (their stream ended, a deadline) cannot be checked as they were.
      const now = sent.filter((x) => x.outcome.kind === "ok");
      const settle = () => {
        summary.refusalsDependent += now.length;
        summary.refusalsUnchecked += sent.length - still.length - now.length;
      };
      if (!neutral) {
        settle();
        verbose(`replay of ${sent.length} mixed: ${now.map((x) => `${x.req.target.rpc} (was ${firstOutcome.get(x.req.index)})`).join(" ")} now ok`);
        return checkRefusals(still, await restore());
      }
      const after = await snapshot();
      summary.stateChecks++;
      const change = diff(pre, after, true);
      if (!change) {
        settle();
        summary.refusalsChecked += still.length;
        return after;
      }
      const back = await restore();
      if (again.length === 1) {
        // (Even a read that got through must not change a VM.)
        if (still.length === 1) summary.refusalsChecked++;
        else settle();
        summary.stateChanges.push({ indexes: [again[0].index], rpcs: [again[0].target.rpc], diff: change, requestHex: [hex(again[0].bytes).slice(0, 4096)] });
        log(`STATE CHANGE by refused request #${again[0].index} ${again[0].target.rpc}: ${change}`);
        return back;
      }
      const half = Math.ceil(again.length / 2);
      return checkRefusals(again.slice(half), await checkRefusals(again.slice(0, half), back));
    };

    /**
     * A batch of Resumes, Detaches and Attaches, one request at a time with a snapshot around
     * each: each of these changes what the next one finds (a Detach that gets through leaves the
     * rest NOT_ATTACHED), so their refusals are checked where they happen, not sent again.
     */
    const runOneByOne = async (reqs: FuzzRequest[], start: Snapshot): Promise<[Sent[], Snapshot]> => {
      const out: Sent[] = [];
      let at = start;
      for (const r of reqs) {
        const [x] = await send([r]);
        out.push(x);
        if (x.opened) strays.push(x.opened);
        const neutral = account([x], true);
        if (!neutral) {
          at = await restore(false);
          continue;
        }
        const after = await snapshot();
        if (x.outcome.kind === "refused" || x.outcome.kind === "undecoded") {
          summary.stateChecks++;
          summary.refusalsChecked++;
          const change = diff(at, after, true);
          if (change) {
            summary.stateChanges.push({ indexes: [r.index], rpcs: [r.target.rpc], diff: change, requestHex: [hex(r.bytes).slice(0, 4096)] });
            log(`STATE CHANGE by refused request #${r.index} ${r.target.rpc}: ${change}`);
            at = await restore();
            continue;
          }
        }
        at = after;
      }
      return [out, at];
    };

    // ---- The batches.
    let pre = canonical;
    /** Refusals of batches in which something else may have changed a VM, to be checked again. */
    let pool: FuzzRequest[] = [];
    /** What a pooled refusal answered in its batch. */
    const firstOutcome = new Map<number, string>();
    const poolSize = Math.max(batchSize, 160);
    let mixed = 0;
    let index = 0;
    let batches = 0;
    let lastLog = Date.now();
    while (summary.requests < count) {
      if (child.exited) break;
      const n = Math.min(batchSize, count - summary.requests);
      const reqs = Array.from({ length: n }, () => generateRequest(seed, index, targetsOf(index++), ctx));
      const t0 = Date.now();
      const isRunBatch = reqs.every((r) => RUN_RPCS.has(r.target.rpc));
      let runPre = pre;
      let sent: Sent[];
      let neutral: boolean;
      if (isRunBatch) {
        [sent, runPre] = await runOneByOne(reqs, pre);
        neutral = false;
      } else {
        sent = await send(reqs);
        neutral = account(sent, true);
      }
      const t1 = Date.now();
      timing.send += t1 - t0;
      if (!isRunBatch) for (const s of sent) if (s.opened) strays.push(s.opened);
      if (child.exited) break;
      batches++;
      const refused = refusedOf(sent).map((x) => x.req);
      if (isRunBatch) {
        // Checked request by request as they went (see runOneByOne).
        pre = runPre;
      } else if (neutral) {
        const after = await snapshot();
        summary.stateChecks++;
        const change = diff(pre, after, true);
        if (!change) {
          summary.refusalsChecked += refused.length;
          pre = after;
        } else {
          // Some refusal changed a VM: put it back and narrow it down.
          log(`batch ${batches} of refusals changed a VM (${change}): narrowing down`);
          pre = await checkRefusals(refused, await restore());
        }
      } else {
        // Something in the batch may have changed a VM: put it back; its refusals wait in the pool
        // to be sent again, as a batch of refusals, once enough have gathered. Registers and RAM
        // may drift between full restores: the batch before another kind of batch, and every
        // eighth mixed batch, leave the canonical state behind.
        mixed++;
        const full = targetsOf(index) !== targetsOf(index - 1) || mixed % 8 === 0;
        pre = await restore(full);
        pool.push(...refused);
        for (const x of refusedOf(sent)) firstOutcome.set(x.req.index, outcomeName(x.outcome));
      }
      if (pool.length >= poolSize || (summary.requests >= count && pool.length > 0)) {
        // Refusals for a reason another request of their batch may have made (a session or a page
        // table changed under them) are likely to get through when sent again: they go in a group
        // of their own, so that the others make a batch of refusals at the first try.
        const maybeDependent = (r: FuzzRequest) => DEPENDENT_REASONS.has((firstOutcome.get(r.index) ?? "").split("/")[1] ?? "");
        pre = await checkRefusals(
          pool.filter((r) => !maybeDependent(r)),
          pre,
        );
        pre = await checkRefusals(pool.filter(maybeDependent), pre);
        pool = [];
        firstOutcome.clear();
      }
      if (process.env.FUZZ_VERBOSE) log(`batch ${batches}: send ${t1 - t0} ms, check ${Date.now() - t1} ms, ${neutral ? "neutral" : "mixed"}: ${sent.map((s) => `${s.req.target.lane === "stream" ? "S." : ""}${s.req.target.rpc}=${outcomeName(s.outcome)}`).join(" ")}`);
      if (batches % 10 === 0) {
        const health = await ctl.rpc.health.check({ service: "" });
        if (health.status !== 1) summary.crashes.push({ index, lane: "probe", rpc: "Health", what: `health status ${health.status}`, mutations: [], requestHex: "" });
      }
      if (lane.fault) {
        summary.crashes.push({ index, lane: "stream", rpc: "Session", what: lane.fault, mutations: [], requestHex: "" });
        lane.fault = undefined;
      }
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        const s = (Date.now() - started) / 1000;
        log(`fuzz: ${summary.requests}/${count} requests in ${s.toFixed(0)} s (${(summary.requests / s).toFixed(0)}/s), ${summary.refused} refused, ${summary.crashes.length} crashes, ${summary.stateChecks} state checks`);
      }
    }
    if (latencies && latencies.length > 0) {
      const ms = latencies.map(([m]) => m).sort((x, y) => x - y);
      const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
      log(`unary latency ms: p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)} max ${q(1)} (${ms.length} calls)`);
      for (const [m, what] of latencies.sort((x, y) => y[0] - x[0]).slice(0, 8)) log(`slow: ${m} ms ${what().slice(0, 200)}`);
    }
    log(
      `fuzz timing: send ${timing.send} ms (unary lane ${timing.unaryLane} ms, stream lane ${timing.streamLane} ms), ` +
        `${timing.snapshots} snapshots ${timing.snapshot} ms, restores ${timing.restore} ms, replays ${timing.replay} ms`,
    );
    if (child.exited) {
      summary.crashes.push({ index, lane: "server", rpc: "-", what: child.exited, mutations: [], requestHex: "" });
    } else {
      await snapshot(); // the last batch's audit lines
      for (const line of summary.auditMismatches.slice(0, 20)) log(`audit: ${line}`);
    }
  } catch (e) {
    summary.crashes.push({ index: -1, lane: "run", rpc: "-", what: child.exited ?? (e instanceof Error ? (e.stack ?? e.message) : String(e)), mutations: [], requestHex: "" });
  } finally {
    lane.close();
    raw.close();
    ctl.close();
    await child.stop();
  }
  summary.seconds = (Date.now() - started) / 1000;
  summary.perSecond = Math.round(summary.requests / summary.seconds);
  return summary;
}

/** One line per figure, then each crash and state change with its request. */
export function formatSummary(s: FuzzSummary): string {
  const lines = [
    `fuzz summary: seed=${s.seed} requests=${s.requests} ok=${s.ok} refused=${s.refused} refused_undecoded=${s.refusedUndecoded} ` +
      `deadlines=${s.deadlines} stream_ends=${s.streamEnds} crashes=${s.crashes.length} state_changes=${s.stateChanges.length} ` +
      `audit_mismatches=${s.auditMismatches.length} seconds=${s.seconds.toFixed(1)} per_second=${s.perSecond}`,
    `  state checks: ${s.stateChecks} snapshot comparisons covering ${s.refusalsChecked} refusals; ${s.refusalsDependent} refusals depended on their batch ` +
      `(OK when sent again); ${s.refusalsUnchecked} could not be sent again as they were; ` +
      `${s.restores} restores; ${s.replayed} requests sent again`,
    `  audit: ${s.auditLines} lines; ${s.undecodedControl} control requests grpc-js refused before any handler (no ErrorInfo, no audit line)`,
  ];
  for (const c of s.crashes.slice(0, 20)) lines.push(`  CRASH #${c.index} ${c.lane} ${c.rpc}: ${c.what}\n    mutations: ${c.mutations.join(", ")}\n    request: ${c.requestHex}`);
  for (const c of s.stateChanges.slice(0, 20)) lines.push(`  STATE CHANGE #${c.indexes.join(",")} ${c.rpcs.join(",")}: ${c.diff}\n    request: ${c.requestHex.join(" ")}`);
  for (const w of s.serverWarnings.slice(0, 10)) lines.push(`  server warning: ${w.slice(0, 2000)}`);
  return lines.join("\n");
}
