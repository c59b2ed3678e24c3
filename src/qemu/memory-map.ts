// Where a QEMU machine puts guest RAM, and where each RAM range sits in the memory-backend file.
import type { Arch, MemoryRegion } from "../core";

/** A guest RAM range and its offset in the RAM backend (the shared file). */
export interface RamRange extends MemoryRegion {
  fileOffset: bigint;
}

const GIB = 1n << 30n;

/**
 * The RAM layout QEMU uses for `ramBytes` of RAM:
 * - aarch64 `virt`: one range at 0x4000_0000.
 * - x86 `q35` (and `pc`): RAM below 4 GiB up to the low-memory limit (2 GiB on q35 once RAM
 *   reaches 2.75 GiB; 3 GiB on pc once it reaches 3.5 GiB), the rest at 4 GiB. The legacy VGA
 *   window and ROM area 0xA0000–0xFFFFF are not RAM for a debugger: they go through the gdbstub.
 */
export function qemuRamLayout(arch: Arch, ramBytes: number, machine = "q35"): RamRange[] {
  const ram = BigInt(ramBytes);
  if (arch === "aarch64") return [{ gpa: 0x4000_0000n, size: ram, name: "ram", fileOffset: 0n }];
  const isPc = /^pc(-|$)/.test(machine);
  const lowLimit = isPc ? (ram >= 0xe000_0000n ? 0xc000_0000n : ram) : ram >= 0xb000_0000n ? 0x8000_0000n : ram;
  const ranges: RamRange[] = [{ gpa: 0n, size: lowLimit < 0xa_0000n ? lowLimit : 0xa_0000n, name: "ram-low", fileOffset: 0n }];
  if (lowLimit > 0x10_0000n) ranges.push({ gpa: 0x10_0000n, size: lowLimit - 0x10_0000n, name: "ram", fileOffset: 0x10_0000n });
  if (ram > lowLimit) ranges.push({ gpa: 4n * GIB, size: ram - lowLimit, name: "ram-high", fileOffset: lowLimit });
  return ranges;
}

/** Splits [gpa, gpa+length) into pieces that are wholly inside one RAM range or wholly outside RAM. */
export function splitByRam(
  ranges: readonly RamRange[],
  gpa: bigint,
  length: number,
): { gpa: bigint; length: number; fileOffset?: bigint }[] {
  const out: { gpa: bigint; length: number; fileOffset?: bigint }[] = [];
  let at = gpa;
  const end = gpa + BigInt(length);
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
  return out;
}
