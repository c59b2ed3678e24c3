// Thread ids (`p01.02`, `1`, `-1`, `0`) and the qfThreadInfo/qsThreadInfo thread lists.
import { RspParseError } from "./errors";
import { formatHex, parseHexInt } from "./hex";

/** One part of a thread id: a number, `-1` (all) or `0` (any). */
export type ThreadIdPart = number | "all" | "any";

/** `pPID.TID` with multiprocess extensions, else just TID. `p1` alone means every thread of 1. */
export interface ThreadId {
  pid?: ThreadIdPart;
  tid: ThreadIdPart;
}

/** Parses `p01.02`, `p1`, `p1.-1`, `1f`, `-1`, `0`. Throws RspParseError. */
export function parseThreadId(text: string): ThreadId {
  if (text.startsWith("p")) {
    const dot = text.indexOf(".");
    const pid = parsePart(dot < 0 ? text.slice(1) : text.slice(1, dot), text);
    const tid = dot < 0 ? "all" : parsePart(text.slice(dot + 1), text);
    return { pid, tid };
  }
  return { tid: parsePart(text, text) };
}

function parsePart(part: string, whole: string): ThreadIdPart {
  if (part === "-1") return "all";
  if (!/^[0-9a-fA-F]+$/.test(part)) throw new RspParseError("thread id", whole);
  const n = parseHexInt(part);
  return n === 0 ? "any" : n;
}

/** `p1.2` when multiprocess (pid defaulting to 1), else `2`. */
export function formatThreadId(id: ThreadId, multiprocess: boolean): string {
  const tid = formatPart(id.tid);
  return multiprocess ? `p${formatPart(id.pid ?? 1)}.${tid}` : tid;
}

function formatPart(part: ThreadIdPart): string {
  if (part === "all") return "-1";
  if (part === "any") return "0";
  return formatHex(part);
}

/** Whether two ids name the same thread (a missing pid matches any pid). */
export function sameThread(a: ThreadId, b: ThreadId): boolean {
  if (a.tid !== b.tid) return false;
  return a.pid === undefined || b.pid === undefined || a.pid === b.pid;
}

/** A qfThreadInfo/qsThreadInfo reply: `m id,id,…` (more may follow) or `l` (end). */
export interface ThreadListReply {
  done: boolean;
  threads: ThreadId[];
}

export function parseThreadList(payload: string): ThreadListReply {
  const kind = payload[0];
  if (kind !== "m" && kind !== "l") throw new RspParseError("thread list reply", payload);
  const body = payload.slice(1);
  const threads = body === "" ? [] : body.split(",").map(parseThreadId);
  if (kind === "m" && threads.length === 0) throw new RspParseError("thread list reply", payload);
  return { done: kind === "l", threads };
}

/** `m id,id` / `l` for a stub answering qfThreadInfo (round trip of parseThreadList). */
export function formatThreadList(reply: ThreadListReply, multiprocess: boolean): string {
  const ids = reply.threads.map((t) => formatThreadId(t, multiprocess)).join(",");
  return (reply.done ? "l" : "m") + ids;
}
