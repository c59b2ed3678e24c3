// The interpreter's working context for one VP: its register words, TLB, code cache and scratch.
//
// Architectural state lives only in `r` (a view over the shared register file); everything else
// here is a cache (TLB, decoded code) or per-instruction scratch, so other code may read and
// write the words between run() calls.

import type { GuestBus } from "../bus.js";
import type { Block, CodePage, CodeRegistry, SharedCodePage } from "./code-cache.js";
import { VP_WORDS } from "./vp-layout.js";

/** Direct-mapped TLB size (entries); a power of two. */
export const TLB_SIZE = 1024;
export const TLB_MASK = TLB_SIZE - 1;
/** Tag of an empty TLB entry: never equal to a page-aligned low word. */
export const TLB_EMPTY = 1;

/** Reasons an op asks the run loop to stop after its block. */
export const EXIT_NONE = 0;
export const EXIT_HALT = 1;
export const EXIT_RESET = 2;
export const EXIT_POWER_OFF = 3;

/** Semantics of one decoded instruction. */
export type OpFn = (c: Cpu) => void;

const EMPTY_VIEW = new DataView(new ArrayBuffer(8));

export class Cpu {
  /** This VP's VP_WORDS register words (a view over the shared buffer), as signed words. */
  readonly r: Int32Array;
  readonly vp: number;
  readonly bus: GuestBus;

  // --- per-instruction scratch (never state) ---
  /** High word of the effective address an EA function just computed (it returns the low word). */
  ahi = 0;
  /** High word of the last 64-bit memory read (rd64 returns the low word). */
  mhi = 0;
  /** High word of the last 64-bit ALU result (the op returns the low word). */
  rhi = 0;

  // --- pending guest exception (see fault.ts) ---
  fvec = 0;
  ferr = -1;
  ftrap = false;
  /** The pending event is INT n / INT3 / INTO, this many bytes long (its gate's DPL is checked); 0 otherwise. */
  fsoft = 0;

  /**
   * True while the accesses made are implicit supervisor accesses at CPL 3 (descriptor tables,
   * the TSS; see privilege.ts): they pass the page U/S check and leave the TLB alone.
   */
  sys = false;
  /** Set with a #GP(0) raised for a non-canonical data address (exceptions.ts makes it #SS(0) for stack accesses). */
  ncan = false;

  /** Set by a compiled block (jit.ts) that throws: the index of the instruction that threw. */
  jk = 0;
  /** With jk: the whole runs of the block done before (a block that loops to itself). */
  jn = 0;

  /** EXIT_* requested by the last block (HLT, a device asking for reset or power off). */
  exit = EXIT_NONE;
  /** Instructions retired since construction. */
  retired = 0;

  // --- TLB: read and write entries share the data columns; exec entries point at code pages ---
  readonly rTagLo = new Int32Array(TLB_SIZE).fill(TLB_EMPTY);
  readonly rTagHi = new Int32Array(TLB_SIZE);
  readonly wTagLo = new Int32Array(TLB_SIZE).fill(TLB_EMPTY);
  readonly wTagHi = new Int32Array(TLB_SIZE);
  /** Write permitted and dirty, but stores must take the slow path (code or watched page). */
  readonly sTagLo = new Int32Array(TLB_SIZE).fill(TLB_EMPTY);
  readonly sTagHi = new Int32Array(TLB_SIZE);
  readonly tlbView: DataView[] = new Array<DataView>(TLB_SIZE).fill(EMPTY_VIEW);
  /** Byte offset of the page inside tlbView[i]. */
  readonly tlbOff = new Float64Array(TLB_SIZE);
  /** Guest physical page number of entry i (for dropping write entries of a page that gains code). */
  readonly tlbPpn = new Float64Array(TLB_SIZE).fill(-1);
  /** For slow-path write entries of pages holding code: what is decoded there (on any VP of the bus). */
  readonly tlbCode: (SharedCodePage | null)[] = new Array<SharedCodePage | null>(TLB_SIZE).fill(null);
  readonly xTagLo = new Int32Array(TLB_SIZE).fill(TLB_EMPTY);
  readonly xTagHi = new Int32Array(TLB_SIZE);
  readonly xPage: (CodePage | null)[] = new Array<CodePage | null>(TLB_SIZE).fill(null);

