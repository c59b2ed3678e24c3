// Software breakpoints as every backend keeps them: ids, one breakpoint per address, hit counts.
import { Code, VmmError, hex } from "./errors";
import type { SoftwareBreakpoint, SoftwareBreakpointAddress } from "./types";

/**
 * Software breakpoints one VM holds at most. Far beyond what a debugger arms (gdb's breakpoints,
 * a fuzzer's coverage points), and small enough that ListSoftwareBreakpoints fits in one message
 * under the usual 4 MiB receive limit (an entry is at most ~40 bytes).
 */
export const MAX_SOFTWARE_BREAKPOINTS = 65_536;

/** What an insert did: the breakpoint now at the address, and whether the backend must (re)arm it. */
export interface SoftwareBreakpointInsert {
  breakpoint: SoftwareBreakpoint;
  /** The address already had a breakpoint; `breakpoint` is that one. */
  existing: boolean;
  /** The backend must arm `breakpoint` as it now is (new, or a one-shot made permanent). */
  changed: boolean;
}

/**
 * The bookkeeping of a backend's software breakpoints. The backend checks what only it knows
 * (VP index, VM stopped, what it can map or match) before calling `insert`, arms what `insert`
 * says changed, and reports each stop it causes with `recordHit`. This table owns the rest: ids
 * (from 1 up, never reused), one breakpoint per address, the limit, unknown ids.
 */
export class SoftwareBreakpointTable {
  private nextId = 1;
  /** In insertion order, which is id order. */
  private readonly byId = new Map<number, SoftwareBreakpoint>();
  private readonly byAddress = new Map<string, SoftwareBreakpoint>();

  get size(): number {
    return this.byId.size;
  }

  /**
   * Arms a breakpoint at `address`, or returns the one already there (made permanent unless this
   * insert is one-shot too). Throws SOFTWARE_BREAKPOINT_LIMIT, changing nothing, when full.
   */
  insert(address: SoftwareBreakpointAddress, oneShot: boolean): SoftwareBreakpointInsert {
    const key = addressKey(address);
    const there = this.byAddress.get(key);
    if (there) {
      const changed = there.oneShot && !oneShot;
      if (changed) there.oneShot = false;
      return { breakpoint: copy(there), existing: true, changed };
    }
    if (this.byId.size >= MAX_SOFTWARE_BREAKPOINTS) {
      throw new VmmError(
        Code.ResourceExhausted,
        "SOFTWARE_BREAKPOINT_LIMIT",
        `${MAX_SOFTWARE_BREAKPOINTS} software breakpoints are armed on this VM, the most it holds: remove some first`,
        { max: String(MAX_SOFTWARE_BREAKPOINTS) },
      );
    }
    const breakpoint: SoftwareBreakpoint = { id: this.nextId++, address: { ...address }, oneShot, hitCount: 0 };
    this.byId.set(breakpoint.id, breakpoint);
    this.byAddress.set(key, breakpoint);
    return { breakpoint: copy(breakpoint), existing: false, changed: true };
  }

  /** The breakpoint at exactly this address (same kind, same VP scope), if there is one. */
  find(address: SoftwareBreakpointAddress): SoftwareBreakpoint | undefined {
    const bp = this.byAddress.get(addressKey(address));
    return bp && copy(bp);
  }

  /** The breakpoint with this id, else SOFTWARE_BREAKPOINT_NOT_FOUND. */
  get(id: number): SoftwareBreakpoint {
    const bp = this.byId.get(id);
    if (!bp) throw softwareBreakpointNotFound(id);
    return copy(bp);
  }

  /** Removes one breakpoint (SOFTWARE_BREAKPOINT_NOT_FOUND if there is none with this id). */
  remove(id: number): SoftwareBreakpoint {
    const bp = this.byId.get(id);
    if (!bp) throw softwareBreakpointNotFound(id);
    this.byId.delete(id);
    this.byAddress.delete(addressKey(bp.address));
    return bp;
  }

  /** Removes every breakpoint; returns how many there were. */
  clear(): number {
    const n = this.byId.size;
    this.byId.clear();
    this.byAddress.clear();
    return n;
  }

  /** Every breakpoint, in id order (copies). */
  list(): SoftwareBreakpoint[] {
    return [...this.byId.values()].map(copy);
  }

  /**
   * Counts a stop caused by breakpoint `id` and removes it if it is one-shot. Returns false when
   * no such breakpoint is armed (the backend reported one this table does not hold).
   */
  recordHit(id: number): boolean {
    const bp = this.byId.get(id);
    if (!bp) return false;
    bp.hitCount++;
    if (bp.oneShot) this.remove(id);
    return true;
  }
}

function addressKey(a: SoftwareBreakpointAddress): string {
  return a.kind === "gpa" ? `gpa:${a.gpa}` : `gva:${a.vp ?? "*"}:${a.gva}`;
}

function copy(bp: SoftwareBreakpoint): SoftwareBreakpoint {
  return { ...bp, address: { ...bp.address } };
}

/** SOFTWARE_BREAKPOINT_NOT_FOUND (also for an id no table can hold, e.g. a u64 past 2^53 from the wire). */
export function softwareBreakpointNotFound(id: number | bigint): VmmError {
  return new VmmError(
    Code.NotFound,
    "SOFTWARE_BREAKPOINT_NOT_FOUND",
    `no software breakpoint ${id} is armed on this VM (never inserted, removed, a one-shot that fired, or cleared by Detach): ListSoftwareBreakpoints shows those that are`,
    { id: String(id) },
  );
}

/** Describes an address for messages: "GVA 0x… (every VP)", "GVA 0x… (VP 1)", "GPA 0x…". */
export function describeSoftwareBreakpointAddress(a: SoftwareBreakpointAddress): string {
  return a.kind === "gpa" ? `GPA ${hex(a.gpa)}` : `GVA ${hex(a.gva)} (${a.vp === undefined ? "every VP" : `VP ${a.vp}`})`;
}
