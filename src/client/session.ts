// A debugger session on one VM: run control, hardware slots (tracked per VP), registers, memory.
import { Status } from "nice-grpc";
import type { VmmDebugClient } from "./client";
import { debugStateToWire, guestAddressToWire, stopReasonFromWire, vpStateToWire } from "./convert";
import { VmmDebugError } from "./errors";
import type {
  CallOptions,
  DebugState,
  DebugStopReason,
  DebuggerVpState,
  GuestAddress,
  HardwareBreakpoint,
  Watchpoint,
} from "./types";

const SLOT_COUNT = 4;

export class Session {
  /** The debug state this session last set on each VP (slots are chosen from it). */
  private readonly debugStates = new Map<number, DebugState>();
  /** VPs on which step() left single-step on in the server. */
  private readonly stepArmed = new Set<number>();

  /** Use VmmDebugClient.attach(). */
  constructor(
    private readonly client: VmmDebugClient,
    /** The VM's id. */
    readonly vm: string,
    /** The session id; control requests carry it. */
    readonly id: string,
    /** Lease in milliseconds: the server detaches after this long without a request of this session. */
    readonly lease: number,
  ) {}

  private get rpc() {
    return this.client.rpc.debug;
  }

  /** Runs the VM and answers the next stop (at once if a stop is still unreported). */
  async resume(opts: CallOptions = {}): Promise<DebugStopReason> {
    await this.disarmSteps(undefined, opts);
    return this.rawResume(opts);
  }

  private async rawResume(opts: CallOptions): Promise<DebugStopReason> {
    const res = await this.rpc.resume({ vm: this.vm, sessionId: this.id }, opts);
    return stopReasonFromWire(res.reason);
  }

  /** Turns single-step off again on the VPs step() left it on for (all but `keep`). */
  private async disarmSteps(keep: number | undefined, opts: CallOptions): Promise<void> {
    for (const vp of [...this.stepArmed]) {
      if (vp === keep) continue;
      await this.rpc.setDebugState({ vm: this.vm, sessionId: this.id, vp, state: debugStateToWire(this.debugState(vp)) }, opts);
      this.stepArmed.delete(vp);
    }
  }

  /** Stops the VM; the pending (or next) resume() answers `break`. */
  async break(opts: CallOptions = {}): Promise<void> {
    await this.rpc.break({ vm: this.vm, sessionId: this.id }, opts);
  }

  /**
   * Single-steps one VP and returns the stop (normally `{ kind: "singleStep", vp }`); the VM must
   * be stopped. Single-step stays on in the server between consecutive steps of the same VP, so a
   * run of steps costs one Resume each; resume(), setDebugState() and detach() turn it off again.
   * debugState() always shows the state you set, without the stepping.
   */
  async step(vp: number, opts: CallOptions = {}): Promise<DebugStopReason> {
    await this.disarmSteps(vp, opts);
    if (!this.stepArmed.has(vp)) {
      const state = this.debugState(vp);
      await this.rpc.setDebugState({ vm: this.vm, sessionId: this.id, vp, state: debugStateToWire({ ...state, singleStep: true }) }, opts);
      this.stepArmed.add(vp);
    }
    return this.rawResume(opts);
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

  /** Replaces one VP's single-step flag and slots. The VM must be stopped. */
  async setDebugState(vp: number, state: DebugState, opts: CallOptions = {}): Promise<void> {
    await this.rpc.setDebugState({ vm: this.vm, sessionId: this.id, vp, state: debugStateToWire(state) }, opts);
    this.stepArmed.delete(vp);
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
  getVpState(vp: number, opts: CallOptions = {}): Promise<DebuggerVpState> {
    return this.client.getVpState(this.vm, vp, opts);
  }

  /** Replaces one VP's registers (every field); the VM must be stopped. */
  async setVpState(vp: number, state: DebuggerVpState, opts: CallOptions = {}): Promise<void> {
    await this.rpc.setVpState({ vm: this.vm, sessionId: this.id, vp, state: vpStateToWire(state) }, opts);
  }

  /** Reads guest memory of any length (streams above the unary cap). */
  readMemory(address: GuestAddress, length: number, opts: CallOptions = {}): Promise<Uint8Array> {
    return this.client.readMemory(this.vm, address, length, opts);
  }

  /** Writes guest memory, all or nothing. */
  async writeMemory(address: GuestAddress, data: Uint8Array, opts: CallOptions = {}): Promise<void> {
    await this.rpc.writeMemory({ vm: this.vm, sessionId: this.id, address: guestAddressToWire(address), data }, opts);
  }

  /** Ends the session: the server clears every VP's debug state and resumes a VM it had stopped. */
  async detach(opts: CallOptions = {}): Promise<void> {
    await this.rpc.detach({ vm: this.vm, sessionId: this.id }, opts);
    this.debugStates.clear();
    this.stepArmed.clear();
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
