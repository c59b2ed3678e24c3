// Where partial reads cut a physical range: the embedded machine by its RAM regions, QEMU by the
// ranges its flat view maps (RAM, ROM, MMIO).
import { GuestMemory } from "../../../src/emu/memory";
import { parseFlatView, splitByMapped } from "../../../src/qemu/memory-map";

describe("GuestMemory.split", () => {
  const memory = GuestMemory.allocate([
    { gpa: 0, size: 0x2000, name: "low" },
    { gpa: 0x10000, size: 0x1000, name: "high" },
  ]);

  it("cuts a range into RAM pieces and the holes between, in order", () => {
    expect(memory.split(0x1f00n, 0xe200)).toEqual([
      { gpa: 0x1f00n, length: 0x100, ram: true },
      { gpa: 0x2000n, length: 0xe000, ram: false },
      { gpa: 0x10000n, length: 0x100, ram: true },
    ]);
    expect(memory.split(0x10800n, 0x1000)).toEqual([
      { gpa: 0x10800n, length: 0x800, ram: true },
      { gpa: 0x11000n, length: 0x800, ram: false },
    ]);
    expect(memory.split(1n << 60n, 16)).toEqual([{ gpa: 1n << 60n, length: 16, ram: false }]);
  });

  it("gives one zero-length piece for a zero-length range, RAM or not as its first byte", () => {
    expect(memory.split(0x100n, 0)).toEqual([{ gpa: 0x100n, length: 0, ram: true }]);
    expect(memory.split(0x5000n, 0)).toEqual([{ gpa: 0x5000n, length: 0, ram: false }]);
  });
});

describe("splitByMapped", () => {
  const flat = parseFlatView(` Root memory region: system
  0000000000000000-00000000000bffff (prio 0, ram): vmmdebug-ram
  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom
  0000000000100000-0000000003ffffff (prio 0, ram): vmmdebug-ram @0000000000100000
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
`);

  it("merges adjacent mapped ranges and lists the holes", () => {
    expect(splitByMapped(flat, 0xbff00n, 0x40200)).toEqual([
      { gpa: 0xbff00n, length: 0x20100, mapped: true },
      { gpa: 0xe0000n, length: 0x20000, mapped: false },
      { gpa: 0x100000n, length: 0x100, mapped: true },
    ]);
    expect(splitByMapped(flat, 0x3ffff00n, 0x200)).toEqual([
      { gpa: 0x3ffff00n, length: 0x100, mapped: true },
      { gpa: 0x4000000n, length: 0x100, mapped: false },
    ]);
    expect(splitByMapped(flat, 0xe0000n, 0)).toEqual([{ gpa: 0xe0000n, length: 0, mapped: false }]);
  });
});
