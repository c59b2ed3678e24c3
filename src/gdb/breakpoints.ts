// Z and z packets: software breakpoints are the server's (any number, by GVA); hardware
// breakpoints and watchpoints use the VM's slots, armed alike on every VP (gdb's Z1–Z4 apply to
// all threads).
import type { BreakpointSize, Capabilities, HardwareBreakpoint, Session } from "../client";
import { parseHexInt, parseHexNumber } from "../rsp";
import { EINVAL, ENOSPC, Refused } from "./errors";

/** Z-packet types (gdbstub's WatchKind), with the SDK slot type each arms. */
const enum ZType {
  Software = 0,
  Hardware = 1,
  Write = 2,
  Read = 3,
  Access = 4,
}

/** A hardware slot the bridge armed on every VP (Z1–Z4 apply to all threads). */
interface SlotUse {
  z: ZType;
  address: bigint;
  size: 1 | 2 | 4 | 8;
}

export class GdbBreakpoints {
  /** Software breakpoint ids by address. */
  private readonly softwareBreakpoints = new Map<bigint, number>();
  private readonly slots: (SlotUse | null)[];

  constructor(
    private readonly caps: Capabilities,
    private readonly vpCount: number,
  ) {
    this.slots = Array.from({ length: caps.hardwareSlotsPerVp }, () => null);
  }

  /**
   * Answers the arguments of a Z (insert) or z (remove) packet: "OK", "" for a kind this VM does
   * not support (gdb then falls back, e.g. to writing its own breakpoint instructions), or throws
   * Refused.
   */
  async apply(session: Session, insert: boolean, args: string): Promise<string> {
    const m = /^([0-4]),([0-9a-fA-F]+),([0-9a-fA-F]+)/.exec(args);
    if (!m) return "";
    const z = Number(m[1]) as ZType;
    const address = parseHexNumber(m[2]);
    const kind = parseHexInt(m[3]);
    if (z === ZType.Software) {
      if (!this.caps.softwareBreakpoints.gva) return ""; // unsupported: gdb writes its own breakpoint instructions
      if (insert) {
        if (!this.softwareBreakpoints.has(address)) {
          const { id } = await session.insertSoftwareBreakpoint(address);
          this.softwareBreakpoints.set(address, id);
        }
      } else {
        const id = this.softwareBreakpoints.get(address);
        if (id !== undefined) {
          this.softwareBreakpoints.delete(address);
          await session.removeSoftwareBreakpoint(id);
        }
      }
      return "OK";
    }
    if (this.slots.length === 0) return ""; // no hardware slots: unsupported
    // Write watches need "write" slots; read and access watches are armed as read-or-write.
    if (z !== ZType.Hardware && !this.caps.watchpointTypes.includes(z === ZType.Write ? "write" : "readWrite")) return "";
    const size = (z === ZType.Hardware ? 1 : kind) as BreakpointSize;
    if (z !== ZType.Hardware && !this.caps.watchpointSizes.includes(size)) {
      throw new Refused(EINVAL, `a hardware watchpoint covers ${this.caps.watchpointSizes.join(", ")} bytes, not ${kind}`);
    }
    if (address % BigInt(size) !== 0n) throw new Refused(EINVAL, `a ${size}-byte watchpoint must be ${size}-byte aligned`);
    const use: SlotUse = { z, address, size };
    if (insert) {
      const slot = this.slots.findIndex((s) => s === null);
      if (slot < 0) throw new Refused(ENOSPC, `all ${this.slots.length} hardware slots are in use`);
      await this.armEverywhere(session, slot, hardwareBreakpointOf(use));
      this.slots[slot] = use;
    } else {
      const slot = this.slots.findIndex((s) => s !== null && s.z === z && s.address === address && s.size === size);
      if (slot >= 0) {
        await this.armEverywhere(session, slot, null);
        this.slots[slot] = null;
      }
    }
    return "OK";
  }

  /** Sets (or clears) one slot on every VP; if one VP refuses, the VPs already changed are put back. */
  private async armEverywhere(session: Session, slot: number, bp: HardwareBreakpoint | null): Promise<void> {
    const before = Array.from({ length: this.vpCount }, (_, vp) => session.debugState(vp));
    let vp = 0;
    try {
      for (; vp < this.vpCount; vp++) {
        const breakpoints = [...before[vp].breakpoints];
        breakpoints[slot] = bp;
        await session.setDebugState(vp, { ...before[vp], breakpoints });
      }
    } catch (e) {
      for (let undo = 0; undo < vp; undo++) await session.setDebugState(undo, before[undo]).catch(() => undefined);
      throw e;
    }
  }
}

function hardwareBreakpointOf(use: SlotUse): HardwareBreakpoint {
  if (use.z === ZType.Hardware) return { address: use.address, type: "execute", size: 1 };
  // x86 has no read-only data breakpoint: reads are watched as reads or writes.
  return { address: use.address, type: use.z === ZType.Write ? "write" : "readWrite", size: use.size };
}
