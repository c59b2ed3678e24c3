// Client for QEMU's QMP: greeting and capabilities, commands matched by id, asynchronous events.
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { type ConnectOptions, type QemuSocketAddress, connectSocket, socketFailure } from "./rsp-socket";

export interface QmpClientOptions extends ConnectOptions {
  /** Bound on each command (default 10000 ms) and on the greeting. */
  commandTimeoutMs?: number;
  /** Events kept for waitForEvent({ after }) (default 256). */
  eventHistory?: number;
}

/** QMP's greeting: `{"QMP": {"version": …, "capabilities": […]}}`. */
export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

/** An asynchronous event, numbered in arrival order (`seq`). */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
  seq: number;
}

/** Events the backend cares about; any other name works too. */
export type QmpEventName =
  | "STOP"
  | "RESUME"
  | "RESET"
  | "SHUTDOWN"
  | "POWERDOWN"
  | "GUEST_PANICKED"
  | "WATCHDOG"
  | (string & {});

/** QEMU's RunState as `query-status` reports it (QEMU 7.2's `RunState` enum). */
export type QmpRunState =
  | "debug"
  | "finish-migrate"
  | "guest-panicked"
  | "inmigrate"
  | "internal-error"
  | "io-error"
  | "paused"
  | "postmigrate"
  | "prelaunch"
  | "restore-vm"
  | "running"
  | "save-vm"
  | "shutdown"
  | "suspended"
  | "watchdog"
  | "colo";

/** `query-status`'s answer. */
export interface QmpStatus {
  running: boolean;
  status: QmpRunState;
}

export interface QmpClientEvents {
  /** Every event. */
  event: [QmpEvent];
  /** The connection is gone. */
  closed: [QmpConnectionClosed];
}

export type QmpClientErrorCode = "command-failed" | "connection-closed" | "timeout" | "protocol";

