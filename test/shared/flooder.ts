// A flooding client, run in a process of its own so that its work never shares an event loop with
// the client it is measured against: raw HTTP/2 (no gRPC library between it and the wire), unary
// ReadMemory (64 B) and GetVm alternately, each answer's slot reused for the next call at once,
// `concurrency` calls in flight over `connections` connections, as fast as the server answers.
//
// Used by test/system/fairness.test.ts and `npm run bench` (fairness section) through
// `startFlooder`. As a script: argv[2] is the JSON of FlooderOptions; it prints `{"ready":true}`
// once `readyAfter` answers have come back, and on stdin's end (or after `maxSeconds`) prints
// its counts as one JSON line and exits.
import { type ChildProcess, spawn } from "node:child_process";
import * as http2 from "node:http2";
import { setPriority } from "node:os";
import { createInterface } from "node:readline";
import { create, toBinary } from "@bufbuild/protobuf";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import * as vs from "../../gen/vmm/debug/v1/vm_service_pb";
import { STATUS_DETAILS_KEY, decodeStatusDetails } from "../../src/wire";

export interface FlooderOptions {
  address: string;
  /** Sent as `authorization: Bearer …` (none when omitted). */
  token?: string;
  vm: string;
  connections: number;
  /** Calls in flight in all (spread over the connections). */
  concurrency: number;
  /** Answers to wait for before reporting ready. Default 200. */
  readyAfter?: number;
  /** Stops by itself after this long, whatever happens. Default 120. */
  maxSeconds?: number;
  /**
   * The flooder process's nice value (0 to 19). On one host the flooder's own CPU comes out of
   * what the server and the measured client could use, which a flooder on another host (the case
   * the limits are for) would not take; a high value gives it the CPU the others leave. Default 0.
   */
  nice?: number;
}

export interface FloodCounts {
  /** Calls sent. */
  sent: number;
  /** Answers by outcome: "OK", or the status name and ErrorInfo reason ("RESOURCE_EXHAUSTED/RATE_LIMIT"). */
  outcomes: Record<string, number>;
  /** Calls answered per second over the flood. */
  perSecond: number;
  seconds: number;
}

const READ_MEMORY = "/vmm.debug.v1.DebugService/ReadMemory";
const GET_VM = "/vmm.debug.v1.VmService/GetVm";
const STATUS_NAMES: Record<number, string> = { 0: "OK", 1: "CANCELLED", 4: "DEADLINE_EXCEEDED", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED" };

function frame(body: Uint8Array): Buffer {
  const f = Buffer.alloc(5 + body.length);
  f.writeUInt32BE(body.length, 1);
  f.set(body, 5);
  return f;
}

function runFlood(options: FlooderOptions): void {
  const readMemory = frame(
    toBinary(ds.ReadMemoryRequestSchema, create(ds.ReadMemoryRequestSchema, { vm: options.vm, address: { kind: { case: "gpa", value: 0x100000n } }, length: 64n })),
  );
  const getVm = frame(toBinary(vs.GetVmRequestSchema, create(vs.GetVmRequestSchema, { vm: options.vm })));
  const counts: FloodCounts = { sent: 0, outcomes: {}, perSecond: 0, seconds: 0 };
  const readyAfter = options.readyAfter ?? 200;
  let answered = 0;
  let stopping = false;
  const t0 = process.hrtime.bigint();
  const sessions: http2.ClientHttp2Session[] = [];

  const outcome = (headers: http2.IncomingHttpHeaders): string => {
    const code = Number(headers["grpc-status"] ?? NaN);
    if (code === 0) return "OK";
    const name = STATUS_NAMES[code] ?? `CODE_${headers["grpc-status"]}`;
    const raw = headers[STATUS_DETAILS_KEY];
    const details = typeof raw === "string" ? decodeStatusDetails(Buffer.from(raw, "base64")) : undefined;
    return details?.reason ? `${name}/${details.reason}` : name;
  };

  const call = (session: http2.ClientHttp2Session, n: number): void => {
    if (stopping || session.destroyed || session.closed) return;
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": n % 2 === 0 ? READ_MEMORY : GET_VM,
      "content-type": "application/grpc",
      te: "trailers",
    };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers);
    } catch {
      return; // the session is going away (stop)
    }
    counts.sent++;
    let result = "NO_STATUS";
    stream.on("response", (h) => {
      if (h["grpc-status"] !== undefined) result = outcome(h); // trailers-only: a refusal
    });
    stream.on("trailers", (h) => (result = outcome(h)));
    stream.on("data", () => undefined);
    stream.on("error", () => (result = "STREAM_ERROR"));
    stream.on("close", () => {
      if (stopping) return;
      counts.outcomes[result] = (counts.outcomes[result] ?? 0) + 1;
      if (++answered === readyAfter) process.stdout.write(JSON.stringify({ ready: true }) + "\n");
      call(session, n + 1);
    });
    stream.end(n % 2 === 0 ? readMemory : getVm);
  };

  for (let c = 0; c < options.connections; c++) {
    const session = http2.connect(`http://${options.address}`);
    session.on("error", () => undefined);
    sessions.push(session);
    const perConnection = Math.ceil(options.concurrency / options.connections);
    for (let i = 0; i < perConnection && c * perConnection + i < options.concurrency; i++) call(session, i);
  }

  const stop = () => {
    if (stopping) return;
    stopping = true;
    counts.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    counts.perSecond = answered / counts.seconds;
    for (const s of sessions) s.destroy();
    process.stdout.write(JSON.stringify(counts) + "\n", () => process.exit(0));
  };
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
  setTimeout(stop, (options.maxSeconds ?? 120) * 1000).unref();
}

export interface Flooder {
  pid: number;
  /** Resolves once the flood is under way (its first answers came back); rejects after 60 s or if it exits. */
  ready: Promise<void>;
  /** Stops the flood; resolves to its counts once the process has exited. */
  stop(): Promise<FloodCounts>;
}

/** Starts a flooder process. */
export function startFlooder(options: FlooderOptions): Flooder {
  const proc: ChildProcess = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), __filename, JSON.stringify(options)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  if (options.nice) setPriority(proc.pid!, options.nice);
  const lines = createInterface({ input: proc.stdout! });
  const linesDone = new Promise<void>((resolve) => lines.once("close", () => resolve()));
  let result: FloodCounts | undefined;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the flooder did not get going within 60 s")), 60_000);
    onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error("the flooder exited before it got going"));
    });
  });
  ready.catch(() => undefined);
  lines.on("line", (line) => {
    const parsed = JSON.parse(line) as { ready?: boolean } & FloodCounts;
    if (parsed.ready) onReady();
    else result = parsed;
  });
  return {
    pid: proc.pid!,
    ready,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.stdin!.end();
        const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await linesDone;
      if (!result) throw new Error("the flooder exited without its counts");
      return result;
    },
  };
}

if (require.main === module) runFlood(JSON.parse(process.argv[2]) as FlooderOptions);
