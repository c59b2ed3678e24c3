// Prometheus metrics of one server (prom-client, in a registry of its own so several servers in
// one process do not collide): per-RPC latency and counts by status, open sessions, VMs by run
// state, stops by reason, guest memory bytes read and written, and the process's default metrics.
// `--metrics 127.0.0.1:PORT` serves them at GET /metrics (loopback only).
import { type Server as HttpServer, createServer as createHttpServer } from "node:http";
import { type ServerInterceptor, ServerInterceptingCall, ServerListenerBuilder, status as GrpcStatus } from "@grpc/grpc-js";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import type { RunState } from "../core";
import { isLoopbackHost, parseListenAddress, type ListenAddress } from "./listen-address";
import type { FeedItem } from "./event-log";
import type { Execute, OperationName } from "./operations";
import type { VmRegistry } from "./registry";

const MEMORY_OPERATIONS = new Set<OperationName>(["readMemory", "readMemoryMany", "writeMemory", "readMemoryStream"]);
const RUN_STATES: readonly RunState[] = ["running", "stopped", "poweredOff", "gone"];

/** Latency buckets (seconds): a register read takes well under a millisecond, a Resume may wait for minutes. */
const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class ServerMetrics {
  /** The registry /metrics serves (this server's only). */
  readonly registry = new Registry();
  private readonly rpcSeconds: Histogram<"method" | "code">;
  private readonly rpcs: Counter<"method" | "code">;
  private readonly stops: Counter<"vm" | "reason">;
  private readonly bytesRead: Counter<"vm">;
  private readonly bytesWritten: Counter<"vm">;
  private readonly feeds = new AbortController();

  constructor(private readonly vms: VmRegistry) {
    const registers = [this.registry];
    this.rpcSeconds = new Histogram({
      name: "vmm_debug_rpc_duration_seconds",
      help: "Time from a call's start to its status (streams: until they end), by method and gRPC status code",
      labelNames: ["method", "code"],
      buckets: RPC_BUCKETS,
      registers,
    });
    this.rpcs = new Counter({ name: "vmm_debug_rpcs_total", help: "Calls that ended, by method and gRPC status code", labelNames: ["method", "code"], registers });
    new Gauge({
      name: "vmm_debug_sessions_open",
      help: "Debug sessions attached now (unary and Session streams)",
      registers,
      collect() {
        this.set(vms.list().filter((d) => d.attachment() !== undefined).length);
      },
    });
    new Gauge({
      name: "vmm_debug_vms",
      help: "Served VMs by run state",
      labelNames: ["state"],
      registers,
      collect() {
        const counts = new Map<string, number>(RUN_STATES.map((s) => [s, 0]));
        for (const d of vms.list()) {
          const state = d.core.runState();
          counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    this.stops = new Counter({
      name: "vmm_debug_stops_total",
      help: "Debugger stops by VM and reason (break, singleStep, hwBreakpoint, softwareBreakpoint, …), as the VM's event feed publishes them",
      labelNames: ["vm", "reason"],
      registers,
    });
    this.bytesRead = new Counter({
      name: "vmm_debug_guest_memory_read_bytes_total",
      help: "Guest memory bytes returned by ReadMemory, ReadMemoryMany and ReadMemoryStream (unary and on Session streams), by VM",
      labelNames: ["vm"],
      registers,
    });
    this.bytesWritten = new Counter({
      name: "vmm_debug_guest_memory_written_bytes_total",
      help: "Guest memory bytes written by WriteMemory (unary and on Session streams), by VM",
      labelNames: ["vm"],
      registers,
    });
    collectDefaultMetrics({ register: this.registry, prefix: "vmm_debug_" });
    for (const d of vms.list()) void this.follow(d.id, d.events.subscribe(undefined, this.feeds.signal));
  }

  /** The grpc-js server interceptor that times and counts every call; first in the list, so it sees every status (refusals included). */
  interceptor(): ServerInterceptor {
    return (descriptor, next) => {
      const method = descriptor.path.startsWith("/") ? descriptor.path.slice(1) : descriptor.path;
      const started = process.hrtime.bigint();
      let ended = false;
      const end = (code: number) => {
        if (ended) return;
        ended = true;
        const labels = { method, code: codeName(code) };
        this.rpcs.inc(labels);
        this.rpcSeconds.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      };
      return new ServerInterceptingCall(next, {
        start: (startNext) => startNext(new ServerListenerBuilder().withOnCancel(() => end(GrpcStatus.CANCELLED)).build()),
        sendStatus: (status, statusNext) => {
          end(status.code);
          statusNext(status);
        },
      });
    };
  }

  /** `execute` counting the guest memory bytes that reads return and writes write. */
  countMemory(execute: Execute): Execute {
    return (async (name: OperationName, req: Parameters<Execute>[1], ctx: Parameters<Execute>[2], stream?: Parameters<Execute>[3]) => {
      const result = await execute(name, req as never, ctx, stream);
      if (!MEMORY_OPERATIONS.has(name)) return result;
      const vm = stream?.target.id ?? this.vmOf(req);
      switch (name) {
        case "readMemory":
          this.read(vm, (result as ds.ReadMemoryResponse).data.length);
          break;
        case "readMemoryMany":
          this.read(vm, (result as ds.ReadMemoryManyResponse).results.reduce((n, r) => n + (r.result.case === "data" ? r.result.value.length : 0), 0));
          break;
        case "writeMemory":
          this.bytesWritten.inc({ vm }, (req as ds.WriteMemoryRequest).data.length);
          break;
        case "readMemoryStream":
          return this.countChunks(vm, result as AsyncIterable<ds.ReadMemoryStreamResponse>);
      }
      return result;
    }) as Execute;
  }

  /** The VM a unary request ran on (`vm` may be empty on a server of one VM). */
  private vmOf(req: { vm: string; sessionId?: string }): string {
    try {
      return this.vms.resolveFor(req.vm, req.sessionId ?? "").id;
    } catch {
      return req.vm;
    }
  }

  /** Stops following the VMs' event feeds. */
  close(): void {
    this.feeds.abort();
  }

  private read(vm: string, bytes: number): void {
    if (bytes > 0) this.bytesRead.inc({ vm }, bytes);
  }

  private async *countChunks(vm: string, chunks: AsyncIterable<ds.ReadMemoryStreamResponse>): AsyncIterable<ds.ReadMemoryStreamResponse> {
    for await (const chunk of chunks) {
      this.read(vm, chunk.data.length);
      yield chunk;
    }
  }

  private async follow(vm: string, feed: AsyncIterable<FeedItem>): Promise<void> {
    try {
      for await (const item of feed) {
        if (!("body" in item)) continue;
        const body = item.body;
        if (body.kind === "stopped") this.stops.inc({ vm, reason: body.reason.kind });
        else if (body.kind === "stepped" && body.stop) this.stops.inc({ vm, reason: body.stop.kind });
      }
    } catch {
      // The feed ends with the server; a failure here must not take the server down.
    }
  }
}

/** "INVALID_ARGUMENT" for 3. */
function codeName(code: number): string {
  return (GrpcStatus as unknown as Record<number, string>)[code] ?? String(code);
}

/** Checks a `--metrics` address: HOST:PORT on loopback (the endpoint has no authentication). */
export function parseMetricsAddress(address: string): ListenAddress {
  let parsed: ListenAddress;
  try {
    parsed = parseListenAddress(address);
  } catch (e) {
    throw new TypeError(`--metrics ${address}: ${e instanceof Error ? e.message.replace(/^invalid listen address "[^"]*": /, "") : String(e)}`);
  }
  if (!isLoopbackHost(parsed.host)) {
    throw new TypeError(
      `--metrics ${address}: the metrics endpoint has no authentication, so it listens on loopback only; give --metrics 127.0.0.1:PORT or [::1]:PORT (and let a local agent forward it)`,
    );
  }
  return parsed;
}

/** Serves GET /metrics from `registry` on a loopback address; resolves once bound. */
export async function serveMetrics(registry: Registry, address: string): Promise<{ host: string; port: number; close(): Promise<void> }> {
  const parsed = parseMetricsAddress(address);
  const http: HttpServer = createHttpServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: the metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("only GET /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(req.method === "HEAD" ? undefined : text),
      (e: unknown) => res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`collecting the metrics failed: ${String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", (e: NodeJS.ErrnoException) => reject(metricsListenError(address, e)));
    http.listen({ host: parsed.host, port: parsed.port, exclusive: true }, () => resolve());
  });
  const bound = http.address();
  const port = bound !== null && typeof bound === "object" ? bound.port : parsed.port;
  return {
    host: parsed.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

function metricsListenError(address: string, e: NodeJS.ErrnoException): Error {
  const where = `cannot serve metrics on ${address}`;
  if (e.code === "EADDRINUSE") return new Error(`${where}: the address is already in use; choose another port with --metrics 127.0.0.1:PORT`);
  if (e.code === "EACCES") return new Error(`${where}: permission denied (ports below 1024 need privileges); choose another port with --metrics`);
  if (e.code === "EADDRNOTAVAIL") return new Error(`${where}: no network interface here has that address`);
  return new Error(`${where}: ${e.message}`);
}
