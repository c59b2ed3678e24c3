// What every client command shares: the connection (--server, TLS, token), the VM (--vm), the
// guest manifest (--symbols), the session (--session / $VMM_DEBUG_SESSION, or one attached for
// this command alone), and Ctrl-C.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { type DebugState, type DebugStopReason, type HardwareBreakpoint, Session, type VmInfo, VmmDebugError, type VmmDebugClient, connect } from "../client";
import { UnaryTransport } from "../client/unary-transport";
import { UsageError } from "./args";
import { SYMBOLS_ENV, type SymbolTable, loadSymbols } from "./address";
import { clientConnectOptions } from "./client-options";
import { CliError, EXIT } from "./exit-codes";

export const DEFAULT_SERVER = "127.0.0.1:50051";
export const SERVER_ENV = "VMM_DEBUG_SERVER";
export const SESSION_ENV = "VMM_DEBUG_SESSION";

/** The options every client command takes (commander's camelCase names). */
export interface ClientOptions {
  server?: string;
  vm?: string;
  session?: string;
  symbols?: string;
  json?: boolean;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  token?: string;
}

/** Aborted on the first Ctrl-C (SIGINT) while a client command runs. */
export const interrupt = new AbortController();
let sigintInstalled = false;

export function installSigint(): void {
  if (sigintInstalled) return;
  sigintInstalled = true;
  process.on("SIGINT", () => {
    if (interrupt.signal.aborted) {
      // A second Ctrl-C: give up on cleaning up.
      process.stderr.write("vmm-debug: interrupted again; exiting without cleaning up\n");
      process.exit(EXIT.interrupted);
    }
    interrupt.abort();
  });
}

export function interrupted(): CliError {
  return new CliError("interrupted", EXIT.interrupted);
}

function hostPort(text: string): void {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--server must be HOST:PORT, got "${text}"`);
}

export class Context {
  readonly server: string;
  readonly client: VmmDebugClient;
  readonly symbols: SymbolTable | undefined;
  readonly json: boolean;
  /** The session id to use (--session or $VMM_DEBUG_SESSION), if any. */
  readonly sessionId: string | undefined;
  private vmInfo: VmInfo | undefined;

  constructor(
    readonly opts: ClientOptions,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.server = opts.server ?? (env[SERVER_ENV] || DEFAULT_SERVER);
    hostPort(this.server);
    const symbolsFile = opts.symbols ?? (env[SYMBOLS_ENV] || undefined);
    this.symbols = symbolsFile ? loadSymbols(symbolsFile) : undefined;
    this.json = opts.json === true;
    const session = opts.session ?? (env[SESSION_ENV] || undefined);
    if (session !== undefined && !/^[0-9a-f]{8,64}$/i.test(session)) throw new UsageError(`--session (or $${SESSION_ENV}) must be a session id as \`vmm-debug attach\` prints it, got "${session}"`);
    this.sessionId = session;
    const connectOptions = clientConnectOptions(
      {
        tls: opts.tls,
        "tls-ca": opts.tlsCa,
        "tls-cert": opts.tlsCert,
        "tls-key": opts.tlsKey,
        "tls-server-name": opts.tlsServerName,
        token: opts.token,
      },
      this.server,
      env,
    );
    this.client = connect(this.server, connectOptions);
  }

  /** The VM: --vm, else the session's, else the server's only one (refreshed on each call). */
  async vm(): Promise<VmInfo> {
    let id = this.opts.vm ?? "";
    if (id === "" && this.sessionId) id = readSessionFile(this.sessionId)?.vm ?? "";
    try {
      this.vmInfo = await this.client.getVm(id, { deadlineMs: 15_000 });
    } catch (e) {
      if (e instanceof VmmDebugError && e.reason === "VM_AMBIGUOUS") {
        throw new CliError(`the server serves several VMs: say which with --vm ID (see vmm-debug vms)`, EXIT.usage, e.reason);
      }
      throw e;
    }
    return this.vmInfo;
  }

  /** The session named by --session / $VMM_DEBUG_SESSION, as an SDK Session (unary transport). */
  async namedSession(): Promise<Session | undefined> {
    if (!this.sessionId) return undefined;
    const info = await this.vm();
    return resumeSession(this.client, info.id, this.sessionId);
  }

  /**
   * Runs `fn` with a session: the named one, or one attached for this command alone (and
   * detached after it, even on Ctrl-C: Detach clears its debug state and resumes the VM if this
   * command stopped it). With `stop`, the VM is stopped first (a named session's running VM is
   * refused instead: the session's owner decides when it stops).
   */
  async withSession<T>(what: string, stop: boolean, fn: (session: Session, info: VmInfo) => Promise<T>): Promise<T> {
    const named = await this.namedSession();
    if (named) {
      const info = this.vmInfo!;
      if (stop && info.runState === "running") {
        throw new CliError(`VM "${info.id}" is running in session ${named.id.slice(0, 8)}…: ${what} needs it stopped (vmm-debug interrupt stops it)`, EXIT.refused, "VM_RUNNING");
      }
      return fn(named, info);
    }
    const info = await this.vm();
    if (info.attached) {
      throw new CliError(
        `VM "${info.id}" is attached by ${info.attached.holder}: ${what} needs a session; pass that session's id with --session (or $${SESSION_ENV}), or detach it`,
        EXIT.refused,
        "SESSION_CONFLICT",
      );
    }
    const session = await this.client.attach(info.id, { transport: "unary" });
    try {
      if (stop && info.runState === "running") await stopVm(session);
      return await fn(session, await this.vm());
    } finally {
      await session.detach().catch(() => undefined);
    }
  }

  close(): void {
    this.client.close();
  }
}

