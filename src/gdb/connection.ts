// One gdb connection: RSP framing and acks, packet dispatch, and run control over one SDK Session.
import type { Socket } from "node:net";
import { Status } from "nice-grpc";
import {
  type Capabilities,
  type DebugStopReason,
  type DebuggerVpState,
  type Session,
  type VmmDebugClient,
  VmmDebugError,
} from "../client";
import {
  type FrameEvent,
  type RspFramer,
  bytesToHex,
  bytesToLatin1,
  createFramer,
  encodePacket,
  formatErrorReply,
  formatStopReply,
  formatThreadList,
  formatHex,
  formatSupported,
  hexToBytes,
  hexToText,
  parseHexInt,
  parseHexNumber,
  parseThreadId,
  textToHex,
  type StopReason,
  type StopReply,
} from "../rsp";
import { AARCH64_REGISTER_FILE } from "./aarch64-registers";
import { GdbBreakpoints } from "./breakpoints";
import { EFAULT, EINVAL, EIO, ENOSPC, Refused } from "./errors";
import { MonitorUsage, runMonitor } from "./monitor";
import type { RegisterFile } from "./registers";
import { applyRegisterDelta } from "../core/register-numbering";
import { StopCache } from "./stop-cache";
import { X86_REGISTER_FILE } from "./x86-registers";

/** Largest packet we accept and announce (hex digits of `m`/`g` replies fit twice over). */
export const PACKET_SIZE = 0x4000;
/** Largest `m` read answered at once: the reply's hex must fit in PacketSize. */
const MAX_READ = PACKET_SIZE / 2 - 16;

/** GDB signal numbers. */
const SIGINT = 2;
const SIGTRAP = 5;
const SIGSEGV = 11;

/** `running` with step: one VP steps (a Break cannot interrupt it, and would only linger for the next resume). */
type RunState = { kind: "stopped" } | { kind: "running"; step: boolean } | { kind: "closed" };

export interface ConnectionOptions {
  client: VmmDebugClient;
  /** VM id ("" = the only one). */
  vm: string;
  /** One line per event worth telling the operator (attach, detach, a lost server). */
  log: (line: string) => void;
}

/**
 * Serves one gdb over `socket` until gdb detaches, kills, disconnects, or the server is lost.
 * Resolves when the connection is over (the session is detached by then).
 */
export function serveGdbConnection(socket: Socket, options: ConnectionOptions): Promise<void> {
  return new GdbConnection(socket, options).done;
}

