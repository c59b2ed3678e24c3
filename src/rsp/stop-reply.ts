// Stop replies: `S xx`, `T xx key:value;…`, `W xx`, `X xx` — parsed and formatted.
import { RspParseError } from "./errors";
import { formatHex, parseHexInt, parseHexNumber } from "./hex";
import { type ThreadId, formatThreadId, parseThreadId } from "./thread-id";

/** Why the target stopped, from the `T` packet's reason field. */
export type StopReason =
  | { kind: "watch" | "rwatch" | "awatch"; address: bigint }
  | { kind: "swbreak" }
  | { kind: "hwbreak" };

export type StopReply =
  | {
      kind: "signal";
      /** GDB signal number: 2 SIGINT (interrupted), 5 SIGTRAP (step, breakpoint, watchpoint)… */
      signal: number;
      thread?: ThreadId;
      core?: number;
      reason?: StopReason;
      /** Expedited registers: register number → hex bytes in target order. */
      registers: ReadonlyMap<number, string>;
      /** Every `key:value` pair as sent, in order (`swbreak` and the like have value ""). */
      fields: ReadonlyArray<readonly [string, string]>;
    }
  | { kind: "exited"; status: number; pid?: number }
  | { kind: "killed"; signal: number; pid?: number };

const STOP_RE = /^[TS][0-9a-fA-F]{2}|^[WX][0-9a-fA-F]{2}/;

/** Whether a payload is a stop reply (as opposed to any other reply). */
export function isStopReply(payload: string): boolean {
  return STOP_RE.test(payload);
}

/** Parses a stop reply. Throws RspParseError. */
export function parseStopReply(payload: string): StopReply {
  const code = payload.slice(1, 3);
  if (!/^[0-9a-fA-F]{2}$/.test(code)) throw new RspParseError("stop reply", payload);
  const value = parseHexInt(code);
  const rest = payload.slice(3);
  switch (payload[0]) {
    case "S":
      if (rest !== "") throw new RspParseError("S stop reply", payload);
      return { kind: "signal", signal: value, registers: new Map(), fields: [] };
    case "T":
      return parseT(value, rest, payload);
    case "W":
    case "X": {
      let pid: number | undefined;
      if (rest !== "") {
        const m = /^;process:([0-9a-fA-F]+)$/.exec(rest);
        if (!m) throw new RspParseError("exit stop reply", payload);
        pid = parseHexInt(m[1]);
      }
      const base = payload[0] === "W" ? { kind: "exited" as const, status: value } : { kind: "killed" as const, signal: value };
      return pid === undefined ? base : { ...base, pid };
    }
    default:
      throw new RspParseError("stop reply", payload);
  }
}

function parseT(signal: number, rest: string, payload: string): StopReply {
  const fields: [string, string][] = [];
  const registers = new Map<number, string>();
  let thread: ThreadId | undefined;
  let core: number | undefined;
  let reason: StopReason | undefined;
  for (const item of rest.split(";")) {
    if (item === "") continue;
    const colon = item.indexOf(":");
    const key = colon < 0 ? item : item.slice(0, colon);
    const val = colon < 0 ? "" : item.slice(colon + 1);
    fields.push([key, val]);
    try {
      if (key === "thread") thread = parseThreadId(val);
      else if (key === "core") core = parseHexInt(val);
      else if (key === "watch" || key === "rwatch" || key === "awatch") reason = { kind: key, address: parseHexNumber(val) };
      else if (key === "swbreak" || key === "hwbreak") reason = { kind: key };
      else if (/^[0-9a-fA-F]+$/.test(key)) registers.set(parseHexInt(key), val);
      // Other reasons (library, fork, exec, create…) stay in `fields`.
    } catch {
      throw new RspParseError(`stop reply field ${key}`, payload);
    }
  }
  const reply: StopReply = { kind: "signal", signal, registers, fields };
  if (thread) reply.thread = thread;
  if (core !== undefined) reply.core = core;
  if (reason) reply.reason = reason;
  return reply;
}

/**
 * The stop reply as a stub sends it (`T05thread:p01.01;hwbreak:;`). A `signal` reply with no
 * fields, thread, core, reason or registers becomes `Sxx`.
 */
export function formatStopReply(reply: StopReply, multiprocess = false): string {
  switch (reply.kind) {
    case "exited":
      return `W${hex2(reply.status)}${reply.pid === undefined ? "" : `;process:${formatHex(reply.pid)}`}`;
    case "killed":
      return `X${hex2(reply.signal)}${reply.pid === undefined ? "" : `;process:${formatHex(reply.pid)}`}`;
    case "signal": {
      if (reply.fields.length > 0) {
        return `T${hex2(reply.signal)}` + reply.fields.map(([k, v]) => `${k}:${v};`).join("");
      }
      let out = "";
      for (const [n, v] of reply.registers) out += `${formatHex(n).padStart(2, "0")}:${v};`;
      if (reply.thread) out += `thread:${formatThreadId(reply.thread, multiprocess)};`;
      if (reply.core !== undefined) out += `core:${formatHex(reply.core)};`;
      if (reply.reason) {
        out += "address" in reply.reason ? `${reply.reason.kind}:${formatHex(reply.reason.address)};` : `${reply.reason.kind}:;`;
      }
      return out === "" ? `S${hex2(reply.signal)}` : `T${hex2(reply.signal)}${out}`;
    }
  }
}

function hex2(n: number): string {
  if (n < 0 || n > 0xff) throw new RangeError(`stop reply code ${n} does not fit one byte`);
  return n.toString(16).padStart(2, "0");
}