/** Breaks a running VM and takes the Break's stop, so the next resume runs rather than answering it. */
export async function stopVm(session: Session): Promise<DebugStopReason> {
  await session.break();
  return session.resume({ deadlineMs: 15_000 });
}

/** An SDK Session over an existing unary session id (another `vmm-debug` process attached it). */
export function resumeSession(client: VmmDebugClient, vm: string, id: string): Session {
  const file = readSessionFile(id);
  return new Session(client, (s) => new UnaryTransport(client, vm, id, file?.leaseMs ?? 0, (vp) => s.debugState(vp)));
}

/**
 * What a session keeps between commands on this machine: its VM and the hardware slots it armed
 * (the server has no call that reads a VP's debug state back). In the user's temporary
 * directory, mode 0600; `detach` removes it.
 */
export interface SessionFile {
  vm: string;
  server: string;
  leaseMs: number;
  /** Per VP (as a string key), the four slots. */
  slots: Record<string, (HardwareBreakpoint | null)[]>;
}

function sessionDir(): string {
  const base = process.env.XDG_RUNTIME_DIR || tmpdir();
  let user = "user";
  try {
    user = String(userInfo().uid);
  } catch {
    // no uid on this platform
  }
  return join(base, `vmm-debug-${user}`);
}

function sessionPath(id: string): string {
  return join(sessionDir(), `session-${id}.json`);
}

export function readSessionFile(id: string): SessionFile | undefined {
  try {
    const raw = JSON.parse(readFileSync(sessionPath(id), "utf8")) as SessionFile & { slots: Record<string, ({ address: string; type: string; size: number } | null)[]> };
    const slots: SessionFile["slots"] = {};
    for (const [vp, list] of Object.entries(raw.slots ?? {})) {
      slots[vp] = list.map((b) => (b ? ({ address: BigInt(b.address), type: b.type, size: b.size } as HardwareBreakpoint) : null));
    }
    return { vm: raw.vm, server: raw.server, leaseMs: raw.leaseMs, slots };
  } catch {
    return undefined;
  }
}

export function writeSessionFile(id: string, file: SessionFile): void {
  mkdirSync(sessionDir(), { recursive: true, mode: 0o700 });
  const slots = Object.fromEntries(
    Object.entries(file.slots).map(([vp, list]) => [vp, list.map((b) => (b ? { address: `0x${b.address.toString(16)}`, type: b.type, size: b.size } : null))]),
  );
  writeFileSync(sessionPath(id), JSON.stringify({ ...file, slots }, null, 2) + "\n", { mode: 0o600 });
}

export function removeSessionFile(id: string): void {
  rmSync(sessionPath(id), { force: true });
}

/** A VP's debug state as this session armed it (all free if unknown), with single-step off. */
export function slotsOf(file: SessionFile | undefined, vp: number, count = 4): DebugState {
  const list = file?.slots[String(vp)] ?? [];
  return { singleStep: false, breakpoints: Array.from({ length: count }, (_, i) => list[i] ?? null) };
}

/** Reads through a session when there is one (renewing its lease), else through the client. */
export class Access {
  constructor(
    readonly client: VmmDebugClient,
    readonly vm: string,
    readonly session: Session | undefined,
  ) {}

  getVpState(vp: number) {
    return this.session ? this.session.getVpState(vp) : this.client.getVpState(this.vm, vp);
  }

  translateGva(vp: number, gva: bigint) {
    return this.session ? this.session.translateGva(vp, gva) : this.client.translateGva(this.vm, vp, gva);
  }

  readMemory(address: { gva: bigint; vp?: number } | { gpa: bigint }, length: number, signal?: AbortSignal) {
    return this.session ? this.session.readMemory(address, length, { signal }) : this.client.readMemory(this.vm, address, length, { signal });
  }

  readMemoryPartial(address: { gva: bigint; vp?: number } | { gpa: bigint }, length: number, signal?: AbortSignal) {
    return this.session ? this.session.readMemoryPartial(address, length, { signal }) : this.client.readMemoryPartial(this.vm, address, length, { signal });
  }
}

/**
 * Runs `fn` where the VM is stopped, leaving it as found: with the named session (refused if its
 * VM runs), directly on a VM that is already stopped (reads need no session), or — on a running
 * VM — in a session attached for this command that breaks it and detaches after (the VM runs on).
 */
export async function withStoppedVm<T>(ctx: Context, what: string, fn: (access: Access, info: VmInfo) => Promise<T>): Promise<T> {
  if (ctx.sessionId) return ctx.withSession(what, true, (s, info) => fn(new Access(ctx.client, info.id, s), info));
  const info = await ctx.vm();
  if (info.runState !== "running") return fn(new Access(ctx.client, info.id, undefined), info);
  return ctx.withSession(what, true, (s, i) => fn(new Access(ctx.client, i.id, s), i));
}

/** Runs `fn` for a read that works while the VM runs (through the named session if any). */
export async function withReads<T>(ctx: Context, fn: (access: Access, info: VmInfo) => Promise<T>): Promise<T> {
  const session = await ctx.namedSession();
  const info = await ctx.vm();
  return fn(new Access(ctx.client, info.id, session), info);
}