class GdbConnection {
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly framer: RspFramer = createFramer({ maxPacketSize: PACKET_SIZE });
  private noAck = false;
  private lastSent: Uint8Array | undefined;
  private session: Session | undefined;
  private vmId = "";
  private vpCount = 1;
  private registers: RegisterFile = X86_REGISTER_FILE;
  /** What the VM's backend can do (the server's answer; a default for one that predates capabilities). */
  private caps: Capabilities = LEGACY_CAPABILITIES;
  /** Hg (registers, memory) and Hc (step) threads as VP indices. */
  private gVp = 0;
  private cVp = 0;
  /** The VP of the last stop reply: gdb's current thread, unless it switched since. */
  private stopVp = 0;
  private state: RunState = { kind: "stopped" };
  private lastStop = formatStopReply({ kind: "signal", signal: SIGTRAP, thread: { tid: 1 }, registers: new Map(), fields: [] });
  private breakpoints = new GdbBreakpoints(LEGACY_CAPABILITIES, 1);
  /** Registers and memory read at this stop (stop-cache.ts): forgotten before every run, write and breakpoint change. */
  private readonly known = new StopCache();
  private chain: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly options: ConnectionOptions,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => undefined); // "close" follows
    socket.on("close", () => void this.end(undefined));
    this.chain = this.start();
  }

  /** Attaches and stops the VM, as a gdb expects of a target it connects to. */
  private async start(): Promise<void> {
    try {
      const info = await this.options.client.getVm(this.options.vm);
      this.vmId = info.id;
      this.vpCount = info.vpCount;
      this.registers = info.arch === "aarch64" ? AARCH64_REGISTER_FILE : X86_REGISTER_FILE;
      this.caps = info.capabilities ?? LEGACY_CAPABILITIES;
      this.breakpoints = new GdbBreakpoints(this.caps, this.vpCount);
      this.session = await this.options.client.attach(info.id);
      this.watchSession(this.session);
      // A running VM is stopped (the resume answers that break at once). One already stopped
      // with nobody attached stays as it is: a Break would change nothing, and a resume would
      // run it and wait for a stop that may never come.
      if ((await this.options.client.getVm(info.id)).runState === "running") {
        await this.session.break();
        await this.session.resume();
      }
      this.options.log(`gdb ${this.peer()} attached to VM "${this.vmId}" (${info.arch}, ${this.vpCount} VP(s)), VM stopped`);
    } catch (e) {
      await this.end(`cannot attach to VM "${this.options.vm || "(the only VM)"}": ${messageOf(e)}`);
    }
  }

  /** The session's stop feed ends when the session does: a lost server ends the gdb connection. */
  private watchSession(session: Session): void {
    const feed = session.stops();
    void (async () => {
      try {
        for await (const _ of feed) {
          // Stops are answered through resume()/step(); the feed is only watched for its end.
        }
        if (this.state.kind !== "closed" && this.session === session) await this.end("the debug session ended on the server");
      } catch (e) {
        if (this.state.kind !== "closed" && this.session === session) await this.end(`lost the vmm-debug server: ${messageOf(e)}`);
      }
    })();
  }

  private peer(): string {
    return `${this.socket.remoteAddress ?? "?"}:${this.socket.remotePort ?? "?"}`;
  }

  private onData(chunk: Buffer): void {
    let events: FrameEvent[];
    try {
      events = this.framer.push(chunk);
    } catch (e) {
      void this.end(`bad data from gdb: ${messageOf(e)}`);
      return;
    }
    for (const event of events) {
      const ack = this.noAck ? undefined : this.framer.ackFor(event);
      if (ack) this.socket.write(ack);
      switch (event.type) {
        case "packet": {
          const data = event.data;
          this.chain = this.chain.then(() => this.dispatch(data));
          break;
        }
        case "nack":
          if (this.lastSent) this.socket.write(this.lastSent);
          break;
        case "interrupt":
          // Out of band: the pending resume answers the break (0x03 while stopped is ignored).
          if (this.state.kind === "running" && !this.state.step) this.session?.break().catch(() => undefined);
          break;
        default:
          break;
      }
    }
  }

  private send(payload: string): void {
    if (this.state.kind === "closed") return;
    this.lastSent = encodePacket(payload);
    this.socket.write(this.lastSent);
  }

  /** Console output gdb prints (allowed while it waits for a stop reply or a qRcmd answer), in packets that fit. */
  private console(text: string): void {
    const perPacket = PACKET_SIZE / 2 - 8;
    for (let at = 0; at < text.length; at += perPacket) this.send("O" + textToHex(text.slice(at, at + perPacket)));
  }

  private async dispatch(data: Uint8Array): Promise<void> {
    if (this.state.kind === "closed") return;
    const packet = bytesToLatin1(data);
    let reply: string | undefined;
    try {
      reply = await this.handle(packet, data);
    } catch (e) {
      if (e instanceof Refused) {
        reply = formatErrorReply(e.code);
      } else if (isFatal(e)) {
        await this.end(`lost the vmm-debug server: ${messageOf(e)}`);
        return;
      } else {
        reply = formatErrorReply(errnoOf(e));
      }
    }
    if (reply !== undefined) this.send(reply);
  }

  private get live(): Session {
    if (!this.session) throw new Refused(EIO, "not attached");
    return this.session;
  }

  /** The reply to one packet; undefined for packets answered otherwise (k, D ends the connection after OK). */
  private async handle(packet: string, raw: Uint8Array): Promise<string | undefined> {
    const c = packet[0];
    switch (c) {
      case "?":
        return this.lastStop;
      case "g":
        return this.registers.formatAll(await this.regs(this.gVp));
      case "G":
        return this.writeRegisters((s) => this.registers.withAll(s, packet.slice(1)));
      case "p": {
        const n = parseHexInt(packet.slice(1));
        if (n >= this.registers.count) throw new Refused(EINVAL, `no register ${n}`);
        // A state carried through a step knows every register but the FP ones: those are read.
        const known = this.known.registersOf(this.gVp);
        const value = known && this.registers.format(known, n);
        if (value && !/^x+$/.test(value)) return value;
        return this.registers.format(await this.regs(this.gVp), n);
      }
      case "P": {
        const m = /^P([0-9a-fA-F]+)=([0-9a-fA-FxX]*)$/.exec(packet);
        if (!m) throw new Refused(EINVAL, "malformed P");
        const n = parseHexInt(m[1]);
        return this.writeRegisters((s) => this.registers.withRegister(s, n, m[2]));
      }
      case "m":
        return this.readMemory(packet);
      case "M":
        return this.writeMemoryHex(packet);
      case "X":
        return this.writeMemoryBinary(raw);
      case "Z":
      case "z":
        this.known.forget();
        return this.breakpoints.apply(this.live, c === "Z", packet.slice(1));
      case "H":
        return this.selectThread(packet);
      case "T":
        return this.vpOf(packet.slice(1)) !== undefined ? "OK" : formatErrorReply(EINVAL);
      case "c":
        return this.run(undefined);
      case "s":
        return this.run(this.cVp);
      case "C":
        return this.run(undefined);
      case "S":
        return this.run(this.cVp);
      case "D":
        await this.detach();
        this.send("OK");
        await this.end(undefined);
        return undefined;
      case "k":
        await this.detach();
        await this.end(undefined);
        return undefined;
      case "v":
        return this.handleV(packet);
      case "q":
      case "Q":
        return this.handleQuery(packet);
      default:
        return "";
    }
  }

  private async handleV(packet: string): Promise<string | undefined> {
    if (packet === "vCont?") return "vCont;c;C;s;S";
    if (packet.startsWith("vCont;")) return this.vCont(packet.slice(6));
    if (packet.startsWith("vKill")) {
      await this.detach();
      this.send("OK");
      await this.end(undefined);
      return undefined;
    }
    return ""; // vMustReplyEmpty and everything else we do not serve
  }

  private async handleQuery(packet: string): Promise<string | undefined> {
    if (packet.startsWith("qSupported")) {
      // swbreak/hwbreak stop reasons only where the VM has them: gdb falls back to writing its own
      // breakpoint instructions into memory where Z0 is unsupported (QEMU under KVM).
      return formatSupported([
        ["PacketSize", formatHex(PACKET_SIZE)],
        ["qXfer:features:read", true],
        ["vContSupported", true],
        ["QStartNoAckMode", true],
        ["swbreak", this.caps.softwareBreakpoints.gva],
        ["hwbreak", this.caps.hardwareSlotsPerVp > 0],
      ]);
    }
    if (packet === "QStartNoAckMode") {
      // The OK still travels in ack mode; everything after it does not.
      this.send("OK");
      this.noAck = true;
      this.framer.noAck = true;
      return undefined;
    }
    if (packet.startsWith("qXfer:features:read:")) return this.xferFeatures(packet.slice("qXfer:features:read:".length));
    if (packet === "qfThreadInfo") {
      return formatThreadList({ done: false, threads: Array.from({ length: this.vpCount }, (_, vp) => ({ tid: vp + 1 })) }, false);
    }
    if (packet === "qsThreadInfo") return formatThreadList({ done: true, threads: [] }, false);
    if (packet === "qC") return `QC${formatHex(this.gVp + 1)}`;
    if (packet === "qAttached" || packet.startsWith("qAttached:")) return "1"; // quitting gdb detaches, never kills
    if (packet.startsWith("qThreadExtraInfo,")) {
      const vp = this.vpOf(packet.slice("qThreadExtraInfo,".length));
      return vp === undefined ? formatErrorReply(EINVAL) : textToHex(`VP ${vp}`);
    }
    if (packet.startsWith("qRcmd,")) return this.monitor(hexToText(packet.slice(6)).trim());
    return "";
  }

  private xferFeatures(rest: string): string {
    const m = /^([^:]+):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(rest);
    if (!m) throw new Refused(EINVAL, "malformed qXfer");
    if (m[1] !== "target.xml") return formatErrorReply(0);
    const xml = this.registers.targetXml;
    const offset = parseHexInt(m[2]);
    const length = Math.min(parseHexInt(m[3]), PACKET_SIZE - 16);
    const chunk = xml.slice(offset, offset + length);
    return (offset + length >= xml.length ? "l" : "m") + chunk;
  }

  private async monitor(command: string): Promise<string> {
    this.known.forget(); // monitor commands only read, but forgetting costs nothing here
    try {
      await runMonitor(command, {
        session: this.live,
        vmInfo: () => this.options.client.getVm(this.vmId),
        vp: this.gVp,
        print: (text) => this.console(text),
      });
      return "OK";
    } catch (e) {
      if (isFatal(e)) throw e;
      this.console(`${messageOf(e)}\n`);
      return formatErrorReply(e instanceof MonitorUsage ? EINVAL : errnoOf(e));
    }
  }

  /** A VP's registers, read once per stop (the state is never modified: writes build a copy). */
  private async regs(vp: number): Promise<DebuggerVpState> {
    const known = this.known.registersOf(vp);
    // A state carried through a step by its register trace has no FP state (the trace has none).
    if (known && !(known.arch === "x86_64" && !known.state.fp)) return known;
    const s = await this.live.getVpState(vp);
    if (s.arch !== this.registers.arch) throw new Refused(EIO, `VP ${vp} answered ${s.arch} state for an ${this.registers.arch} VM`);
    this.known.keepRegisters(vp, s);
    return s;
  }

  /** All or nothing: the new state is built completely before one setVpState. */
  private async writeRegisters(change: (s: DebuggerVpState) => { state: DebuggerVpState } | { refused: string }): Promise<string> {
    // From the server's registers, not this stop's: a state carried through steps by their traces
    // is exact for what gdb sees but need not be for the rest (QEMU's segment descriptor caches),
    // and setVpState refuses a change to what the backend cannot write.
    this.known.forget();
    const current = await this.regs(this.gVp);
    const next = change(current);
    if ("refused" in next) throw new Refused(EINVAL, next.refused);
    if (next.state !== current) {
      this.known.forget(); // a new CR3 or TTBR changes what memory reads see, too
      await this.live.setVpState(this.gVp, next.state);
    }
    return "OK";
  }

  private async readMemory(packet: string): Promise<string> {
    const m = /^m([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(packet);
    if (!m) throw new Refused(EINVAL, "malformed m");
    const address = parseHexNumber(m[1]);
    const length = Math.min(parseHexInt(m[2]), MAX_READ);
    const vp = this.gVp;
    const known = await this.known.memory(vp, address, length);
    if (known) return bytesToHex(known);
    const data = await this.live.readMemory({ gva: address, vp }, length);
    this.known.keep(vp, address, data);
    return bytesToHex(data);
  }

  private async writeMemoryHex(packet: string): Promise<string> {
    const m = /^M([0-9a-fA-F]+),([0-9a-fA-F]+):([0-9a-fA-F]*)$/.exec(packet);
    if (!m) throw new Refused(EINVAL, "malformed M");
    const data = hexToBytes(m[3]);
    if (data.length !== parseHexInt(m[2])) throw new Refused(EINVAL, "M length does not match its data");
    this.known.forget();
    if (data.length > 0) await this.live.writeMemory({ gva: parseHexNumber(m[1]), vp: this.gVp }, data);
    return "OK";
  }

  private async writeMemoryBinary(raw: Uint8Array): Promise<string> {
    const colon = raw.indexOf(0x3a);
    const m = colon < 0 ? null : /^X([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(bytesToLatin1(raw.subarray(0, colon)));
    if (!m) throw new Refused(EINVAL, "malformed X");
    const data = raw.slice(colon + 1); // the framer has undone the escapes
    if (data.length !== parseHexInt(m[2])) throw new Refused(EINVAL, "X length does not match its data");
    this.known.forget();
    if (data.length > 0) await this.live.writeMemory({ gva: parseHexNumber(m[1]), vp: this.gVp }, data);
    return "OK";
  }

  private selectThread(packet: string): string {
    const which = packet[1];
    const id = packet.slice(2);
    if (which !== "g" && which !== "c") return "";
    let vp: number | undefined;
    if (id === "0" || id === "-1") vp = which === "g" ? this.gVp : this.gVp; // any / all: keep the current thread
    else vp = this.vpOf(id);
    if (vp === undefined) return formatErrorReply(EINVAL);
    if (which === "g") this.gVp = vp;
    else this.cVp = vp;
    return "OK";
  }

  /** A thread id naming one VP (thread = VP + 1), or undefined. */
  private vpOf(text: string): number | undefined {
    try {
      const id = parseThreadId(text);
      if (typeof id.tid !== "number") return undefined;
      const vp = id.tid - 1;
      return vp >= 0 && vp < this.vpCount ? vp : undefined;
    } catch {
      return undefined;
    }
  }

  /** `vCont;s:2;c`: a step action steps its VP (the others stay stopped); else continue all. */
  private vCont(actions: string): Promise<string | undefined> | string {
    let step: number | undefined;
    let cont = false;
    for (const action of actions.split(";")) {
      const [verb, thread] = action.split(":");
      const kind = verb[0];
      if (kind === "s" || kind === "S") {
        if (step !== undefined) continue;
        if (thread === undefined) step = this.cVp;
        else {
          const vp = this.vpOf(thread);
          if (vp === undefined) return formatErrorReply(EINVAL);
          step = vp;
        }
      } else if (kind === "c" || kind === "C") {
        cont = true;
      } else {
        return formatErrorReply(EINVAL);
      }
    }
    if (step === undefined && !cont) return formatErrorReply(EINVAL);
    return this.run(step);
  }

  /** Continues the VM (vp undefined) or steps one VP, and answers the stop. */
  private async run(stepVp: number | undefined): Promise<string> {
    const session = this.live;
    const before = stepVp === undefined ? undefined : this.known.registersOf(stepVp);
    this.known.forget();
    this.state = { kind: "running", step: stepVp !== undefined };
    let reason: DebugStopReason;
    let after: DebuggerVpState | undefined;
    try {
      if (stepVp === undefined) reason = await session.resume();
      else if (!this.caps.batchedStepping.traces.includes("registers")) reason = await session.step(stepVp);
      else {
        // A Step of one with its register trace: the same step, and what it changed, so the
        // registers after it (known before it) need no read.
        const r = await session.step(stepVp, { count: 1, trace: "registers" });
        reason = r.stop ?? { kind: "singleStep", vp: stepVp };
        if (before && !r.stop && r.executed === 1 && r.deltas.length === 1) after = applyRegisterDelta(before, r.deltas[0]);
      }
    } catch (e) {
      // A fatal failure ends the connection while gdb still waits for the stop (it gets the
      // reason as console output); any other leaves the VM stopped and answers `E xx`.
      if (!isFatal(e) && this.state.kind === "running") this.state = { kind: "stopped" };
      throw e;
    }
    if (this.state.kind === "running") this.state = { kind: "stopped" };
    if (after && stepVp !== undefined && this.state.kind === "stopped") {
      this.known.keepRegisters(stepVp, after);
      // gdb reads the instruction at the new PC next: that read travels while the stop reply does.
      this.known.readAhead(session, stepVp, this.registers.pc(after));
    }
    // A VM-wide stop (break, reset) is reported on the stepped VP, else on the thread of the last stop.
    return this.stopReply(reason, stepVp ?? this.stopVp);
  }

  private stopReply(reason: DebugStopReason, fallbackVp: number): string {
    const stopped = (signal: number, vp: number, why?: StopReason): string => {
      this.gVp = vp;
      this.cVp = vp;
      this.stopVp = vp;
      const reply: StopReply = { kind: "signal", signal, thread: { tid: vp + 1 }, registers: this.expedited(vp), fields: [] };
      if (why) reply.reason = why;
      return formatStopReply(reply);
    };
    let reply: string;
    switch (reason.kind) {
      case "break":
        reply = stopped(SIGINT, fallbackVp);
        break;
      case "singleStep":
        reply = stopped(SIGTRAP, reason.vp);
        break;
      case "softwareBreakpoint":
        reply = stopped(SIGTRAP, reason.vp, { kind: "swbreak" });
        break;
      case "hwBreakpoint": {
        const { type, address } = reason.breakpoint;
        // Z3 (read) is armed as read-or-write, so reads and accesses both report `awatch`.
        const why: StopReason = type === "execute" ? { kind: "hwbreak" } : { kind: type === "write" ? "watch" : "awatch", address };
        reply = stopped(SIGTRAP, reason.vp, why);
        break;
      }
      case "tripleFault":
        this.console(`vmm-debug: VP ${reason.vp} triple-faulted\n`);
        reply = stopped(SIGSEGV, reason.vp);
        break;
      case "powerOff":
        this.console("vmm-debug: the guest powered off\n");
        reply = formatStopReply({ kind: "exited", status: 0 });
        break;
      case "reset":
        this.console("vmm-debug: the guest reset\n");
        reply = stopped(SIGTRAP, fallbackVp);
        break;
      case "watchdog":
        this.console("vmm-debug: the watchdog fired\n");
        reply = stopped(SIGTRAP, fallbackVp);
        break;
    }
    this.lastStop = reply;
    return reply;
  }

  /** pc, sp and frame pointer for a stop reply, when this stop knows the VP's registers: gdb then reads no `g` for a step. */
  private expedited(vp: number): Map<number, string> {
    const out = new Map<number, string>();
    const state = this.known.registersOf(vp);
    if (state) for (const n of this.registers.expedite) out.set(n, this.registers.format(state, n));
    return out;
  }

  private async detach(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (!session) return;
    await session.detach().catch(() => session.close().catch(() => undefined));
    this.options.log(`gdb ${this.peer()} detached from VM "${this.vmId}"; the VM runs on`);
  }

  /** Ends the connection once; a message says why when it was not gdb's choice. */
  private async end(why: string | undefined): Promise<void> {
    if (this.state.kind === "closed") return;
    if (why) {
      this.options.log(`gdb ${this.peer()}: ${why}; closing the gdb connection`);
      // gdb prints console output while it waits for a stop; otherwise it reports the closed connection.
      if (this.state.kind === "running") this.console(`vmm-debug: ${why}\n`);
    }
    const session = this.session;
    this.session = undefined;
    this.state = { kind: "closed" };
    this.socket.end();
    if (session) {
      await session.close().catch(() => undefined);
      this.options.log(`gdb ${this.peer()} disconnected; VM "${this.vmId}" detached and running`);
    }
    this.resolveDone();
  }
}

/** What a server that predates capabilities offers: the x86 slots of the first releases, no software breakpoints. */
const LEGACY_CAPABILITIES: Capabilities = {
  hardwareSlotsPerVp: 4,
  watchpointTypes: ["write", "readWrite"],
  watchpointSizes: [1, 2, 4, 8],
  softwareBreakpoints: { gva: false, perVp: false, gpa: false },
  setVpStateFields: [],
  memoryReadsWhileRunning: "pauses",
  batchedStepping: { maxCount: 1, traces: [] },
};

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Failures that mean the session is gone (server lost, stream over): the gdb connection ends. */
function isFatal(e: unknown): boolean {
  if (!(e instanceof VmmDebugError)) return false;
  return e.code === Status.UNAVAILABLE || e.code === Status.CANCELLED || e.reason === "NOT_ATTACHED" || e.reason === "SESSION_ENDED";
}

/** The errno a refused request answers with. */
function errnoOf(e: unknown): number {
  if (e instanceof VmmDebugError) {
    if (e.reason === "GVA_NOT_MAPPED" || e.reason === "GPA_UNMAPPED") return EFAULT;
    if (e.reason === "TOO_MANY_BREAKPOINTS") return ENOSPC;
    if (e.code === Status.INVALID_ARGUMENT || e.code === Status.FAILED_PRECONDITION) return EINVAL;
  }
  return EIO;
}
