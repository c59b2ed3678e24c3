// Errors of the gdbstub client: one base class with a code, subclasses for the cases callers catch.

export type RspClientErrorCode =
  | "connection-closed"
  | "timeout"
  | "error-reply"
  | "unsupported"
  | "protocol"
  | "target-running"
  | "unknown-register";

/** Base class: `code` says which case; the code shows in the message. */
export class RspClientError extends Error {
  override name = "RspClientError";
  constructor(
    readonly code: RspClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[${code}] ${message}`, options);
  }

  /** Any thrown value as an RspClientError (non-client errors become "protocol" with the cause kept). */
  static from(err: unknown): RspClientError {
    if (err instanceof RspClientError) return err;
    return new RspClientError("protocol", err instanceof Error ? err.message : String(err), { cause: err });
  }
}

/** The socket closed or failed (or never connected); everything pending is rejected with it. */
export class RspConnectionClosed extends RspClientError {
  override name = "RspConnectionClosed";
  constructor(message: string, options?: { cause?: unknown }) {
    super("connection-closed", message, options);
  }
}

/** A request got no answer in time. The connection is closed: a late answer would desynchronise it. */
export class RspTimeout extends RspClientError {
  override name = "RspTimeout";
  constructor(
    readonly request: string,
    readonly timeoutMs: number,
  ) {
    super("timeout", `no answer to ${request} within ${timeoutMs} ms; the connection was closed`);
  }
}

/** The stub answered `E xx`. `errno` is the code (QEMU: 0x22 EINVAL-ish for bad arguments, 0x14 for memory). */
export class RspErrorReply extends RspClientError {
  override name = "RspErrorReply";
  constructor(
    readonly request: string,
    readonly errno: number | undefined,
    readonly reply: string,
  ) {
    super("error-reply", `${request} failed: the stub answered ${reply}`);
  }
}

/** The stub answered with an empty packet: it does not implement the request. */
export class RspUnsupported extends RspClientError {
  override name = "RspUnsupported";
  constructor(
    readonly request: string,
    hint = "",
  ) {
    super("unsupported", `the stub does not support ${request}${hint ? `: ${hint}` : ""}`);
  }
}

/** The stub answered something that does not fit the request. */
export class RspProtocolError extends RspClientError {
  override name = "RspProtocolError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("protocol", message, options);
  }
}

/** A request other than interrupt/detach was made while a continue is outstanding. */
export class RspTargetRunning extends RspClientError {
  override name = "RspTargetRunning";
  constructor(readonly request: string) {
    super(
      "target-running",
      `cannot send ${request} while the target runs: the gdbstub would stop the VM and drop it; interrupt() first or use QMP`,
    );
  }
}

/** A register name or number the target description does not have (or no description yet). */
export class RspUnknownRegister extends RspClientError {
  override name = "RspUnknownRegister";
  constructor(readonly register: string | number, detail: string) {
    super("unknown-register", `register ${JSON.stringify(register)}: ${detail}`);
  }
}
