// One x86-64 virtual processor: the run loops (a fast one, and one that checks debug slots and
// single-step per instruction), exception delivery and the exits reported to the machine.
// Software breakpoints are checked in both loops without patching guest memory: the fast loop per
// decoded block (matches cached on the block until the breakpoint set changes), the debug loop
// and batched steps per instruction.
//
// Architectural stepping: the per-instruction loop (stepInstruction) runs a REP string
// instruction one iteration per step when the debugger single-steps, watches data or steps a
// batch, and when the guest's RFLAGS.TF is set (rep.ts); RIP stays at the instruction until the
// last iteration, and breakpoints at that RIP are not checked again between its iterations. The
// guest's TF raises #DB (DR6.BS) after each instruction or iteration; RFLAGS.RF is cleared when
// an instruction completes. The fast loop leaves blocks for the per-instruction loop while TF is
// set. The debugger's single-step and slots never show in the guest's DR6/DR7 or RFLAGS.
//
// External interrupts (interrupts.ts): both loops look at the APIC when Cpu.retired reaches
// ApicState.eventAt (one comparison per block in the fast loop, which also caps how often a
// compiled block loops to itself by it), and deliver at that instruction boundary; a delivered
// interrupt counts against the budget like a delivered exception. A halted VP wakes in run() and
// in steps. A debugger step (single-step or a batch) that finds an interrupt deliverable delivers
// it as that step and stops at the handler's first instruction, so stepping N times does what
// running N instructions does; resuming from a breakpoint runs the stopped-at instruction first.

import type { GuestBus } from "../bus.js";
import * as codeCacheModule from "./code-cache.js";
import * as cpuModule from "./cpu.js";
import { Cpu } from "./cpu.js";
import type { Block, CodePage } from "./code-cache.js";
import * as decodeModule from "./decode.js";
import * as exceptionsModule from "./exceptions.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as jitModule from "./jit.js";
import * as guestDebugModule from "./guest-debug.js";
import * as interruptsModule from "./interrupts.js";
import * as mmuModule from "./mmu.js";
import * as msrModule from "./msr.js";
import type { VpPlatform } from "./msr.js";
import { SwBreakpointSet } from "./sw-breakpoints.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { invalidateAll, invalidateRange, joinRegistry } = codeCacheModule;
const { EXIT_HALT, EXIT_NONE, EXIT_POWER_OFF, EXIT_RESET } = cpuModule;
const { decodeBlock } = decodeModule;
const { deliverException } = exceptionsModule;
const { BLOCK_ABORT, GUEST_FAULT, NO_ERROR_CODE, VEC_DB } = faultModule;
const { RF, TF } = flagsModule;
const { compileBlock, jitOptions } = jitModule;
const { fetchPage } = mmuModule;
const { DR6_BS, GUEST_DR7, HALTED, INT_SHADOW, RFLAGS, RIP } = vpLayoutModule;
const { IRQ_DELIVERED, IRQ_NONE, IRQ_SHADOW, IRQ_TRIPLE_FAULT, afterOp, pollInterrupts, wakeFromHalt } = interruptsModule;
const { vpPlatform } = msrModule;
const { DR7_ENABLES, guestDataArmed, guestExecHits, marks, setDr6, syncGuestWatch } = guestDebugModule;

/** A debug slot (DR0–DR3 semantics): `type` is the DR7 R/W field (0 execute, 2 write, 3 read or write). */
export interface X86Breakpoint {
  addressLo: number;
  addressHi: number;
  type: 0 | 2 | 3;
  length: 1 | 2 | 4 | 8;
}

export interface X86VpDebug {
  singleStep: boolean;
  /** Exactly 4 entries: slot i is DRi. */
  slots: (X86Breakpoint | null)[];
}

/** Instructions between two looks at the stop request during a batched step (a power of two). */
export const STEP_STOP_CHECK = 4096;

/** What stepBatch() did. */
export interface X86StepOutcome {
  /** Instructions completed (a delivered exception counts as one). */
  executed: number;
  /** Why it ended: "budget" when it ran the whole count or was asked to stop. */
  exit: X86Exit;
  /** stopRequested() ended it early. */
  requested: boolean;
}

/** Why run() returned. */
export type X86Exit =
  | { kind: "budget" }
  | { kind: "halted" }
  | { kind: "singleStep" }
  | { kind: "hwBreakpoint"; slot: number }
  /** Software breakpoint `id` stops the VP before the instruction at RIP. */
  | { kind: "swBreakpoint"; id: number }
  | { kind: "tripleFault" }
  | { kind: "reset" }
  | { kind: "powerOff" };

