// Decoded code cached per guest-physical page, and its invalidation when the page is written.
//
// A page remembers which 128-byte chunks hold decoded instructions (a 32-bit mask), so a store
// next to code (data sharing a page with a loop) does not throw the code away. VPs on the same
// bus share a registry so a store by one VP drops stale code decoded by another.

import type { GuestBus } from "../bus.js";
import type { Cpu, OpFn } from "./cpu.js";
import type { Insn } from "./insn.js";
import * as faultModule from "./fault.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { BLOCK_ABORT } = faultModule;

/** A straight run of decoded instructions starting at one virtual (and physical) address. */
export class Block {
  valid = true;
  /** The software-breakpoint generation `swHits` was looked up at (see vp.ts swHitsOf). */
  swGen = -1;
  /** Per instruction, the id of the software breakpoint that stops this VP before it (0: none); null when none does. */
  swHits: Uint32Array | null = null;
  /** The execute-slot generation `execHits` was computed at (see vp.ts execHitsOf). */
  execGen = -1;
  /** Per instruction, the execute slot + 1 armed there (0: none); null when none is. */
  execHits: Uint8Array | null = null;
  /** The decoded instructions (for the JIT's inline forms), or null. */
  insns: readonly Insn[] | null = null;
  /** Whole-block runs so far (jit.ts compiles the block at a threshold). */
  heat = 0;
  /** The compiled block (jit.ts), or null. */
  jit: ((c: Cpu, m: number) => number) | null = null;
  constructor(
    /** The page holding the first byte of the block. */
    readonly page: CodePage,
    /** Virtual address the block was decoded for (RIP-relative operands depend on it). */
    readonly vlo: number,
    readonly vhi: number,
    readonly ops: OpFn[],
    /** offs[i]: byte offset of instruction i from the block start; offs[ops.length]: the end. */
    readonly offs: Int32Array,
    /** The last op sets RIP itself (a branch); otherwise the loop sets RIP to the block end. */
    readonly lastSetsRip: boolean,
    /** Cut short for the debug loop; the fast loop decodes it again in full. */
    readonly truncated: boolean,
    /** Physical page the single instruction of a page-crossing block continues in, else -1. */
    readonly crossPpn: number,
  ) {}
}

const EMPTY_BLOCKS: readonly (Block | undefined)[] = Object.freeze(new Array<Block | undefined>(4096));

export class CodePage {
  /** Blocks by start offset in the page. */
  blocks: (Block | undefined)[] = EMPTY_BLOCKS as (Block | undefined)[];
  /** Bit k set when bytes [128k, 128k + 128) hold decoded instructions. */
  mask = 0;
  /** Blocks of the previous page whose last instruction continues in this page. */
  crossers: Block[] = [];
  constructor(readonly ppn: number) {}
}

/** What all VPs on one bus have decoded in one physical page: the union of their chunk masks. */
export class SharedCodePage {
  mask = 0;
}

/** VPs sharing one bus (weakly held, so VPs that are dropped are forgotten) and their code pages. */
export class CodeRegistry {
  readonly cpus = new Set<WeakRef<Cpu>>();
  readonly pages = new Map<number, SharedCodePage>();
}

const registries = new WeakMap<GuestBus, CodeRegistry>();

export function joinRegistry(c: Cpu): void {
  let reg = registries.get(c.bus);
  if (reg === undefined) {
    reg = new CodeRegistry();
    registries.set(c.bus, reg);
  }
  reg.cpus.add(new WeakRef(c));
  c.registry = reg;
}

function forEachCpu(reg: CodeRegistry, f: (c: Cpu) => void): void {
  for (const ref of reg.cpus) {
    const c = ref.deref();
    if (c === undefined) reg.cpus.delete(ref);
    else f(c);
  }
}

/** The shared record of physical page `ppn` when some VP on the bus holds code there, else null. */
export function sharedCode(reg: CodeRegistry, ppn: number): SharedCodePage | null {
  const p = reg.pages.get(ppn);
  return p !== undefined && p.mask !== 0 ? p : null;
}

export function codePageFor(c: Cpu, ppn: number): CodePage {
  let p = c.pages.get(ppn);
  if (p === undefined) {
    p = new CodePage(ppn);
    c.pages.set(ppn, p);
  }
  return p;
}

/** Chunk mask of bytes [from, to) of a page (0 <= from < to <= 4096). */
export function chunkMask(from: number, to: number): number {
  const first = from >> 7;
  const last = (to - 1) >> 7;
  const n = last - first + 1;
  return n >= 32 ? -1 : (((1 << n) - 1) << first);
}

