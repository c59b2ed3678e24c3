// Client for QEMU's gdbstub: serialised RSP requests over a socket, with QEMU's quirks handled.
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import {
  type FeatureValue,
  INTERRUPT,
  type RspFramer,
  type StopReply,
  type TargetDescription,
  type TargetRegister,
  type ThreadId,
  bigintToLeHex,
  bytesToHex,
  bytesToLatin1,
  createFramer,
  encodePacket,
  formatHex,
  formatSupported,
  formatThreadId,
  formatXferRead,
  hexToBytes,
  hexToText,
  isConsoleOutput,
  isStopReply,
  leHexToBigint,
  packetSizeOf,
  parseConsoleOutput,
  parseErrorReply,
  parseStopReply,
  parseSupported,
  parseThreadId,
  parseThreadList,
  parseVContActions,
  parseXferReply,
  textToHex,
} from "../rsp";
import {
  RspClientError,
  RspConnectionClosed,
  RspErrorReply,
  RspProtocolError,
  RspTargetRunning,
  RspTimeout,
  RspUnknownRegister,
  RspUnsupported,
} from "./rsp-errors";
import { type ConnectOptions, type QemuSocketAddress, connectSocket, socketFailure } from "./rsp-socket";
import type { ZType } from "./rsp-names";
import { loadQemuTargetDescription, programCounterOf } from "./target-xml";

export interface RspClientOptions extends ConnectOptions {
  /** Bound on every wait except continue() (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Fetch target.xml during connect (default true). QEMU answers p/P only after that. */
  loadTargetDescription?: boolean;
  /**
   * A stop reply that arrives before a request's `+` means QEMU was running (e.g. resumed over
   * QMP) and dropped the request; if no `+` follows within this time, the request is sent again.
   * Default 50 ms.
   */
  droppedRequestGraceMs?: number;
  /** Give up after this many retransmissions of one packet (nack or drop). Default 3. */
  maxRetransmits?: number;
  /** Features announced in qSupported. */
  features?: ReadonlyArray<readonly [string, FeatureValue]>;
}

export interface RspClientEvents {
  /** A stop nobody asked for: QEMU's T02 on connect, a QMP `stop`, W00 when QEMU exits… */
  stop: [StopReply];
  /** `O` console output outside a monitor command. */
  console: [string];
  /** A packet that answers no request (logged by callers; the client ignores it). */
  unexpected: [string];
  /** The connection is gone; `error` says why. */
  close: [RspConnectionClosed];
}

/** What a step did. QEMU sometimes reports a step without moving the PC: callers decide. */
export interface StepResult {
  stop: StopReply;
  /** The step did not finish within the timeout (a halted vCPU never steps) and 0x03 ended it. */
  interrupted: boolean;
  /** With `checkPc`: the PC before and after, and whether it changed. */
  pcBefore?: bigint;
  pcAfter?: bigint;
  pcMoved?: boolean;
}

export interface StepOptions {
  /** Read the PC before and after the step (two extra round trips). Default false. */
  checkPc?: boolean;
  timeoutMs?: number;
}

/** Result of writeRegisterVerified. Writes the stub ignores (aarch64 system registers) show here. */
export interface RegisterWriteCheck {
  written: bigint;
  readBack: bigint;
  applied: boolean;
}

/** Z/z types (see ZType): 0 software, 1 hardware, 2 write, 3 read, 4 access watchpoint. */
export type BreakpointType = ZType;

type Expect = "reply" | "stop" | "monitor";

interface Op {
  packet: Uint8Array;
  /** Request as text, for messages (truncated). */
  label: string;
  expect: Expect;
  /** Undefined: no bound (continue). */
  timeoutMs: number | undefined;
  resolve: (value: Uint8Array | StopReply | string) => void;
  reject: (err: Error) => void;
  promise: Promise<Uint8Array | StopReply | string>;
  acked: boolean;
  retransmits: number;
  output: string[];
  isContinue: boolean;
  /** Send 0x03 as soon as the request is acknowledged. */
  interruptOnAck: boolean;
  interruptSent: boolean;
  /** Called instead of failing the connection when the timeout expires (step). */
  onTimeout?: () => void;
  timer?: NodeJS.Timeout;
  graceTimer?: NodeJS.Timeout;
}