/** Base class of the QMP client's errors; the code shows in the message. */
export class QmpClientError extends Error {
  override name = "QmpClientError";
  constructor(
    readonly code: QmpClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[${code}] ${message}`, options);
  }

  static from(err: unknown): QmpClientError {
    if (err instanceof QmpClientError) return err;
    return new QmpClientError("protocol", err instanceof Error ? err.message : String(err), { cause: err });
  }
}

/** QEMU answered a command with `{"error": {"class", "desc"}}`. */
export class QmpError extends QmpClientError {
  override name = "QmpError";
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super("command-failed", `${command}: ${errorClass}: ${desc}`);
  }
}

export class QmpConnectionClosed extends QmpClientError {
  override name = "QmpConnectionClosed";
  constructor(message: string, options?: { cause?: unknown }) {
    super("connection-closed", message, options);
  }
}

/** No answer in time. The connection stays usable: a late answer is recognised by its id and dropped. */
export class QmpTimeout extends QmpClientError {
  override name = "QmpTimeout";
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super("timeout", `no answer to ${command} within ${timeoutMs} ms`);
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Connects, reads the greeting and leaves capabilities negotiation (`qmp_capabilities`). */
export async function createQmpClient(address: QemuSocketAddress, options: QmpClientOptions = {}): Promise<QmpClient> {
  const socket = await connectSocket(address, options, (failure, cause) => new QmpConnectionClosed(failure.message, { cause }));
  return QmpClient.fromSocket(socket, options);
}

/** One QMP connection. Commands may overlap; answers are matched by id. */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  greeting: QmpGreeting | undefined;

  private readonly timeoutMs: number;
  private readonly historySize: number;
  private readonly history: QmpEvent[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly splitter = new JsonObjectSplitter();
  private nextId = 1;
  private seq = 0;
  private closed: QmpConnectionClosed | undefined;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | undefined;
  private readonly closedPromise: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    options: QmpClientOptions,
  ) {
    super();
    this.timeoutMs = options.commandTimeoutMs ?? 10000;
    this.historySize = options.eventHistory ?? 256;
    socket.setEncoding("utf8");
    // Socket callbacks run under guard(): nothing thrown in one may reach the process.
    socket.on("data", (chunk: string) => this.guard(() => this.onData(chunk)));
    socket.on("error", (err) => this.guard(() => this.shutDown(new QmpConnectionClosed(socketFailure(err, "QMP").message, { cause: err }))));
    this.closedPromise = new Promise((resolve) => {
      socket.on("close", () => {
        this.guard(() => this.shutDown(new QmpConnectionClosed("QEMU closed the QMP connection")));
        resolve();
      });
    });
  }

  /** Wraps a connected socket: waits for the greeting, then sends qmp_capabilities. */
  static async fromSocket(socket: Socket, options: QmpClientOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(socket, options);
    try {
      client.greeting = await client.waitForGreeting();
      await client.execute("qmp_capabilities");
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  /** Sequence number of the newest event so far (0 before any). Pass it as `after` to waitForEvent. */
  get lastEventSeq(): number {
    return this.seq;
  }

  /**
   * Runs a command and resolves with its `return` value. `{"error"}` → QmpError (class, desc);
   * no answer within the timeout → QmpTimeout; connection loss → QmpConnectionClosed.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeout(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const message = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(JSON.stringify(message) + "\r\n");
    });
  }

  /** `query-status`: whether the VM runs, and QEMU's run state. */
  queryStatus(): Promise<QmpStatus> {
    return this.execute<QmpStatus>("query-status");
  }

  /** `human-monitor-command`: the HMP text output of `commandLine` (e.g. "info registers"). */
  humanMonitorCommand(commandLine: string, options: { timeoutMs?: number } = {}): Promise<string> {
    return this.execute<string>("human-monitor-command", { "command-line": commandLine }, options);
  }

  /** Listens to one event by name, or every event with "*". Returns the unsubscribe function. */
  onEvent(name: QmpEventName | "*", listener: (event: QmpEvent) => void): () => void {
    const wrapped = (e: QmpEvent): void => {
      if (name === "*" || e.event === name) listener(e);
    };
    this.on("event", wrapped);
    return () => this.off("event", wrapped);
  }

  /**
   * Resolves with the next event named `name` (matching `predicate`). With `after`, events with a
   * larger seq already received count too, so a caller can note lastEventSeq, act, then wait
   * without a race. Rejects with QmpTimeout or QmpConnectionClosed.
   */
  waitForEvent(
    name: QmpEventName,
    options: { timeoutMs?: number; after?: number; predicate?: (event: QmpEvent) => boolean } = {},
  ): Promise<QmpEvent> {
    const matches = (e: QmpEvent): boolean => e.event === name && (options.predicate?.(e) ?? true);
    if (options.after !== undefined) {
      const seen = this.history.find((e) => e.seq > options.after! && matches(e));
      if (seen) return Promise.resolve(seen);
    }
    if (this.closed) return Promise.reject(this.closed);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off("event", onEvent);
        this.off("closed", onClosed);
      };
      const onEvent = (e: QmpEvent): void => {
        if (!matches(e)) return;
        cleanup();
        resolve(e);
      };
      const onClosed = (err: QmpConnectionClosed): void => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new QmpTimeout(`wait for ${name}`, timeoutMs));
      }, timeoutMs);
      this.on("event", onEvent);
      this.on("closed", onClosed);
    });
  }

  /** Events received so far (the last `eventHistory` of them), oldest first. */
  recentEvents(): readonly QmpEvent[] {
    return this.history;
  }

  /** Closes the connection; pending commands reject with QmpConnectionClosed. Never rejects itself. */
  async close(): Promise<void> {
    this.shutDown(new QmpConnectionClosed("the client closed the QMP connection"));
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 200);
    await this.closedPromise;
    clearTimeout(timer);
  }

  private waitForGreeting(): Promise<QmpGreeting> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greetingWaiter = undefined;
        reject(new QmpTimeout("greeting", this.timeoutMs));
      }, this.timeoutMs);
      this.greetingWaiter = {
        resolve: (g) => {
          clearTimeout(timer);
          resolve(g);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private onData(chunk: string): void {
    let messages: string[];
    try {
      messages = this.splitter.push(chunk);
    } catch (err) {
      this.fail(new QmpClientError("protocol", "QMP stream is not JSON objects", { cause: err }));
      return;
    }
    for (const text of messages) {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        this.fail(new QmpClientError("protocol", `unparsable QMP message ${text.slice(0, 80)}`, { cause: err }));
        return;
      }
      this.onMessage(message);
    }
  }

  private onMessage(message: Record<string, unknown>): void {
    if ("QMP" in message) {
      const waiter = this.greetingWaiter;
      this.greetingWaiter = undefined;
      waiter?.resolve(message.QMP as QmpGreeting);
      return;
    }
    if (typeof message.event === "string") {
      const event: QmpEvent = {
        event: message.event,
        data: (message.data as Record<string, unknown> | undefined) ?? {},
        timestamp: (message.timestamp as QmpEvent["timestamp"] | undefined) ?? { seconds: 0, microseconds: 0 },
        seq: ++this.seq,
      };
      this.history.push(event);
      if (this.history.length > this.historySize) this.history.shift();
      this.emit("event", event);
      return;
    }
    if ("return" in message || "error" in message) {
      // Answers carry our id; one without (QEMU could not parse the request) goes to the oldest.
      const id = typeof message.id === "number" ? message.id : this.pending.keys().next().value;
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p) return; // a command that already timed out
      this.pending.delete(id!);
      clearTimeout(p.timer);
      if ("error" in message) {
        const e = (message.error ?? {}) as { class?: string; desc?: string };
        p.reject(new QmpError(p.command, e.class ?? "GenericError", e.desc ?? "no description"));
      } else {
        p.resolve(message.return);
      }
    }
  }

  /**
   * Runs a socket callback. A throw there would reach the process, so it ends this connection
   * instead, with the throw as the cause (a bug in an event listener, a waitForEvent predicate).
   */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(new QmpClientError("protocol", `failed handling QMP's data: ${(err as Error).message}`, { cause: err }));
    }
  }

  private fail(err: QmpClientError): void {
    this.shutDown(err instanceof QmpConnectionClosed ? err : new QmpConnectionClosed(err.message, { cause: err }));
    this.socket.destroy();
  }

  private shutDown(err: QmpConnectionClosed): void {
    if (this.closed) return;
    this.closed = err;
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    try {
      this.emit("closed", err);
    } catch (listenerErr) {
      // The connection this would be reported through is the one closing: warn on the process.
      process.emitWarning(`a QMP client's "closed" listener threw: ${(listenerErr as Error).message}`, { type: "VmmDebugWarning" });
    }
  }
}

/**
 * Cuts a stream of JSON objects into one string per object, whatever the chunking and whether
 * QEMU pretty-prints (-qmp-pretty) or not. Tracks brace depth outside strings.
 * @internal exported for tests
 */
export class JsonObjectSplitter {
  private buf = "";
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  push(chunk: string): string[] {
    this.buf += chunk;
    const out: string[] = [];
    let i = this.scanned;
    for (; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === "\\") this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') {
        if (this.depth === 0) throw new SyntaxError("string outside a JSON object");
        this.inString = true;
      } else if (c === "{") {
        if (this.depth++ === 0) this.start = i;
      } else if (c === "}") {
        if (this.depth === 0) throw new SyntaxError("unbalanced '}'");
        if (--this.depth === 0) {
          out.push(this.buf.slice(this.start, i + 1));
          this.start = -1;
        }
      } else if (this.depth === 0 && !/\s/.test(c)) {
        throw new SyntaxError(`unexpected ${JSON.stringify(c)} between JSON objects`);
      }
    }
    if (this.depth === 0) {
      this.buf = "";
      this.scanned = 0;
    } else {
      this.buf = this.buf.slice(this.start);
      this.scanned = this.buf.length;
      this.start = 0;
    }
    return out;
  }
}
