// The vmm-debug gRPC server: DebugService, VmService, health and reflection over VMM cores.
export { createVmmDebugServer } from "./create-server";
export type { VmmDebugServer, VmmDebugServerOptions } from "./create-server";
export { formatListenAddress, isLoopbackHost, parseListenAddress } from "./listen-address";
export type { ListenAddress } from "./listen-address";
export { LOG_LEVELS, createJsonLogger, createLogger, isLogLevel, routeGrpcJsLogs, silentLogger } from "./logger";
export type { LeveledLogger, LogLevel, Logger, LoggerOptions } from "./logger";
export { ServerMetrics, parseMetricsAddress, serveMetrics } from "./metrics";
export type { AuditEntry } from "./operations";
export type { ServerReason } from "./errors";