const DEFAULT_FEATURES: ReadonlyArray<readonly [string, FeatureValue]> = [
  ["multiprocess", true],
  ["swbreak", true],
  ["hwbreak", true],
  ["vContSupported", true],
];

/** QEMU replies to `m` with at most this many bytes. */
const MAX_READ_CHUNK = 2048;

/** Connects to a gdbstub at `address` and negotiates (see RspClient.fromSocket). */
export async function createRspClient(address: QemuSocketAddress, options: RspClientOptions = {}): Promise<RspClient> {
  const socket = await connectSocket(address, options, (failure, cause) => new RspConnectionClosed(failure.message, { cause }));
  return RspClient.fromSocket(socket, options);
}

/**
 * One connection to a gdbstub. Requests are serialised (one outstanding, the rest queued), every
 * packet is acknowledged, and every wait is bounded by `requestTimeoutMs` except continue().
 * A timeout closes the connection, since a late answer would be taken for the next request's.
 */
export class RspClient extends EventEmitter<RspClientEvents> {
  /** Features the stub announced in qSupported. */
  features: ReadonlyMap<string, FeatureValue> = new Map();
  /** Largest packet the stub accepts (PacketSize; 4096 on QEMU 7.2). */
  packetSize = 400;
  multiprocess = false;
  noAckMode = false;
  vContActions: ReadonlySet<string> = new Set();
  /** The target description, once loaded (on connect unless disabled). */
  targetDescription: TargetDescription | undefined;
  /** The unprompted stop QEMU sent on connect (it pauses a running VM), if it did. */
  connectStop: StopReply | undefined;
  /** The last stop reply seen (solicited or not). */
  lastStop: StopReply | undefined;

  private readonly framer: RspFramer;
  private readonly timeoutMs: number;
  private readonly graceMs: number;
  private readonly maxRetransmits: number;
  private readonly queue: Op[] = [];
  private active: Op | undefined;
  private closed: RspConnectionClosed | undefined;
  private readonly closedPromise: Promise<void>;
  private handshaking = true;

  private constructor(
    private readonly socket: Socket,
    options: RspClientOptions,
  ) {
    super();
    this.framer = createFramer();
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    this.graceMs = options.droppedRequestGraceMs ?? 50;
    this.maxRetransmits = options.maxRetransmits ?? 3;
    // Socket and timer callbacks run under guard(): nothing thrown in one may reach the process.
    socket.on("data", (chunk: Buffer) => this.guard(() => this.onData(chunk)));
    socket.on("error", (err) => this.guard(() => this.shutDown(new RspConnectionClosed(socketFailure(err, "the gdbstub").message, { cause: err }))));
    this.closedPromise = new Promise((resolve) => {
      socket.on("close", () => {
        this.guard(() => this.shutDown(new RspConnectionClosed("the gdbstub closed the connection")));
        resolve();
      });
    });
  }

