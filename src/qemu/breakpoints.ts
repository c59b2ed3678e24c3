// A QEMU VM's breakpoints: each VP's four debug slots mapped onto QEMU's machine-wide Z1–Z4,
// software breakpoints onto Z0 (by virtual address), and lifting the ones that would stop a VP
// again at once so it can step off them.
import {
  type Arch,
  BreakpointType,
  type DebugState,
  type HardwareBreakpoint,
  type SoftwareBreakpoint,
  type SoftwareBreakpointAddress,
  SoftwareBreakpointTable,
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

/** The Z0 `kind`: the length of the breakpoint instruction (x86 INT3, aarch64 BRK). */
const Z0_KIND: Record<Arch, number> = { x86_64: 1, aarch64: 4 };

/** A software breakpoint QEMU can place: by virtual address (Z0 matches a vCPU's PC). */
export type GvaSoftwareBreakpoint = Extract<SoftwareBreakpointAddress, { kind: "gva" }>;

/**
 * Per-VP debug state (single-step flag, four slots) and software breakpoints over QEMU's
 * breakpoints, which apply to every vCPU: QEMU holds the union of all slots and one Z0 per
 * software breakpoint address, and a stop is the debugger's only when the VP that stopped has the
 * slot, or a software breakpoint (its own or every VP's), that matches. Another VP's hit is
 * stepped past by the run loop. Under TCG (the only accelerator a launched QEMU gets) Z0, like
 * Z1, patches no guest memory.
 */
export class QemuBreakpoints {
  /** See LastHit; set by the run loop, taken when the VP runs again. */
  lastHit: LastHit | undefined;
  private readonly debug: DebugState[];
  /** What QEMU holds for the hardware slots (Z1–Z4), by type, address and kind. */
  private readonly inserted = new Map<string, Inserted>();
  private readonly software = new SoftwareBreakpointTable();
  /** The Z0 breakpoints QEMU holds, by address: one serves every software breakpoint there. */
  private readonly z0 = new Map<bigint, Inserted>();
  private readonly z0Kind: number;

  constructor(
    private readonly rsp: RspClient,
    private readonly vpCount: number,
    arch: Arch,
    private readonly log: (message: string) => void,
  ) {
    this.debug = Array.from({ length: vpCount }, emptyDebugState);
    this.z0Kind = Z0_KIND[arch];
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

  /** The software breakpoint that stops VP `vp` at `pc`: its own, else one for every VP. */
  softwareAt(vp: number, pc: bigint): SoftwareBreakpoint | undefined {
    if (!this.z0.has(pc)) return undefined;
    return this.software.find({ kind: "gva", gva: pc, vp }) ?? this.software.find({ kind: "gva", gva: pc });
  }

  /** Whether any VP has an execute breakpoint, a slot or a software one, at `pc` (QEMU stops every VP there). */
  executeAt(pc: bigint): boolean {
    return this.z0.has(pc) || [...this.inserted.values()].some((i) => i.type === ZType.HardwareExecute && i.address === pc);
  }

  /** Whether any execute breakpoint (slot or software) is inserted. */
  anyExecute(): boolean {
    return this.z0.size > 0 || [...this.inserted.values()].some((i) => i.type === ZType.HardwareExecute);
  }

  /**
   * What would stop a VP at `pc` again without progress: an execute breakpoint there (a slot's, a
   * software one's), and after an aarch64 watchpoint stop (before the access) every watchpoint.
   */
  stoppingAt(pc: bigint, watchHit: boolean): Inserted[] {
    const lifted = [...this.inserted.values()].filter((i) => (i.type === ZType.HardwareExecute && i.address === pc) || (watchHit && isWatchpoint(i.type)));
    const z0 = this.z0.get(pc);
    return z0 ? [...lifted, z0] : lifted;
  }

  /**
   * Arms a software breakpoint by GVA (the caller checked the VP and that the VM is stopped):
   * QEMU gets a Z0 at an address that has none yet. A refusal changes nothing (but an id).
   */
  async insertSoftware(address: GvaSoftwareBreakpoint, oneShot: boolean): Promise<{ breakpoint: SoftwareBreakpoint; existing: boolean }> {
    const placed = this.z0.has(address.gva);
    const { breakpoint, existing } = this.software.insert(address, oneShot);
    if (!placed) {
      try {
        await this.rsp.insertBreakpoint(ZType.Software, address.gva, this.z0Kind);
      } catch (e) {
        this.software.remove(breakpoint.id);
        throw e;
      }
      this.z0.set(address.gva, { type: ZType.Software, address: address.gva, kind: this.z0Kind, vps: new Set() });
    }
    return { breakpoint, existing };
  }

  /** Removes one software breakpoint (SOFTWARE_BREAKPOINT_NOT_FOUND), and its Z0 when it was the last there. */
  async removeSoftware(id: number): Promise<void> {
    const bp = this.software.get(id);
    if (bp.address.kind === "gva" && !this.othersAt(bp.address.gva, id)) await this.liftZ0(bp.address.gva);
    this.software.remove(id);
  }

  /**
   * Software breakpoint `id` stopped a VP: counts the hit, and a one-shot one goes (its Z0 too
   * when it was the last there; QEMU failing to lift it is only logged: the breakpoint is gone,
   * and a stop at a Z0 nobody wants is stepped past).
   */
  async hitSoftware(id: number): Promise<void> {
    const hit = this.software.get(id);
    if (hit.oneShot && hit.address.kind === "gva" && !this.othersAt(hit.address.gva, id)) {
      await this.liftZ0(hit.address.gva).catch((e: Error) => this.log(`lifting one-shot software breakpoint ${id}: ${e.message}`));
    }
    this.software.recordHit(id);
  }

  /** Every software breakpoint, in id order. */
  listSoftware(): SoftwareBreakpoint[] {
    return this.software.list();
  }

  /** Removes every software breakpoint (Detach). */
  async clearSoftware(): Promise<void> {
    for (const address of [...this.z0.keys()]) await this.liftZ0(address);
    this.software.clear();
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
    for (const ins of [...this.inserted.values(), ...this.z0.values()]) {
      // Best effort: QEMU removes them itself when we detach (D;1), and the next client's `?`
      // clears whatever a failed detach leaves behind.
      await this.rsp.removeBreakpoint(ins.type, ins.address, ins.kind).catch(() => undefined);
    }
    this.inserted.clear();
    this.z0.clear();
    this.software.clear();
  }

  /** Whether a software breakpoint other than `id` stands at `gva` (for every VP, or for one). */
  private othersAt(gva: bigint, id: number): boolean {
    const scopes: GvaSoftwareBreakpoint[] = [{ kind: "gva", gva }];
    for (let vp = 0; vp < this.vpCount; vp++) scopes.push({ kind: "gva", gva, vp });
    return scopes.some((a) => {
      const bp = this.software.find(a);
      return bp !== undefined && bp.id !== id;
    });
  }

  /** Takes the Z0 at `gva` out of QEMU. */
  private async liftZ0(gva: bigint): Promise<void> {
    const ins = this.z0.get(gva);
    if (!ins) return;
    await this.rsp.removeBreakpoint(ins.type, ins.address, ins.kind);
    this.z0.delete(gva);
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
