// Bit tests (register and bit-string memory forms) and the bit-count family: BSF BSR TZCNT LZCNT
// POPCNT vectors from an x86-64 host (only the flags the SDM defines are compared).
import { TestMachine } from "./harness.js";

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const STATUS = CF | PF | AF | ZF | SF | OF;
const DATA = 0x180000;

describe("BT BTS BTR BTC", () => {
  it("copies the selected bit of a register to CF and changes nothing else for BT", () => {
    const m = new TestMachine();
    m.setReg("rax", 0x2_0000_0000n);
    m.rflags = ZF;
    m.runCode("48 0f ba e0 21 f4"); // bt rax, 33; hlt
    expect(m.rflags & (CF | ZF)).toBe(CF | ZF);
    expect(m.reg("rax")).toBe(0x2_0000_0000n);
  });

  it("masks a register bit offset to the operand size", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xffff_ffff_0000_0000n);
    m.setReg("rcx", 35n); // 35 & 31 = 3
    m.runCode("0f ab c8 f4"); // bts eax, ecx; hlt
    expect(m.reg("rax")).toBe(8n);
    expect(m.rflags & CF).toBe(0);
  });

  it("clears and complements bits", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xffff_ffff_ffff_ffffn);
    m.setReg("rcx", 63n);
    m.runCode("48 0f b3 c8 f4"); // btr rax, rcx; hlt
    expect(m.reg("rax")).toBe(0x7fff_ffff_ffff_ffffn);
    expect(m.rflags & CF).toBe(CF);
    m.runCode("66 0f ba f8 0f f4"); // btc ax, 15; hlt
    expect(m.reg("rax")).toBe(0x7fff_ffff_ffff_7fffn);
    expect(m.rflags & CF).toBe(CF);
  });

  it("addresses a bit string in memory with a register offset beyond the operand", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rcx", 100n); // qword 1, bit 36
    m.runCode("48 0f ab 0b f4"); // bts qword ptr [rbx], rcx; hlt
    expect(m.read64(DATA + 8)).toBe(1n << 36n);
    expect(m.read64(DATA)).toBe(0n);
  });

  it("takes a negative register offset as a bit below the operand", () => {
    const m = new TestMachine();
    m.write64(DATA - 8, 0xffff_ffff_ffff_ffffn);
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rcx", 0xffff_ffffn); // ecx = -1: bit 31 of the dword at rbx - 4
    m.runCode("0f b3 0b f4"); // btr dword ptr [rbx], ecx; hlt
    expect(m.read64(DATA - 8)).toBe(0x7fff_ffff_ffff_ffffn);
    expect(m.rflags & CF).toBe(CF);
  });

  it("masks an immediate offset to the operand, staying inside it", () => {
    const m = new TestMachine();
    m.write64(DATA, 0x8n);
    m.setReg("rbx", BigInt(DATA));
    m.runCode("0f ba 23 23 f4"); // bt dword ptr [rbx], 35; hlt  (35 & 31 = 3)
    expect(m.rflags & CF).toBe(CF);
  });
});

/** [source, RAX after (it starts as 0x5a5a…), defined flags afterwards]. */
type CountVector = [string, string, number];

/** Flags each instruction defines. */
const DEFINED: Record<string, number> = { BSF: ZF, BSR: ZF, POPCNT: STATUS, TZCNT: CF | ZF, LZCNT: CF | ZF };

