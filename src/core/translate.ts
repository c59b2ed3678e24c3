// Splits a guest-virtual range into guest-physical pieces, page by page, before any access.
import { Code, VmmError, errors, hex } from "./errors";
import { checkedLength } from "./memory-access";

export interface GpaPiece {
  gpa: bigint;
  length: number;
}

import type { PageTranslation } from "./translation";

export type { PageTranslation };

/**
 * Translates every page of [gva, gva+length) with `translate` and returns the physical pieces
 * in order; throws GVA_NOT_MAPPED (naming the first unmapped address) before anything is accessed.
 * A zero-length range is translated as its first byte (`checkedLength`) and gives one zero-length
 * piece at that byte's GPA, so the backend checks that GPA as it would a one-byte access.
 */
export function translateRange(
  vp: number,
  gva: bigint,
  length: number,
  translate: (gva: bigint) => PageTranslation,
): GpaPiece[] {
  const pieces: GpaPiece[] = [];
  const span = checkedLength(length);
  let done = 0;
  while (done < span) {
    const at = (gva + BigInt(done)) & 0xffff_ffff_ffff_ffffn;
    const t = translate(at);
    if (!t.ok) throw translationError(vp, at, t);
    const inPage = Number(t.pageSize - (t.gpa & (t.pageSize - 1n)));
    const n = Math.min(inPage, span - done);
    const last = pieces[pieces.length - 1];
    if (last && last.gpa + BigInt(last.length) === t.gpa) last.length += n;
    else pieces.push({ gpa: t.gpa, length: n });
    done += n;
  }
  if (length === 0) pieces[0].length = 0;
  return pieces;
}

/** The error an access gets at `gva` when its page does not translate. */
function translationError(vp: number, gva: bigint, t: { detail: string; nonCanonical?: boolean }): VmmError {
  if (t.nonCanonical) {
    return new VmmError(Code.InvalidArgument, "GVA_NON_CANONICAL", `guest virtual address ${hex(gva)} is not canonical (${t.detail})`, {
      vp: String(vp),
      gva: hex(gva),
    });
  }
  return errors.gvaNotMapped(vp, gva, t.detail);
}

/** A piece of a partial read: physical bytes to read, or bytes that cannot be read and why. */
export type ReadPiece = GpaPiece | { length: number; error: VmmError };

/**
 * As `translateRange`, but a page that does not translate becomes an unreadable piece (to the
 * end of its 4 KiB page) carrying the error `translateRange` would throw, instead of failing
 * the range. A zero-length range gives one zero-length piece (readable or not) for its first byte.
 */
export function translateRangePartial(
  vp: number,
  gva: bigint,
  length: number,
  translate: (gva: bigint) => PageTranslation,
): ReadPiece[] {
  const pieces: ReadPiece[] = [];
  const span = checkedLength(length);
  let done = 0;
  while (done < span) {
    const at = (gva + BigInt(done)) & 0xffff_ffff_ffff_ffffn;
    const t = translate(at);
    if (!t.ok) {
      const n = Math.min(Number(4096n - (at & 0xfffn)), span - done);
      pieces.push({ length: n, error: translationError(vp, at, t) });
      done += n;
      continue;
    }
    const inPage = Number(t.pageSize - (t.gpa & (t.pageSize - 1n)));
    const n = Math.min(inPage, span - done);
    const last = pieces[pieces.length - 1];
    if (last && !("error" in last) && last.gpa + BigInt(last.length) === t.gpa) last.length += n;
    else pieces.push({ gpa: t.gpa, length: n });
    done += n;
  }
  if (length === 0) pieces[0].length = 0;
  return pieces;
}

/** Bytes of a partial read that could not be read (they read as zero), and the error reading them gives. */
export interface UnreadablePiece {
  /** From the start of the read. */
  offset: number;
  length: number;
  error: VmmError;
}

export interface PartialRead {
  /** Every byte of the range; unreadable ones are zero. */
  data: Uint8Array;
  /** In address order, adjacent ranges with the same reason merged. */
  unreadable: UnreadablePiece[];
}

/**
 * Puts a partial read together in address order: readable bytes as they come, unreadable ranges
 * merged with the one before when adjacent with the same reason (GPA_UNMAPPED only when the
 * physical ranges are contiguous too; its error then names the merged range). The first range's
 * error names the first unreadable address, as the failing read would.
 */
export class PartialReadBuilder {
  readonly data: Uint8Array;
  private offset = 0;
  private readonly unreadable: (UnreadablePiece & { gpa?: bigint })[] = [];

  constructor(length: number) {
    this.data = new Uint8Array(length);
  }

  /** The next `bytes.length` bytes. */
  put(bytes: Uint8Array): void {
    this.data.set(bytes, this.offset);
    this.offset += bytes.length;
  }

  /** The view the next `length` bytes go into (then `advance(length)`). */
  view(length: number): Uint8Array {
    return this.data.subarray(this.offset, this.offset + length);
  }

  advance(length: number): void {
    this.offset += length;
  }

  /** The next `length` bytes cannot be read (GVA_NOT_MAPPED, GVA_NON_CANONICAL). */
  skip(length: number, error: VmmError): void {
    this.add({ offset: this.offset, length, error });
  }

  /** The next `length` bytes, at `gpa`, are not RAM (GPA_UNMAPPED naming them). */
  skipGpa(gpa: bigint, length: number): void {
    this.add({ offset: this.offset, length, error: errors.gpaUnmapped(gpa, BigInt(length)), gpa });
  }

  private add(r: UnreadablePiece & { gpa?: bigint }): void {
    this.offset += r.length;
    const last = this.unreadable[this.unreadable.length - 1];
    if (last && last.offset + last.length === r.offset && last.error.reason === r.error.reason) {
      if (r.gpa === undefined) {
        last.length += r.length;
        return;
      }
      if (last.gpa !== undefined && last.gpa + BigInt(last.length) === r.gpa) {
        last.length += r.length;
        last.error = errors.gpaUnmapped(last.gpa, BigInt(last.length));
        return;
      }
    }
    this.unreadable.push(r);
  }

  result(): PartialRead {
    return { data: this.data, unreadable: this.unreadable.map(({ offset, length, error }) => ({ offset, length, error })) };
  }
}
