// The x87 helpers the backends share (tags, stack order) and the SDK's 80-bit conversions.
import { x86Fp } from "../../../src/core";
import { x87FromNumber, x87Parts, x87ToNumber, xmmFromBigint, xmmToBigint } from "../../../src/client";

const f80 = (v: bigint) => x86Fp.bigintToBytes(v, 10);

describe("x87 tags", () => {
  it("classifies values as FXRSTOR derives the full tag: valid, zero, special (NaN, infinity, denormal, unnormal)", () => {
    expect(x86Fp.x87TagOf(f80(0x3fff_8000_0000_0000_0000n))).toBe(x86Fp.TAG_VALID); // 1.0
    expect(x86Fp.x87TagOf(f80(0x8000_0000_0000_0000_0000n))).toBe(x86Fp.TAG_ZERO); // -0
    expect(x86Fp.x87TagOf(f80(0x7fff_8000_0000_0000_0000n))).toBe(x86Fp.TAG_SPECIAL); // +inf
    expect(x86Fp.x87TagOf(f80(0xffff_c000_0000_0000_0000n))).toBe(x86Fp.TAG_SPECIAL); // QNaN
    expect(x86Fp.x87TagOf(f80(0x0000_0000_0000_0000_0001n))).toBe(x86Fp.TAG_SPECIAL); // denormal
    expect(x86Fp.x87TagOf(f80(0x3fff_4000_0000_0000_0000n))).toBe(x86Fp.TAG_SPECIAL); // unnormal
  });

  it("keeps the empty registers of a tag word and recomputes the others; abridges it", () => {
    const physical = [0n, 0x3fff_8000_0000_0000_0000n, 0x7fff_8000_0000_0000_0000n, 0n, 0n, 0n, 0n, 0n].map(f80);
    // R0 zero, R1 "special" claimed (really valid), R2 valid claimed (really special), R3-R7 empty.
    const ftw = 0b11_11_11_11_11_00_10_00;
    expect(x86Fp.normalizeTagWord(ftw, physical)).toBe(0b11_11_11_11_11_10_00_01);
    expect(x86Fp.abridgedTag(ftw)).toBe(0b0000_0111);
    expect(x86Fp.fullTagWord(physical, (i) => i > 2)).toBe(0b11_11_11_11_11_10_00_01);
  });

  it("maps ST(i) to R((TOP + i) mod 8) and back", () => {
    const st = Array.from({ length: 8 }, (_, i) => f80(BigInt(i)));
    const fsw = 5 << 11;
    const physical = x86Fp.stackToPhysical(st, fsw);
    expect(physical[5]).toBe(st[0]);
    expect(physical[4]).toBe(st[7]);
    expect(x86Fp.physicalToStack(physical, fsw)).toEqual(st);
  });
});

describe("the SDK's x87 and XMM conversions", () => {
  it("converts numbers to 80-bit values exactly and back", () => {
    for (const v of [1, -2.25, 0.1, Math.PI, 1e300, -1e-300, 5e-324, Number.MAX_VALUE, 2 ** -1022]) {
      expect(x87ToNumber(x87FromNumber(v))).toBe(v);
    }
    expect(x86Fp.bytesToBigint(x87FromNumber(1))).toBe(0x3fff_8000_0000_0000_0000n);
    expect(x86Fp.bytesToBigint(x87FromNumber(-2.25))).toBe(0xc000_9000_0000_0000_0000n);
    expect(x86Fp.bytesToBigint(x87FromNumber(0))).toBe(0n);
    expect(Object.is(x87ToNumber(x87FromNumber(-0)), -0)).toBe(true);
    expect(x87ToNumber(x87FromNumber(Infinity))).toBe(Infinity);
    expect(x87ToNumber(x87FromNumber(-Infinity))).toBe(-Infinity);
    expect(x87ToNumber(x87FromNumber(NaN))).toBeNaN();
    expect(x87Parts(x87FromNumber(NaN)).significand >> 62n).toBe(3n); // a quiet NaN
    // Beyond the double range: 80-bit extremes read as infinity or zero.
    expect(x87ToNumber(f80(0x7ffe_8000_0000_0000_0000n))).toBe(Infinity);
    expect(x87ToNumber(f80(0x0001_8000_0000_0000_0000n))).toBe(0);
    expect(x87ToNumber(f80(0x3fff_4000_0000_0000_0000n))).toBeNaN(); // unnormal
    expect(() => x87ToNumber(new Uint8Array(8))).toThrow(/10 bytes/);
  });

  it("turns XMM bytes into a 128-bit value and back, little-endian", () => {
    const v = 0x0f0e0d0c_0b0a0908_07060504_03020100n;
    const b = xmmFromBigint(v);
    expect(Array.from(b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(xmmToBigint(b)).toBe(v);
    expect(xmmToBigint(xmmFromBigint(-1n))).toBe((1n << 128n) - 1n);
  });
});

describe("QEMU's FP state", () => {
  // Imported here (not at the top) to keep the core tests free of the QEMU backend's modules.
  const { parseInfoRegistersAbridgedTag } = require("../../../src/qemu/x86-segments") as typeof import("../../../src/qemu/x86-segments");
  const { x86FpFromQemu } = require("../../../src/qemu/registers") as typeof import("../../../src/qemu/registers");

  it("takes the abridged tag from `info registers` and rotates QEMU's physical st0-st7 by TOP", () => {
    const text = "EFER=0000000000000d00\nFCW=037f FSW=3000 [ST=6] FTW=c0 MXCSR=00001f80\nFPR0=0000000000000000 0000";
    expect(parseInfoRegistersAbridgedTag(text)).toBe(0xc0);
    expect(() => parseInfoRegistersAbridgedTag("FCW=037f")).toThrow(/no FTW/);
    const regs = new Map<string, bigint>([
      ...Array.from({ length: 8 }, (_, i): [string, bigint] => [`st${i}`, 0n]),
      ...Array.from({ length: 16 }, (_, i): [string, bigint] => [`xmm${i}`, BigInt(i)]),
      ["fstat", 0x3000n],
      ["fctrl", 0x37fn],
      ["mxcsr", 0x1f80n],
    ]);
    regs.set("st6", 0x4000_c90f_daa2_2168_c235n);
    regs.set("st7", 0x3fff_8000_0000_0000_0000n);
    const fp = x86FpFromQemu(regs, 0xc0);
    expect(x87ToNumber(fp.st[0])).toBe(Math.PI);
    expect(x87ToNumber(fp.st[1])).toBe(1);
    expect(fp.ftw).toBe(0x0fff);
    expect(xmmToBigint(fp.xmm[9])).toBe(9n);
    expect({ fcw: fp.fcw, fsw: fp.fsw, mxcsr: fp.mxcsr, fop: fp.fop, xcr0: fp.xcr0 }).toEqual({ fcw: 0x37f, fsw: 0x3000, mxcsr: 0x1f80, fop: 0, xcr0: undefined });
  });
});
