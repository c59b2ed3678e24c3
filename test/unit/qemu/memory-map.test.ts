import { isMapped, memoryMapOf, parseFlatView, splitByRam } from "../../../src/qemu/memory-map";

// `info mtree -f` of qemu-system-x86_64 -machine q35 -m 64 with a memory-backend-file named vmmdebug-ram.
const Q35 = `FlatView #0
 AS "memory", root: system
 AS "cpu-memory-0", root: system
 Root memory region: system
  0000000000000000-00000000000bffff (prio 0, ram): vmmdebug-ram
  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom
  00000000000e0000-00000000000fffff (prio 0, rom): pc.bios @0000000000020000
  0000000000100000-0000000003ffffff (prio 0, ram): vmmdebug-ram @0000000000100000
  00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios

FlatView #1
 AS "I/O", root: io
 Root memory region: io
  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan
`;

describe("QEMU memory map", () => {
  const map = memoryMapOf(parseFlatView(Q35));

  it("takes guest RAM from the largest RAM block, with its offsets in the backend", () => {
    expect(map.ram).toEqual([
      { gpa: 0n, size: 0xc_0000n, name: "vmmdebug-ram", fileOffset: 0n },
      { gpa: 0x10_0000n, size: 0x3f0_0000n, name: "vmmdebug-ram", fileOffset: 0x10_0000n },
    ]);
  });

  it("reads only the system address space", () => {
    expect(map.mapped.some((r) => r.name === "dma-chan")).toBe(false);
    expect(map.mapped.some((r) => r.name === "ioapic")).toBe(true);
  });

  it("splits an access at RAM boundaries and marks the part outside RAM", () => {
    expect(splitByRam(map.ram, 0xb_fff0n, 0x20)).toEqual([
      { gpa: 0xb_fff0n, length: 0x10, fileOffset: 0xb_fff0n },
      { gpa: 0xc_0000n, length: 0x10 },
    ]);
  });

  it("knows which addresses nothing is mapped at", () => {
    expect(isMapped(map.mapped, 0xbfff0n, 0x20)).toBe(true); // RAM then ROM
    expect(isMapped(map.mapped, 0xfec0_0000n, 16)).toBe(true);
    expect(isMapped(map.mapped, 0x4000_0000n, 16)).toBe(false);
    expect(isMapped(map.mapped, 0x3ff_fff8n, 16)).toBe(false); // runs past the end of RAM
  });

  it("places a zero-length range as its first byte: one empty piece, mapped exactly when that byte is", () => {
    expect(splitByRam(map.ram, 0x1000n, 0)).toEqual([{ gpa: 0x1000n, length: 0, fileOffset: 0x1000n }]);
    expect(splitByRam(map.ram, 0xc_0000n, 0)).toEqual([{ gpa: 0xc_0000n, length: 0 }]);
    expect(splitByRam(map.ram, 0xffff_ffff_ffff_ffffn, 0)).toEqual([{ gpa: 0xffff_ffff_ffff_ffffn, length: 0 }]);
    expect(isMapped(map.mapped, 0xfec0_0000n, 0)).toBe(true);
    expect(isMapped(map.mapped, 0x4000_0000n, 0)).toBe(false);
    expect(isMapped(map.mapped, 0x400_0000n, 0)).toBe(false); // just past the end of RAM
    expect(isMapped(map.mapped, 0xffff_ffff_ffff_ffffn, 0)).toBe(false);
  });
});
