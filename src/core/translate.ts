// Splits a guest-virtual range into guest-physical pieces, page by page, before any access.
import { Code, VmmError, errors, hex } from "./errors";
import { checkedLength } from "./memory-access";

export interface GpaPiece {
  gpa: bigint;
  length: number;
}

export type PageTranslation =
  | { ok: true; gpa: bigint; pageSize: bigint }
  | { ok: false; detail: string; nonCanonical?: boolean };

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
    if (!t.ok) {
      if (t.nonCanonical) {
        throw new VmmError(
          Code.InvalidArgument,
          "GVA_NON_CANONICAL",
          `guest virtual address ${hex(at)} is not canonical (${t.detail})`,
          { vp: String(vp), gva: hex(at) },
        );
      }
      throw errors.gvaNotMapped(vp, at, t.detail);
    }
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