/** Record a decoded block: mark its chunks and make sure no VP keeps fast stores to the page. */
export function addBlock(c: Cpu, page: CodePage, off: number, blk: Block, mask: number): void {
  if (page.blocks === EMPTY_BLOCKS) page.blocks = new Array<Block | undefined>(4096);
  page.blocks[off] = blk;
  markCode(c, page, mask);
}

export function markCode(c: Cpu, page: CodePage, mask: number): void {
  page.mask |= mask;
  let shared = c.registry.pages.get(page.ppn);
  if (shared === undefined) {
    shared = new SharedCodePage();
    c.registry.pages.set(page.ppn, shared);
  }
  const wasCode = shared.mask !== 0;
  shared.mask |= mask;
  if (!wasCode) {
    const s = shared;
    forEachCpu(c.registry, (o) => o.dropWriteEntries(page.ppn, s));
  }
}

/** Recompute the union mask of a page after one VP dropped its code there. */
function refreshShared(reg: CodeRegistry, ppn: number): void {
  const shared = reg.pages.get(ppn);
  if (shared === undefined) return;
  let mask = 0;
  forEachCpu(reg, (o) => {
    const p = o.pages.get(ppn);
    if (p !== undefined) mask |= p.mask;
  });
  shared.mask = mask;
}

/** Drop every block of `page` (and blocks of other pages that run into it). */
export function dropPage(c: Cpu, page: CodePage): void {
  if (page.mask === 0 && page.crossers.length === 0) return;
  const blocks = page.blocks;
  page.blocks = EMPTY_BLOCKS as (Block | undefined)[];
  page.mask = 0;
  if (blocks !== EMPTY_BLOCKS) {
    for (let i = 0; i < 4096; i++) {
      const b = blocks[i];
      if (b !== undefined) retire(c, b);
    }
  }
  for (const b of page.crossers) {
    retire(c, b);
    const offs = b.page.blocks;
    for (let i = 4096 - 16; i < 4096; i++) if (offs[i] === b) offs[i] = undefined;
  }
  page.crossers = [];
  refreshShared(c.registry, page.ppn);
}

function retire(c: Cpu, b: Block): void {
  b.valid = false;
  if (b === c.cur) {
    // The run loop is inside this block: make the instructions it has not run yet stop it.
    const ops = b.ops;
    for (let i = 0; i < ops.length; i++) ops[i] = abortOp;
  }
}

const abortOp: OpFn = () => {
  throw BLOCK_ABORT;
};

/**
 * A guest store of `len` bytes at `gpa` (within one page) that may overwrite decoded code: drop
 * the code of every VP on the bus that it overlaps, and tell the bus. Stores to pages without
 * code never get here (their TLB entries take the fast path).
 */
export function noteCodeStore(c: Cpu, gpa: number, len: number): void {
  const ppn = Math.floor(gpa / 4096);
  const shared = c.registry.pages.get(ppn);
  if (shared === undefined) return;
  const off = gpa - ppn * 4096;
  const m = chunkMask(off, off + len);
  if ((shared.mask & m) === 0) return;
  forEachCpu(c.registry, (o) => {
    const p = o.pages.get(ppn);
    if (p !== undefined && (p.mask & m) !== 0) dropPage(o, p);
  });
  c.bus.noteGuestWrite(gpa, len);
}

/** Drop this VP's code for every page overlapping [gpa, gpa + length). */
export function invalidateRange(c: Cpu, gpa: number, length: number): void {
  if (!(length > 0)) return;
  const first = Math.floor(gpa / 4096);
  const last = Math.floor((gpa + length - 1) / 4096);
  if (last - first > c.pages.size) {
    for (const [ppn, p] of c.pages) if (ppn >= first && ppn <= last) dropPage(c, p);
    return;
  }
  for (let ppn = first; ppn <= last; ppn++) {
    const p = c.pages.get(ppn);
    if (p === undefined) continue;
    // Only bytes that hold decoded instructions matter: data next to code keeps the code.
    const from = Math.max(gpa, ppn * 4096) - ppn * 4096;
    const to = Math.min(gpa + length, ppn * 4096 + 4096) - ppn * 4096;
    if ((p.mask & chunkMask(from, to)) !== 0) dropPage(c, p);
  }
}

export function invalidateAll(c: Cpu): void {
  for (const p of c.pages.values()) dropPage(c, p);
}