  /**
   * Wraps a connected socket and negotiates: qSupported (PacketSize, multiprocess, no-ack mode if
   * offered), vCont?, and the target description. QEMU's unprompted `T02` is drained as a stop
   * event and kept in `connectStop`.
   */
  static async fromSocket(socket: Socket, options: RspClientOptions = {}): Promise<RspClient> {
    const client = new RspClient(socket, options);
    try {
      await client.handshake(options);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  private async handshake(options: RspClientOptions): Promise<void> {
    const reply = await this.requestText(`qSupported:${formatSupported(options.features ?? DEFAULT_FEATURES)}`);
    this.features = parseSupported(reply);
    this.packetSize = packetSizeOf(this.features) ?? 400;
    this.multiprocess = this.features.get("multiprocess") === true;
    if (this.features.get("QStartNoAckMode") === true) {
      if ((await this.requestText("QStartNoAckMode")) === "OK") {
        this.noAckMode = true;
        this.framer.noAck = true;
      }
    }
    this.vContActions = parseVContActions(await this.requestText("vCont?"));
    this.handshaking = false;
    if (options.loadTargetDescription ?? true) await this.loadTargetDescription();
  }

  /** Whether a continue is outstanding (the VM runs; only interrupt() and detach() may be sent). */
  get running(): boolean {
    return this.active?.isContinue === true || this.queue.some((op) => op.isContinue);
  }

  /** Whether the connection is gone. */
  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  // ---------------------------------------------------------------- raw requests

  /** Sends one packet and resolves with the reply payload (unescaped). `E xx` is not an error here. */
  request(payload: string | Uint8Array, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    return this.enqueue(payload, "reply", timeoutMs) as Promise<Uint8Array>;
  }

  /** request() with the reply as text. */
  async requestText(payload: string, timeoutMs = this.timeoutMs): Promise<string> {
    return bytesToLatin1(await this.request(payload, timeoutMs));
  }

  /** Sends a request and expects `OK`; `E xx` → RspErrorReply, empty → RspUnsupported. */
  async requestOk(payload: string, hint = ""): Promise<void> {
    const reply = await this.requestText(payload);
    if (reply === "OK") return;
    throw this.replyError(payload, reply, hint);
  }

  // ---------------------------------------------------------------- target description

  /** Fetches target.xml and its includes (again). Required before p/P on QEMU. */
  async loadTargetDescription(): Promise<TargetDescription> {
    if (this.features.get("qXfer:features:read") !== true) {
      throw new RspUnsupported("qXfer:features:read", "the stub did not announce target descriptions");
    }
    this.targetDescription = await loadQemuTargetDescription((annex) => this.readXfer("features", annex));
    return this.targetDescription;
  }

  /** Reads a whole qXfer object (`qXfer:object:read:annex:offset,length` until `l`). */
  async readXfer(object: string, annex: string): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let offset = 0;
    // The reply is `m`/`l` plus escaped data: ask for what fits one packet even if fully escaped.
    const length = Math.max(16, Math.floor((this.packetSize - 5) / 2));
    for (;;) {
      const request = formatXferRead(object, annex, offset, length);
      const reply = await this.request(request);
      const text = bytesToLatin1(reply.subarray(0, 4));
      if (reply.length === 0 || parseErrorReply(text)) throw this.replyError(request, bytesToLatin1(reply));
      const chunk = parseXferReply(reply);
      parts.push(chunk.data.slice());
      offset += chunk.data.length;
      if (chunk.last) break;
      if (chunk.data.length === 0) throw new RspProtocolError(`${request}: empty 'm' chunk would loop forever`);
    }
    const out = new Uint8Array(offset);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** A register of the target description by name or number. Throws RspUnknownRegister. */
  register(reg: string | number): TargetRegister {
    const desc = this.description(reg);
    const r = typeof reg === "number" ? desc.byNumber.get(reg) : desc.byName.get(reg);
    if (!r) throw new RspUnknownRegister(reg, `not in the target description (${desc.registers.length} registers)`);
    return r;
  }

  // ---------------------------------------------------------------- registers

  /** All registers the `g` packet carries, by name in regnum order (QEMU: the core set, not sysregs). */
  async readRegisters(): Promise<Map<string, bigint>> {
    return this.parseRegisters(await this.requestText("g"));
  }

  /** A `g` reply as readRegisters() returns it (registers QEMU sends as `xx` are left out). */
  parseRegisters(reply: string): Map<string, bigint> {
    const desc = this.description();
    if (reply === "" || parseErrorReply(reply)) throw this.replyError("g", reply);
    const out = new Map<string, bigint>();
    let at = 0;
    for (const reg of desc.registers) {
      const chars = Math.ceil(reg.bitsize / 8) * 2;
      if (at + chars > reply.length) break;
      const hex = reply.slice(at, at + chars);
      at += chars;
      if (!/^x+$/i.test(hex)) out.set(reg.name, leHexToBigint(hex));
    }
    return out;
  }

  /** One register (`p`), by name or number, as an unsigned value of its bitsize. */
  async readRegister(reg: string | number): Promise<bigint> {
    const n = typeof reg === "number" ? reg : this.register(reg).regnum;
    const request = `p${formatHex(n)}`;
    const reply = await this.requestText(request);
    if (reply === "" || parseErrorReply(reply)) {
      throw this.replyError(request, reply, "QEMU answers p only after the target description was fetched");
    }
    return leHexToBigint(reply);
  }

  /**
   * Writes one register (`P`). The value is encoded in the register's byte size from target.xml.
   * QEMU x86 outside long mode keeps only the low 32 bits of rax–rdi and ignores r8–r15 (they
   * read 0): use writeRegisterVerified where that matters.
   */
  async writeRegister(reg: string | number, value: bigint): Promise<void> {
    const r = this.register(reg);
    const request = `P${formatHex(r.regnum)}=${bigintToLeHex(value, Math.ceil(r.bitsize / 8))}`;
    await this.requestOk(request, "QEMU answers P only after the target description was fetched");
  }

  /**
   * Writes then reads back. QEMU replies OK to writes it ignores (aarch64 system registers) or
   * truncates (cr8 keeps 4 bits), so `applied` compares under `mask` (default: all bits).
   */
  async writeRegisterVerified(reg: string | number, value: bigint, mask?: bigint): Promise<RegisterWriteCheck> {
    await this.writeRegister(reg, value);
    const readBack = await this.readRegister(reg);
    const m = mask ?? (1n << BigInt(this.register(reg).bitsize)) - 1n;
    return { written: value, readBack, applied: (readBack & m) === (value & m) };
  }

  // ---------------------------------------------------------------- memory

  /** Largest `m` chunk: QEMU's 2048-byte cap, and the hex reply within PacketSize. */
  get maxReadChunk(): number {
    return Math.max(1, Math.min(MAX_READ_CHUNK, Math.floor(this.packetSize / 2)));
  }

  /**
   * Reads `length` bytes (`m`, in chunks). Virtual addresses of the current thread's CPU unless
   * physical-memory mode is on. All or nothing: a failing chunk throws RspErrorReply. In
   * physical mode QEMU reads unbacked addresses as zeros, without an error.
   */
  async readMemory(address: bigint, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = Math.min(this.maxReadChunk, length - done);
      const request = `m${formatHex(BigInt.asUintN(64, address + BigInt(done)))},${formatHex(n)}`;
      const reply = await this.request(request);
      if (reply.length === 0 || reply[0] === 0x45 /* E */) throw this.replyError(request, bytesToLatin1(reply));
      const bytes = hexToBytes(reply);
      if (bytes.length === 0 || bytes.length > n) throw new RspProtocolError(`${request} answered ${bytes.length} bytes`);
      out.set(bytes, done);
      done += bytes.length;
    }
    return out;
  }

  /**
   * Writes `data` (`M` hex; QEMU has no `X`), in chunks that keep each packet under PacketSize:
   * QEMU silently drops a longer packet and never answers.
   */
  async writeMemory(address: bigint, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const at = BigInt.asUintN(64, address + BigInt(done));
      const n = this.writeChunkLength(at, data.length - done);
      const request = `M${formatHex(at)},${formatHex(n)}:${bytesToHex(data.subarray(done, done + n))}`;
      await this.requestOk(request);
      done += n;
    }
  }

