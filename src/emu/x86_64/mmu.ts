// Linear → physical translation (4/5-level paging, TLB) and the guest memory accessors.
//
// Values are signed 32-bit words: 8/16-bit reads return zero-extended numbers, rd32 an int32,
// rd64 the low word with the high word in `c.mhi`. A fast path per size hits the TLB; misses,
// page-crossing accesses, watched pages and pages holding code take the slow path.

import type { RamRegion } from "../bus.js";
import * as codeCacheModule from "./code-cache.js";
import type { CodePage } from "./code-cache.js";
import * as cpuModule from "./cpu.js";
import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as guestDebugModule from "./guest-debug.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { chunkMask, codePageFor, noteCodeStore, sharedCode } = codeCacheModule;
const { TLB_EMPTY, TLB_MASK } = cpuModule;
const { VEC_PF, gp, fault, nonCanonical } = faultModule;
const { guestPageWatched, guestWatchCheck } = guestDebugModule;
const { CR0, CR2, CR3, CR4, EFER, PKRU, RFLAGS, SEG_SELECTOR, SREG_CS, segWord } = vpLayoutModule;

const CS_SEL = segWord(SREG_CS, SEG_SELECTOR);

export const ACC_READ = 0;
export const ACC_WRITE = 1;
export const ACC_EXEC = 2;

const CR0_WP = 0x10000;
const CR4_LA57 = 0x1000;
const CR4_SMEP = 0x100000;
const CR4_SMAP = 0x200000;
const CR4_PKE = 0x400000;
const RFLAGS_AC = 0x40000;
const EFER_NXE = 0x800;
const PTE_P = 0x1;
const PTE_RW = 0x2;
const PTE_US = 0x4;
const PTE_A = 0x20;
const PTE_D = 0x40;
const PTE_PS = 0x80;

const views = new WeakMap<RamRegion, DataView>();

/** A DataView over a region's bytes (cached). */
export function viewOf(region: RamRegion): DataView {
  let v = views.get(region);
  if (v === undefined) {
    v = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.bytes.byteLength);
    views.set(region, v);
  }
  return v;
}

// ---------------------------------------------------------------- memory-mapped I/O

type MmioRead = (c: Cpu, gpa: number, size: number) => number;
type MmioWrite = (c: Cpu, gpa: number, size: number, value: number) => void;
/** Accesses to guest physical addresses that are not RAM (the xAPIC page, bus devices); see apic.ts. */
let mmioRead: MmioRead = (_c, _gpa, size) => (size === 4 ? -1 : size === 2 ? 0xffff : 0xff);
let mmioWrite: MmioWrite = () => {};

/** Installs the handlers for non-RAM physical accesses (apic.ts does, when it loads). */
export function setMmioHandlers(read: MmioRead, write: MmioWrite): void {
  mmioRead = read;
  mmioWrite = write;
}

// ---------------------------------------------------------------- physical memory

/** Read `size` (1, 2, 4) bytes at a guest physical address inside one page (MMIO when not RAM). */
export function physRead(c: Cpu, gpa: number, size: number): number {
  const region = c.bus.regionAt(gpa);
  if (region === undefined) return mmioRead(c, gpa, size);
  const v = viewOf(region);
  const o = gpa - region.gpa;
  return size === 4 ? v.getInt32(o, true) : size === 2 ? v.getUint16(o, true) : v.getUint8(o);
}

/** Write `size` (1, 2, 4) bytes at a guest physical address inside one page (MMIO when not RAM). */
export function physWrite(c: Cpu, gpa: number, size: number, value: number): void {
  const region = c.bus.regionAt(gpa);
  if (region === undefined) return mmioWrite(c, gpa, size, value);
  const v = viewOf(region);
  const o = gpa - region.gpa;
  if (size === 4) v.setInt32(o, value, true);
  else if (size === 2) v.setUint16(o, value, true);
  else v.setUint8(o, value);
  noteCodeStore(c, gpa, size);
}

// ---------------------------------------------------------------- translation