const COUNT: Record<string, { code: Record<number, string>; vectors: Record<number, CountVector[]> }> = {

  BSF: {
    code: {
      16: "66 0f bc c3 f4", // bsf ax, bx; hlt
      32: "0f bc c3 f4", // bsf eax, ebx; hlt
      64: "48 0f bc c3 f4", // bsf rax, rbx; hlt
    },
    vectors: {
      16: [
        ["0x0", "0x5a5a", ZF],
        ["0x1", "0x0", 0],
        ["0x8000", "0xf", 0],
        ["0x7fff", "0x0", 0],
        ["0xffff", "0x0", 0],
      ],
      32: [
        ["0x0", "0x5a5a5a5a", ZF],
        ["0x1", "0x0", 0],
        ["0x80000000", "0x1f", 0],
        ["0x7fffffff", "0x0", 0],
        ["0xffffffff", "0x0", 0],
      ],
      64: [
        ["0x0", "0x5a5a5a5a5a5a5a5a", ZF],
        ["0x1", "0x0", 0],
        ["0x8000000000000000", "0x3f", 0],
        ["0x7fffffffffffffff", "0x0", 0],
        ["0xffffffffffffffff", "0x0", 0],
      ],
    },
  },
  BSR: {
    code: {
      16: "66 0f bd c3 f4", // bsr ax, bx; hlt
      32: "0f bd c3 f4", // bsr eax, ebx; hlt
      64: "48 0f bd c3 f4", // bsr rax, rbx; hlt
    },
    vectors: {
      16: [
        ["0x0", "0x5a5a", ZF],
        ["0x1", "0x0", 0],
        ["0x8000", "0xf", 0],
        ["0x7fff", "0xe", 0],
        ["0xffff", "0xf", 0],
      ],
      32: [
        ["0x0", "0x5a5a5a5a", ZF],
        ["0x1", "0x0", 0],
        ["0x80000000", "0x1f", 0],
        ["0x7fffffff", "0x1e", 0],
        ["0xffffffff", "0x1f", 0],
      ],
      64: [
        ["0x0", "0x5a5a5a5a5a5a5a5a", ZF],
        ["0x1", "0x0", 0],
        ["0x8000000000000000", "0x3f", 0],
        ["0x7fffffffffffffff", "0x3e", 0],
        ["0xffffffffffffffff", "0x3f", 0],
      ],
    },
  },
  POPCNT: {
    code: {
      16: "66 f3 0f b8 c3 f4", // popcnt ax, bx; hlt
      32: "f3 0f b8 c3 f4", // popcnt eax, ebx; hlt
      64: "f3 48 0f b8 c3 f4", // popcnt rax, rbx; hlt
    },
    vectors: {
      16: [
        ["0x0", "0x0", ZF],
        ["0x1", "0x1", 0],
        ["0x8000", "0x1", 0],
        ["0x7fff", "0xf", 0],
        ["0xffff", "0x10", 0],
      ],
      32: [
        ["0x0", "0x0", ZF],
        ["0x1", "0x1", 0],
        ["0x80000000", "0x1", 0],
        ["0x7fffffff", "0x1f", 0],
        ["0xffffffff", "0x20", 0],
      ],
      64: [
        ["0x0", "0x0", ZF],
        ["0x1", "0x1", 0],
        ["0x8000000000000000", "0x1", 0],
        ["0x7fffffffffffffff", "0x3f", 0],
        ["0xffffffffffffffff", "0x40", 0],
      ],
    },
  },
  TZCNT: {
    code: {
      16: "66 f3 0f bc c3 f4", // tzcnt ax, bx; hlt
      32: "f3 0f bc c3 f4", // tzcnt eax, ebx; hlt
      64: "f3 48 0f bc c3 f4", // tzcnt rax, rbx; hlt
    },
    vectors: {
      16: [
        ["0x0", "0x10", CF],
        ["0x1", "0x0", ZF],
        ["0x8000", "0xf", 0],
        ["0x7fff", "0x0", ZF],
        ["0xffff", "0x0", ZF],
      ],
      32: [
        ["0x0", "0x20", CF],
        ["0x1", "0x0", ZF],
        ["0x80000000", "0x1f", 0],
        ["0x7fffffff", "0x0", ZF],
        ["0xffffffff", "0x0", ZF],
      ],
      64: [
        ["0x0", "0x40", CF],
        ["0x1", "0x0", ZF],
        ["0x8000000000000000", "0x3f", 0],
        ["0x7fffffffffffffff", "0x0", ZF],
        ["0xffffffffffffffff", "0x0", ZF],
      ],
    },
  },
  LZCNT: {
    code: {
      16: "66 f3 0f bd c3 f4", // lzcnt ax, bx; hlt
      32: "f3 0f bd c3 f4", // lzcnt eax, ebx; hlt
      64: "f3 48 0f bd c3 f4", // lzcnt rax, rbx; hlt
    },
    vectors: {
      16: [
        ["0x0", "0x10", CF],
        ["0x1", "0xf", 0],
        ["0x8000", "0x0", ZF],
        ["0x7fff", "0x1", 0],
        ["0xffff", "0x0", ZF],
      ],
      32: [
        ["0x0", "0x20", CF],
        ["0x1", "0x1f", 0],
        ["0x80000000", "0x0", ZF],
        ["0x7fffffff", "0x1", 0],
        ["0xffffffff", "0x0", ZF],
      ],
      64: [
        ["0x0", "0x40", CF],
        ["0x1", "0x3f", 0],
        ["0x8000000000000000", "0x0", ZF],
        ["0x7fffffffffffffff", "0x1", 0],
        ["0xffffffffffffffff", "0x0", ZF],
      ],
    },
  },
};

describe.each(Object.entries(COUNT))("%s", (name, family) => {
  it.each([16, 32, 64])("counts at %i bits and sets the flags it defines", (size) => {
    for (const [source, raxAfter, flags] of family.vectors[size]) {
      for (const preset of [0, STATUS]) {
        const m = new TestMachine();
        m.setReg("rax", 0x5a5a_5a5a_5a5a_5a5an & ((1n << BigInt(size)) - 1n));
        m.setReg("rbx", BigInt(source));
        m.rflags = preset;
        expect(m.runCode(family.code[size], 10)).toEqual({ kind: "halted" });
        expect({ source, rax: m.reg("rax") }).toEqual({ source, rax: BigInt(raxAfter) });
        expect({ source, preset, flags: m.rflags & DEFINED[name] }).toEqual({ source, preset, flags });
      }
    }
  });
});
