// Sparse guest RAM: declared regions, each a SharedArrayBuffer shared with the VP worker.
import { checkedLength, errors } from "../core";
import type { RamRegion } from "./bus";

export interface RegionSpec {
  gpa: number;
  size: number;
  name: string;
}

/** Guest RAM as the machine (server thread) and the worker both see it. */
export class GuestMemory {
  readonly regions: readonly RamRegion[];
  private last: RamRegion | undefined;

  constructor(regions: readonly RamRegion[]) {
    this.regions = [...regions].sort((a, b) => a.gpa - b.gpa);
  }

  /** Allocates fresh zeroed shared buffers for the given layout. */
  static allocate(specs: readonly RegionSpec[]): GuestMemory {
    for (const s of specs) {
      if (s.gpa % 4096 !== 0 || s.size % 4096 !== 0 || s.size <= 0) {
        throw new Error(`region ${s.name}: gpa and size must be positive multiples of 4096`);
      }
    }
    const sorted = [...specs].sort((a, b) => a.gpa - b.gpa);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i - 1].gpa + sorted[i - 1].size > sorted[i].gpa) throw new Error(`region ${sorted[i].name} overlaps`);
    }
    return new GuestMemory(
      specs.map((s) => ({ gpa: s.gpa, size: s.size, name: s.name, bytes: new Uint8Array(new SharedArrayBuffer(s.size)) })),
    );
  }

  regionAt(gpa: number): RamRegion | undefined {
    const last = this.last;
    if (last && gpa >= last.gpa && gpa < last.gpa + last.size) return last;
    for (const r of this.regions) {
      if (gpa >= r.gpa && gpa < r.gpa + r.size) return (this.last = r);
    }
    return undefined;
  }

  /**
   * The byte views of [gpa, gpa+length), one per region it crosses, or GPA_UNMAPPED (naming the
   * whole range) if any byte is not RAM. A zero-length range is checked as its first byte
   * (`checkedLength`) and gives no views.
   */
  pieces(gpa: bigint, length: number): { bytes: Uint8Array; offset: number; length: number }[] {
    const out: { bytes: Uint8Array; offset: number; length: number }[] = [];
    const span = checkedLength(length);
    if (gpa < 0n || gpa + BigInt(span) > 1n << 52n) throw errors.gpaUnmapped(gpa, BigInt(length));
    let at = Number(gpa);
    let left = span;
    while (left > 0) {
      const r = this.regionAt(at);
      if (!r) throw errors.gpaUnmapped(gpa, BigInt(length));
      const n = Math.min(left, r.gpa + r.size - at);
      out.push({ bytes: r.bytes, offset: at - r.gpa, length: n });
      at += n;
      left -= n;
    }
    return length === 0 ? [] : out;
  }

  /**
   * [gpa, gpa+length) cut at region bounds into RAM pieces and the holes between them, in order
   * (a partial read reads the first and lists the others). A zero-length range gives one
   * zero-length piece, RAM or not as its first byte is.
   */
  split(gpa: bigint, length: number): { gpa: bigint; length: number; ram: boolean }[] {
    const out: { gpa: bigint; length: number; ram: boolean }[] = [];
    const span = checkedLength(length);
    const limit = 1n << 52n;
    let at = gpa;
    const end = gpa + BigInt(span);
    while (at < end) {
      const r = at < limit ? this.regionAt(Number(at)) : undefined;
      if (r) {
        const stop = BigInt(r.gpa + r.size) < end ? BigInt(r.gpa + r.size) : end;
        out.push({ gpa: at, length: Number(stop - at), ram: true });
        at = stop;
        continue;
      }
      // Up to the next region (or the end).
      let next = end;
      for (const x of this.regions) if (BigInt(x.gpa) > at && BigInt(x.gpa) < next) next = BigInt(x.gpa);
      out.push({ gpa: at, length: Number(next - at), ram: false });
      at = next;
    }
    if (length === 0) out[0].length = 0;
    return out;
  }

  /** Copies [gpa, gpa+length) out of guest RAM; throws GPA_UNMAPPED if any byte is not RAM. */
  read(gpa: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(gpa, out);
    return out;
  }

  readInto(gpa: bigint, out: Uint8Array): void {
    let o = 0;
    for (const p of this.pieces(gpa, out.length)) {
      out.set(p.bytes.subarray(p.offset, p.offset + p.length), o);
      o += p.length;
    }
  }

  /** Writes all of `data` or nothing (every byte is checked first). */
  write(gpa: bigint, data: Uint8Array): void {
    let o = 0;
    for (const p of this.pieces(gpa, data.length)) {
      p.bytes.set(data.subarray(o, o + p.length), p.offset);
      o += p.length;
    }
  }

  /** A little-endian u64 at `gpa`, or undefined when it is not RAM (page-table reads). */
  readU64(gpa: bigint): bigint | undefined {
    if (gpa < 0n || gpa >= 1n << 52n) return undefined;
    const at = Number(gpa);
    const r = this.regionAt(at);
    if (!r || at + 8 > r.gpa + r.size) return undefined;
    const o = at - r.gpa;
    const b = r.bytes;
    const lo = (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
    const hi = (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) >>> 0;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
}