/** Set by a walk: the page may be written at once (writable, dirty already set). */
let walkWriteReady = false;
/** Set by a walk: the translation went through a 2 MiB or 1 GiB page. */
let walkLarge = false;
/**
 * Set by a walk: the translation may go into the TLB. A user page reached by a supervisor data
 * access under CR4.SMAP may not (whether it is allowed depends on RFLAGS.AC, which CLAC and
 * STAC change without a flush).
 */
let walkCacheable = true;
const walkEntries = new Float64Array(5);

/** #PF for linear (lo, hi) with error code bits P (1), W (2), U (4), RSVD (8), I/D (16). */
function pageFault(c: Cpu, lo: number, hi: number, err: number): never {
  const r = c.r;
  r[CR2] = lo;
  r[CR2 + 1] = hi;
  return fault(c, VEC_PF, err);
}

/** Whether an address with high word `hi` is canonical for the paging mode (48 or 57 bits). */
export function isCanonical(c: Cpu, hi: number): boolean {
  const top = c.r[CR4] & CR4_LA57 ? hi >> 24 : hi >> 15;
  return top === 0 || top === -1;
}

/** Whether accesses now are user accesses: at CPL 3, except implicit supervisor ones (c.sys). */
function userAccess(c: Cpu): boolean {
  return (c.r[CS_SEL] & 3) === 3 && !c.sys;
}

/**
 * Walk the page tables for linear (lo, hi); returns the guest physical address of the 4 KiB
 * page. Sets Accessed bits on the way and Dirty on a write, and raises #PF like hardware. A user
 * access (CPL 3) needs U/S set at every level and R/W set at every level to write; a supervisor
 * write to a read-only page faults when CR0.WP is set. A user page (U/S set at every level) is
 * off limits to supervisor instruction fetches under CR4.SMEP, and to supervisor data accesses
 * under CR4.SMAP unless RFLAGS.AC is set at CPL < 3 (implicit supervisor accesses at CPL 3, c.sys,
 * never pass). Under CR4.PKE the leaf's protection key (bits 62:59) selects PKRU's access-disable
 * and write-disable bits for data accesses to user pages (write-disable binds supervisor writes
 * only with CR0.WP); such a fault sets the error code's PK bit (0x20).
 */