  /** Bytes of one `M` packet at `address`: payload `M addr,len:` + 2·len ≤ PacketSize − 1. */
  private writeChunkLength(address: bigint, remaining: number): number {
    const budget = this.packetSize - 1; // QEMU refuses a payload that fills its whole line buffer
    let n = remaining;
    for (let i = 0; i < 3; i++) {
      const header = 1 + formatHex(address).length + 1 + formatHex(n).length + 1;
      n = Math.min(remaining, Math.floor((budget - header) / 2));
    }
    if (n < 1) throw new RspProtocolError(`PacketSize ${this.packetSize} leaves no room for M data`);
    return n;
  }

  /** `Qqemu.PhyMemMode:1/0`: make m/M use guest-physical addresses. QEMU keeps it across connections. */
  async setPhysicalMemoryMode(on: boolean): Promise<void> {
    await this.requestOk(`Qqemu.PhyMemMode:${on ? 1 : 0}`, "this QEMU has no physical-memory mode");
  }

  /** `qqemu.PhyMemMode`: whether m/M use physical addresses. */
  async getPhysicalMemoryMode(): Promise<boolean> {
    const reply = await this.requestText("qqemu.PhyMemMode");
    if (reply !== "0" && reply !== "1") throw this.replyError("qqemu.PhyMemMode", reply);
    return reply === "1";
  }

