// The logger the server writes audit lines, warnings and guest console lines to, and its default:
// pino, human-readable when stderr is a terminal and JSON lines otherwise.
import { format } from "node:util";
import { setLogger as setGrpcLogger } from "@grpc/grpc-js";
import pino from "pino";
import { prettyFactory } from "pino-pretty";

/** Structured logger: a message plus flat fields. Any console-like or pino-like object fits. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Optional: details only wanted while investigating (dropped unless the level is debug or trace). */
  debug?(message: string, fields?: Record<string, unknown>): void;
  /** Optional: failures the server cannot recover from by itself. */
  error?(message: string, fields?: Record<string, unknown>): void;
}

/** The levels `--log-level` and $VMM_DEBUG_LOG_LEVEL take, most verbose first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export interface LoggerOptions {
  /** Lines below this level are dropped. Default "info". */
  level?: LogLevel;
  /**
   * Human-readable lines (time, level, message, then the fields) instead of JSON. Default: when
   * stderr is a terminal.
   */
  pretty?: boolean;
  /** Colours in pretty lines. Default: when pretty and stderr is a colour terminal. */
  colorize?: boolean;
  /** Where each line goes, newline included. Default: stderr, synchronously (no line is lost at exit). */
  write?: (chunk: string) => void;
}

/** A logger that can also tell its level and write trace lines. */
export interface LeveledLogger extends Required<Logger> {
  readonly level: LogLevel;
  trace(message: string, fields?: Record<string, unknown>): void;
}

/**
 * The server's default logger, built on pino. JSON lines are one object each, with `level` as
 * its name ("info"), `time` as an ISO 8601 string, `message`, and the fields flat beside them:
 * `{"level":"info","time":"2026-…Z","peer":"…","rpc":"Attach","outcome":"ok","message":"audit"}`.
 * Pretty lines read `[15:04:05.123] INFO: audit {"peer":"…","rpc":"Attach",…}`.
 */
export function createLogger(options: LoggerOptions = {}): LeveledLogger {
  const level = options.level ?? "info";
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const write = options.write ?? ((chunk: string) => void process.stderr.write(chunk));
  let instance: pino.Logger;
  if (pretty) {
    const format = prettyFactory({
      messageKey: "message",
      colorize: options.colorize ?? (options.write === undefined && process.stderr.hasColors?.() === true),
      singleLine: true,
      // Our `error` fields are strings: kept on the line like any other field.
      errorLikeObjectKeys: ["err"],
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname",
    });
    instance = pino({ level, messageKey: "message", base: undefined }, { write: (line: string) => write(format(line)) });
  } else {
    instance = pino(
      {
        level,
        messageKey: "message",
        base: undefined,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      { write },
    );
  }
  const emit = (method: "trace" | "debug" | "info" | "warn" | "error") => (message: string, fields?: Record<string, unknown>) => {
    if (!instance.isLevelEnabled(method)) return;
    if (fields === undefined) instance[method](message);
    else instance[method](plain(fields), message);
  };
  return { level, trace: emit("trace"), debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/**
 * JSON lines (as createLogger writes them when stderr is not a terminal) to `write`, one call per
 * line without its newline; stderr by default.
 */
export function createJsonLogger(write: (line: string) => void = (line) => process.stderr.write(line + "\n"), level: LogLevel = "info"): LeveledLogger {
  return createLogger({ level, pretty: false, write: (chunk) => write(chunk.endsWith("\n") ? chunk.slice(0, -1) : chunk) });
}

/** A logger that drops everything (tests, embedding). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} };

/**
 * Fields as JSON shows them: bigints (guest addresses) in hex, as the old JSON logger wrote them.
 * pino supplies `time` itself; a field of that name (audit entries carry one) would repeat it.
 */
function plain(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (key === "time") continue;
    out[key] = hexBigints(value, 0);
  }
  return out;
}

function hexBigints(value: unknown, depth: number): unknown {
  if (typeof value === "bigint") return "0x" + value.toString(16);
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.some((v) => typeof v === "bigint" || (typeof v === "object" && v !== null)) ? value.map((v) => hexBigints(v, depth + 1)) : value;
  if (value instanceof Error || ArrayBuffer.isView(value)) return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = hexBigints(v, depth + 1);
  return out;
}

/**
 * Sends grpc-js's own log lines (process-wide) to `logger`: errors as warnings, the rest as debug.
 * Its "No address added out of total N resolved" line is dropped: the listen error that follows
 * it says the same in words a user can act on (createVmmDebugServer's listen()).
 */
export function routeGrpcJsLogs(logger: Logger): void {
  const line = (message: unknown, rest: unknown[]) => format(message, ...rest);
  setGrpcLogger({
    error: (message?: unknown, ...rest: unknown[]) => {
      const text = line(message, rest);
      if (/^No address added out of total \d+ resolved/.test(text)) return;
      logger.warn("grpc-js", { detail: text });
    },
    info: (message?: unknown, ...rest: unknown[]) => logger.debug?.("grpc-js", { detail: line(message, rest) }),
    debug: (message?: unknown, ...rest: unknown[]) => logger.debug?.("grpc-js", { detail: line(message, rest) }),
  } as unknown as Partial<Console>);
}
