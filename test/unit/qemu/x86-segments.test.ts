import { parseInfoRegistersSegments, qemuFlagsToAttributes } from "../../../src/qemu/x86-segments";

const LONG_MODE = `CPU#0
RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000
RIP=ffffffff801010af RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r
CS =0008 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]\r
SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
DS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
FS =0000 0000000012340000 00000000 00000000
GS =0000 ffff888000000000 00000000 00000000
LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT
TR =0000 0000000000000000 0000ffff 00008b00 DPL=0 TSS64-busy
`;

describe("QEMU info registers segments", () => {
  it("packs QEMU descriptor flags as OpenVMM attributes", () => {
    expect(qemuFlagsToAttributes(0x00af9b00)).toBe(0xa09b);
    expect(qemuFlagsToAttributes(0x00cf9300)).toBe(0xc093);
    expect(qemuFlagsToAttributes(0x00009300)).toBe(0x0093);
  });

  it("reads selector, base, limit and attributes of all six segments in long mode", () => {
    const s = parseInfoRegistersSegments(LONG_MODE);
    expect(s.cs).toEqual({ selector: 8, base: 0n, limit: 0xffffffff, attributes: 0xa09b });
    expect(s.ss).toEqual({ selector: 0x10, base: 0n, limit: 0xffffffff, attributes: 0xc093 });
    expect(s.fs.base).toBe(0x12340000n);
    expect(s.gs.base).toBe(0xffff888000000000n);
  });

  it("reads the 8-digit bases of legacy modes", () => {
    const s = parseInfoRegistersSegments(
      ["ES", "CS", "SS", "DS", "FS", "GS"].map((n) => `${n} =f000 ffff0000 0000ffff 00009b00`).join("\n"),
    );
    expect(s.cs).toEqual({ selector: 0xf000, base: 0xffff0000n, limit: 0xffff, attributes: 0x9b });
  });

  it("names a missing segment line", () => {
    expect(() => parseInfoRegistersSegments("ES =0000 00000000 0000ffff 00009300")).toThrow(/no CS line/);
  });
});