  // ---------------------------------------------------------------- breakpoints

  /** `Z type,addr,kind`: kind is the breakpoint size for 0/1 and the watched length for 2–4. */
  async insertBreakpoint(type: BreakpointType, address: bigint, kind: number): Promise<void> {
    await this.requestOk(`Z${type},${formatHex(address)},${formatHex(kind)}`);
  }

  /** `z type,addr,kind`. */
  async removeBreakpoint(type: BreakpointType, address: bigint, kind: number): Promise<void> {
    await this.requestOk(`z${type},${formatHex(address)},${formatHex(kind)}`);
  }

  // ---------------------------------------------------------------- threads

  /** Every thread (`qfThreadInfo` then `qsThreadInfo` until `l`). QEMU: one per vCPU. */
  async listThreads(): Promise<ThreadId[]> {
    const threads: ThreadId[] = [];
    for (let request = "qfThreadInfo"; ; request = "qsThreadInfo") {
      const reply = await this.requestText(request);
      if (reply === "" || parseErrorReply(reply)) throw this.replyError(request, reply);
      const list = parseThreadList(reply);
      threads.push(...list.threads);
      if (list.done) return threads;
    }
  }

  /** `Hg`/`Hc`: the thread later `g`/`p`/`m` (g) or `c`/`s` (c) apply to. */
  async setThread(op: "g" | "c", thread: ThreadId): Promise<void> {
    await this.requestOk(`H${op}${formatThreadId(thread, this.multiprocess)}`);
  }

  /** `qC`: the current thread. */
  async currentThread(): Promise<ThreadId> {
    const reply = await this.requestText("qC");
    if (!reply.startsWith("QC")) throw this.replyError("qC", reply);
    return parseThreadId(reply.slice(2));
  }

  /** `qThreadExtraInfo`: QEMU says the CPU model and whether the vCPU runs or halts. */
  async threadExtraInfo(thread: ThreadId): Promise<string> {
    const request = `qThreadExtraInfo,${formatThreadId(thread, this.multiprocess)}`;
    const reply = await this.requestText(request);
    if (reply === "" || parseErrorReply(reply)) throw this.replyError(request, reply);
    return hexToText(reply);
  }

  // ---------------------------------------------------------------- monitor

  /**
   * Runs a QEMU monitor command (`qRcmd`) and returns its output with CRLF turned into LF.
   * Applies to the monitor's current CPU (`cpu N` changes it; `Hg` does not).
   */
  async monitor(command: string): Promise<string> {
    const text = (await this.enqueue(`qRcmd,${textToHex(command)}`, "monitor", this.timeoutMs)) as string;
    return text.replace(/\r\n/g, "\n");
  }

