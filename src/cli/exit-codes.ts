// The exit codes of `vmm-debug` (one table, shown in `vmm-debug --help`), and the one place an
// error becomes a code and a one-line message.
import { Status } from "nice-grpc";
import { VmmDebugError } from "../client/errors";
import { UsageError } from "./args";

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  unreachable: 3,
  notFound: 4,
  refused: 5,
  denied: 6,
  unmapped: 7,
  timeout: 8,
  interrupted: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The table `vmm-debug --help` prints (and the README shows). */
export const EXIT_TABLE: readonly [ExitCode, string][] = [
  [EXIT.ok, "success"],
  [EXIT.error, "any other error"],
  [EXIT.usage, "usage: bad arguments, a bad address or symbol, a request the server finds invalid"],
  [EXIT.unreachable, "the server cannot be reached (or is shutting down)"],
  [EXIT.notFound, "not found: VM, VP, breakpoint, session state"],
  [EXIT.refused, "refused by state: VM running or powered off, session conflict, not attached"],
  [EXIT.denied, "permission or authentication: token, certificate, role, another's session"],
  [EXIT.unmapped, "unmapped or unreadable memory"],
  [EXIT.timeout, "timed out (continue --timeout)"],
  [EXIT.interrupted, "interrupted (Ctrl-C); the VM is left as it was found"],
];

export function exitTableText(): string {
  return EXIT_TABLE.map(([code, text]) => `  ${String(code).padStart(3)}  ${text}`).join("\n");
}

/** An error the CLI raises itself, with its exit code. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly reason?: string,
  ) {
    super(message);
  }
}

const NOT_FOUND = new Set(["VM_NOT_FOUND", "VP_OUT_OF_RANGE", "SOFTWARE_BREAKPOINT_NOT_FOUND"]);
const UNMAPPED = new Set(["GPA_UNMAPPED", "GVA_NOT_MAPPED", "GVA_NON_CANONICAL"]);
const REFUSED = new Set([
  "VM_RUNNING",
  "VM_POWERED_OFF",
  "NOT_ATTACHED",
  "SESSION_CONFLICT",
  "SESSION_ENDED",
  "SESSION_MISMATCH",
  "RESUME_IN_PROGRESS",
  "TOO_MANY_BREAKPOINTS",
  "SOFTWARE_BREAKPOINT_UNSUPPORTED",
  "SOFTWARE_BREAKPOINT_LIMIT",
  "BACKEND_UNAVAILABLE",
  "BACKEND_REFUSED",
]);

/** The exit code of anything thrown. */
export function exitCodeOf(e: unknown): ExitCode {
  if (e instanceof CliError) return e.exitCode;
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof VmmDebugError) {
    const reason = e.reason ?? "";
    if (NOT_FOUND.has(reason)) return EXIT.notFound;
    if (UNMAPPED.has(reason)) return EXIT.unmapped;
    if (REFUSED.has(reason)) return EXIT.refused;
    switch (e.code) {
      case Status.UNAVAILABLE:
        return EXIT.unreachable;
      case Status.NOT_FOUND:
        return EXIT.notFound;
      case Status.FAILED_PRECONDITION:
      case Status.ABORTED:
        return EXIT.refused;
      case Status.PERMISSION_DENIED:
      case Status.UNAUTHENTICATED:
        return EXIT.denied;
      case Status.INVALID_ARGUMENT:
      case Status.OUT_OF_RANGE:
        return EXIT.usage;
      case Status.DEADLINE_EXCEEDED:
        return EXIT.timeout;
      case Status.CANCELLED:
        return EXIT.interrupted;
      default:
        return EXIT.error;
    }
  }
  return EXIT.error;
}

/** The one line printed for a failure (after "vmm-debug: "). */
export function errorLine(e: unknown, server?: string): string {
  if (e instanceof VmmDebugError) {
    if (e.code === Status.UNAVAILABLE && (e.reason === undefined || e.reason === "UNAVAILABLE")) {
      const why = /Last error: (?:Error: )?(.*?)\.?\s*(?:Resolution note:.*)?$/.exec(firstLine(e.rawMessage))?.[1] ?? firstLine(e.rawMessage);
      return `cannot reach the vmm-debug server${server ? ` at ${server}` : ""} (${why}); is it running (npm start)? --server HOST:PORT or $VMM_DEBUG_SERVER says where`;
    }
    return `${firstLine(e.rawMessage)}${e.reason ? ` (reason ${e.reason})` : ""}`;
  }
  if (e instanceof CliError) return `${e.message}${e.reason ? ` (reason ${e.reason})` : ""}`;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}

function firstLine(text: string): string {
  const line = text.split("\n")[0];
  return line === "" ? "(no message)" : line;
}