function walk(c: Cpu, lo: number, hi: number, acc: number): number {
  const r = c.r;
  const nxe = (r[EFER] & EFER_NXE) !== 0;
  const wp = (r[CR0] & CR0_WP) !== 0;
  const user = userAccess(c);
  // I/D is reported for instruction fetches when NX or SMEP can be the reason (SDM vol. 3, 4.7).
  const idBit = (acc === ACC_EXEC && (nxe || (r[CR4] & CR4_SMEP) !== 0) ? 16 : 0) | (user ? 4 : 0);
  const wBit = acc === ACC_WRITE ? 2 : 0;
  let userOk = true;
  walkLarge = false;
  let table = (r[CR3 + 1] & 0xfffff) * 4294967296 + ((r[CR3] & ~0xfff) >>> 0);
  let level = r[CR4] & CR4_LA57 ? 5 : 4;
  let writable = true;
  let nx = false;
  let n = 0;
  let page: number;
  let elo: number;
  let ehi: number;
  for (;;) {
    let idx: number;
    switch (level) {
      case 5: idx = (hi >>> 16) & 511; break;
      case 4: idx = (hi >>> 7) & 511; break;
      case 3: idx = ((lo >>> 30) | (hi << 2)) & 511; break;
      case 2: idx = (lo >>> 21) & 511; break;
      default: idx = (lo >>> 12) & 511; break;
    }
    const ea = table + idx * 8;
    elo = physRead(c, ea, 4);
    ehi = physRead(c, ea + 4, 4);
    if ((elo & PTE_P) === 0) return pageFault(c, lo, hi, wBit | idBit);
    if (ehi < 0) {
      if (!nxe) return pageFault(c, lo, hi, 1 | 8 | wBit | idBit);
      nx = true;
    }
    if ((elo & PTE_RW) === 0) writable = false;
    if ((elo & PTE_US) === 0) userOk = false;
    walkEntries[n++] = ea;
    const frameHi = (ehi & 0xfffff) * 4294967296;
    if (level === 1) {
      page = frameHi + ((elo & ~0xfff) >>> 0);
      break;
    }
    if (elo & PTE_PS) {
      walkLarge = true;
      if (level === 3) {
        if (elo & 0x3fffe000) return pageFault(c, lo, hi, 1 | 8 | wBit | idBit);
        page = frameHi + ((elo & 0xc0000000) >>> 0) + (lo & 0x3ffff000);
        break;
      }
      if (level === 2) {
        if (elo & 0x1fe000) return pageFault(c, lo, hi, 1 | 8 | wBit | idBit);
        page = frameHi + ((elo & 0xffe00000) >>> 0) + (lo & 0x1ff000);
        break;
      }
      return pageFault(c, lo, hi, 1 | 8 | wBit | idBit);
    }
    table = frameHi + ((elo & ~0xfff) >>> 0);
    level--;
  }
  if (user && !userOk) return pageFault(c, lo, hi, 1 | wBit | idBit);
  // Protection keys: a data access to a user page checks PKRU for the leaf's key; a violation
  // sets PK in the error code of the fault the access raises, whichever check raises it.
  let pk = 0;
  let keyWriteDisabled = false;
  if (userOk && acc !== ACC_EXEC && (r[CR4] & CR4_PKE) !== 0) {
    const rights = r[PKRU] >>> (2 * ((ehi >>> 27) & 0xf));
    keyWriteDisabled = (rights & 2) !== 0 && (user || wp);
    if ((rights & 1) !== 0 || (keyWriteDisabled && acc === ACC_WRITE)) pk = 0x20;
  }
  walkCacheable = true;
  if (!user && userOk) {
    const cr4 = r[CR4];
    if (acc === ACC_EXEC) {
      if ((cr4 & CR4_SMEP) !== 0) return pageFault(c, lo, hi, 1 | idBit);
    } else if ((cr4 & CR4_SMAP) !== 0) {
      if (c.sys || (r[RFLAGS] & RFLAGS_AC) === 0) return pageFault(c, lo, hi, pk | 1 | wBit);
      walkCacheable = false;
    }
  }
  if (acc === ACC_WRITE && !writable && (wp || user)) return pageFault(c, lo, hi, pk | 1 | wBit | idBit);
  if (pk !== 0) return pageFault(c, lo, hi, pk | 1 | wBit | idBit);
  // A write-disabled key leaves the page readable: keep it out of the TLB's write entries.
  if (keyWriteDisabled) writable = false;
  if (acc === ACC_EXEC && nx) return pageFault(c, lo, hi, 1 | idBit);
  // Accessed on every level, Dirty on the leaf for a write (only when they change).
  for (let i = 0; i < n; i++) {
    const ea = walkEntries[i];
    const v = physRead(c, ea, 4);
    const nv = v | PTE_A | (i === n - 1 && acc === ACC_WRITE ? PTE_D : 0);
    if (nv !== v) physWrite(c, ea, 4, nv);
  }
  walkWriteReady = (writable || (!wp && !user)) && (acc === ACC_WRITE || (elo & PTE_D) !== 0);
  return page;
}

/**
 * Whether an armed data slot (the debugger's, or the guest's DR0–DR3) covers a byte of page
 * (pageLo, hi) for accesses of kind `write`.
 */
function pageWatched(c: Cpu, pageLo: number, hi: number, write: boolean): boolean {
  if (!c.watching) return false;
  for (let k = 0; k < 4; k++) {
    const t = c.watchType[k];
    if (t === 0 || (t === 2 && !write)) continue;
    if (c.watchHi[k] === hi && (c.watchLo[k] & -4096) === pageLo) return true;
  }
  return guestPageWatched(c, pageLo, hi, write);
}

/**
 * Translate a data access to linear (lo, hi) (`acc` ACC_READ or ACC_WRITE); returns the guest
 * physical address. Raises #GP(0) (#SS(0) for stack accesses, see fault.ts) for a non-canonical
 * address and #PF from the walk. The TLB keeps what the current privilege may do: entries filled
 * at CPL 0 are dropped when the CPL becomes 3 (segments.ts), and implicit supervisor accesses at
 * CPL 3 (c.sys) fill nothing.
 */
