// createVmmDebugServer: DebugService, VmService, health and reflection over a set of VMM cores.
import { createServer } from "nice-grpc";
import { HealthDefinition, HealthServiceImpl, HealthState } from "nice-grpc-server-health";
import type { VmmCore } from "../core";
import { DebugServiceDefinition, VmServiceDefinition } from "../wire";
import { createDebugService } from "./debug-service";
import { audit, createExecutor, createOperationTable } from "./operations";
import { DEFAULT_SESSION_STREAM_LIMITS, type SessionStreamLimits } from "./session-stream";
import { createErrorMiddleware } from "./errors";
import { formatListenAddress, isLoopbackHost, parseListenAddress } from "./listen-address";
import { createJsonLogger, type Logger } from "./logger";
import { addReflection, REFLECTED_SERVICES } from "./reflection";
import { VmRegistry } from "./registry";
import { createVmService } from "./vm-service";

const MIB = 1024 * 1024;

export interface VmmDebugServerOptions {
  /** The VMs to serve; ids must be unique. The caller keeps ownership (close() does not close them). */
  vms: readonly VmmCore[];
  /**
   * Lease of a unary session: one without a request carrying it for this long is detached.
   * Default 600 000 ms (10 minutes: a person at a shell reads output between commands). A
   * Session stream has no lease: it lasts as long as the stream.
   */
  leaseMs?: number;
  /** Events each VM keeps for WatchEvents replay. Default 4096. */
  eventCapacity?: number;
  /** Bounds on answers a Session stream queues for a client that does not read. */
  sessionStream?: Partial<SessionStreamLimits>;
  /** Largest unary ReadMemory. Default 4 MiB. */
  maxReadBytes?: number;
  /** Largest ReadMemoryStream. Default 1 GiB. */
  maxStreamReadBytes?: number;
  /** Bytes per ReadMemoryStream message. Default 1 MiB. */
  streamChunkBytes?: number;
  /** Where audit lines and warnings go. Default: JSON lines on stderr. */
  logger?: Logger;
  /**
   * Allow listening on a non-loopback address. There is no TLS or authentication yet, so anyone
   * who can reach the port can control the VMs.
   */
  allowNonLoopback?: boolean;
}

export interface VmmDebugServer {
  /** The served VMs by id. */
  readonly vms: ReadonlyMap<string, VmmCore>;
  /** Binds "HOST:PORT" (port 0 picks a free one) and starts serving; resolves to the bound address. */
  listen(address: string): Promise<{ host: string; port: number }>;
  /** Detaches every session (resuming VMs the debugger stopped), then shuts the server down. */
  close(): Promise<void>;
}

export function createVmmDebugServer(options: VmmDebugServerOptions): VmmDebugServer {
  const leaseMs = positive(options.leaseMs ?? 600_000, "leaseMs");
  const maxReadBytes = positive(options.maxReadBytes ?? 4 * MIB, "maxReadBytes");
  const maxStreamReadBytes = positive(options.maxStreamReadBytes ?? 1024 * MIB, "maxStreamReadBytes");
  const streamChunkBytes = positive(options.streamChunkBytes ?? MIB, "streamChunkBytes");
  const logger = options.logger ?? createJsonLogger();

  const registry = new VmRegistry(options.vms, {
    leaseMs,
    eventCapacity: options.eventCapacity,
    onSessionEnded: (vm, sessionId, cause, outcome) =>
      audit(logger, { peer: "server", vm, rpc: SESSION_END_RPC[cause], session: sessionId.slice(0, 8), outcome }),
  });
  const table = createOperationTable({ maxReadBytes, maxStreamReadBytes, streamChunkBytes });
  const execute = createExecutor(registry, table, logger);

  const server = createServer({
    // A WriteMemory as large as the unary read cap must fit, with room for the other fields.
    "grpc.max_receive_message_length": maxReadBytes + MIB,
    // Bound what one connection can hold open (each stream may pin a read buffer).
    "grpc.max_concurrent_streams": 128,
  }).use(createErrorMiddleware(logger));

  server.add(
    DebugServiceDefinition,
    createDebugService({
      registry,
      table,
      execute,
      logger,
      stream: { ...DEFAULT_SESSION_STREAM_LIMITS, ...options.sessionStream },
    }),
  );
  server.add(VmServiceDefinition, createVmService(registry));

  const health = HealthState();
  for (const service of ["", ...REFLECTED_SERVICES.filter((s) => s !== "grpc.health.v1.Health")]) {
    health.setStatus("healthy", service);
  }
  server.add(HealthDefinition, HealthServiceImpl(health));
  addReflection(server);

  let closing: Promise<void> | undefined;

  return {
    vms: registry.cores,

    async listen(address: string) {
      const parsed = parseListenAddress(address);
      if (!options.allowNonLoopback && !isLoopbackHost(parsed.host)) {
        throw new Error(
          `refusing to listen on ${address}: ${parsed.host} is not a loopback address, and this server has no TLS or ` +
            `authentication yet, so anyone who can reach it could control the VMs. Listen on 127.0.0.1 or [::1], ` +
            `or set allowNonLoopback to accept the risk.`,
        );
      }
      const port = await server.listen(formatListenAddress(parsed));
      return { host: parsed.host, port };
    },

    close() {
      closing ??= (async () => {
        for (const service of ["", ...REFLECTED_SERVICES]) health.setStatus("unhealthy", service);
        const results = await Promise.allSettled(registry.list().map((d) => d.close()));
        for (const r of results) {
          if (r.status === "rejected") logger.warn("detaching a session at shutdown failed", { error: String(r.reason) });
        }
        // Graceful first; calls still open after a moment (e.g. a client's stream) are cancelled.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          server.shutdown(),
          new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, 2000);
          }),
        ]);
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}

/** The audit `rpc` of a session the server ended on its own. */
const SESSION_END_RPC = {
  requested: "Detach",
  lease_expired: "LeaseExpired",
  stream_closed: "StreamClosed",
  stream_overflow: "StreamOverflow",
  backend_lost: "BackendLost",
  server_shutdown: "ServerShutdown",
} as const;

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