const BUDGET: X86Exit = Object.freeze({ kind: "budget" });
const HALT: X86Exit = Object.freeze({ kind: "halted" });
const SINGLE_STEP: X86Exit = Object.freeze({ kind: "singleStep" });
const TRIPLE_FAULT: X86Exit = Object.freeze({ kind: "tripleFault" });
const RESET: X86Exit = Object.freeze({ kind: "reset" });
const POWER_OFF: X86Exit = Object.freeze({ kind: "powerOff" });
/** Internal: the loop that returned it hands the rest of the budget (X86Vp.left) to the other loop. */
const SWITCH: X86Exit = Object.freeze({ kind: "budget" });
const HW_BREAKPOINT: readonly X86Exit[] = [0, 1, 2, 3].map((slot) => Object.freeze({ kind: "hwBreakpoint", slot } as const));

/** Set RIP to the start of instruction k of `blk` (k = ops.length: the block end). */
function setRipAt(c: Cpu, blk: Block, k: number): void {
  const r = c.r;
  const s = (blk.vlo >>> 0) + blk.offs[k];
  r[RIP] = s | 0;
  r[RIP + 1] = s > 0xffffffff ? (blk.vhi + 1) | 0 : blk.vhi;
}

/** The block starting at RIP (decoded on a miss; `full` asks for a block of full length). */
function lookup(c: Cpu, full: boolean): Block {
  const r = c.r;
  const lo = r[RIP];
  const hi = r[RIP + 1];
  const page = fetchPage(c, lo, hi);
  const blk = page.blocks[lo & 0xfff];
  if (blk !== undefined && blk.vlo === lo && blk.vhi === hi && !(full && blk.truncated)) {
    if (blk.crossPpn < 0) return blk;
    // A page-crossing instruction is only valid while the next page still maps the same frame.
    const next = (lo & ~0xfff) + 0x1000;
    const nhi = (lo >>> 0) >= 0xfffff000 ? (hi + 1) | 0 : hi;
    if (fetchPage(c, next | 0, nhi).ppn === blk.crossPpn) return blk;
  }
  return decodeBlock(c, page, lo, hi, full ? 64 : 1);
}

/**
 * VP `vp`'s software breakpoints at the instructions of `blk` (an id per instruction, 0: none),
 * or null when none stops it there. Cached on the block (blocks belong to one VP) until `sw`
 * changes. Every instruction of a block starts in the block's first page.
 */
function swHitsOf(sw: SwBreakpointSet, vp: number, blk: Block): Uint32Array | null {
  if (blk.swGen === sw.gen) return blk.swHits;
  let hits: Uint32Array | null = null;
  const n = blk.ops.length;
  const vlo = blk.vlo >>> 0;
  const base = blk.page.ppn * 4096 + (vlo & 0xfff);
  for (let k = 0; k < n; k++) {
    const off = blk.offs[k];
    const hi = vlo + off > 0xffffffff ? (blk.vhi + 1) | 0 : blk.vhi;
    const id = sw.match(vp, (vlo + off) | 0, hi, base + off);
    if (id !== 0) (hits ??= new Uint32Array(n))[k] = id;
  }
  blk.swGen = sw.gen;
  blk.swHits = hits;
  return hits;
}

/** Bumped whenever any VP's execute slots change: blocks then look their execute hits up again. */
let execGen = 0;

/**
 * The execute slot (+1) armed at each instruction of `blk` (0: none), or null when no slot is
 * at an instruction of it. Cached on the block until the slots change (blocks belong to one VP).
 */
function execHitsOf(blk: Block, gen: number, armed: readonly boolean[], los: Int32Array, his: Int32Array): Uint8Array | null {
  if (blk.execGen === gen) return blk.execHits;
  let hits: Uint8Array | null = null;
  const n = blk.ops.length;
  const vlo = blk.vlo >>> 0;
  for (let k = 0; k < n; k++) {
    const off = blk.offs[k];
    const lo = (vlo + off) | 0;
    const hi = vlo + off > 0xffffffff ? (blk.vhi + 1) | 0 : blk.vhi;
    for (let i = 0; i < 4; i++) {
      if (armed[i] && los[i] === lo && his[i] === hi) {
        (hits ??= new Uint8Array(n))[k] = i + 1;
        break;
      }
    }
  }
  blk.execGen = gen;
  blk.execHits = hits;
  return hits;
}

function exitOf(code: number): X86Exit {
  return code === EXIT_HALT ? HALT : code === EXIT_RESET ? RESET : code === EXIT_POWER_OFF ? POWER_OFF : BUDGET;
}