export function translate(c: Cpu, lo: number, hi: number, acc: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  const pageLo = lo & -4096;
  if (acc === ACC_READ ? c.rTagLo[i] === pageLo && c.rTagHi[i] === hi
    : (c.wTagLo[i] === pageLo && c.wTagHi[i] === hi) || (c.sTagLo[i] === pageLo && c.sTagHi[i] === hi)) {
    return c.tlbPpn[i] * 4096 + (lo & 0xfff);
  }
  if (!isCanonical(c, hi)) return nonCanonical(c);
  const page = walk(c, lo, hi, acc);
  const region = c.bus.regionAt(page);
  if (region !== undefined && !c.sys && walkCacheable) {
    if (walkLarge) c.tlbLarge = true;
    const ppn = page / 4096;
    c.tlbView[i] = viewOf(region);
    c.tlbOff[i] = page - region.gpa;
    c.tlbPpn[i] = ppn;
    if (pageWatched(c, pageLo, hi, false)) {
      c.rTagLo[i] = TLB_EMPTY;
    } else {
      c.rTagLo[i] = pageLo;
      c.rTagHi[i] = hi;
    }
    c.wTagLo[i] = TLB_EMPTY;
    c.sTagLo[i] = TLB_EMPTY;
    c.tlbCode[i] = null;
    if (walkWriteReady) {
      const code = sharedCode(c.registry, ppn);
      if (code !== null || pageWatched(c, pageLo, hi, true)) {
        c.sTagLo[i] = pageLo;
        c.sTagHi[i] = hi;
        c.tlbCode[i] = code;
      } else {
        c.wTagLo[i] = pageLo;
        c.wTagHi[i] = hi;
      }
    }
  }
  return page + (lo & 0xfff);
}

/** The code page for instruction fetch at linear (lo, hi) (exec TLB, else a walk). */
export function fetchPage(c: Cpu, lo: number, hi: number): CodePage {
  const i = (lo >>> 12) & TLB_MASK;
  if (c.xTagLo[i] === (lo & -4096) && c.xTagHi[i] === hi) return c.xPage[i]!;
  if (!isCanonical(c, hi)) return gp(c, 0);
  const page = walk(c, lo, hi, ACC_EXEC);
  if (walkLarge) c.tlbLarge = true;
  const cp = codePageFor(c, page / 4096);
  c.xTagLo[i] = lo & -4096;
  c.xTagHi[i] = hi;
  c.xPage[i] = cp;
  return cp;
}

// ---------------------------------------------------------------- data watch

/**
 * Record data-slot hits for an access of `size` bytes at (lo, hi) that stays inside one page:
 * the debugger's slots in c.dataHit bits 0–3, the guest's DR0–DR3 in bits 4–7.
 */
function watchCheck(c: Cpu, lo: number, hi: number, size: number, write: boolean): void {
  const off = lo & 0xfff;
  for (let k = 0; k < 4; k++) {
    const t = c.watchType[k];
    if (t === 0 || (t === 2 && !write)) continue;
    const wlo = c.watchLo[k];
    if (c.watchHi[k] !== hi || (wlo & -4096) !== (lo & -4096)) continue;
    const wo = wlo & 0xfff;
    if (off < wo + c.watchLen[k] && wo < off + size) c.dataHit |= 1 << k;
  }
  guestWatchCheck(c, lo, hi, size, write);
}

// ---------------------------------------------------------------- slow paths

/** Linear address plus a small non-negative delta, carrying into the high word. */
function nextLo(lo: number, d: number): number {
  return (lo + d) | 0;
}
function nextHi(lo: number, hi: number, d: number): number {
  return (lo >>> 0) + d > 0xffffffff ? (hi + 1) | 0 : hi;
}

