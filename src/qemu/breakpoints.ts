// A QEMU VM's hardware breakpoints: each VP's four debug slots mapped onto QEMU's machine-wide
// Z1–Z4, and lifting the ones that would stop a VP again at once so it can step off them.
import {
  BreakpointType,
  type DebugState,
  type HardwareBreakpoint,
  breakpointLength,
  emptyDebugState,
} from "../core";
import type { RspClient } from "./rsp-client";
import { ZType, isWatchpoint } from "./rsp-names";

/** One breakpoint or watchpoint inserted in QEMU, and the VPs whose slots want it. */
export interface Inserted {
  type: ZType;
  address: bigint;
  /** The Z packet's kind: 1 for an execute breakpoint, the watched length for a watchpoint. */
  kind: number;
  vps: Set<number>;
}

/**
 * A stop the run loop reported or stepped past: the VP stands where it would stop again at once
 * (on an execute breakpoint; on aarch64 before a watched access), so its next run steps it off first.
 */
export interface LastHit {
  vp: number;
  kind: "exec" | "watch";
  pc: bigint;
}

/**
 * Per-VP debug state (single-step flag, four slots) over QEMU's breakpoints, which apply to every
 * vCPU: QEMU holds the union of all slots, and a stop is the debugger's only when the VP that
 * stopped has the slot that matches. Another VP's hit is stepped past by the run loop.
 */
export class HardwareBreakpoints {
  /** See LastHit; set by the run loop, taken when the VP runs again. */
  lastHit: LastHit | undefined;
  private readonly debug: DebugState[];
  private readonly inserted = new Map<string, Inserted>();

  constructor(
    private readonly rsp: RspClient,
    vpCount: number,
    private readonly log: (message: string) => void,
  ) {
    this.debug = Array.from({ length: vpCount }, emptyDebugState);
  }

  /** Replaces VP `vp`'s debug state; on a refusal QEMU is put back as it was, and the refusal thrown. */
  async set(vp: number, state: DebugState): Promise<void> {
    const before = this.debug[vp];
    this.debug[vp] = state;
    try {
      await this.sync();
    } catch (e) {
      this.debug[vp] = before;
      await this.sync().catch((again: Error) => {
        // `inserted` still says what QEMU holds, so the next change syncs from there.
        this.log(`putting VP ${vp}'s breakpoints back after a refusal failed too: ${again.message}`);
      });
      throw e;
    }
  }

  /** The VP whose single-step flag is set (the lowest), or -1. */
  singleStepVp(): number {
    return this.debug.findIndex((d) => d.singleStep);
  }

  /** VP `vp`'s execute slot at `pc`. */
  executeSlot(vp: number, pc: bigint): HardwareBreakpoint | undefined {
    return this.debug[vp].breakpoints.find((b) => b && b.type === BreakpointType.Execute && b.address === pc) ?? undefined;
  }

  /** VP `vp`'s data slot whose range holds `address` (QEMU reports the watched range's start). */
  watchSlot(vp: number, address: bigint): HardwareBreakpoint | undefined {
    return (
      this.debug[vp].breakpoints.find(
        (b) => b && b.type !== BreakpointType.Execute && address >= b.address && address < b.address + BigInt(breakpointLength(b.size)),
      ) ?? undefined
    );
  }

  /** Whether any VP has an execute breakpoint at `pc` (QEMU stops every VP there). */
  executeAt(pc: bigint): boolean {
    return [...this.inserted.values()].some((i) => i.type === ZType.HardwareExecute && i.address === pc);
  }

  /** Whether any execute breakpoint is inserted. */
  anyExecute(): boolean {
    return [...this.inserted.values()].some((i) => i.type === ZType.HardwareExecute);
  }

  /**
   * What would stop a VP at `pc` again without progress: an execute breakpoint there, and after
   * an aarch64 watchpoint stop (before the access) every watchpoint.
   */
  stoppingAt(pc: bigint, watchHit: boolean): Inserted[] {
    return [...this.inserted.values()].filter((i) => (i.type === ZType.HardwareExecute && i.address === pc) || (watchHit && isWatchpoint(i.type)));
  }

  /** Runs `fn` with these breakpoints removed from QEMU, putting them back afterwards. */
  async withLifted<T>(lifted: readonly Inserted[], fn: () => Promise<T>): Promise<T> {
    for (const i of lifted) await this.rsp.removeBreakpoint(i.type, i.address, i.kind);
    try {
      return await fn();
    } finally {
      for (const i of lifted) await this.rsp.insertBreakpoint(i.type, i.address, i.kind);
    }
  }

  /** Removes every breakpoint from QEMU as we leave it (before detaching). */
  async removeAll(): Promise<void> {
    for (const ins of this.inserted.values()) {
      // Best effort: QEMU removes them itself when we detach (D;1), and the next client's `?`
      // clears whatever a failed detach leaves behind.
      await this.rsp.removeBreakpoint(ins.type, ins.address, ins.kind).catch(() => undefined);
    }
    this.inserted.clear();
  }

  /** Makes QEMU's inserted breakpoints the union of every VP's slots. */
  private async sync(): Promise<void> {
    const wanted = new Map<string, Inserted>();
    this.debug.forEach((state, vp) => {
      for (const bp of state.breakpoints) {
        if (!bp) continue;
        const z = zOf(bp);
        const key = `${z.type}:${z.address}:${z.kind}`;
        const entry = wanted.get(key) ?? { ...z, vps: new Set<number>() };
        entry.vps.add(vp);
        wanted.set(key, entry);
      }
    });
    for (const [key, ins] of [...this.inserted]) {
      if (!wanted.has(key)) {
        await this.rsp.removeBreakpoint(ins.type, ins.address, ins.kind);
        this.inserted.delete(key);
      }
    }
    for (const [key, ins] of wanted) {
      if (!this.inserted.has(key)) await this.rsp.insertBreakpoint(ins.type, ins.address, ins.kind);
      this.inserted.set(key, ins);
    }
  }
}

/** The Z packet for a hardware slot: Z1 execute, Z2 write, Z4 read-or-write; kind = length. */
function zOf(bp: HardwareBreakpoint): { type: ZType; address: bigint; kind: number } {
  switch (bp.type) {
    case BreakpointType.Execute:
      return { type: ZType.HardwareExecute, address: bp.address, kind: 1 };
    case BreakpointType.Write:
      return { type: ZType.Write, address: bp.address, kind: breakpointLength(bp.size) };
    default:
      return { type: ZType.Access, address: bp.address, kind: breakpointLength(bp.size) };
  }
}