function lowestSlot(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

/**
 * One VP whose registers live only in `regs` (words vpIndex * VP_WORDS …, see vp-layout.ts).
 * run() works on those words directly, so the VP can be read and changed between runs. After
 * changing CR0/CR3/CR4/EFER or page tables from outside call flushTlb(); after changing guest
 * memory from outside call invalidateCode().
 *
 * Not implemented (raise #UD): AVX, x87 transcendentals and BCD, far CALL m16:32, IRETD/IRETW,
 * SYSRET to compatibility mode, and anything else 32-bit code needs (64-bit code only).
 */
export class X86Vp {
  private readonly c: Cpu;
  private singleStep = false;
  /** Single-step or a data slot: run() goes through the per-instruction loop. */
  private debugArmed = false;
  /** Some execute slot is armed: the fast loop checks them per block (execHitsOf). */
  private execAny = false;
  private execGen = -1;
  private readonly execArmed = [false, false, false, false];
  private readonly execLo = new Int32Array(4);
  private readonly execHi = new Int32Array(4);
  /**
   * Where an execute slot or a software breakpoint last fired: the next run() does not fire
   * either there again (like RFLAGS.RF), so resuming executes the instruction it stopped before.
   */
  private suppressValid = false;
  private suppressLo = 0;
  private suppressHi = 0;
  /**
   * The last step ran a REP iteration with more to go at repLo:repHi: while RIP is still there,
   * the next step continues it without checking breakpoints at that RIP again.
   */
  private repPending = false;
  private repLo = 0;
  private repHi = 0;
  /** The budget left when a loop returned SWITCH. */
  private left = 0;
  /**
   * The guest's own #DB state between instructions (guest-debug.ts): `guestHeld`, trap bits
   * (DR6 B0–B3, BS) a MOV SS raised, wait for the end of the next instruction (`guestShadow`:
   * that instruction runs now); `guestDeferred`, a guest trap a debugger data stop went before,
   * is delivered first when the VP goes on (`guestDeferredMid`: it followed a REP iteration).
   */
  private guestHeld = 0;
  private guestShadow = false;
  private guestDeferred = 0;
  private guestDeferredMid = false;
  /** The VP's platform state (its APIC): looked up again at each run() and step (a machine reset replaces it). */
  private plat: VpPlatform;

  /** `sw`: the software breakpoints of the machine (shared by its VPs). */
  constructor(
    regs: Uint32Array,
    vpIndex: number,
    bus: GuestBus,
    private readonly sw: SwBreakpointSet = new SwBreakpointSet(),
  ) {
    this.c = new Cpu(regs, vpIndex, bus);
    joinRegistry(this.c);
    this.plat = vpPlatform(this.c);
  }

  /** Instructions retired since construction. */
  get retired(): number {
    return this.c.retired;
  }

  setDebug(debug: X86VpDebug): void {
    if (debug.slots.length !== 4) throw new RangeError(`expected 4 debug slots, got ${debug.slots.length}`);
    const c = this.c;
    this.singleStep = debug.singleStep;
    let any = false;
    let watching = false;
    for (let i = 0; i < 4; i++) {
      const s = debug.slots[i];
      this.execArmed[i] = false;
      c.watchType[i] = 0;
      if (s === null || s === undefined) continue;
      any = true;
      if (s.type === 0) {
        this.execArmed[i] = true;
        this.execLo[i] = s.addressLo | 0;
        this.execHi[i] = s.addressHi | 0;
      } else {
        watching = true;
        c.watchType[i] = s.type;
        c.watchLo[i] = s.addressLo | 0;
        c.watchHi[i] = s.addressHi | 0;
        c.watchLen[i] = s.length;
      }
    }
    c.watching = watching || guestDataArmed(c.r);
    // Single-step and data slots see REP iterations one by one; execute slots need not.
    c.repStep = watching || debug.singleStep;
    // Execute slots alone keep the fast loop: it stops before a block's armed instruction.
    this.debugArmed = watching || debug.singleStep;
    this.execAny = this.execArmed.some((a) => a);
    this.execGen = ++execGen;
    // Watched pages must lose their fast TLB entries (and unwatched ones may regain them).
    c.flushTlb();
  }

  /**
   * Run up to `maxInstructions` instructions. A delivered exception also counts against the
   * budget (without retiring) so that a fault loop cannot keep run() from returning. When
   * single-stepping over HLT the step is reported and the VP stays halted.
   */
  run(maxInstructions: number): X86Exit {
    const c = this.c;
    const p = (this.plat = vpPlatform(c));
    if (c.r[HALTED] !== 0 && !(maxInstructions >= 1)) return HALT;
    c.exit = EXIT_NONE;
    c.dataHit = 0;
    if (!(maxInstructions >= 1)) return BUDGET;
    let left = Math.floor(maxInstructions);
    // The fast loop hands over to the per-instruction one while the guest's TF is set, and back.
    for (;;) {
      if (c.r[HALTED] !== 0) {
        // HLT: an interrupt wakes the VP (the timer's expiry comes at once: its time jumps there).
        const w = wakeFromHalt(c, p);
        if (w === IRQ_NONE) return HALT;
        if (w === IRQ_TRIPLE_FAULT) return TRIPLE_FAULT;
        this.suppressValid = false;
        // The delivery is a single-step of its own, and counts against the budget as a delivered exception does.
        if (this.singleStep) return SINGLE_STEP;
        if (--left <= 0) return BUDGET;
      }
      let x: X86Exit;
      const before = c.retired;
      if (this.debugArmed || (c.r[RFLAGS] & TF) !== 0 || this.repPending || this.guestDebugging()) {
        x = this.runDebug(left);
      } else {
        const suppress = this.suppressValid;
        this.suppressValid = false;
        x = this.runFast(left, suppress);
      }
      if (x === HALT && !this.singleStep) {
        left -= c.retired - before;
        if (left <= 0) return HALT;
        continue;
      }
      if (x !== SWITCH) return x;
      left = this.left;
      if (left <= 0) return BUDGET;
    }
  }

  invalidateCode(gpa: number, length: number): void {
    invalidateRange(this.c, gpa, length);
  }

  invalidateAllCode(): void {
    invalidateAll(this.c);
  }

  flushTlb(): void {
    this.c.flushTlb();
  }

  /** Deliver the pending exception; returns the triple-fault exit when delivery failed. */
  private deliver(): X86Exit | null {
    return deliverException(this.c) ? null : TRIPLE_FAULT;
  }

  /** `suppress`: do not stop at a software breakpoint at the first instruction if it is where the last stop was. */
  private runFast(max: number, suppress: boolean): X86Exit {
    const c = this.c;
    const sw = this.sw;
    const r = c.r;
    const p = this.plat;
    const a = p.apic;
    let left = max;
    // An interrupt waits for the interrupt shadow: the next block runs one instruction.
    let oneOnly = false;
    while (left > 0) {
      // The APIC's next event (a request in IRR, an NMI, the timer's expiry) is due. Resuming
      // where a breakpoint stopped, that instruction runs first (as RF would let it on hardware),
      // so the breakpoint does not fire again when the handler returns there.
      if (c.retired >= a.eventAt) {
        const q = suppress && r[RIP] === this.suppressLo && r[RIP + 1] === this.suppressHi ? IRQ_SHADOW : pollInterrupts(c, p);
        if (q === IRQ_DELIVERED) {
          suppress = false;
          left--;
          continue;
        }
        if (q === IRQ_TRIPLE_FAULT) return TRIPLE_FAULT;
        oneOnly = q === IRQ_SHADOW;
      }
      // The guest's DR7 enables a breakpoint: continue one instruction at a time.
      if ((r[GUEST_DR7] & DR7_ENABLES) !== 0) {
        this.left = left;
        return SWITCH;
      }
      const f = r[RFLAGS];
      let rf = false;
      if ((f & (TF | RF)) !== 0) {
        // The guest's TF traps after every instruction: continue one at a time.
        if ((f & TF) !== 0) {
          this.left = left;
          return SWITCH;
        }
        // RF lasts one instruction: the one this block starts with (it suppresses an execute slot there).
        r[RFLAGS] = f & ~RF;
        rf = true;
      }
      let blk: Block;
      try {
        blk = lookup(c, true);
      } catch (e) {
        if (e !== GUEST_FAULT) throw e;
        suppress = false;
        // An exception counts against the budget so a fault loop cannot keep run() forever.
        left--;
        const x = this.deliver();
        if (x !== null) return x;
        continue;
      }
      const ops = blk.ops;
      const len = ops.length;
      let n = oneOnly ? 1 : len <= left ? len : left;
      // An execute slot at instruction k of the block: run only the k before it, then stop.
      let hwAt = -1;
      if (this.execAny) {
        const hits = execHitsOf(blk, this.execGen, this.execArmed, this.execLo, this.execHi);
        if (hits !== null) {
          let k = rf || (suppress && blk.vlo === this.suppressLo && blk.vhi === this.suppressHi) ? 1 : 0;
          for (; k < n; k++) {
            if (hits[k] !== 0) {
              hwAt = k;
              n = k;
              break;
            }
          }
        }
      }
      // A software breakpoint at instruction k of the block: run only the k before it, then stop.
      let swAt = -1;
      if (sw.count !== 0) {
        const hits = swHitsOf(sw, c.vp, blk);
        if (hits !== null) {
          let k = suppress && blk.vlo === this.suppressLo && blk.vhi === this.suppressHi ? 1 : 0;
          for (; k < n; k++) {
            if (hits[k] !== 0) {
              swAt = k;
              n = k;
              break;
            }
          }
        }
      }
      suppress = false;
      c.cur = blk;
      let i = 0;
      // A hot block runs compiled (jit.ts) when it runs whole, several times over when it loops
      // to itself (`more`: the instructions of the runs before the last); c.jk, c.jn say where it threw.
      let jitted = false;
      let more = 0;
      try {
        const jf = blk.jit;
        if (jf !== null && n === len) {
          jitted = true;
          // Looping inside would pass a breakpoint at the block's start that this run suppressed,
          // or the APIC's next event (by less than one run of the block).
          let lim = a.eventAt - c.retired;
          if (lim > left) lim = left;
          const runs = blk.swHits === null && blk.execHits === null && !oneOnly && lim >= len ? Math.floor(lim / len) : 1;
          more = (jf(c, runs) - 1) * len;
          i = n;
        } else {
          if (n === len && ++blk.heat === jitOptions.threshold && jitOptions.enabled) compileBlock(blk);
          for (; i < n; i++) ops[i](c);
        }
      } catch (e) {
        if (oneOnly && e !== BLOCK_ABORT) {
          // The instruction in the shadow raised an exception: its delivery ends the shadow.
          oneOnly = false;
          r[INT_SHADOW] = 0;
        }
        if (jitted) {
          i = c.jk;
          c.retired += c.jn * len;
          left -= c.jn * len;
        }
        c.cur = null;
        c.retired += i;
        left -= i;
        if (e === BLOCK_ABORT) {
          setRipAt(c, blk, i);
          continue;
        }
        if (e !== GUEST_FAULT) throw e;
        if (c.ftrap) {
          c.retired++;
          setRipAt(c, blk, i + 1);
        } else {
          setRipAt(c, blk, i);
        }
        left--;
        const x = this.deliver();
        if (x !== null) return x;
        if (c.exit !== EXIT_NONE) return exitOf(c.exit);
        continue;
      }
      c.cur = null;
      c.retired += n + more;
      left -= n + more;
      if (oneOnly && n > 0) {
        // The instruction in the shadow completed: the interrupt goes next.
        oneOnly = false;
        r[INT_SHADOW] = 0;
      }
      // After an NMI, an IRETQ (which ends blocks) ends NMI blocking.
      if (a.nmiBlocked && n > 0) afterOp(p, ops[n - 1]);
      if (n < len || !blk.lastSetsRip) setRipAt(c, blk, n);
      if (c.exit !== EXIT_NONE) return exitOf(c.exit);
      if (swAt >= 0) return this.swHit(blk.swHits![swAt], c.r[RIP], c.r[RIP + 1]);
      if (hwAt >= 0) return this.execHit(blk.execHits![hwAt] - 1, c.r[RIP], c.r[RIP + 1]);
    }
    return BUDGET;
  }

  /** The software breakpoint that stops this VP before the instruction at lo:hi, or 0 (its fetch faults: 0). */
  private swAt(lo: number, hi: number): number {
    let page: CodePage;
    try {
      page = fetchPage(this.c, lo, hi);
    } catch (e) {
      if (e !== GUEST_FAULT) throw e;
      return 0; // the fetch faults: the instruction is not reached, its exception is delivered
    }
    return this.sw.match(this.c.vp, lo, hi, page.ppn * 4096 + (lo & 0xfff));
  }

  /** Software breakpoint `id` fired before the instruction at lo:hi: the next run() does not fire it again there. */
  private swHit(id: number, lo: number, hi: number): X86Exit {
    this.suppressValid = true;
    this.suppressLo = lo;
    this.suppressHi = hi;
    this.sw.hit(id);
    return { kind: "swBreakpoint", id };
  }

  private execSlotAt(lo: number, hi: number): number {
    for (let i = 0; i < 4; i++) {
      if (this.execArmed[i] && this.execLo[i] === lo && this.execHi[i] === hi) return i;
    }
    return -1;
  }

  /** True when the next step continues a REP instruction at RIP (no breakpoint checks there). */
  private continuingRep(): boolean {
    const r = this.c.r;
    return this.repPending && r[RIP] === this.repLo && r[RIP + 1] === this.repHi;
  }

  /**
   * One instruction (or REP iteration) at a time: execute slots before, data slots after,
   * single-step, the guest's TF. Goes back to the fast loop once nothing needs it.
   */
  private runDebug(max: number): X86Exit {
    const c = this.c;
    const r = c.r;
    let left = max;
    let first = true;
    // The guest's data slots as the register file has them (it may have been written from outside).
    if (c.watching !== (c.watchType.some((t) => t !== 0) || guestDataArmed(r))) syncGuestWatch(c);
    while (left > 0) {
      if (!this.debugArmed && (r[RFLAGS] & TF) === 0 && !this.continuingRep() && !this.guestDebugging()) {
        // Nothing needs single instructions any more: back to the fast loop (which honours suppressValid).
        if (!first) this.suppressValid = false;
        this.repPending = false;
        this.guestShadow = false;
        this.left = left;
        return SWITCH;
      }
      const lo = r[RIP];
      const hi = r[RIP + 1];
      const resumed = first && this.suppressValid && lo === this.suppressLo && hi === this.suppressHi;
      // An interrupt (before an instruction breakpoint, as the SDM orders them; after a guest #DB a
      // debugger stop deferred; after the instruction a breakpoint stopped before, as in runFast).
      // Delivering it is a step: a single-step stops at the handler's first instruction.
      if (c.retired >= this.plat.apic.eventAt && this.guestDeferred === 0 && !resumed) {
        const q = pollInterrupts(c, this.plat);
        if (q === IRQ_DELIVERED) {
          first = false;
          this.suppressValid = false;
          left--;
          if (this.singleStep) return SINGLE_STEP;
          continue;
        }
        if (q === IRQ_TRIPLE_FAULT) return TRIPLE_FAULT;
      }
      const suppressed = resumed || this.continuingRep();
      first = false;
      this.suppressValid = false;
      // A guest #DB left pending by the debugger's last stop comes before its breakpoints here.
      if (!suppressed && this.guestDeferred === 0) {
        // RF (set by IRETQ, e.g. returning into a REP from a #DB handler) suppresses execute breakpoints once.
        const slot = (r[RFLAGS] & RF) === 0 ? this.execSlotAt(lo, hi) : -1;
        if (slot >= 0) return this.execHit(slot, lo, hi);
        if (this.sw.count !== 0) {
          const id = this.swAt(lo, hi);
          if (id !== 0) return this.swHit(id, lo, hi);
        }
      }
      const x = this.stepInstruction();
      left--;
      if (x !== null && x !== HALT) return x;
      if (this.singleStep) return SINGLE_STEP;
      if (x === HALT) return HALT;
    }
    return BUDGET;
  }

  /**
   * Batched stepping: up to `count` instructions one at a time with runDebug's semantics, except
   * that execute slots and software breakpoints are checked before every instruction but the
   * first (the VP steps off the one it stopped at) and the single-step flag is not consulted. After each counted instruction
   * (a delivered exception counts as one) its RIP goes to `pcs` (words 2i, 2i + 1: low, high) and
   * `afterStep(i)` runs. Every STEP_STOP_CHECK instructions `stopRequested()` may end the batch.
   */
  stepBatch(
    count: number,
    pcs: Uint32Array | null,
    afterStep: ((i: number) => void) | null,
    stopRequested: () => boolean,
  ): X86StepOutcome {
    const c = this.c;
    // A step is architectural: one REP iteration at a time.
    const repStep = c.repStep;
    c.repStep = true;
    try {
      return this.stepBatchEach(count, pcs, afterStep, stopRequested);
    } finally {
      c.repStep = repStep;
    }
  }

  private stepBatchEach(
    count: number,
    pcs: Uint32Array | null,
    afterStep: ((i: number) => void) | null,
    stopRequested: () => boolean,
  ): X86StepOutcome {
    const c = this.c;
    const r = c.r;
    const p = (this.plat = vpPlatform(c));
    this.suppressValid = false;
    c.exit = EXIT_NONE;
    const checkExec = this.execArmed[0] || this.execArmed[1] || this.execArmed[2] || this.execArmed[3];
    let done = 0;
    while (done < count) {
      if (done !== 0) {
        if ((done & (STEP_STOP_CHECK - 1)) === 0 && stopRequested()) return { executed: done, exit: BUDGET, requested: true };
      }
      // A halted VP wakes for an interrupt; an interrupt due is delivered (before breakpoints at
      // RIP, as the SDM orders them): either is one step, ending at the handler's first instruction.
      let q = IRQ_NONE;
      if (r[HALTED] !== 0) {
        q = wakeFromHalt(c, p);
        if (q === IRQ_NONE) return { executed: done, exit: HALT, requested: false };
      } else if (c.retired >= p.apic.eventAt && this.guestDeferred === 0) {
        q = pollInterrupts(c, p);
      }
      if (q === IRQ_TRIPLE_FAULT) return { executed: done, exit: TRIPLE_FAULT, requested: false };
      if (q === IRQ_DELIVERED) {
        if (pcs !== null) {
          pcs[2 * done] = r[RIP];
          pcs[2 * done + 1] = r[RIP + 1];
        }
        if (afterStep !== null) afterStep(done);
        done++;
        continue;
      }
      if (done !== 0 && !this.continuingRep() && this.guestDeferred === 0) {
        if (checkExec && (r[RFLAGS] & RF) === 0) {
          const lo = r[RIP];
          const hi = r[RIP + 1];
          const slot = this.execSlotAt(lo, hi);
          if (slot >= 0) return { executed: done, exit: this.execHit(slot, lo, hi), requested: false };
        }
        if (this.sw.count !== 0) {
          const lo = r[RIP];
          const hi = r[RIP + 1];
          const id = this.swAt(lo, hi);
          if (id !== 0) return { executed: done, exit: this.swHit(id, lo, hi), requested: false };
        }
      }
      const x = this.stepInstruction();
      // A triple fault completes nothing: as a single step, it reports no new RIP.
      if (x === TRIPLE_FAULT) return { executed: done, exit: x, requested: false };
      if (pcs !== null) {
        pcs[2 * done] = r[RIP];
        pcs[2 * done + 1] = r[RIP + 1];
      }
      if (afterStep !== null) afterStep(done);
      done++;
      if (x !== null) return { executed: done, exit: x, requested: false };
    }
    return { executed: done, exit: BUDGET, requested: false };
  }

  /** An execute slot fired before the instruction at lo:hi: the next run() does not fire it again there. */
  private execHit(slot: number, lo: number, hi: number): X86Exit {
    this.suppressValid = true;
    this.suppressLo = lo;
    this.suppressHi = hi;
    return HW_BREAKPOINT[slot];
  }

  /** The guest's debug state needs the per-instruction loop: DR7 enables a breakpoint, or a #DB waits. */
  private guestDebugging(): boolean {
    return (this.c.r[GUEST_DR7] & DR7_ENABLES) !== 0 || this.guestHeld !== 0 || this.guestDeferred !== 0;
  }

  /**
   * Executes one instruction (or delivers the exception it or its fetch raised), checking data
   * slots. Returns null when the VP may go on, else the exit: triple fault, reset, power-off, a
   * data slot hit (after the access), or HLT.
   *
   * The guest's own debug conditions (SDM vol. 3, 18.3): a #DB a debugger stop went before is
   * delivered first (as this step); an enabled execute breakpoint at RIP raises a fault-class #DB
   * before the instruction unless RFLAGS.RF is set (not between the iterations of a REP); after
   * the instruction (or REP iteration) TF and the guest's data breakpoints raise one trap-class
   * #DB (DR6 BS and B0–B3). Traps raised by a MOV SS wait until the end of the next
   * instruction; an exception that instruction raises drops them, except a software interrupt
   * (INT n, INT3, not ICEBP), after whose delivery they are delivered at the handler.
   */
  private stepInstruction(): X86Exit | null {
    const c = this.c;
    const r = c.r;
    const continuing = this.continuingRep();
    this.repPending = false;
    if (this.guestDeferred !== 0) {
      const bits = this.guestDeferred;
      this.guestDeferred = 0;
      return this.guestTrap(bits, this.guestDeferredMid);
    }
    const armed = (r[GUEST_DR7] & DR7_ENABLES) !== 0;
    if (armed && !continuing && (r[RFLAGS] & RF) === 0) {
      const bits = guestExecHits(r, r[RIP], r[RIP + 1]);
      if (bits !== 0) return this.guestBreakpoint(bits);
    }
    const shadow = this.guestShadow;
    this.guestShadow = false;
    // The interrupt shadow over this instruction ends with it (a STI or MOV SS here sets it again).
    const intShadow = r[INT_SHADOW];
    r[INT_SHADOW] = 0;
    for (;;) {
      c.dataHit = 0;
      c.repMore = false;
      let blk: Block;
      try {
        blk = lookup(c, false);
      } catch (e) {
        if (e !== GUEST_FAULT) throw e;
        this.guestHeld = 0;
        return this.deliver();
      }
      // TF as the instruction starts decides the trap after it (a POPF setting TF traps after the next one).
      const flags = r[RFLAGS];
      const tf = (flags & TF) !== 0;
      // RF lasts until an instruction completes (an IRETQ may set it again for the next one).
      if ((flags & RF) !== 0) r[RFLAGS] = flags & ~RF;
      marks.movSs = false;
      marks.icebp = false;
      marks.tfAtEnd = false;
      // Guest breakpoints see REP iterations one by one, like TF.
      const repStep = c.repStep;
      if (armed) c.repStep = true;
      c.cur = blk;
      try {
        blk.ops[0](c);
      } catch (e) {
        c.cur = null;
        c.repMore = false;
        c.repStep = repStep;
        if (e === BLOCK_ABORT) {
          r[RFLAGS] |= flags & RF;
          continue; // the code changed before it ran: decode again
        }
        if (e !== GUEST_FAULT) throw e;
        if (c.ftrap) {
          c.retired++;
          setRipAt(c, blk, 1);
        } else {
          // A faulting instruction did not complete: its accesses do not count, RF stays.
          c.dataHit = 0;
          r[RFLAGS] |= flags & RF;
        }
        const hit = c.dataHit & 0xf;
        const held = this.guestHeld;
        this.guestHeld = 0;
        const softwareInterrupt = c.ftrap && !marks.icebp;
        marks.icebp = false;
        const x = this.deliver();
        if (x !== null) return x;
        if (c.exit === EXIT_RESET || c.exit === EXIT_POWER_OFF) return exitOf(c.exit);
        if (held !== 0 && softwareInterrupt) {
          const y = this.guestTrap(held, false);
          if (y !== null) return y;
        }
        return hit !== 0 ? HW_BREAKPOINT[lowestSlot(hit)] : null;
      }
      c.cur = null;
      c.repStep = repStep;
      if (marks.movSs && intShadow === 0) r[INT_SHADOW] = 1;
      if (!c.repMore) afterOp(this.plat, blk.ops[0]);
      const more = c.repMore;
      if (more) {
        // A REP iteration with more to go: RIP stays at the instruction.
        c.repMore = false;
        this.repPending = true;
        this.repLo = r[RIP];
        this.repHi = r[RIP + 1];
      } else {
        c.retired++;
        if (!(blk.ops.length === 1 && blk.lastSetsRip)) setRipAt(c, blk, 1);
      }
      if (c.exit === EXIT_RESET || c.exit === EXIT_POWER_OFF) return exitOf(c.exit);
      // SYSCALL and SYSRET single-step on TF as they end (SFMASK may clear it, R11 may set it).
      const stepTrap = marks.tfAtEnd ? (r[RFLAGS] & TF) !== 0 : tf;
      let bits = (stepTrap ? DR6_BS : 0) | ((c.dataHit >>> 4) & 0xf);
      if (marks.movSs && !shadow) {
        // MOV SS: its traps wait for the end of the next instruction.
        marks.movSs = false;
        this.guestHeld |= bits;
        this.guestShadow = true;
        bits = 0;
      } else {
        bits |= this.guestHeld;
        this.guestHeld = 0;
      }
      const hit = c.dataHit & 0xf;
      if (bits !== 0) {
        if (hit !== 0) {
          // The debugger's data slot stops first; the guest's #DB is delivered when the VP goes on.
          this.guestDeferred = bits;
          this.guestDeferredMid = more;
          return HW_BREAKPOINT[lowestSlot(hit)];
        }
        const x = this.guestTrap(bits, more);
        if (x !== null) return x;
      }
      if (hit !== 0) return HW_BREAKPOINT[lowestSlot(hit)];
      return c.exit === EXIT_HALT ? HALT : null;
    }
  }

  /**
   * The guest's trap-class #DB after an instruction (or a REP iteration, `midRep`): DR6 B0–B3
   * become the data breakpoints in `bits`, BS is added when `bits` has it (single-step), then
   * #DB through the IDT with RIP where execution goes on. The frame's RFLAGS has RF set between
   * REP iterations (the SDM's rule for events inside a REP), so the handler's IRETQ resumes the
   * REP without firing an execute breakpoint there again. A HLT that traps does not stay
   * halted: the handler runs and returns after it.
   */
  private guestTrap(bits: number, midRep: boolean): X86Exit | null {
    const c = this.c;
    const r = c.r;
    setDr6(r, bits);
    if (c.exit === EXIT_HALT) {
      c.exit = EXIT_NONE;
      r[HALTED] = 0;
    }
    if (midRep) r[RFLAGS] |= RF;
    c.fvec = VEC_DB;
    c.ferr = NO_ERROR_CODE;
    c.ftrap = true;
    const x = this.deliver();
    if (x !== null) return x;
    return c.exit === EXIT_RESET || c.exit === EXIT_POWER_OFF ? exitOf(c.exit) : null;
  }

  /**
   * The guest's execute breakpoints `bits` (DR6 B0–B3) at RIP: a fault-class #DB before the
   * instruction; its frame keeps RF as it is (0), so the handler sets RF in the frame (or
   * disarms the slot) for the instruction to run. Traps a MOV SS held are dropped.
   */
  private guestBreakpoint(bits: number): X86Exit | null {
    const c = this.c;
    setDr6(c.r, bits);
    this.guestHeld = 0;
    this.guestShadow = false;
    c.fvec = VEC_DB;
    c.ferr = NO_ERROR_CODE;
    c.ftrap = false;
    return deliverException(c, true) ? null : TRIPLE_FAULT;
  }
}
