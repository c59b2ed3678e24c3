// The logger the server writes audit lines and warnings to, and a default that prints JSON lines.

/** Structured logger: a message plus flat fields. Any console-like or pino-like object fits. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Writes one JSON object per line to stderr (stdout stays free for a CLI's output). */
export function createJsonLogger(write: (line: string) => void = (line) => process.stderr.write(line + "\n")): Logger {
  const emit = (level: string, message: string, fields?: Record<string, unknown>) =>
    write(JSON.stringify({ level, time: new Date().toISOString(), message, ...fields }, jsonSafe));
  return {
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
  };
}

/** A logger that drops everything (tests, embedding). */
export const silentLogger: Logger = { info: () => {}, warn: () => {} };

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? "0x" + value.toString(16) : value;
}
