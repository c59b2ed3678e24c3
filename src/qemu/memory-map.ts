// Where QEMU maps guest RAM and devices, read from its own flat view of the system address space
// (`info mtree -f`), and where each RAM range sits in the RAM backend (the shared file).
import { checkedLength, type MemoryRegion } from "../core";

/** One range of the system address space as QEMU's flat view lists it. */
export interface FlatRange {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /** "ram", "rom", "romd", "i/o" … */
  kind: string;
  name: string;
  /** Offset inside the named memory region (its backing block for RAM). */
  offset: bigint;
}

/** A guest RAM range and its offset in the RAM backend. */
export interface RamRange extends MemoryRegion {
  fileOffset: bigint;
}

export interface QemuMemoryMap {
  /** Guest RAM of the machine's main RAM block (the memory backend). */
  ram: RamRange[];
  /** Every mapped range (RAM, ROM, MMIO): accesses outside all of them are refused. */
  mapped: FlatRange[];
}

const LINE = /^\s*([0-9a-f]{16})-([0-9a-f]{16}) \(prio -?\d+, ([^)]+)\): (\S+)(?: @([0-9a-f]{16}))?/i;

/** Parses the `Root memory region: system` flat view of `info mtree -f`. */
export function parseFlatView(text: string): FlatRange[] {
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => l.trim() === "Root memory region: system");
  if (at < 0) throw new Error('QEMU\'s "info mtree -f" has no flat view of the system memory region');
  const out: FlatRange[] = [];
  for (const line of lines.slice(at + 1)) {
    const m = LINE.exec(line);
    if (!m) {
      if (line.trim() === "" || /^\S/.test(line)) break; // end of this flat view
      continue;
    }
    out.push({
      start: BigInt("0x" + m[1]),
      end: BigInt("0x" + m[2]) + 1n,
      kind: m[3],
      name: m[4],
      offset: m[5] ? BigInt("0x" + m[5]) : 0n,
    });
  }
  if (out.length === 0) throw new Error("QEMU's system flat view lists no ranges");
  return out;
}

/**
 * The machine's guest RAM: the ranges of its largest RAM block (the one backed by the shared
 * file when there is one), merged where they are contiguous in both spaces.
 */
export function memoryMapOf(flat: readonly FlatRange[]): QemuMemoryMap {
  const sizes = new Map<string, bigint>();
  for (const r of flat) if (r.kind === "ram") sizes.set(r.name, (sizes.get(r.name) ?? 0n) + (r.end - r.start));
  const main = [...sizes].sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : 0))[0]?.[0];
  const ram: RamRange[] = [];
  for (const r of flat) {
    if (r.kind !== "ram" || r.name !== main) continue;
    const last = ram[ram.length - 1];
    if (last && last.gpa + last.size === r.start && last.fileOffset + last.size === r.offset) {
      last.size += r.end - r.start;
    } else {
      ram.push({ gpa: r.start, size: r.end - r.start, name: r.name, fileOffset: r.offset });
    }
  }
  return { ram, mapped: [...flat] };
}

/**
 * Splits [gpa, gpa+length) into pieces that are wholly inside one RAM range or wholly outside RAM.
 * A zero-length range is one zero-length piece placed as its first byte is (`checkedLength`).
 */
export function splitByRam(
  ranges: readonly RamRange[],
  gpa: bigint,
  length: number,
): { gpa: bigint; length: number; fileOffset?: bigint }[] {
  const out: { gpa: bigint; length: number; fileOffset?: bigint }[] = [];
  let at = gpa;
  const end = gpa + BigInt(checkedLength(length));
  while (at < end) {
    const r = ranges.find((x) => at >= x.gpa && at < x.gpa + x.size);
    if (r) {
      const n = Number((end < r.gpa + r.size ? end : r.gpa + r.size) - at);
      out.push({ gpa: at, length: n, fileOffset: r.fileOffset + (at - r.gpa) });
      at += BigInt(n);
    } else {
      const next = ranges.filter((x) => x.gpa > at).reduce<bigint | undefined>((m, x) => (m === undefined || x.gpa < m ? x.gpa : m), undefined);
      const stop = next !== undefined && next < end ? next : end;
      out.push({ gpa: at, length: Number(stop - at) });
      at = stop;
    }
  }
  if (length === 0) out[0].length = 0;
  return out;
}

/** Whether every byte of [gpa, gpa+length) lies in some mapped range (a zero-length range: its first byte). */
export function isMapped(mapped: readonly FlatRange[], gpa: bigint, length: number): boolean {
  let at = gpa;
  const end = gpa + BigInt(checkedLength(length));
  for (let guard = 0; at < end && guard < 100_000; guard++) {
    const r = mapped.find((x) => at >= x.start && at < x.end);
    if (!r) return false;
    at = r.end;
  }
  return at >= end;
}

/**
 * [gpa, gpa+length) cut into pieces wholly inside mapped ranges (RAM, ROM, MMIO) or wholly
 * outside them, in order. A zero-length range gives one zero-length piece, placed as its first byte.
 */
export function splitByMapped(
  mapped: readonly FlatRange[],
  gpa: bigint,
  length: number,
): { gpa: bigint; length: number; mapped: boolean }[] {
  const out: { gpa: bigint; length: number; mapped: boolean }[] = [];
  let at = gpa;
  const end = gpa + BigInt(checkedLength(length));
  while (at < end) {
    const r = mapped.find((x) => at >= x.start && at < x.end);
    if (r) {
      const stop = end < r.end ? end : r.end;
      const last = out[out.length - 1];
      if (last?.mapped) last.length += Number(stop - at);
      else out.push({ gpa: at, length: Number(stop - at), mapped: true });
      at = stop;
    } else {
      const next = mapped.filter((x) => x.start > at).reduce<bigint | undefined>((m, x) => (m === undefined || x.start < m ? x.start : m), undefined);
      const stop = next !== undefined && next < end ? next : end;
      out.push({ gpa: at, length: Number(stop - at), mapped: false });
      at = stop;
    }
  }
  if (length === 0) out[0].length = 0;
  return out;
}
