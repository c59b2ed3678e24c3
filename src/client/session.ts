// A debugger session on one VM: run control, hardware slots (tracked per VP), registers, memory,
// over either transport (one Session stream, or unary calls with a lease).
import { Status } from "nice-grpc";
import type { VmmDebugClient } from "./client";
import {
  badLength,
  debugStateToWire,
  guestAddressToWire,
  memoryRangeToWire,
  readManyFromWire,
  softwareBreakpointAddressToWire,
  softwareBreakpointsFromWire,
  stepResultFromWire,
  stepTraceToWire,
  translationFromWire,
  unreadableFromWire,
  vpStateFromWire,
  vpStateToWire,
  vpStatesFromWire,
} from "./convert";
import { VmmDebugError } from "./errors";
import type { SessionTransport } from "./session-transport";
import type {
  CallOptions,
  DebugState,
  DebugStopReason,
  DebuggerVpState,
  GuestAddress,
  HardwareBreakpoint,
  InsertSoftwareBreakpointOptions,
  MemoryRange,
  PartialRead,
  ReadManyResult,
  SessionStop,
  SoftwareBreakpoint,
  SoftwareBreakpointAddress,
  StepOptions,
  StepResult,
  Translation,
  Transport,
  VpStateEntry,
  Watchpoint,
} from "./types";

const SLOT_COUNT = 4;

export class Session {
  /** The debug state this session last set on each VP (slots are chosen from it). */
  private readonly debugStates = new Map<number, DebugState>();
  private readonly transportImpl: SessionTransport;

  /** @internal Use VmmDebugClient.attach(). */
  constructor(
    private readonly client: VmmDebugClient,
    transport: (session: Session) => SessionTransport,
  ) {
    this.transportImpl = transport(this);
  }

  /** The VM's id. */
  get vm(): string {
    return this.transportImpl.vm;
  }

  /** The session id (unary calls may carry it too, while the session lives). */
  get id(): string {
    return this.transportImpl.id;
  }

  /**
   * Lease in milliseconds: a unary session ends after this long without a request of it. 0 on
   * the stream, which is its own lease (the session ends when the stream does).
   */
  get lease(): number {
    return this.transportImpl.lease;
  }

  /** "stream" or "unary" (see AttachOptions.transport). */
  get transport(): Transport {
    return this.transportImpl.kind;
  }

  /**
   * Runs the VM and answers the next stop. A stop not yet reported (after break(), or after a
   * resume() that was cancelled) is answered at once without running, as Resume's halt_reported
   * rule. Cancelling leaves the VM running; its stop goes to the next resume(). One resume() at a
   * time (else FAILED_PRECONDITION / RESUME_IN_PROGRESS).
   */
  resume(opts: CallOptions = {}): Promise<DebugStopReason> {
    return this.transportImpl.resume(opts);
  }

  /** Stops the VM; the pending (or next) resume() answers `break`. */
  async break(opts: CallOptions = {}): Promise<void> {
    await this.transportImpl.call("break", {}, opts);
  }

  /**
   * Single-steps one VP and returns the stop (normally `{ kind: "singleStep", vp }`); the VM must
   * be stopped. On the stream this is one Step of one instruction with the other VPs stopped (one
   * message; a VP halted in HLT executes nothing and still answers singleStep). On unary it is
   * single-step plus Resume: single-step stays on in the server between consecutive steps of the
   * same VP, so a run of steps costs one Resume each; resume(), setDebugState(), a batched step
   * and detach() turn it off again. debugState() always shows the state you set.
   */
  step(vp: number, opts?: CallOptions): Promise<DebugStopReason>;
  /**
   * Runs `count` instructions on one VP with the other VPs stopped (one Step) and answers what
   * ran: `executed`, the `stop` that ended the batch early, `halted`, and with trace "pc" or
   * "registers" the PC after each instruction (`pcs`) and with "registers" what each changed.
   * The VM must be stopped and stays stopped. Break cannot interrupt a batch.
   */
  step(vp: number, opts: StepOptions): Promise<StepResult>;
  async step(vp: number, opts: CallOptions | StepOptions = {}): Promise<DebugStopReason | StepResult> {
    const { count, trace } = opts as Partial<StepOptions>;
    if (count === undefined && trace === undefined) return this.transportImpl.stepOnce(vp, opts);
    const res = await this.transportImpl.call("step", { vp, count: count ?? 1, trace: stepTraceToWire(trace ?? "none") }, opts);
    return stepResultFromWire(res);
  }

  /**
   * Arms a hardware breakpoint on one VP: a bare address is an execute breakpoint. Without `slot`
   * the first free slot is used (FAILED_PRECONDITION if none). Returns the slot.
   */
  async setBreakpoint(vp: number, bp: bigint | HardwareBreakpoint, slot?: number, opts: CallOptions = {}): Promise<number> {
    const breakpoint: HardwareBreakpoint = typeof bp === "bigint" ? { address: bp, type: "execute", size: 1 } : bp;
    return this.arm(vp, breakpoint, slot, opts);
  }

