import { qemuRamLayout, splitByRam } from "../../../src/qemu/memory-map";

const MIB = 1024 * 1024;

describe("QEMU RAM layout", () => {
  it("puts aarch64 virt RAM at 1 GiB", () => {
    expect(qemuRamLayout("aarch64", 128 * MIB)).toEqual([{ gpa: 0x4000_0000n, size: BigInt(128 * MIB), name: "ram", fileOffset: 0n }]);
  });

  it("leaves the VGA/ROM hole out of x86 RAM", () => {
    const r = qemuRamLayout("x86_64", 256 * MIB);
    expect(r.map((x) => [x.gpa, x.size, x.fileOffset])).toEqual([
      [0n, 0xa_0000n, 0n],
      [0x10_0000n, BigInt(256 * MIB) - 0x10_0000n, 0x10_0000n],
    ]);
  });

  it("splits q35 RAM above 2.75 GiB at 2 GiB and continues at 4 GiB", () => {
    const r = qemuRamLayout("x86_64", 3 * 1024 * MIB, "q35");
    expect(r[2]).toEqual({ gpa: 0x1_0000_0000n, size: 0x4000_0000n, name: "ram-high", fileOffset: 0x8000_0000n });
  });

  it("splits an access at RAM boundaries and marks the non-RAM part", () => {
    const r = qemuRamLayout("x86_64", 64 * MIB);
    expect(splitByRam(r, 0x9_fff0n, 0x20)).toEqual([
      { gpa: 0x9_fff0n, length: 0x10, fileOffset: 0x9_fff0n },
      { gpa: 0xa_0000n, length: 0x10 },
    ]);
  });
});
