// The server's default logger (pino): JSON lines or readable lines by the terminal flag, levels,
// and the JSON field names audit readers rely on.
import { setLogger as setGrpcLogger } from "@grpc/grpc-js";
// grpc-js's current logger (not exported from its index).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { getLogger: getGrpcLogger } = require("@grpc/grpc-js/build/src/logging") as { getLogger(): Partial<Console> };
import { LOG_LEVELS, createJsonLogger, createLogger, isLogLevel, routeGrpcJsLogs } from "../../../src/server/logger";

function capture() {
  const chunks: string[] = [];
  return { chunks, write: (chunk: string) => void chunks.push(chunk) };
}

describe("createLogger", () => {
  it("writes one JSON object per line when stderr is not a terminal: level by name, ISO time, message, flat fields", () => {
    const out = capture();
    const logger = createLogger({ pretty: false, write: out.write });
    logger.info("audit", { time: "ignored: pino stamps its own", peer: "ipv4:127.0.0.1:5", rpc: "Attach", outcome: "ok", gpa: 0x107000n, nested: { at: 16n } });
    expect(out.chunks).toHaveLength(1);
    expect(out.chunks[0].endsWith("\n")).toBe(true);
    expect(out.chunks[0].trimEnd()).not.toContain("\n");
    const line = JSON.parse(out.chunks[0]) as Record<string, unknown>;
    expect(line).toMatchObject({ level: "info", message: "audit", peer: "ipv4:127.0.0.1:5", rpc: "Attach", outcome: "ok", gpa: "0x107000", nested: { at: "0x10" } });
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // One `time` key (an audit entry's own would repeat it), and no pid/hostname noise.
    expect(out.chunks[0].match(/"time"/g)).toHaveLength(1);
    expect(Object.keys(line).sort()).toEqual(["gpa", "level", "message", "nested", "outcome", "peer", "rpc", "time"]);
  });

  it("writes readable lines when stderr is a terminal: time, level, message, then the fields", () => {
    const out = capture();
    const logger = createLogger({ pretty: true, colorize: false, write: out.write });
    logger.warn("tokens file not reloaded", { error: "line 2: bad role" });
    logger.info("guest console", { vm: "demo", line: "running on vp 0" });
    expect(out.chunks).toHaveLength(2);
    expect(out.chunks[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: tokens file not reloaded \{"error":"line 2: bad role"\}\n$/);
    expect(out.chunks[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: guest console \{"vm":"demo","line":"running on vp 0"\}\n$/);
    expect(() => JSON.parse(out.chunks[0])).toThrow();
  });

  it("picks JSON or readable lines by whether stderr is a terminal when not told", () => {
    const original = Object.getOwnPropertyDescriptor(process.stderr, "isTTY");
    const lines = (tty: boolean) => {
      Object.defineProperty(process.stderr, "isTTY", { value: tty, configurable: true });
      const out = capture();
      createLogger({ write: out.write }).info("hello", { n: 1 });
      return out.chunks[0];
    };
    try {
      expect(JSON.parse(lines(false))).toMatchObject({ level: "info", message: "hello", n: 1 });
      expect(lines(true)).toMatch(/INFO.*: hello/);
    } finally {
      if (original) Object.defineProperty(process.stderr, "isTTY", original);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
  });

  it("drops lines below its level, in both forms", () => {
    for (const pretty of [false, true]) {
      const out = capture();
      const logger = createLogger({ level: "warn", pretty, colorize: false, write: out.write });
      expect(logger.level).toBe("warn");
      logger.trace("t");
      logger.debug("d");
      logger.info("i");
      logger.warn("w");
      logger.error("e");
      expect(out.chunks.map((c) => (pretty ? /(\w+): (\w)/.exec(c)![2] : (JSON.parse(c) as { message: string }).message))).toEqual(["w", "e"]);
    }
    const out = capture();
    const silent = createLogger({ level: "silent", pretty: false, write: out.write });
    silent.error("e");
    expect(out.chunks).toEqual([]);
    const verbose = createLogger({ level: "trace", pretty: false, write: out.write });
    verbose.trace("t", { a: 1 });
    verbose.debug("d");
    expect(out.chunks.map((c) => JSON.parse(c) as { level: string })).toMatchObject([{ level: "trace", message: "t", a: 1 }, { level: "debug", message: "d" }]);
  });

  it("names the levels --log-level takes", () => {
    expect(LOG_LEVELS).toEqual(["trace", "debug", "info", "warn", "error", "silent"]);
    expect(isLogLevel("warn")).toBe(true);
    expect(isLogLevel("verbose")).toBe(false);
  });

  it("createJsonLogger hands each line without its newline to its writer", () => {
    const lines: string[] = [];
    const logger = createJsonLogger((l) => lines.push(l));
    logger.info("audit", { rpc: "Detach" });
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith("}")).toBe(true);
    expect(JSON.parse(lines[0])).toMatchObject({ level: "info", message: "audit", rpc: "Detach" });
  });
});

describe("routeGrpcJsLogs", () => {
  it("sends grpc-js's errors to the logger as warnings, except its line about a failed bind", () => {
    const before = getGrpcLogger();
    const seen: [string, Record<string, unknown> | undefined][] = [];
    try {
      routeGrpcJsLogs({ info: () => {}, warn: (m, f) => seen.push([m, f]) });
      getGrpcLogger().error!("No address added out of total 1 resolved");
      getGrpcLogger().error!("something %s", "else");
      expect(seen).toEqual([["grpc-js", { detail: "something else" }]]);
    } finally {
      setGrpcLogger(before);
    }
  });
});