  // ---------------------------------------------------------------- execution

  /**
   * `?`: why the target is stopped. QEMU always answers T05 (even after a T02) and, taking `?`
   * for a fresh gdb connection, removes every breakpoint and watchpoint.
   */
  async stopReason(): Promise<StopReply> {
    return (await this.enqueue("?", "stop", this.timeoutMs)) as StopReply;
  }

  /**
   * Resumes every vCPU (`vCont;c`) and resolves with the next stop: a breakpoint, interrupt(),
   * a QMP `stop`, or `W`/`X` when the guest or QEMU ends. No timeout. While it is pending only
   * interrupt(), detach() and close() are allowed.
   */
  continue(): Promise<StopReply> {
    const payload = this.vContActions.has("c") ? "vCont;c" : "c";
    return this.enqueue(payload, "stop", undefined, { isContinue: true }) as Promise<StopReply>;
  }

  /**
   * Steps one thread (`vCont;s:p1.N`). Stepping a halted vCPU never completes on QEMU: after the
   * timeout the step is interrupted (0x03) and reported with `interrupted: true`. With
   * `checkPc`, reports whether the PC moved. It legitimately stays put for one iteration of an
   * x86 rep-string instruction or an exception that vectors to the same address, and QEMU x86
   * occasionally reports a step that executed nothing: the caller decides what to make of it.
   */
  async step(thread?: ThreadId, options: StepOptions = {}): Promise<StepResult> {
    const target = thread ?? this.defaultThread();
    let pcBefore: bigint | undefined;
    const pc = options.checkPc ? this.programCounter() : undefined;
    if (pc) {
      await this.setThread("g", target);
      pcBefore = await this.readRegister(pc.regnum);
    }
    const payload = this.vContActions.has("s") ? `vCont;s:${formatThreadId(target, this.multiprocess)}` : "s";
    let op: Op | undefined;
    const stop = (await this.enqueue(payload, "stop", options.timeoutMs ?? this.timeoutMs, {
      onCreate: (o) => {
        op = o;
        o.onTimeout = () => {
          // Interrupt the stuck step; give the T02 one more timeout before failing the connection.
          o.interruptSent = true;
          this.socket.write(INTERRUPT);
          o.onTimeout = undefined;
          this.armTimer(o);
        };
      },
    })) as StopReply;
    const result: StepResult = { stop, interrupted: op?.interruptSent === true };
    if (pc) {
      result.pcBefore = pcBefore;
      result.pcAfter = await this.readRegister(pc.regnum);
      result.pcMoved = result.pcAfter !== pcBefore;
    }
    return result;
  }

  /**
   * Stops a running target (0x03). Resolves with the stop the pending continue() reports (T02,
   * or whatever stop won the race), or undefined when nothing was running.
   */
  async interrupt(): Promise<StopReply | undefined> {
    const op = this.active?.expect === "stop" ? this.active : undefined;
    if (!op) return undefined;
    if (op.acked) {
      op.interruptSent = true;
      this.socket.write(INTERRUPT);
    } else {
      op.interruptOnAck = true; // 0x03 before QEMU took the vCont would be ignored and the VM run on
    }
    if (op.timeoutMs === undefined) {
      op.timeoutMs = this.timeoutMs;
      this.armTimer(op);
    }
    return (await op.promise) as StopReply;
  }

  /** Detaches (`D;1` with multiprocess; plain `D` gets E22 there), which resumes the VM, then closes. */
  async detach(): Promise<void> {
    if (this.running) await this.interrupt();
    await this.requestOk(this.multiprocess ? "D;1" : "D");
    await this.close();
  }