  // --- data watch (debug slots of type write / read-or-write) ---
  /** True when any data slot is armed: memory slow paths then check for hits. */
  watching = false;
  readonly watchLo = new Int32Array(4);
  readonly watchHi = new Int32Array(4);
  readonly watchLen = new Int32Array(4);
  /** 0 unused, 2 write, 3 read-or-write (DR7 R/W encoding). */
  readonly watchType = new Int32Array(4);
  /** Bit i set when data slot i matched during the current instruction. */
  dataHit = 0;

  // --- architectural stepping of REP string instructions (see rep.ts) ---
  /** REP instructions run one iteration per step (the per-instruction loops set it). */
  repStep = false;
  /** Set by a REP op that ran one iteration with more to go: RIP stays at the instruction. */
  repMore = false;

  // --- decoded code ---
  readonly pages = new Map<number, CodePage>();
  registry!: CodeRegistry;
  /** The block the run loop is executing (so overwriting its code can abort it). */
  cur: Block | null = null;

  constructor(regs: Uint32Array, vpIndex: number, bus: GuestBus) {
    const base = vpIndex * VP_WORDS;
    if (!Number.isInteger(vpIndex) || vpIndex < 0 || base + VP_WORDS > regs.length) {
      throw new RangeError(`VP index ${vpIndex} is outside the register file (${regs.length} words)`);
    }
    this.r = new Int32Array(regs.buffer, regs.byteOffset + base * 4, VP_WORDS);
    this.vp = vpIndex;
    this.bus = bus;
  }

  /**
   * Set when a translation through a 2 MiB or 1 GiB page went into the TLB (as 4 KiB pieces):
   * INVLPG must then drop everything, as the page's other pieces sit in other entries.
   */
  tlbLarge = false;

  /** INVLPG of linear (lo, hi): drop the one entry that can hold it, or everything after a large page. */
  invalidatePage(lo: number, hi: number): void {
    if (this.tlbLarge) {
      this.flushTlb();
      return;
    }
    const i = (lo >>> 12) & TLB_MASK;
    void hi; // direct-mapped: the entry is chosen by the low bits alone
    this.rTagLo[i] = TLB_EMPTY;
    this.wTagLo[i] = TLB_EMPTY;
    this.sTagLo[i] = TLB_EMPTY;
    this.xTagLo[i] = TLB_EMPTY;
    this.tlbPpn[i] = -1;
    this.tlbView[i] = EMPTY_VIEW;
    this.tlbCode[i] = null;
    this.xPage[i] = null;
  }

  /** Drop every TLB entry (CR3/CR0/CR4/EFER writes, INVLPG after a large page, debug slot changes). */
  flushTlb(): void {
    this.tlbLarge = false;
    this.rTagLo.fill(TLB_EMPTY);
    this.wTagLo.fill(TLB_EMPTY);
    this.sTagLo.fill(TLB_EMPTY);
    this.xTagLo.fill(TLB_EMPTY);
    this.tlbPpn.fill(-1);
    this.tlbView.fill(EMPTY_VIEW);
    this.tlbCode.fill(null);
    this.xPage.fill(null);
  }

  /** Move write entries for physical page `ppn` to the slow path (it now holds decoded code). */
  dropWriteEntries(ppn: number, code: SharedCodePage): void {
    const ppns = this.tlbPpn;
    for (let i = 0; i < TLB_SIZE; i++) {
      if (ppns[i] !== ppn) continue;
      if (this.wTagLo[i] !== TLB_EMPTY) {
        // Still writable without a walk, but each store checks for code first.
        this.sTagLo[i] = this.wTagLo[i];
        this.sTagHi[i] = this.wTagHi[i];
        this.wTagLo[i] = TLB_EMPTY;
      }
      this.tlbCode[i] = code;
    }
  }
}