  /** Arms a data watchpoint on one VP (see setBreakpoint for `slot`). Returns the slot. */
  async setWatchpoint(vp: number, wp: Watchpoint, slot?: number, opts: CallOptions = {}): Promise<number> {
    return this.arm(vp, { address: wp.address, type: wp.type, size: wp.size }, slot, opts);
  }

  /** Frees one slot of one VP. */
  async clearBreakpoint(vp: number, slot: number, opts: CallOptions = {}): Promise<void> {
    checkSlot(slot);
    const state = this.debugState(vp);
    const breakpoints = [...state.breakpoints];
    breakpoints[slot] = null;
    await this.setDebugState(vp, { ...state, breakpoints }, opts);
  }

  /**
   * Arms a software breakpoint: any number of them, by virtual address (a bare bigint: for every
   * VP; `{ gva, vp }`: for that VP only) or by physical address (`{ gpa }`), optionally one-shot
   * (removed when it fires: "run to here"). A VP stops before the instruction there runs, with
   * `{ kind: "softwareBreakpoint", vp, address, id }`. Guest memory is not patched. An address
   * that already has one answers its id with `existing: true`. The VM must be stopped; detach()
   * removes them all. Backends that cannot place one refuse with SOFTWARE_BREAKPOINT_UNSUPPORTED.
   */
  async insertSoftwareBreakpoint(
    address: bigint | SoftwareBreakpointAddress,
    opts: InsertSoftwareBreakpointOptions = {},
  ): Promise<{ id: number; existing: boolean }> {
    const where: SoftwareBreakpointAddress = typeof address === "bigint" ? { gva: address } : address;
    const { oneShot = false, ...call } = opts;
    const res = await this.transportImpl.call("insertSoftwareBreakpoint", { address: softwareBreakpointAddressToWire(where), oneShot }, call);
    return { id: Number(res.id), existing: res.existing };
  }