/** Read `size` bytes (1, 2, 4, 8); for 8 returns the low word and sets c.mhi. */
function readSlow(c: Cpu, lo: number, hi: number, size: number, acc: number): number {
  const off = lo & 0xfff;
  if (off + size <= 4096) {
    const gpa = translate(c, lo, hi, acc);
    if (c.watching) watchCheck(c, lo, hi, size, false);
    if (size === 8) {
      c.mhi = physRead(c, gpa + 4, 4);
      return physRead(c, gpa, 4);
    }
    return physRead(c, gpa, size);
  }
  // Crosses a page: translate both pages before touching anything.
  const n1 = 4096 - off;
  const lo2 = nextLo(lo, n1);
  const hi2 = nextHi(lo, hi, n1);
  const gpa1 = translate(c, lo, hi, acc);
  const gpa2 = translate(c, lo2, hi2, acc);
  if (c.watching) {
    watchCheck(c, lo, hi, n1, false);
    watchCheck(c, lo2, hi2, size - n1, false);
  }
  let wlo = 0;
  let whi = 0;
  for (let k = 0; k < size; k++) {
    const b = physRead(c, k < n1 ? gpa1 + k : gpa2 + (k - n1), 1);
    if (k < 4) wlo |= b << (8 * k);
    else whi |= b << (8 * (k - 4));
  }
  c.mhi = whi;
  return wlo;
}

function writeSlow(c: Cpu, lo: number, hi: number, size: number, vlo: number, vhi: number): void {
  const off = lo & 0xfff;
  const i = (lo >>> 12) & TLB_MASK;
  if (off + size <= 4096 && c.sTagLo[i] === (lo & -4096) && c.sTagHi[i] === hi) {
    // Writable, but the page holds code or is watched.
    const v = c.tlbView[i];
    const p = c.tlbOff[i] + off;
    if (size === 8) {
      v.setInt32(p, vlo, true);
      v.setInt32(p + 4, vhi, true);
    } else if (size === 4) v.setInt32(p, vlo, true);
    else if (size === 2) v.setUint16(p, vlo, true);
    else v.setUint8(p, vlo);
    const code = c.tlbCode[i];
    if (code !== null && (code.mask & chunkMask(off, off + size)) !== 0) noteCodeStore(c, c.tlbPpn[i] * 4096 + off, size);
    if (c.watching) watchCheck(c, lo, hi, size, true);
    return;
  }
  if (off + size <= 4096) {
    const gpa = translate(c, lo, hi, ACC_WRITE);
    if (size === 8) {
      physWrite(c, gpa, 4, vlo);
      physWrite(c, gpa + 4, 4, vhi);
    } else {
      physWrite(c, gpa, size, vlo);
    }
    if (c.watching) watchCheck(c, lo, hi, size, true);
    return;
  }
  const n1 = 4096 - off;
  const lo2 = nextLo(lo, n1);
  const hi2 = nextHi(lo, hi, n1);
  const gpa1 = translate(c, lo, hi, ACC_WRITE);
  const gpa2 = translate(c, lo2, hi2, ACC_WRITE);
  for (let k = 0; k < size; k++) {
    const b = (k < 4 ? vlo >>> (8 * k) : vhi >>> (8 * (k - 4))) & 0xff;
    physWrite(c, k < n1 ? gpa1 + k : gpa2 + (k - n1), 1, b);
  }
  if (c.watching) {
    watchCheck(c, lo, hi, n1, true);
    watchCheck(c, lo2, hi2, size - n1, true);
  }
}

// ---------------------------------------------------------------- fast accessors

export function rd8(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  if (c.rTagLo[i] === (lo & -4096) && c.rTagHi[i] === hi) return c.tlbView[i].getUint8(c.tlbOff[i] + (lo & 0xfff));
  return readSlow(c, lo, hi, 1, ACC_READ);
}

export function rd16(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.rTagLo[i] === (lo & -4096) && c.rTagHi[i] === hi && o <= 4094) return c.tlbView[i].getUint16(c.tlbOff[i] + o, true);
  return readSlow(c, lo, hi, 2, ACC_READ);
}

export function rd32(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.rTagLo[i] === (lo & -4096) && c.rTagHi[i] === hi && o <= 4092) return c.tlbView[i].getInt32(c.tlbOff[i] + o, true);
  return readSlow(c, lo, hi, 4, ACC_READ);
}

