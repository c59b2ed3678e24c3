// Segment registers of an x86 vCPU from QEMU's `info registers` text (the gdbstub lacks them).
import type { SegmentRegister } from "../core";

export const SEGMENT_NAMES = ["es", "cs", "ss", "ds", "fs", "gs"] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];

/**
 * Converts QEMU's segment `flags` (the descriptor's high dword: type at 8, S 12, DPL 13-14,
 * P 15, limit 19:16, AVL 20, L 21, D/B 22, G 23) to OpenVMM's 16-bit attribute packing.
 */
export function qemuFlagsToAttributes(flags: number): number {
  return ((flags >>> 8) & 0xff) | (((flags >>> 20) & 0xf) << 12);
}

/**
 * Parses the segment lines of one CPU's `info registers` output, e.g.
 * `CS =0008 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]` (long mode: 16-digit base) or
 * `ES =0000 00000000 0000ffff 00009300` (legacy modes: 8-digit base).
 */
export function parseInfoRegistersSegments(text: string): Record<SegmentName, SegmentRegister> {
  const out: Partial<Record<SegmentName, SegmentRegister>> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^(ES|CS|SS|DS|FS|GS) =([0-9a-f]{4}) ([0-9a-f]{8}|[0-9a-f]{16}) ([0-9a-f]{8}) ([0-9a-f]{8})/i.exec(line);
    if (!m) continue;
    out[m[1].toLowerCase() as SegmentName] = {
      selector: parseInt(m[2], 16),
      base: BigInt("0x" + m[3]),
      limit: parseInt(m[4], 16),
      attributes: qemuFlagsToAttributes(parseInt(m[5], 16)),
    };
  }
  for (const name of SEGMENT_NAMES) {
    if (!out[name]) throw new Error(`QEMU's "info registers" output has no ${name.toUpperCase()} line`);
  }
  return out as Record<SegmentName, SegmentRegister>;
}

/**
 * The abridged x87 tag (bit i set: physical register R(i) is not empty) from the `FTW=` field of
 * `info registers` (`FCW=037f FSW=3000 [ST=6] FTW=c0 MXCSR=00001f80`). QEMU's gdbstub reads ftag
 * as 0, so the monitor is the only source of the tags.
 */
export function parseInfoRegistersAbridgedTag(text: string): number {
  const m = /\bFTW=([0-9a-f]{2})\b/i.exec(text);
  if (!m) throw new Error(`QEMU's "info registers" output has no FTW field`);
  return parseInt(m[1], 16);
}