  /** Removes one software breakpoint (NOT_FOUND / SOFTWARE_BREAKPOINT_NOT_FOUND if none has this id). The VM must be stopped. */
  async removeSoftwareBreakpoint(id: number, opts: CallOptions = {}): Promise<void> {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new VmmDebugError(Status.INVALID_ARGUMENT, `software breakpoint id ${id} is not an id (ids are integers from 1 up)`, {
        reason: "VALUE_OUT_OF_RANGE",
        metadata: { id: String(id) },
      });
    }
    await this.transportImpl.call("removeSoftwareBreakpoint", { id: BigInt(id) }, opts);
  }

  /** The armed software breakpoints with their hit counts, in id order. Works while the VM runs. */
  async listSoftwareBreakpoints(opts: CallOptions = {}): Promise<SoftwareBreakpoint[]> {
    return softwareBreakpointsFromWire(await this.transportImpl.call("listSoftwareBreakpoints", {}, opts));
  }

  /** Replaces one VP's single-step flag and slots. The VM must be stopped. */
  async setDebugState(vp: number, state: DebugState, opts: CallOptions = {}): Promise<void> {
    await this.transportImpl.call("setDebugState", { vp, state: debugStateToWire(state) }, opts);
    const breakpoints = Array.from({ length: SLOT_COUNT }, (_, i) => state.breakpoints[i] ?? null);
    this.debugStates.set(vp, { singleStep: state.singleStep, breakpoints });
  }

  /** The debug state this session last set on a VP (all free before the first set). */
  debugState(vp: number): DebugState {
    const s = this.debugStates.get(vp);
    return s
      ? { singleStep: s.singleStep, breakpoints: [...s.breakpoints] }
      : { singleStep: false, breakpoints: [null, null, null, null] };
  }

  /** One VP's registers; the VM must be stopped. */
  async getVpState(vp: number, opts: CallOptions = {}): Promise<DebuggerVpState> {
    const res = await this.transportImpl.call("getVpState", { vp }, opts);
    return vpStateFromWire(res.state);
  }

  /** Several VPs' registers in one request (every VP when `vps` is empty or omitted); the VM must be stopped. */
  async getVpStates(vps: number[] = [], opts: CallOptions = {}): Promise<VpStateEntry[]> {
    return vpStatesFromWire(await this.transportImpl.call("getVpStates", { vps }, opts));
  }

  /** Replaces one VP's registers (every field); the VM must be stopped. */
  async setVpState(vp: number, state: DebuggerVpState, opts: CallOptions = {}): Promise<void> {
    await this.transportImpl.call("setVpState", { vp, state: vpStateToWire(state) }, opts);
  }

  /** Reads guest memory of any length (streamed above the unary cap); works while the VM runs. */
  async readMemory(address: GuestAddress, length: number, opts: CallOptions = {}): Promise<Uint8Array> {
    if (!Number.isSafeInteger(length) || length < 0) throw badLength(length);
    const request = { address: guestAddressToWire(address), length: BigInt(length) };
    if (length <= this.client.maxUnaryReadBytes) {
      try {
        return (await this.transportImpl.call("readMemory", request, opts)).data;
      } catch (e) {
        // The server's cap is lower than ours: stream instead.
        if (!(e instanceof VmmDebugError && e.reason === "READ_TOO_LARGE")) throw e;
      }
    }
    return this.transportImpl.readMemoryStream(request, length, opts);
  }

  /**
   * Reads what can be read, as VmmDebugClient.readMemoryPartial(): unreadable bytes come back as
   * zero and are listed in `unreadable`; streamed above the unary cap.
   */
  async readMemoryPartial(address: GuestAddress, length: number, opts: CallOptions = {}): Promise<PartialRead> {
    if (!Number.isSafeInteger(length) || length < 0) throw badLength(length);
    const request = { address: guestAddressToWire(address), length: BigInt(length), allowPartial: true };
    if (length <= this.client.maxUnaryReadBytes) {
      try {
        const res = await this.transportImpl.call("readMemory", request, opts);
        return { data: res.data, unreadable: unreadableFromWire(res.unreadable) };
      } catch (e) {
        if (!(e instanceof VmmDebugError && e.reason === "READ_TOO_LARGE")) throw e;
      }
    }
    return this.transportImpl.readMemoryStreamPartial(request, length, opts);
  }

  /** Translates `gva` through VP `vp`'s page tables, with every level of the walk; the VM must be stopped. */
  async translateGva(vp: number, gva: bigint, opts: CallOptions = {}): Promise<Translation> {
    return translationFromWire(await this.transportImpl.call("translateGva", { vp, gva }, opts));
  }

  /**
   * Reads many ranges in one request (at most 4096, adding up to at most the unary read cap);
   * each range answers its bytes or its own error. Works while the VM runs.
   */
  async readMany(ranges: MemoryRange[], opts: CallOptions = {}): Promise<ReadManyResult[]> {
    const res = await this.transportImpl.call("readMemoryMany", { ranges: ranges.map(memoryRangeToWire) }, opts);
    return readManyFromWire(res, ranges.length);
  }

  /** Writes guest memory, all or nothing. */
  async writeMemory(address: GuestAddress, data: Uint8Array, opts: CallOptions = {}): Promise<void> {
    await this.transportImpl.call("writeMemory", { address: guestAddressToWire(address), data }, opts);
  }

  /**
   * Every stop of this session from now on, `{ reason, sequence, vp }`, whether or not a resume()
   * reports it too. Ends when the session does (detach, close; with the error if the stream
   * failed). Each call is its own feed; breaking out of the loop ends it. A reader that falls
   * 1,024 stops behind gets the stops it holds and then RESOURCE_EXHAUSTED / STOPS_OVERFLOW (the
   * session goes on; call stops() again). On unary the stops come from the VM's event feed
   * (watchEvents), from the moment the server subscribes it.
   */
  stops(): AsyncIterableIterator<SessionStop> {
    return this.transportImpl.stops();
  }

  /**
   * Ends the session: the server clears every VP's debug state and resumes a VM it had stopped.
   * On the stream, waits for the answer and for the server to end the stream.
   */
  async detach(opts: CallOptions = {}): Promise<void> {
    try {
      await this.transportImpl.detach(opts);
    } finally {
      this.debugStates.clear();
    }
  }

  /**
   * Lets go without waiting for an answer. On the stream it closes the stream: the server
   * detaches at once (as detach(), cause "streamClosed"), calls in flight fail with CANCELLED and
   * later ones with FAILED_PRECONDITION / NOT_ATTACHED. On unary it detaches (no error if the
   * session was already over).
   */
  async close(): Promise<void> {
    try {
      await this.transportImpl.close();
    } finally {
      this.debugStates.clear();
    }
  }

  private async arm(vp: number, bp: HardwareBreakpoint, slot: number | undefined, opts: CallOptions): Promise<number> {
    const state = this.debugState(vp);
    let target = slot;
    if (target === undefined) {
      target = state.breakpoints.findIndex((b) => b === null);
      if (target < 0) {
        throw new VmmDebugError(
          Status.FAILED_PRECONDITION,
          `all ${SLOT_COUNT} hardware slots of VP ${vp} are in use: clear one with clearBreakpoint, or pass a slot to replace`,
          { reason: "TOO_MANY_BREAKPOINTS", metadata: { vp: String(vp), max: String(SLOT_COUNT) } },
        );
      }
    } else {
      checkSlot(target);
    }
    const breakpoints = [...state.breakpoints];
    breakpoints[target] = bp;
    await this.setDebugState(vp, { ...state, breakpoints }, opts);
    return target;
  }
}

function checkSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) {
    throw new VmmDebugError(Status.INVALID_ARGUMENT, `slot ${slot} does not exist: slots are 0..${SLOT_COUNT - 1} (DR0-DR3)`, {
      reason: "VALUE_OUT_OF_RANGE",
      metadata: { slot: String(slot) },
    });
  }
}