  /** Closes the socket without detaching (QEMU leaves the VM paused). Pending requests reject; never rejects itself. */
  async close(): Promise<void> {
    this.shutDown(new RspConnectionClosed("the client closed the connection"));
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 200);
    await this.closedPromise;
    clearTimeout(timer);
  }

  // ---------------------------------------------------------------- internals

  private description(reg: string | number = "g"): TargetDescription {
    if (!this.targetDescription) {
      throw new RspUnknownRegister(reg, "the target description is not loaded (call loadTargetDescription())");
    }
    return this.targetDescription;
  }

  private programCounter(): TargetRegister | undefined {
    return this.targetDescription ? programCounterOf(this.targetDescription) : undefined;
  }

  private defaultThread(): ThreadId {
    const last = this.lastStop;
    if (last?.kind === "signal" && last.thread && typeof last.thread.tid === "number") return last.thread;
    return { pid: 1, tid: 1 };
  }

  private replyError(request: string, reply: string, hint = ""): RspClientError {
    const label = shorten(request);
    if (reply === "") return new RspUnsupported(label, hint);
    const err = parseErrorReply(reply);
    if (err) return new RspErrorReply(label, err.code, reply);
    return new RspProtocolError(`${label}: unexpected reply ${JSON.stringify(shorten(reply))}`);
  }

  private enqueue(
    payload: string | Uint8Array,
    expect: Expect,
    timeoutMs: number | undefined,
    extra: { isContinue?: boolean; onCreate?: (op: Op) => void } = {},
  ): Promise<Uint8Array | StopReply | string> {
    const label = shorten(typeof payload === "string" ? payload : bytesToLatin1(payload));
    if (this.closed) return Promise.reject(this.closed);
    if (this.running) return Promise.reject(new RspTargetRunning(label));
    let resolve!: Op["resolve"];
    let reject!: Op["reject"];
    const promise = new Promise<Uint8Array | StopReply | string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const op: Op = {
      packet: encodePacket(payload),
      label,
      expect,
      timeoutMs,
      resolve,
      reject,
      promise,
      acked: false,
      retransmits: 0,
      output: [],
      isContinue: extra.isContinue ?? false,
      interruptOnAck: false,
      interruptSent: false,
    };
    extra.onCreate?.(op);
    this.queue.push(op);
    this.pump();
    return promise;
  }

  private pump(): void {
    if (this.active || this.closed) return;
    const op = this.queue.shift();
    if (!op) return;
    this.active = op;
    this.socket.write(op.packet);
    if (this.noAckMode) op.acked = true;
    this.armTimer(op);
  }

  private armTimer(op: Op): void {
    if (op.timer) clearTimeout(op.timer);
    op.timer = undefined;
    if (op.timeoutMs === undefined) return;
    op.timer = setTimeout(() => {
      op.timer = undefined;
      if (this.active !== op) return;
      if (op.onTimeout) this.guard(op.onTimeout);
      else this.fail(new RspTimeout(op.label, op.timeoutMs!));
    }, op.timeoutMs);
  }

  private settle(op: Op, value: Uint8Array | StopReply | string | Error): void {
    if (op.timer) clearTimeout(op.timer);
    if (op.graceTimer) clearTimeout(op.graceTimer);
    if (this.active === op) this.active = undefined;
    if (value instanceof Error) op.reject(value);
    else op.resolve(value);
    this.pump();
  }

  private onData(chunk: Buffer): void {
    for (const event of this.framer.push(chunk)) {
      const ack = this.framer.ackFor(event);
      if (ack && !this.closed) this.socket.write(ack);
      switch (event.type) {
        case "ack":
          this.onAck();
          break;
        case "nack":
          this.onNack();
          break;
        case "packet":
          this.onPacket(event.data);
          break;
        case "error":
          // A corrupt packet: the `-` above makes QEMU resend it.
          break;
        default:
          break; // interrupts and notifications are not sent by a stub to its client
      }
      if (this.closed) return;
    }
  }

  private onAck(): void {
    const op = this.active;
    if (!op || op.acked) return;
    op.acked = true;
    if (op.graceTimer) clearTimeout(op.graceTimer);
    op.graceTimer = undefined;
    if (op.interruptOnAck) {
      op.interruptSent = true;
      this.socket.write(INTERRUPT);
    }
  }

  private onNack(): void {
    const op = this.active;
    if (!op || op.acked) return;
    this.retransmit(op, "nack");
  }

  private retransmit(op: Op, why: string): void {
    if (op.retransmits++ >= this.maxRetransmits) {
      this.fail(new RspProtocolError(`${op.label}: gave up after ${this.maxRetransmits} retransmissions (${why})`));
      return;
    }
    this.socket.write(op.packet);
    this.armTimer(op);
  }

  private onPacket(data: Uint8Array): void {
    const op = this.active;
    // Only the first bytes decide what a packet is; `m`/`g` replies stay bytes (no string copy).
    if (op?.acked && op.expect === "reply" && !isStopReply(bytesToLatin1(data.subarray(0, 3)))) {
      this.settle(op, data);
      return;
    }
    const text = bytesToLatin1(data);
    if (isStopReply(text)) {
      let reply: StopReply;
      try {
        reply = parseStopReply(text);
      } catch (err) {
        this.fail(new RspProtocolError(`unparsable stop reply ${JSON.stringify(shorten(text))}`, { cause: err }));
        return;
      }
      this.lastStop = reply;
      if (op && op.acked && op.expect === "stop") {
        this.settle(op, reply);
        return;
      }
      // Unsolicited. Before the request's `+` it means the VM was running and QEMU dropped the
      // request to stop it (unless the `+` still comes: then a QMP stop merely raced the request).
      if (op && !op.acked && !op.graceTimer) {
        op.graceTimer = setTimeout(() => {
          op.graceTimer = undefined;
          if (this.active === op && !op.acked) this.guard(() => this.retransmit(op, "dropped while the VM ran"));
        }, this.graceMs);
      }
      if (this.handshaking && !this.connectStop) this.connectStop = reply;
      this.emit("stop", reply);
      return;
    }
    if (!op || !op.acked) {
      this.emit("unexpected", text);
      return;
    }
    switch (op.expect) {
      case "reply":
        this.settle(op, data);
        return;
      case "stop":
        if (isConsoleOutput(text)) this.emit("console", parseConsoleOutput(text));
        else this.settle(op, this.replyError(op.label, text));
        return;
      case "monitor":
        if (isConsoleOutput(text)) op.output.push(parseConsoleOutput(text));
        else if (text === "OK") this.settle(op, op.output.join(""));
        else this.settle(op, this.replyError(op.label, text));
        return;
    }
  }

  /**
   * Runs a socket or timer callback. A throw there would reach the process, so it ends this
   * connection instead, as a fatal error with the throw as its cause: a packet our parsers reject
   * (an odd-length `O` packet, say) or a bug in a listener of ours.
   */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(new RspProtocolError(`failed handling the gdbstub's data: ${(err as Error).message}`, { cause: err }));
    }
  }

  /** A fatal error: close the connection; the active request gets `err`, the rest RspConnectionClosed. */
  private fail(err: RspClientError): void {
    this.shutDown(err instanceof RspConnectionClosed ? err : new RspConnectionClosed(err.message, { cause: err }), err);
    this.socket.destroy();
  }

  private shutDown(err: RspConnectionClosed, activeErr: Error = err): void {
    if (this.closed) return;
    this.closed = err;
    const active = this.active;
    const queued = [...this.queue];
    this.active = undefined;
    this.queue.length = 0;
    if (active) this.settle(active, activeErr);
    for (const op of queued) this.settle(op, err);
    try {
      this.emit("close", err);
    } catch (listenerErr) {
      // The connection this would be reported through is the one closing: warn on the process.
      process.emitWarning(`a gdbstub client's "close" listener threw: ${(listenerErr as Error).message}`, { type: "VmmDebugWarning" });
    }
  }
}

function shorten(text: string): string {
  return text.length > 60 ? text.slice(0, 60) + "…" : text;
}
