// createVmmDebugServer: DebugService, VmService, health and reflection over a set of VMM cores.
import { type ServerOptions, ServerCredentials } from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { createServer } from "nice-grpc";
import { HealthDefinition, HealthServiceImpl, HealthState } from "nice-grpc-server-health";
import type { VmmCore } from "../core";
import { DebugServiceDefinition, VmServiceDefinition } from "../wire";
import { createDebugService } from "./debug-service";
import { audit, createExecutor, createOperationTable } from "./operations";
import { DEFAULT_SESSION_STREAM_LIMITS, type SessionStreamLimits } from "./session-stream";
import { createErrorMiddleware } from "./errors";
import { formatListenAddress, isLoopbackHost, parseListenAddress } from "./listen-address";
import { createLogger, type Logger } from "./logger";
import { ServerMetrics, parseMetricsAddress, serveMetrics } from "./metrics";
import { addReflection, REFLECTED_SERVICES } from "./reflection";
import { VmRegistry } from "./registry";
import { DEFAULT_SEND_BUDGET, SendBudget, sendBudgetInterceptor, type SendBudgetLimits } from "./send-budget";
import { createVmService } from "./vm-service";
import { Authenticator, type TokenVerifier, authMiddleware } from "./auth/interceptor";
import { type Role, isRole } from "./auth/principal";
import { DEFAULT_PRINCIPAL_LIMITS, PrincipalLimiter, type PrincipalLimits } from "./auth/limits";
import { type TlsFiles, createTlsCredentials, principalFromCertificate } from "./auth/tls";

const MIB = 1024 * 1024;
export const DEFAULT_KEEPALIVE_MS = 15_000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 10_000;

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
  /**
   * Bytes of answers the server holds for clients that have not read them yet: across every call
   * and connection, and per call. Reads wait for room before they read guest memory. Default
   * 128 MiB in total, 8 MiB per call.
   */
  sendBudget?: Partial<SendBudgetLimits>;
  /**
   * HTTP/2 keepalive: after this long without traffic on a connection the server pings it, and a
   * peer that does not answer within `keepaliveTimeoutMs` is dropped; its calls are cancelled,
   * its Session streams end, and a unary session whose Resume was in flight keeps only its lease.
   * Default 15 000 ms and 10 000 ms.
   */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  /**
   * Where audit lines and warnings go. Default: pino on stderr at level info, human-readable
   * when stderr is a terminal and JSON lines otherwise (logger.ts's createLogger).
   */
  logger?: Logger;
  /**
   * Prometheus metrics (metrics.ts; the CLI's `--metrics`): per-RPC latency and counts by status,
   * open sessions, VMs by run state, stops by reason, guest memory bytes read and written, and
   * the process's default metrics, in a registry of this server's own (`metrics`). With
   * `listen` (a loopback HOST:PORT; port 0 picks one), listen() also serves GET /metrics there,
   * and close() stops it.
   */
  metrics?: { listen?: string };
  /**
   * Serve TLS from these PEM files (re-read while serving: rotation needs no restart). With
   * `clientCa`, clients must present a certificate that chains to it; the principal is its
   * subject CN (or first SAN).
   */
  tls?: TlsFiles & { refreshIntervalMs?: number };
  /**
   * The role of a principal known only by its client certificate (no tokens): the certificate's
   * subject OU when it names a role (viewer, debugger, admin), else this. Default "viewer".
   * With tokens, the token's role decides.
   */
  certificateRole?: Role;
  /**
   * Bearer tokens every call must carry (`authorization: Bearer …`): auth/tokens.ts's TokenStore.
   * With a client CA as well, a call needs both and they must name the same principal. When
   * neither is configured every caller is an implicit local admin (the loopback default).
   */
  tokens?: TokenVerifier;
  /**
   * Limits per principal: calls and streams in flight, calls and Session operations per second,
   * message sizes (auth/limits.ts; DEFAULT_PRINCIPAL_LIMITS filled in). On by default where callers
   * authenticate (client CA or tokens): one principal cannot starve another. In the loopback
   * default every caller is the one local principal, so they are off unless given here; `false`
   * turns them off.
   */
  limits?: Partial<PrincipalLimits> | false;
  /**
   * Listen beyond loopback without authenticated TLS (the CLI's `--insecure-non-loopback`):
   * anyone who can reach the port can control the VMs.
   */
  insecureNonLoopback?: boolean;
  /** @deprecated the old name of insecureNonLoopback. */
  allowNonLoopback?: boolean;
}

