// Load and flood against a real server process, shared by the system tests and `npm run bench`:
// the server runs as `vmm-debug serve` in a child process so its memory is its own.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import * as http2 from "node:http2";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { connect, type Session, type VmmDebugClient } from "../../src/client";

const ROOT = join(__dirname, "../..");
const MIB = 1024 * 1024;

export interface ServerChild {
  pid: number;
  address: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
  stop(): Promise<void>;
}

/** Starts `vmm-debug serve --listen 127.0.0.1:0 …` and waits (at most 60 s) until it serves. */
export async function startServerChild(args: string[] = [], nodeArgs: string[] = []): Promise<ServerChild> {
  const proc: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, "--require", require.resolve("tsx/cjs"), join(ROOT, "src/cli/main.ts"), "serve", "--listen", "127.0.0.1:0", ...args],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", () => undefined); // audit lines: not needed here, but drained so the child never blocks
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`the server did not start within 60 s:\n${out}`));
    }, 60_000);
    const check = () => {
      const m = /serving .* on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout!.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the server exited before serving:\n${out}`));
    });
  });
  return { pid: proc.pid!, address, stop };
}

/** Resident and peak resident memory of a process, in MiB (from /proc). */
export function memoryMib(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

export interface Flood {
  /** Calls opened so far. */
  opened: number;
  /** Cancels every call and closes every connection. */
  stop(): void;
}

/**
 * Opens `connections` × `streamsPerConnection` ReadMemoryStream calls of `bytes` each and never
 * reads them: raw HTTP/2 (no gRPC library that reads ahead into its own buffers), each stream
 * paused from the start, so after its first 64 KiB window the server can send nothing more.
 */
export function openFlood(address: string, vm: string, connections: number, streamsPerConnection: number, bytes = 64 * MIB): Flood {
  const sessions: http2.ClientHttp2Session[] = [];
  const body = toBinary(
    ds.ReadMemoryStreamRequestSchema,
    create(ds.ReadMemoryStreamRequestSchema, { vm, address: { kind: { case: "gpa", value: 0n } }, length: BigInt(bytes) }),
  );
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  const flood: Flood = {
    opened: 0,
    stop() {
      // Closing each session resets its streams: the server sees every call cancelled.
      for (const s of sessions) s.destroy();
    },
  };
  for (let c = 0; c < connections; c++) {
    const session = http2.connect(`http://${address}`, { settings: { initialWindowSize: 65_535 } });
    session.on("error", () => undefined); // reset at stop(): expected
    sessions.push(session);
    for (let s = 0; s < streamsPerConnection; s++) {
      const stream = session.request({
        ":method": "POST",
        ":path": READ_MEMORY_STREAM,
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.on("error", () => undefined);
      stream.pause(); // never read: no window update after the first 64 KiB
      stream.end(frame);
      flood.opened++;
    }
  }
  return flood;
}

const READ_MEMORY_STREAM = "/vmm.debug.v1.DebugService/ReadMemoryStream";

/**
 * Latencies (µs) of `count` requests from a well-behaved client, alternating ListVms and
 * GetVpState of VP 0 through `session` (which has the VM stopped).
 */
export async function probeLatencies(client: VmmDebugClient, session: Session, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    if (i % 2 === 0) await client.listVms({ deadlineMs: 30_000 });
    else await session.getVpState(0, { deadlineMs: 30_000 });
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return samples;
}

/** Waits until `read()` has not grown for `quietMs` (at most `maxMs` in all): the server settled. */
export async function settle(read: () => number, quietMs: number, maxMs: number): Promise<number> {
  const end = Date.now() + maxMs;
  let last = read();
  let lastChange = Date.now();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    const now = read();
    if (now > last + 1) {
      last = now;
      lastChange = Date.now();
    } else if (Date.now() - lastChange >= quietMs) break;
  }
  return last;
}
