// Which hardware slots watch a byte range. A slot watches 1, 2, 4 or 8 bytes at an address
// aligned to its size. As Fuchsia's debug agent does for x86 watchpoints (AlignRange), a range no
// slot covers as it is gets the smallest aligned size that covers it whole — watching a few bytes
// more than asked, which the caller prints — and only a range that not even 8 aligned bytes
// cover is split over several slots.

export interface SlotRange {
  address: bigint;
  size: 1 | 2 | 4 | 8;
}

/** The one aligned slot covering [address, address+length), or undefined if none of `sizes` can. */
export function alignRange(address: bigint, length: number, sizes: readonly number[] = [1, 2, 4, 8]): SlotRange | undefined {
  if (length < 1) return undefined;
  const end = address + BigInt(length);
  for (const s of [1, 2, 4, 8] as const) {
    if (s < length || !sizes.includes(s)) continue;
    const base = address & ~BigInt(s - 1);
    if (base + BigInt(s) >= end) return { address: base, size: s };
  }
  return undefined;
}

/**
 * Aligned slots that together cover exactly [address, address+length) (the largest aligned
 * piece at each step, as gdb's x86 debug-register code splits a range).
 */
export function splitRange(address: bigint, length: number, sizes: readonly number[] = [1, 2, 4, 8]): SlotRange[] {
  const out: SlotRange[] = [];
  let at = address;
  const end = address + BigInt(length);
  while (at < end) {
    const left = end - at;
    const s = ([8, 4, 2, 1] as const).find((n) => sizes.includes(n) && BigInt(n) <= left && at % BigInt(n) === 0n);
    if (s === undefined) return [];
    out.push({ address: at, size: s });
    at += BigInt(s);
  }
  return out;
}