export interface VmmDebugServer {
  /** The served VMs by id. */
  readonly vms: ReadonlyMap<string, VmmCore>;
  /** The send budget shared by every call (its figures are for tests and the bench). */
  readonly sendBudget: SendBudget;
  /** Ends every open call of these principals (their tokens were removed): UNAUTHENTICATED / TOKEN_REVOKED. Answers how many. */
  revoke(principals: readonly string[]): number;
  /** The server's metrics, when the `metrics` option asked for them. */
  readonly metrics?: ServerMetrics;
  /**
   * Binds "HOST:PORT" (port 0 picks a free one) and starts serving; resolves to the bound address,
   * and to the metrics endpoint's when `metrics.listen` was given.
   */
  listen(address: string): Promise<{ host: string; port: number; metrics?: { host: string; port: number } }>;
  /** Detaches every session (resuming VMs the debugger stopped), then shuts the server down. */
  close(): Promise<void>;
}

export function createVmmDebugServer(options: VmmDebugServerOptions): VmmDebugServer {
  const leaseMs = positive(options.leaseMs ?? 600_000, "leaseMs");
  const maxReadBytes = positive(options.maxReadBytes ?? 4 * MIB, "maxReadBytes");
  const maxStreamReadBytes = positive(options.maxStreamReadBytes ?? 1024 * MIB, "maxStreamReadBytes");
  const streamChunkBytes = positive(options.streamChunkBytes ?? MIB, "streamChunkBytes");
  const logger = options.logger ?? createLogger();
  // A bad --metrics address is refused before anything is built.
  if (options.metrics?.listen !== undefined) parseMetricsAddress(options.metrics.listen);

  const registry = new VmRegistry(options.vms, {
    leaseMs,
    eventCapacity: options.eventCapacity,
    onSessionEnded: (vm, sessionId, cause, outcome) =>
      audit(logger, { peer: "server", principal: "server", auth: "none", vm, rpc: SESSION_END_RPC[cause], session: sessionId.slice(0, 8), outcome }),
  });
  const callersAuthenticate = options.tokens !== undefined || options.tls?.clientCa !== undefined;
  const limits: PrincipalLimits | undefined =
    options.limits === false || (options.limits === undefined && !callersAuthenticate)
      ? undefined
      : // Messages as large as the unary read cap allows (plus room for the other fields), unless set.
        { ...DEFAULT_PRINCIPAL_LIMITS, maxRequestBytes: maxReadBytes + MIB, maxResponseBytes: maxReadBytes + MIB, ...options.limits };
  const limiter = limits ? new PrincipalLimiter({ limits }) : undefined;
  const table = createOperationTable({ maxReadBytes, maxStreamReadBytes, streamChunkBytes });
  const metrics = options.metrics ? new ServerMetrics(registry) : undefined;
  const executor = createExecutor(registry, table, logger, limiter);
  const execute = metrics ? metrics.countMemory(executor) : executor;

  const budget = new SendBudget({ ...DEFAULT_SEND_BUDGET, ...options.sendBudget });
  const insecure = options.insecureNonLoopback === true || options.allowNonLoopback === true;
  const tls = options.tls ? createTlsCredentials(options.tls, { refreshIntervalMs: options.tls.refreshIntervalMs, onWarning: (m) => logger.warn(m) }) : undefined;
  const certificateRole = options.certificateRole ?? "viewer";
  const authenticator = new Authenticator({
    tokens: options.tokens,
    limiter,
    insecure,
    logger,
    clientCertificates: options.tls?.clientCa
      ? {
          name: (cert) => principalFromCertificate(cert as PeerCertificate),
          role: (cert) => {
            const ou = (cert as PeerCertificate).subject?.OU;
            const unit = Array.isArray(ou) ? ou[0] : ou;
            return unit !== undefined && isRole(unit) ? unit : certificateRole;
          },
        }
      : undefined,
  });
  // Beyond loopback, callers must be authenticated over TLS (or the risk accepted).
  const authenticated = tls !== undefined && authenticator.authenticates;
  const serverOptions: ServerOptions = {
    // A WriteMemory as large as the unary read cap must fit, with room for the other fields.
    "grpc.max_receive_message_length": limits ? limits.maxRequestBytes : maxReadBytes + MIB,
    ...(limits ? { "grpc.max_send_message_length": limits.maxResponseBytes } : {}),
    // Bound what one connection can hold open.
    "grpc.max_concurrent_streams": 128,
    // A frozen or vanished peer is found by a ping it does not answer.
    "grpc.keepalive_time_ms": positive(options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS, "keepaliveMs"),
    "grpc.keepalive_timeout_ms": positive(options.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS, "keepaliveTimeoutMs"),
    // Every answer's bytes go back to the send budget once the transport has written it.
    // Who calls, and whether they may, before any handler runs (auth/interceptor.ts).
    // The metrics interceptor is the innermost (first): every status passes it, refusals included.
    interceptors: [...(metrics ? [metrics.interceptor()] : []), authenticator.interceptor(), sendBudgetInterceptor(budget)],
  };
  // nice-grpc hands these options to grpc-js's Server unchanged; its type names only channel options.
  const server = createServer(serverOptions as Parameters<typeof createServer>[0])
    .use(createErrorMiddleware(logger))
    .use(authMiddleware(authenticator));

  server.add(
    DebugServiceDefinition,
    createDebugService({
      registry,
      table,
      execute,
      logger,
      stream: { ...DEFAULT_SESSION_STREAM_LIMITS, ...options.sessionStream },
      budget,
    }),
  );
  // Aborted by close(): console feeds end (VmService.WatchConsole) as event feeds do.
  const shutdown = new AbortController();
  server.add(VmServiceDefinition, createVmService(registry, undefined, budget, shutdown.signal));

  const health = HealthState();
  for (const service of ["", ...REFLECTED_SERVICES.filter((s) => s !== "grpc.health.v1.Health")]) {
    health.setStatus("healthy", service);
  }
  server.add(HealthDefinition, HealthServiceImpl(health));
  addReflection(server);

  let closing: Promise<void> | undefined;
  let metricsEndpoint: { host: string; port: number; close(): Promise<void> } | undefined;

  return {
    vms: registry.cores,
    sendBudget: budget,
    metrics,

    revoke: (principals) => authenticator.revoke(principals),

    async listen(address: string) {
      const parsed = parseListenAddress(address);
      if (!insecure && !authenticated && !isLoopbackHost(parsed.host)) {
        throw new Error(
          `refusing to listen on ${address}: ${parsed.host} is not a loopback address, and without TLS and client ` +
            `authentication anyone who can reach it could control the VMs. Serve TLS (--tls-cert, --tls-key) and ` +
            `authenticate callers (--client-ca and/or --tokens), listen on 127.0.0.1 or [::1], or accept the risk ` +
            `with --insecure-non-loopback.`,
        );
      }
      if (insecure && !authenticated && !isLoopbackHost(parsed.host)) {
        logger.warn("INSECURE: listening beyond loopback without TLS client authentication; anyone who can reach this port can control the VMs", {
          listen: address,
        });
      }
      let port: number;
      try {
        port = await server.listen(formatListenAddress(parsed), tls?.credentials ?? ServerCredentials.createInsecure());
      } catch (e) {
        throw listenError(address, e);
      }
      if (metrics && options.metrics?.listen !== undefined && !metricsEndpoint) {
        metricsEndpoint = await serveMetrics(metrics.registry, options.metrics.listen);
        return { host: parsed.host, port, metrics: { host: metricsEndpoint.host, port: metricsEndpoint.port } };
      }
      return { host: parsed.host, port };
    },

    close() {
      closing ??= (async () => {
        for (const service of ["", ...REFLECTED_SERVICES]) health.setStatus("unhealthy", service);
        shutdown.abort();
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
        tls?.close();
        metrics?.close();
        await metricsEndpoint?.close();
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
  forced: "ForceDetach",
  server_shutdown: "ServerShutdown",
} as const;

/** grpc-js's bind failure ("No address added … errors: [listen EADDRINUSE …]") in words a user can act on. */
function listenError(address: string, e: unknown): Error {
  const text = e instanceof Error ? e.message : String(e);
  if (text.includes("EADDRINUSE")) {
    return new Error(`cannot listen on ${address}: the address is already in use (another vmm-debug server?); choose another with --listen HOST:PORT or VMM_DEBUG_LISTEN`);
  }
  if (text.includes("EACCES")) return new Error(`cannot listen on ${address}: permission denied (ports below 1024 need privileges); choose another port`);
  if (text.includes("EADDRNOTAVAIL")) return new Error(`cannot listen on ${address}: no network interface here has that address`);
  return new Error(`cannot listen on ${address}: ${text}`);
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
