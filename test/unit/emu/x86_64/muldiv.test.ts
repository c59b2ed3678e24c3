// MUL/IMUL vectors (from an x86-64 host) and DIV/IDIV vectors (exact arithmetic), including the
// 128-bit forms, and #DE for a zero divisor or a quotient that does not fit.
import { TestMachine } from "./harness.js";

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const STATUS = CF | PF | AF | ZF | SF | OF;
const RDX_FILL = 0x1111111111111111n;

/** [rax, rbx, rax after, rdx after, CF|OF after] — SF, ZF, AF, PF are undefined after a multiply. */
type MulVector = [string, string, string, string, number];

const MUL: Record<string, { code: Record<number, string>; vectors: Record<number, MulVector[]> }> = {

  "MUL r/m": {
    code: {
      8: "f6 e3 f4", // mul bl; hlt
      16: "66 f7 e3 f4", // mul bx; hlt
      32: "f7 e3 f4", // mul ebx; hlt
      64: "48 f7 e3 f4", // mul rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", "0x1111111111111111", 0],
        ["0x1", "0x1", "0x1", "0x1111111111111111", 0],
        ["0x80", "0x80", "0x4000", "0x1111111111111111", CF | OF],
        ["0x7f", "0x1", "0x7f", "0x1111111111111111", 0],
        ["0x80", "0xff", "0x7f80", "0x1111111111111111", CF | OF],
        ["0xff", "0x1", "0xff", "0x1111111111111111", 0],
        ["0x0", "0x1", "0x0", "0x1111111111111111", 0],
        ["0xff", "0xff", "0xfe01", "0x1111111111111111", CF | OF],
        ["0x7f", "0x80", "0x3f80", "0x1111111111111111", CF | OF],
      ],
      16: [
        ["0x0", "0x0", "0x0", "0x1111111111110000", 0],
        ["0x1", "0x1", "0x1", "0x1111111111110000", 0],
        ["0x8000", "0x8000", "0x0", "0x1111111111114000", CF | OF],
        ["0x7fff", "0x1", "0x7fff", "0x1111111111110000", 0],
        ["0x8000", "0xffff", "0x8000", "0x1111111111117fff", CF | OF],
        ["0xffff", "0x1", "0xffff", "0x1111111111110000", 0],
        ["0x0", "0x1", "0x0", "0x1111111111110000", 0],
        ["0xffff", "0xffff", "0x1", "0x111111111111fffe", CF | OF],
        ["0x7fff", "0x8000", "0x8000", "0x1111111111113fff", CF | OF],
      ],
      32: [
        ["0x0", "0x0", "0x0", "0x0", 0],
        ["0x1", "0x1", "0x1", "0x0", 0],
        ["0x80000000", "0x80000000", "0x0", "0x40000000", CF | OF],
        ["0x7fffffff", "0x1", "0x7fffffff", "0x0", 0],
        ["0x80000000", "0xffffffff", "0x80000000", "0x7fffffff", CF | OF],
        ["0xffffffff", "0x1", "0xffffffff", "0x0", 0],
        ["0x0", "0x1", "0x0", "0x0", 0],
        ["0xffffffff", "0xffffffff", "0x1", "0xfffffffe", CF | OF],
        ["0x7fffffff", "0x80000000", "0x80000000", "0x3fffffff", CF | OF],
      ],
      64: [
        ["0x0", "0x0", "0x0", "0x0", 0],
        ["0x1", "0x1", "0x1", "0x0", 0],
        ["0x8000000000000000", "0x8000000000000000", "0x0", "0x4000000000000000", CF | OF],
        ["0x7fffffffffffffff", "0x1", "0x7fffffffffffffff", "0x0", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x8000000000000000", "0x7fffffffffffffff", CF | OF],
        ["0xffffffffffffffff", "0x1", "0xffffffffffffffff", "0x0", 0],
        ["0x0", "0x1", "0x0", "0x0", 0],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0x1", "0xfffffffffffffffe", CF | OF],
        ["0x7fffffffffffffff", "0x8000000000000000", "0x8000000000000000", "0x3fffffffffffffff", CF | OF],
      ],
    },
  },
  "IMUL r/m (into rDX:rAX)": {
    code: {
      8: "f6 eb f4", // imul bl; hlt
      16: "66 f7 eb f4", // imul bx; hlt
      32: "f7 eb f4", // imul ebx; hlt
      64: "48 f7 eb f4", // imul rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", "0x1111111111111111", 0],
        ["0x1", "0x1", "0x1", "0x1111111111111111", 0],
        ["0x80", "0x80", "0x4000", "0x1111111111111111", CF | OF],
        ["0x7f", "0x1", "0x7f", "0x1111111111111111", 0],
        ["0x80", "0xff", "0x80", "0x1111111111111111", CF | OF],
        ["0xff", "0x1", "0xffff", "0x1111111111111111", 0],
        ["0x0", "0x1", "0x0", "0x1111111111111111", 0],
        ["0xff", "0xff", "0x1", "0x1111111111111111", 0],
        ["0x7f", "0x80", "0xc080", "0x1111111111111111", CF | OF],
      ],
      16: [
        ["0x0", "0x0", "0x0", "0x1111111111110000", 0],
        ["0x1", "0x1", "0x1", "0x1111111111110000", 0],
        ["0x8000", "0x8000", "0x0", "0x1111111111114000", CF | OF],
        ["0x7fff", "0x1", "0x7fff", "0x1111111111110000", 0],
        ["0x8000", "0xffff", "0x8000", "0x1111111111110000", CF | OF],
        ["0xffff", "0x1", "0xffff", "0x111111111111ffff", 0],
        ["0x0", "0x1", "0x0", "0x1111111111110000", 0],
        ["0xffff", "0xffff", "0x1", "0x1111111111110000", 0],
        ["0x7fff", "0x8000", "0x8000", "0x111111111111c000", CF | OF],
      ],
      32: [
        ["0x0", "0x0", "0x0", "0x0", 0],
        ["0x1", "0x1", "0x1", "0x0", 0],
        ["0x80000000", "0x80000000", "0x0", "0x40000000", CF | OF],
        ["0x7fffffff", "0x1", "0x7fffffff", "0x0", 0],
        ["0x80000000", "0xffffffff", "0x80000000", "0x0", CF | OF],
        ["0xffffffff", "0x1", "0xffffffff", "0xffffffff", 0],
        ["0x0", "0x1", "0x0", "0x0", 0],
        ["0xffffffff", "0xffffffff", "0x1", "0x0", 0],
        ["0x7fffffff", "0x80000000", "0x80000000", "0xc0000000", CF | OF],
      ],
      64: [
        ["0x0", "0x0", "0x0", "0x0", 0],
        ["0x1", "0x1", "0x1", "0x0", 0],
        ["0x8000000000000000", "0x8000000000000000", "0x0", "0x4000000000000000", CF | OF],
        ["0x7fffffffffffffff", "0x1", "0x7fffffffffffffff", "0x0", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x8000000000000000", "0x0", CF | OF],
        ["0xffffffffffffffff", "0x1", "0xffffffffffffffff", "0xffffffffffffffff", 0],
        ["0x0", "0x1", "0x0", "0x0", 0],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0x1", "0x0", 0],
        ["0x7fffffffffffffff", "0x8000000000000000", "0x8000000000000000", "0xc000000000000000", CF | OF],
      ],
    },
  },
  "IMUL r, r/m": {
    code: {
      16: "66 0f af c3 f4", // imul ax, bx; hlt
      32: "0f af c3 f4", // imul eax, ebx; hlt
      64: "48 0f af c3 f4", // imul rax, rbx; hlt
    },
    vectors: {
      16: [
        ["0x0", "0x0", "0x0", "0x1111111111111111", 0],
        ["0x1", "0x1", "0x1", "0x1111111111111111", 0],
        ["0x8000", "0x8000", "0x0", "0x1111111111111111", CF | OF],
        ["0x7fff", "0x1", "0x7fff", "0x1111111111111111", 0],
        ["0x8000", "0xffff", "0x8000", "0x1111111111111111", CF | OF],
        ["0xffff", "0x1", "0xffff", "0x1111111111111111", 0],
        ["0x0", "0x1", "0x0", "0x1111111111111111", 0],
        ["0xffff", "0xffff", "0x1", "0x1111111111111111", 0],
        ["0x7fff", "0x8000", "0x8000", "0x1111111111111111", CF | OF],
      ],
      32: [
        ["0x0", "0x0", "0x0", "0x1111111111111111", 0],
        ["0x1", "0x1", "0x1", "0x1111111111111111", 0],
        ["0x80000000", "0x80000000", "0x0", "0x1111111111111111", CF | OF],
        ["0x7fffffff", "0x1", "0x7fffffff", "0x1111111111111111", 0],
        ["0x80000000", "0xffffffff", "0x80000000", "0x1111111111111111", CF | OF],
        ["0xffffffff", "0x1", "0xffffffff", "0x1111111111111111", 0],
        ["0x0", "0x1", "0x0", "0x1111111111111111", 0],
        ["0xffffffff", "0xffffffff", "0x1", "0x1111111111111111", 0],
        ["0x7fffffff", "0x80000000", "0x80000000", "0x1111111111111111", CF | OF],
      ],
      64: [
        ["0x0", "0x0", "0x0", "0x1111111111111111", 0],
        ["0x1", "0x1", "0x1", "0x1111111111111111", 0],
        ["0x8000000000000000", "0x8000000000000000", "0x0", "0x1111111111111111", CF | OF],
        ["0x7fffffffffffffff", "0x1", "0x7fffffffffffffff", "0x1111111111111111", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x8000000000000000", "0x1111111111111111", CF | OF],
        ["0xffffffffffffffff", "0x1", "0xffffffffffffffff", "0x1111111111111111", 0],
        ["0x0", "0x1", "0x0", "0x1111111111111111", 0],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0x1", "0x1111111111111111", 0],
        ["0x7fffffffffffffff", "0x8000000000000000", "0x8000000000000000", "0x1111111111111111", CF | OF],
      ],
    },
  },
};

describe.each(Object.entries(MUL))("%s", (_name, family) => {
  it.each(Object.keys(family.code).map(Number))("multiplies at %i bits and sets CF and OF when the product overflows its low half", (size) => {
    for (const [rax, rbx, raxAfter, rdxAfter, flags] of family.vectors[size]) {
      for (const preset of [0, STATUS]) {
        const m = new TestMachine();
        m.setReg("rax", BigInt(rax));
        m.setReg("rbx", BigInt(rbx));
        m.setReg("rdx", RDX_FILL);
        m.rflags = preset;
        expect(m.runCode(family.code[size], 10)).toEqual({ kind: "halted" });
        expect({ rax, rbx, got: [m.reg("rax"), m.reg("rdx")] }).toEqual({ rax, rbx, got: [BigInt(raxAfter), BigInt(rdxAfter)] });
        expect({ rax, rbx, preset, flags: m.rflags & (CF | OF) }).toEqual({ rax, rbx, preset, flags });
      }
    }
  });
});

describe("three-operand IMUL", () => {
  it("multiplies a register by a sign-extended immediate", () => {
    const m = new TestMachine();
    m.setReg("rbx", 0x4000_0000_0000_0001n);
    m.runCode("48 6b c3 fd f4"); // imul rax, rbx, -3; hlt
    expect(m.reg("rax")).toBe(BigInt.asUintN(64, 0x4000_0000_0000_0001n * -3n));
    expect(m.rflags & (CF | OF)).toBe(CF | OF);
  });

  it("multiplies a memory dword by an immediate into a 32-bit register", () => {
    const m = new TestMachine();
    m.write64(0x180000, 0xffff_ffff_ffff_fffen); // dword -2
    m.setReg("rbx", 0x180000n);
    m.setReg("rcx", 0xdead_0000_0000_0000n);
    m.runCode("69 0b e8 03 00 00 f4"); // imul ecx, dword ptr [rbx], 1000; hlt
    expect(m.reg("rcx")).toBe(0xffff_f830n);
    expect(m.rflags & (CF | OF)).toBe(0);
  });
});

/** 8-bit: [ax, divisor, quotient (al), remainder (ah)]; wider: [rdx, rax, divisor, quotient, remainder]. */
const DIV: Record<string, Record<number, string[][]>> = {
  DIV: {
    8: [
        ["0x64", "0x7", "0xe", "0x2"],
        ["0xff", "0x1", "0xff", "0x0"],
        ["0x57b", "0x7", "0xc8", "0x3"],
        ["0x12d2", "0x89", "0x23", "0x17"],
        ["0x185d", "0x95", "0x29", "0x80"],
        ["0xee8", "0x81", "0x1d", "0x4b"],
    ],
    16: [
        ["0x0", "0x64", "0x7", "0xe", "0x2"],
        ["0x0", "0xffff", "0x1", "0xffff", "0x0"],
        ["0x5", "0x7b", "0x7", "0xb6ed", "0x0"],
        ["0x726", "0xca44", "0x4787", "0x1998", "0x231c"],
        ["0xb149", "0x9aea", "0xf4de", "0xb959", "0xbbc"],
        ["0x5822", "0x727d", "0xcefe", "0x6d00", "0x4c7d"],
    ],
    32: [
        ["0x0", "0x64", "0x7", "0xe", "0x2"],
        ["0x0", "0xffffffff", "0x1", "0xffffffff", "0x0"],
        ["0x5", "0x7b", "0x7", "0xb6db6dc8", "0x3"],
        ["0xb0f873b", "0x86e3e726", "0xb5a432cf", "0xf96ac01", "0x98d2a057"],
        ["0xce5af69", "0x2e5f950c", "0x33a71568", "0x3febc020", "0x2af6e80c"],
        ["0x4e14d571", "0x87f53ddd", "0xc26e7a42", "0x66ce78e9", "0x1afd07cb"],
    ],
    64: [
        ["0x0", "0x64", "0x7", "0xe", "0x2"],
        ["0x0", "0xffffffffffffffff", "0x1", "0xffffffffffffffff", "0x0"],
        ["0x5", "0x7b", "0x7", "0xb6db6db6db6db6ed", "0x0"],
        ["0x1ef3ea4450ea7da7", "0x54d1ac6bd7196189", "0x53158ce400721f84", "0x5f5f43be5d469480", "0x1926e58a11b94f89"],
        ["0x569908f6c0301b21", "0x65f456aad6cff718", "0xf09c0afb1ebb0794", "0x5c2310afd215cbb0", "0x6c9948ec60146558"],
        ["0x321c1744ed2879c1", "0x3003005b688b661", "0xbd6a996de6cd10f1", "0x43b96ae08d45aa81", "0xb60c1fe5edfe22f0"],
    ],
  },
  IDIV: {
    8: [
        ["0x64", "0x7", "0xe", "0x2"],
        ["0xff", "0x3", "0x55", "0x0"],
        ["0x23d1", "0x6e", "0x53", "0x27"],
        ["0xdd8c", "0x47", "0x84", "0xf0"],
        ["0x263b", "0xa8", "0x91", "0x13"],
        ["0x3b03", "0x7c", "0x79", "0x67"],
    ],
    16: [
        ["0x0", "0x64", "0x7", "0xe", "0x2"],
        ["0x0", "0xffff", "0x3", "0x5555", "0x0"],
        ["0xc5b2", "0x1905", "0x81f9", "0x766f", "0xf80e"],
        ["0x1038", "0x7178", "0x535b", "0x31d0", "0x4c88"],
        ["0x33dc", "0xd70a", "0x7291", "0x73e3", "0x1d77"],
        ["0x1292", "0xabd0", "0x3d9a", "0x4d2f", "0xa8a"],
    ],
    32: [
        ["0x0", "0x64", "0x7", "0xe", "0x2"],
        ["0x0", "0xffffffff", "0x3", "0x55555555", "0x0"],
        ["0xe456559c", "0x8352bc85", "0xa098d691", "0x4a3a9e6c", "0xe790b959"],
        ["0xe8ee65a1", "0x8614f504", "0xc0bbe6ed", "0x5d5878ca", "0xe319a602"],
        ["0xd38f8c45", "0xafbc9ca9", "0x95850e21", "0x6ad748e7", "0xd0fc94e2"],
        ["0x7fa22f7", "0xab77988", "0x22126540", "0x3befa8b9", "0x123a4e48"],
    ],
    64: [
        ["0x0", "0x64", "0x7", "0xe", "0x2"],
        ["0x0", "0xffffffffffffffff", "0x3", "0x5555555555555555", "0x0"],
        ["0xdea6e4e64b9cb1c", "0x60c88043683d4bc", "0x989bc9dcf95fe8a0", "0xdd8b5366c7c544fb", "0x346e5bbd8903fdc"],
        ["0x30d0a2b8544940e1", "0xa70828a72f7dba08", "0x86592243ef95eee8", "0x994680159e8a4f09", "0x6ba4b406856ebbe0"],
        ["0xd6d106fb60ed33a0", "0xfc27d6835fb6d625", "0x71436e1d54ea2061", "0xa2ea94acf0548628", "0xfa101721fe5b00fd"],
        ["0x31e7aed141cbcc3a", "0x10170d2bbf4e302c", "0x9b09ab55e6077d79", "0x8175f4f288646364", "0x4b5321b1b39761e8"],
    ],
  },};

const DIV_CODE: Record<string, Record<number, string>> = {
  DIV: { 8: "f6 f3 f4", 16: "66 f7 f3 f4", 32: "f7 f3 f4", 64: "48 f7 f3 f4" }, // div bl/bx/ebx/rbx; hlt
  IDIV: { 8: "f6 fb f4", 16: "66 f7 fb f4", 32: "f7 fb f4", 64: "48 f7 fb f4" }, // idiv bl/bx/ebx/rbx; hlt
};

describe.each(Object.entries(DIV))("%s", (name, sizes) => {
  it.each([8, 16, 32, 64])("divides rDX:rAX at %i bits into quotient and remainder and keeps the flags", (size) => {
    for (const row of sizes[size]) {
      for (const preset of [0, STATUS]) {
        const m = new TestMachine();
        const mask = (1n << BigInt(size)) - 1n;
        m.rflags = preset;
        if (size === 8) {
          const [ax, divisor, q, r] = row;
          m.setReg("rax", 0xabcd_0000n | BigInt(ax));
          m.setReg("rbx", BigInt(divisor));
          expect(m.runCode(DIV_CODE[name][size], 10)).toEqual({ kind: "halted" });
          expect({ row, ax: m.reg("rax") }).toEqual({ row, ax: 0xabcd_0000n | (BigInt(r) << 8n) | BigInt(q) });
        } else {
          const [hi, lo, divisor, q, r] = row;
          const fill = size === 16 ? 0x5555_5555_0000_0000n | 0x7777_0000n : 0n;
          m.setReg("rdx", fill | BigInt(hi));
          m.setReg("rax", fill | BigInt(lo));
          m.setReg("rbx", BigInt(divisor));
          expect(m.runCode(DIV_CODE[name][size], 10)).toEqual({ kind: "halted" });
          expect({ row, q: m.reg("rax"), r: m.reg("rdx") }).toEqual({ row, q: (fill & ~mask) | BigInt(q), r: (fill & ~mask) | BigInt(r) });
        }
        expect(m.rflags & STATUS).toBe(preset);
      }
    }
  });
});

describe("divide errors", () => {
  function divideError(code: string, rdx: bigint, rax: bigint, rbx: bigint): TestMachine {
    const m = new TestMachine();
    m.installIdt();
    m.setReg("rdx", rdx);
    m.setReg("rax", rax);
    m.setReg("rbx", rbx);
    expect(m.runCode(code, 10)).toEqual({ kind: "halted" });
    return m;
  }

  it("raises #DE for a zero divisor and leaves RDX:RAX alone", () => {
    const m = divideError("48 f7 f3 f4", 1n, 2n, 0n); // div rbx; hlt
    expect(m.vectors()).toEqual([0]);
    expect(m.reg("rdx")).toBe(1n);
    expect(m.read64(0x200000 - 40)).toBe(0x100000n); // the pushed RIP is the DIV itself
  });

  it("raises #DE when the unsigned 128/64 quotient does not fit", () => {
    expect(divideError("48 f7 f3 f4", 5n, 0n, 5n).vectors()).toEqual([0]); // div rbx
  });

  it("raises #DE for the one signed quotient that overflows: -2^63 / -1", () => {
    expect(divideError("48 f7 fb f4", 0xffff_ffff_ffff_ffffn, 0x8000_0000_0000_0000n, 0xffff_ffff_ffff_ffffn).vectors()).toEqual([0]); // idiv rbx
  });

  it("divides -2^31 by 1 in 32 bits without #DE", () => {
    const m = divideError("f7 fb f4", 0xffff_ffffn, 0x8000_0000n, 1n); // idiv ebx
    expect(m.vectors()).toEqual([]);
    expect(m.reg("rax")).toBe(0x8000_0000n);
    expect(m.reg("rdx")).toBe(0n);
  });
});