/** Reads 8 bytes: returns the low word, the high word goes to c.mhi. */
export function rd64(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.rTagLo[i] === (lo & -4096) && c.rTagHi[i] === hi && o <= 4088) {
    const v = c.tlbView[i];
    const p = c.tlbOff[i] + o;
    c.mhi = v.getInt32(p + 4, true);
    return v.getInt32(p, true);
  }
  return readSlow(c, lo, hi, 8, ACC_READ);
}

/** Reads for a read-modify-write: faults now if the later write would, so the write cannot. */
export function rdw8(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi) return c.tlbView[i].getUint8(c.tlbOff[i] + (lo & 0xfff));
  return readSlow(c, lo, hi, 1, ACC_WRITE);
}

export function rdw16(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi && o <= 4094) return c.tlbView[i].getUint16(c.tlbOff[i] + o, true);
  return readSlow(c, lo, hi, 2, ACC_WRITE);
}

export function rdw32(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi && o <= 4092) return c.tlbView[i].getInt32(c.tlbOff[i] + o, true);
  return readSlow(c, lo, hi, 4, ACC_WRITE);
}

export function rdw64(c: Cpu, lo: number, hi: number): number {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi && o <= 4088) {
    const v = c.tlbView[i];
    const p = c.tlbOff[i] + o;
    c.mhi = v.getInt32(p + 4, true);
    return v.getInt32(p, true);
  }
  return readSlow(c, lo, hi, 8, ACC_WRITE);
}

export function wr8(c: Cpu, lo: number, hi: number, v: number): void {
  const i = (lo >>> 12) & TLB_MASK;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi) c.tlbView[i].setUint8(c.tlbOff[i] + (lo & 0xfff), v);
  else writeSlow(c, lo, hi, 1, v, 0);
}

export function wr16(c: Cpu, lo: number, hi: number, v: number): void {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi && o <= 4094) c.tlbView[i].setUint16(c.tlbOff[i] + o, v, true);
  else writeSlow(c, lo, hi, 2, v, 0);
}

export function wr32(c: Cpu, lo: number, hi: number, v: number): void {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi && o <= 4092) c.tlbView[i].setInt32(c.tlbOff[i] + o, v, true);
  else writeSlow(c, lo, hi, 4, v, 0);
}

export function wr64(c: Cpu, lo: number, hi: number, vlo: number, vhi: number): void {
  const i = (lo >>> 12) & TLB_MASK;
  const o = lo & 0xfff;
  if (c.wTagLo[i] === (lo & -4096) && c.wTagHi[i] === hi && o <= 4088) {
    const v = c.tlbView[i];
    const p = c.tlbOff[i] + o;
    v.setInt32(p, vlo, true);
    v.setInt32(p + 4, vhi, true);
  } else {
    writeSlow(c, lo, hi, 8, vlo, vhi);
  }
}

/** Read by size (1, 2, 4; 8 returns the low word and sets c.mhi). */
export function rdN(c: Cpu, lo: number, hi: number, size: number): number {
  return size === 8 ? rd64(c, lo, hi) : size === 4 ? rd32(c, lo, hi) : size === 2 ? rd16(c, lo, hi) : rd8(c, lo, hi);
}

export function wrN(c: Cpu, lo: number, hi: number, size: number, vlo: number, vhi: number): void {
  if (size === 8) wr64(c, lo, hi, vlo, vhi);
  else if (size === 4) wr32(c, lo, hi, vlo);
  else if (size === 2) wr16(c, lo, hi, vlo & 0xffff);
  else wr8(c, lo, hi, vlo & 0xff);
}

/** Probe that `size` bytes at (lo, hi) can be written (faults now rather than mid-instruction). */
export function probeWrite(c: Cpu, lo: number, hi: number, size: number): void {
  const off = lo & 0xfff;
  translate(c, lo, hi, ACC_WRITE);
  if (off + size > 4096) translate(c, nextLo(lo, 4096 - off), nextHi(lo, hi, 4096 - off), ACC_WRITE);
}
