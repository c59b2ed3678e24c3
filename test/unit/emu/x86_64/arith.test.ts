// ALU family vectors run on the interpreter: (left, right, result, flags) per operand size, each
// from all-clear and all-set flags. The vectors were produced by running the same instructions
// on an x86-64 host; flags the SDM leaves undefined are not compared.
import { TestMachine } from "./harness.js";

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const STATUS = CF | PF | AF | ZF | SF | OF;
const SIZES = [8, 16, 32, 64] as const;
type Size = (typeof SIZES)[number];

/** [left, right, result, flags]: flags are the values of the family's defined flags afterwards. */
type Vector = [string, string, string, number];
/** [left, right, carry in, result, flags] for ADC and SBB. */
type CarryVector = [string, string, number, string, number];
/** [operand, result, flags]. */
type UnaryVector = [string, string, number];

interface Family<V> {
  /** `<op> al/ax/eax/rax[, bl/bx/ebx/rbx]; hlt` per operand size. */
  code: Record<Size, string>;
  vectors: Record<Size, V[]>;
}

/** Distinct patterns in the bits above the operand, to check they are kept (8/16) or cleared (32). */
const RAX_FILL = 0x0123456789abcdefn;
const RBX_FILL = 0x7766554433221100n;

function mask(size: Size): bigint {
  return (1n << BigInt(size)) - 1n;
}

/** Runs one instruction with RAX = left, RBX = right and RFLAGS = flags; returns RAX and RFLAGS. */
function run(code: string, size: Size, left: string, right: string, flags: number): { rax: bigint; rflags: number } {
  const m = new TestMachine();
  m.setReg("rax", (RAX_FILL & ~mask(size)) | BigInt(left));
  m.setReg("rbx", (RBX_FILL & ~mask(size)) | BigInt(right));
  m.rflags = flags;
  const exit = m.runCode(code, 10);
  expect(exit).toEqual({ kind: "halted" });
  expect(m.reg("rbx")).toBe((RBX_FILL & ~mask(size)) | BigInt(right));
  return { rax: m.reg("rax"), rflags: m.rflags };
}

/** What RAX must hold after writing `result` at `size`: 8/16-bit writes keep the rest, 32-bit writes clear it. */
function expectedRax(size: Size, result: string, writes: boolean, left: string): bigint {
  if (!writes) return (RAX_FILL & ~mask(size)) | BigInt(left);
  if (size === 32) return BigInt(result);
  return (RAX_FILL & ~mask(size)) | BigInt(result);
}

const BINARY: Record<string, Family<Vector> & { defined: number; writes: boolean }> = {
  ADD: {
    defined: STATUS,
    writes: true,
    code: {
      8: "00 d8 f4", // add al, bl; hlt
      16: "66 01 d8 f4", // add ax, bx; hlt
      32: "01 d8 f4", // add eax, ebx; hlt
      64: "48 01 d8 f4", // add rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x2", 0],
        ["0x80", "0x80", "0x0", CF | PF | ZF | OF],
        ["0x7f", "0x1", "0x80", AF | SF | OF],
        ["0x80", "0xff", "0x7f", CF | OF],
        ["0xff", "0x1", "0x0", CF | PF | AF | ZF],
        ["0x0", "0x1", "0x1", 0],
        ["0xff", "0xff", "0xfe", CF | AF | SF],
      ],
      16: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x2", 0],
        ["0x8000", "0x8000", "0x0", CF | PF | ZF | OF],
        ["0x7fff", "0x1", "0x8000", PF | AF | SF | OF],
        ["0x8000", "0xffff", "0x7fff", CF | PF | OF],
        ["0xffff", "0x1", "0x0", CF | PF | AF | ZF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffff", "0xffff", "0xfffe", CF | AF | SF],
      ],
      32: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x2", 0],
        ["0x80000000", "0x80000000", "0x0", CF | PF | ZF | OF],
        ["0x7fffffff", "0x1", "0x80000000", PF | AF | SF | OF],
        ["0x80000000", "0xffffffff", "0x7fffffff", CF | PF | OF],
        ["0xffffffff", "0x1", "0x0", CF | PF | AF | ZF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffffffff", "0xffffffff", "0xfffffffe", CF | AF | SF],
      ],
      64: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x2", 0],
        ["0x8000000000000000", "0x8000000000000000", "0x0", CF | PF | ZF | OF],
        ["0x7fffffffffffffff", "0x1", "0x8000000000000000", PF | AF | SF | OF],
        ["0x8000000000000000", "0xffffffffffffffff", "0x7fffffffffffffff", CF | PF | OF],
        ["0xffffffffffffffff", "0x1", "0x0", CF | PF | AF | ZF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0xfffffffffffffffe", CF | AF | SF],
      ],
    },
  },
  SUB: {
    defined: STATUS,
    writes: true,
    code: {
      8: "28 d8 f4", // sub al, bl; hlt
      16: "66 29 d8 f4", // sub ax, bx; hlt
      32: "29 d8 f4", // sub eax, ebx; hlt
      64: "48 29 d8 f4", // sub rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x80", "0x80", "0x0", PF | ZF],
        ["0x7f", "0x1", "0x7e", PF],
        ["0x80", "0xff", "0x81", CF | PF | AF | SF],
        ["0xff", "0x1", "0xfe", SF],
        ["0x0", "0x1", "0xff", CF | PF | AF | SF],
        ["0xff", "0xff", "0x0", PF | ZF],
      ],
      16: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x8000", "0x8000", "0x0", PF | ZF],
        ["0x7fff", "0x1", "0x7ffe", 0],
        ["0x8000", "0xffff", "0x8001", CF | AF | SF],
        ["0xffff", "0x1", "0xfffe", SF],
        ["0x0", "0x1", "0xffff", CF | PF | AF | SF],
        ["0xffff", "0xffff", "0x0", PF | ZF],
      ],
      32: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x80000000", "0x80000000", "0x0", PF | ZF],
        ["0x7fffffff", "0x1", "0x7ffffffe", 0],
        ["0x80000000", "0xffffffff", "0x80000001", CF | AF | SF],
        ["0xffffffff", "0x1", "0xfffffffe", SF],
        ["0x0", "0x1", "0xffffffff", CF | PF | AF | SF],
        ["0xffffffff", "0xffffffff", "0x0", PF | ZF],
      ],
      64: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x8000000000000000", "0x8000000000000000", "0x0", PF | ZF],
        ["0x7fffffffffffffff", "0x1", "0x7ffffffffffffffe", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x8000000000000001", CF | AF | SF],
        ["0xffffffffffffffff", "0x1", "0xfffffffffffffffe", SF],
        ["0x0", "0x1", "0xffffffffffffffff", CF | PF | AF | SF],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0x0", PF | ZF],
      ],
    },
  },
  AND: {
    defined: STATUS & ~AF,
    writes: true,
    code: {
      8: "20 d8 f4", // and al, bl; hlt
      16: "66 21 d8 f4", // and ax, bx; hlt
      32: "21 d8 f4", // and eax, ebx; hlt
      64: "48 21 d8 f4", // and rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x80", "0x80", "0x80", SF],
        ["0x7f", "0x1", "0x1", 0],
        ["0x80", "0xff", "0x80", SF],
        ["0xff", "0x1", "0x1", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xff", "0xff", "0xff", PF | SF],
      ],
      16: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x8000", "0x8000", "0x8000", PF | SF],
        ["0x7fff", "0x1", "0x1", 0],
        ["0x8000", "0xffff", "0x8000", PF | SF],
        ["0xffff", "0x1", "0x1", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xffff", "0xffff", "0xffff", PF | SF],
      ],
      32: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x80000000", "0x80000000", "0x80000000", PF | SF],
        ["0x7fffffff", "0x1", "0x1", 0],
        ["0x80000000", "0xffffffff", "0x80000000", PF | SF],
        ["0xffffffff", "0x1", "0x1", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xffffffff", "0xffffffff", "0xffffffff", PF | SF],
      ],
      64: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x8000000000000000", "0x8000000000000000", "0x8000000000000000", PF | SF],
        ["0x7fffffffffffffff", "0x1", "0x1", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x8000000000000000", PF | SF],
        ["0xffffffffffffffff", "0x1", "0x1", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0xffffffffffffffff", PF | SF],
      ],
    },
  },
  OR: {
    defined: STATUS & ~AF,
    writes: true,
    code: {
      8: "08 d8 f4", // or al, bl; hlt
      16: "66 09 d8 f4", // or ax, bx; hlt
      32: "09 d8 f4", // or eax, ebx; hlt
      64: "48 09 d8 f4", // or rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x80", "0x80", "0x80", SF],
        ["0x7f", "0x1", "0x7f", 0],
        ["0x80", "0xff", "0xff", PF | SF],
        ["0xff", "0x1", "0xff", PF | SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xff", "0xff", "0xff", PF | SF],
      ],
      16: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x8000", "0x8000", "0x8000", PF | SF],
        ["0x7fff", "0x1", "0x7fff", PF],
        ["0x8000", "0xffff", "0xffff", PF | SF],
        ["0xffff", "0x1", "0xffff", PF | SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffff", "0xffff", "0xffff", PF | SF],
      ],
      32: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x80000000", "0x80000000", "0x80000000", PF | SF],
        ["0x7fffffff", "0x1", "0x7fffffff", PF],
        ["0x80000000", "0xffffffff", "0xffffffff", PF | SF],
        ["0xffffffff", "0x1", "0xffffffff", PF | SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffffffff", "0xffffffff", "0xffffffff", PF | SF],
      ],
      64: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x8000000000000000", "0x8000000000000000", "0x8000000000000000", PF | SF],
        ["0x7fffffffffffffff", "0x1", "0x7fffffffffffffff", PF],
        ["0x8000000000000000", "0xffffffffffffffff", "0xffffffffffffffff", PF | SF],
        ["0xffffffffffffffff", "0x1", "0xffffffffffffffff", PF | SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0xffffffffffffffff", PF | SF],
      ],
    },
  },
  XOR: {
    defined: STATUS & ~AF,
    writes: true,
    code: {
      8: "30 d8 f4", // xor al, bl; hlt
      16: "66 31 d8 f4", // xor ax, bx; hlt
      32: "31 d8 f4", // xor eax, ebx; hlt
      64: "48 31 d8 f4", // xor rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x80", "0x80", "0x0", PF | ZF],
        ["0x7f", "0x1", "0x7e", PF],
        ["0x80", "0xff", "0x7f", 0],
        ["0xff", "0x1", "0xfe", SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xff", "0xff", "0x0", PF | ZF],
      ],
      16: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x8000", "0x8000", "0x0", PF | ZF],
        ["0x7fff", "0x1", "0x7ffe", 0],
        ["0x8000", "0xffff", "0x7fff", PF],
        ["0xffff", "0x1", "0xfffe", SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffff", "0xffff", "0x0", PF | ZF],
      ],
      32: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x80000000", "0x80000000", "0x0", PF | ZF],
        ["0x7fffffff", "0x1", "0x7ffffffe", 0],
        ["0x80000000", "0xffffffff", "0x7fffffff", PF],
        ["0xffffffff", "0x1", "0xfffffffe", SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffffffff", "0xffffffff", "0x0", PF | ZF],
      ],
      64: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x0", PF | ZF],
        ["0x8000000000000000", "0x8000000000000000", "0x0", PF | ZF],
        ["0x7fffffffffffffff", "0x1", "0x7ffffffffffffffe", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x7fffffffffffffff", PF],
        ["0xffffffffffffffff", "0x1", "0xfffffffffffffffe", SF],
        ["0x0", "0x1", "0x1", 0],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0x0", PF | ZF],
      ],
    },
  },
  CMP: {
    defined: STATUS,
    writes: false,
    code: {
      8: "38 d8 f4", // cmp al, bl; hlt
      16: "66 39 d8 f4", // cmp ax, bx; hlt
      32: "39 d8 f4", // cmp eax, ebx; hlt
      64: "48 39 d8 f4", // cmp rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", PF | ZF],
        ["0x80", "0x80", "0x80", PF | ZF],
        ["0x7f", "0x1", "0x7f", PF],
        ["0x80", "0xff", "0x80", CF | PF | AF | SF],
        ["0xff", "0x1", "0xff", SF],
        ["0x0", "0x1", "0x0", CF | PF | AF | SF],
        ["0xff", "0xff", "0xff", PF | ZF],
      ],
      16: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", PF | ZF],
        ["0x8000", "0x8000", "0x8000", PF | ZF],
        ["0x7fff", "0x1", "0x7fff", 0],
        ["0x8000", "0xffff", "0x8000", CF | AF | SF],
        ["0xffff", "0x1", "0xffff", SF],
        ["0x0", "0x1", "0x0", CF | PF | AF | SF],
        ["0xffff", "0xffff", "0xffff", PF | ZF],
      ],
      32: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", PF | ZF],
        ["0x80000000", "0x80000000", "0x80000000", PF | ZF],
        ["0x7fffffff", "0x1", "0x7fffffff", 0],
        ["0x80000000", "0xffffffff", "0x80000000", CF | AF | SF],
        ["0xffffffff", "0x1", "0xffffffff", SF],
        ["0x0", "0x1", "0x0", CF | PF | AF | SF],
        ["0xffffffff", "0xffffffff", "0xffffffff", PF | ZF],
      ],
      64: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", PF | ZF],
        ["0x8000000000000000", "0x8000000000000000", "0x8000000000000000", PF | ZF],
        ["0x7fffffffffffffff", "0x1", "0x7fffffffffffffff", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x8000000000000000", CF | AF | SF],
        ["0xffffffffffffffff", "0x1", "0xffffffffffffffff", SF],
        ["0x0", "0x1", "0x0", CF | PF | AF | SF],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0xffffffffffffffff", PF | ZF],
      ],
    },
  },
  TEST: {
    defined: STATUS & ~AF,
    writes: false,
    code: {
      8: "84 d8 f4", // test al, bl; hlt
      16: "66 85 d8 f4", // test ax, bx; hlt
      32: "85 d8 f4", // test eax, ebx; hlt
      64: "48 85 d8 f4", // test rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x80", "0x80", "0x80", SF],
        ["0x7f", "0x1", "0x7f", 0],
        ["0x80", "0xff", "0x80", SF],
        ["0xff", "0x1", "0xff", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xff", "0xff", "0xff", PF | SF],
      ],
      16: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x8000", "0x8000", "0x8000", PF | SF],
        ["0x7fff", "0x1", "0x7fff", 0],
        ["0x8000", "0xffff", "0x8000", PF | SF],
        ["0xffff", "0x1", "0xffff", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xffff", "0xffff", "0xffff", PF | SF],
      ],
      32: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x80000000", "0x80000000", "0x80000000", PF | SF],
        ["0x7fffffff", "0x1", "0x7fffffff", 0],
        ["0x80000000", "0xffffffff", "0x80000000", PF | SF],
        ["0xffffffff", "0x1", "0xffffffff", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xffffffff", "0xffffffff", "0xffffffff", PF | SF],
      ],
      64: [
        ["0x0", "0x0", "0x0", PF | ZF],
        ["0x1", "0x1", "0x1", 0],
        ["0x8000000000000000", "0x8000000000000000", "0x8000000000000000", PF | SF],
        ["0x7fffffffffffffff", "0x1", "0x7fffffffffffffff", 0],
        ["0x8000000000000000", "0xffffffffffffffff", "0x8000000000000000", PF | SF],
        ["0xffffffffffffffff", "0x1", "0xffffffffffffffff", 0],
        ["0x0", "0x1", "0x0", PF | ZF],
        ["0xffffffffffffffff", "0xffffffffffffffff", "0xffffffffffffffff", PF | SF],
      ],
    },
  },

};

const CARRY: Record<string, Family<CarryVector>> = {
  ADC: {
    code: {
      8: "10 d8 f4", // adc al, bl; hlt
      16: "66 11 d8 f4", // adc ax, bx; hlt
      32: "11 d8 f4", // adc eax, ebx; hlt
      64: "48 11 d8 f4", // adc rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0x1", 0],
        ["0x1", "0x1", 0, "0x2", 0],
        ["0x1", "0x1", 1, "0x3", PF],
        ["0x80", "0x80", 0, "0x0", CF | PF | ZF | OF],
        ["0x80", "0x80", 1, "0x1", CF | OF],
        ["0x7f", "0x1", 0, "0x80", AF | SF | OF],
        ["0x7f", "0x1", 1, "0x81", PF | AF | SF | OF],
        ["0x80", "0xff", 0, "0x7f", CF | OF],
        ["0x80", "0xff", 1, "0x80", CF | AF | SF],
      ],
      16: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0x1", 0],
        ["0x1", "0x1", 0, "0x2", 0],
        ["0x1", "0x1", 1, "0x3", PF],
        ["0x8000", "0x8000", 0, "0x0", CF | PF | ZF | OF],
        ["0x8000", "0x8000", 1, "0x1", CF | OF],
        ["0x7fff", "0x1", 0, "0x8000", PF | AF | SF | OF],
        ["0x7fff", "0x1", 1, "0x8001", AF | SF | OF],
        ["0x8000", "0xffff", 0, "0x7fff", CF | PF | OF],
        ["0x8000", "0xffff", 1, "0x8000", CF | PF | AF | SF],
      ],
      32: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0x1", 0],
        ["0x1", "0x1", 0, "0x2", 0],
        ["0x1", "0x1", 1, "0x3", PF],
        ["0x80000000", "0x80000000", 0, "0x0", CF | PF | ZF | OF],
        ["0x80000000", "0x80000000", 1, "0x1", CF | OF],
        ["0x7fffffff", "0x1", 0, "0x80000000", PF | AF | SF | OF],
        ["0x7fffffff", "0x1", 1, "0x80000001", AF | SF | OF],
        ["0x80000000", "0xffffffff", 0, "0x7fffffff", CF | PF | OF],
        ["0x80000000", "0xffffffff", 1, "0x80000000", CF | PF | AF | SF],
      ],
      64: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0x1", 0],
        ["0x1", "0x1", 0, "0x2", 0],
        ["0x1", "0x1", 1, "0x3", PF],
        ["0x8000000000000000", "0x8000000000000000", 0, "0x0", CF | PF | ZF | OF],
        ["0x8000000000000000", "0x8000000000000000", 1, "0x1", CF | OF],
        ["0x7fffffffffffffff", "0x1", 0, "0x8000000000000000", PF | AF | SF | OF],
        ["0x7fffffffffffffff", "0x1", 1, "0x8000000000000001", AF | SF | OF],
        ["0x8000000000000000", "0xffffffffffffffff", 0, "0x7fffffffffffffff", CF | PF | OF],
        ["0x8000000000000000", "0xffffffffffffffff", 1, "0x8000000000000000", CF | PF | AF | SF],
      ],
    },
  },
  SBB: {
    code: {
      8: "18 d8 f4", // sbb al, bl; hlt
      16: "66 19 d8 f4", // sbb ax, bx; hlt
      32: "19 d8 f4", // sbb eax, ebx; hlt
      64: "48 19 d8 f4", // sbb rax, rbx; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0xff", CF | PF | AF | SF],
        ["0x1", "0x1", 0, "0x0", PF | ZF],
        ["0x1", "0x1", 1, "0xff", CF | PF | AF | SF],
        ["0x80", "0x80", 0, "0x0", PF | ZF],
        ["0x80", "0x80", 1, "0xff", CF | PF | AF | SF],
        ["0x7f", "0x1", 0, "0x7e", PF],
        ["0x7f", "0x1", 1, "0x7d", PF],
        ["0x80", "0xff", 0, "0x81", CF | PF | AF | SF],
        ["0x80", "0xff", 1, "0x80", CF | AF | SF],
      ],
      16: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0xffff", CF | PF | AF | SF],
        ["0x1", "0x1", 0, "0x0", PF | ZF],
        ["0x1", "0x1", 1, "0xffff", CF | PF | AF | SF],
        ["0x8000", "0x8000", 0, "0x0", PF | ZF],
        ["0x8000", "0x8000", 1, "0xffff", CF | PF | AF | SF],
        ["0x7fff", "0x1", 0, "0x7ffe", 0],
        ["0x7fff", "0x1", 1, "0x7ffd", 0],
        ["0x8000", "0xffff", 0, "0x8001", CF | AF | SF],
        ["0x8000", "0xffff", 1, "0x8000", CF | PF | AF | SF],
      ],
      32: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0xffffffff", CF | PF | AF | SF],
        ["0x1", "0x1", 0, "0x0", PF | ZF],
        ["0x1", "0x1", 1, "0xffffffff", CF | PF | AF | SF],
        ["0x80000000", "0x80000000", 0, "0x0", PF | ZF],
        ["0x80000000", "0x80000000", 1, "0xffffffff", CF | PF | AF | SF],
        ["0x7fffffff", "0x1", 0, "0x7ffffffe", 0],
        ["0x7fffffff", "0x1", 1, "0x7ffffffd", 0],
        ["0x80000000", "0xffffffff", 0, "0x80000001", CF | AF | SF],
        ["0x80000000", "0xffffffff", 1, "0x80000000", CF | PF | AF | SF],
      ],
      64: [
        ["0x0", "0x0", 0, "0x0", PF | ZF],
        ["0x0", "0x0", 1, "0xffffffffffffffff", CF | PF | AF | SF],
        ["0x1", "0x1", 0, "0x0", PF | ZF],
        ["0x1", "0x1", 1, "0xffffffffffffffff", CF | PF | AF | SF],
        ["0x8000000000000000", "0x8000000000000000", 0, "0x0", PF | ZF],
        ["0x8000000000000000", "0x8000000000000000", 1, "0xffffffffffffffff", CF | PF | AF | SF],
        ["0x7fffffffffffffff", "0x1", 0, "0x7ffffffffffffffe", 0],
        ["0x7fffffffffffffff", "0x1", 1, "0x7ffffffffffffffd", 0],
        ["0x8000000000000000", "0xffffffffffffffff", 0, "0x8000000000000001", CF | AF | SF],
        ["0x8000000000000000", "0xffffffffffffffff", 1, "0x8000000000000000", CF | PF | AF | SF],
      ],
    },
  },
};

/** INC/DEC leave CF alone; NOT changes no flag. */
const UNARY: Record<string, Family<UnaryVector> & { defined: number }> = {
  INC: {
    defined: STATUS & ~CF,
    code: {
      8: "fe c0 f4", // inc al; hlt
      16: "66 ff c0 f4", // inc ax; hlt
      32: "ff c0 f4", // inc eax; hlt
      64: "48 ff c0 f4", // inc rax; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x1", 0],
        ["0x1", "0x2", 0],
        ["0x80", "0x81", PF | SF],
        ["0x7f", "0x80", AF | SF | OF],
        ["0xff", "0x0", PF | AF | ZF],
        ["0x22", "0x23", 0],
      ],
      16: [
        ["0x0", "0x1", 0],
        ["0x1", "0x2", 0],
        ["0x8000", "0x8001", SF],
        ["0x7fff", "0x8000", PF | AF | SF | OF],
        ["0xffff", "0x0", PF | AF | ZF],
      ],
      32: [
        ["0x0", "0x1", 0],
        ["0x1", "0x2", 0],
        ["0x80000000", "0x80000001", SF],
        ["0x7fffffff", "0x80000000", PF | AF | SF | OF],
        ["0xffffffff", "0x0", PF | AF | ZF],
      ],
      64: [
        ["0x0", "0x1", 0],
        ["0x1", "0x2", 0],
        ["0x8000000000000000", "0x8000000000000001", SF],
        ["0x7fffffffffffffff", "0x8000000000000000", PF | AF | SF | OF],
        ["0xffffffffffffffff", "0x0", PF | AF | ZF],
        ["0x55", "0x56", PF],
      ],
    },
  },
  DEC: {
    defined: STATUS & ~CF,
    code: {
      8: "fe c8 f4", // dec al; hlt
      16: "66 ff c8 f4", // dec ax; hlt
      32: "ff c8 f4", // dec eax; hlt
      64: "48 ff c8 f4", // dec rax; hlt
    },
    vectors: {
      8: [
        ["0x0", "0xff", PF | AF | SF],
        ["0x1", "0x0", PF | ZF],
        ["0x80", "0x7f", AF | OF],
        ["0x7f", "0x7e", PF],
        ["0xff", "0xfe", SF],
        ["0x55", "0x54", 0],
      ],
      16: [
        ["0x0", "0xffff", PF | AF | SF],
        ["0x1", "0x0", PF | ZF],
        ["0x8000", "0x7fff", PF | AF | OF],
        ["0x7fff", "0x7ffe", 0],
        ["0xffff", "0xfffe", SF],
      ],
      32: [
        ["0x0", "0xffffffff", PF | AF | SF],
        ["0x1", "0x0", PF | ZF],
        ["0x80000000", "0x7fffffff", PF | AF | OF],
        ["0x7fffffff", "0x7ffffffe", 0],
        ["0xffffffff", "0xfffffffe", SF],
        ["0x80000001", "0x80000000", PF | SF],
      ],
      64: [
        ["0x0", "0xffffffffffffffff", PF | AF | SF],
        ["0x1", "0x0", PF | ZF],
        ["0x8000000000000000", "0x7fffffffffffffff", PF | AF | OF],
        ["0x7fffffffffffffff", "0x7ffffffffffffffe", 0],
        ["0xffffffffffffffff", "0xfffffffffffffffe", SF],
        ["0xf0f0f0f0f0f0f0f", "0xf0f0f0f0f0f0f0e", 0],
      ],
    },
  },
  NEG: {
    defined: STATUS,
    code: {
      8: "f6 d8 f4", // neg al; hlt
      16: "66 f7 d8 f4", // neg ax; hlt
      32: "f7 d8 f4", // neg eax; hlt
      64: "48 f7 d8 f4", // neg rax; hlt
    },
    vectors: {
      8: [
        ["0x0", "0x0", PF | ZF],
        ["0x1", "0xff", CF | PF | AF | SF],
        ["0x80", "0x80", CF | SF | OF],
        ["0x7f", "0x81", CF | PF | AF | SF],
        ["0xff", "0x1", CF | AF],
      ],
      16: [
        ["0x0", "0x0", PF | ZF],
        ["0x1", "0xffff", CF | PF | AF | SF],
        ["0x8000", "0x8000", CF | PF | SF | OF],
        ["0x7fff", "0x8001", CF | AF | SF],
        ["0xffff", "0x1", CF | AF],
        ["0xf488", "0xb78", CF | PF | AF],
      ],
      32: [
        ["0x0", "0x0", PF | ZF],
        ["0x1", "0xffffffff", CF | PF | AF | SF],
        ["0x80000000", "0x80000000", CF | PF | SF | OF],
        ["0x7fffffff", "0x80000001", CF | AF | SF],
        ["0xffffffff", "0x1", CF | AF],
        ["0xf0f0f0f", "0xf0f0f0f1", CF | AF | SF],
      ],
      64: [
        ["0x0", "0x0", PF | ZF],
        ["0x1", "0xffffffffffffffff", CF | PF | AF | SF],
        ["0x8000000000000000", "0x8000000000000000", CF | PF | SF | OF],
        ["0x7fffffffffffffff", "0x8000000000000001", CF | AF | SF],
        ["0xffffffffffffffff", "0x1", CF | AF],
        ["0x2", "0xfffffffffffffffe", CF | AF | SF],
      ],
    },
  },
  NOT: {
    defined: 0,
    code: {
      8: "f6 d0 f4", // not al; hlt
      16: "66 f7 d0 f4", // not ax; hlt
      32: "f7 d0 f4", // not eax; hlt
      64: "48 f7 d0 f4", // not rax; hlt
    },
    vectors: {
      8: [
        ["0x0", "0xff", 0],
        ["0x1", "0xfe", 0],
        ["0x80", "0x7f", 0],
        ["0x7f", "0x80", 0],
        ["0xff", "0x0", 0],
      ],
      16: [
        ["0x0", "0xffff", 0],
        ["0x1", "0xfffe", 0],
        ["0x8000", "0x7fff", 0],
        ["0x7fff", "0x8000", 0],
        ["0xffff", "0x0", 0],
      ],
      32: [
        ["0x0", "0xffffffff", 0],
        ["0x1", "0xfffffffe", 0],
        ["0x80000000", "0x7fffffff", 0],
        ["0x7fffffff", "0x80000000", 0],
        ["0xffffffff", "0x0", 0],
        ["0x3e71b5ac", "0xc18e4a53", 0],
      ],
      64: [
        ["0x0", "0xffffffffffffffff", 0],
        ["0x1", "0xfffffffffffffffe", 0],
        ["0x8000000000000000", "0x7fffffffffffffff", 0],
        ["0x7fffffffffffffff", "0x8000000000000000", 0],
        ["0xffffffffffffffff", "0x0", 0],
      ],
    },
  },

};

describe.each(Object.entries(BINARY))("%s", (_name, family) => {
  it.each(SIZES)("computes the result and the defined flags at %i bits from all-clear and all-set flags, leaving the rest", (size) => {
    for (const [left, right, result, flags] of family.vectors[size]) {
      for (const preset of [0, STATUS]) {
        const { rax, rflags } = run(family.code[size], size, left, right, preset);
        expect({ left, right, rax }).toEqual({ left, right, rax: expectedRax(size, result, family.writes, left) });
        expect({ left, right, preset, flags: rflags & family.defined }).toEqual({ left, right, preset, flags });
      }
    }
  });
});

describe.each(Object.entries(CARRY))("%s", (_name, family) => {
  it.each(SIZES)("takes CF as carry in and computes the result and all six flags at %i bits", (size) => {
    for (const [left, right, carry, result, flags] of family.vectors[size]) {
      // The other status flags all clear, then all set: they must not leak into the result.
      for (const others of [0, STATUS & ~CF]) {
        const { rax, rflags } = run(family.code[size], size, left, right, others | carry);
        expect({ left, right, carry, rax }).toEqual({ left, right, carry, rax: expectedRax(size, result, true, left) });
        expect({ left, right, carry, others, flags: rflags & STATUS }).toEqual({ left, right, carry, others, flags });
      }
    }
  });
});

describe.each(Object.entries(UNARY))("%s", (_name, family) => {
  it.each(SIZES)("computes the result at %i bits and changes only the flags it defines", (size) => {
    for (const [operand, result, flags] of family.vectors[size]) {
      for (const preset of [0, STATUS]) {
        const { rax, rflags } = run(family.code[size], size, operand, "0x0", preset);
        expect({ operand, rax }).toEqual({ operand, rax: expectedRax(size, result, true, operand) });
        expect({ operand, preset, flags: rflags & family.defined }).toEqual({ operand, preset, flags });
        expect({ operand, preset, untouched: rflags & STATUS & ~family.defined }).toEqual({ operand, preset, untouched: preset & ~family.defined });
      }
    }
  });
});

describe("operand forms", () => {
  const DATA = 0x180000;

  it("adds a register into a memory quadword and sets flags from the sum", () => {
    const m = new TestMachine();
    m.write64(DATA, 0xffffffffffffffffn);
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rax", 1n);
    m.runCode("48 01 03 f4"); // add qword ptr [rbx], rax; hlt
    expect(m.read64(DATA)).toBe(0n);
    expect(m.rflags & STATUS).toBe(CF | PF | AF | ZF);
  });

  it("subtracts a sign-extended immediate from a memory dword without touching its neighbours", () => {
    const m = new TestMachine();
    m.write64(DATA + 8, 0xaaaaaaaa00000005n);
    m.setReg("rbx", BigInt(DATA));
    m.runCode("83 6b 08 10 f4"); // sub dword ptr [rbx+8], 0x10; hlt
    expect(m.read64(DATA + 8)).toBe(0xaaaaaaaafffffff5n);
    expect(m.rflags & (CF | SF | ZF)).toBe(CF | SF);
  });

  it("reads and writes the high-byte registers AH and CH", () => {
    const m = new TestMachine();
    m.setReg("rax", 0x1111_7f00n);
    m.setReg("rbx", 0x01n);
    m.setReg("rcx", 0x2222_f000n);
    m.setReg("rdx", 0x0f00n);
    m.runCode("00 dc 30 f5 f4"); // add ah, bl; xor ch, dh; hlt
    expect(m.reg("rax")).toBe(0x1111_8000n);
    expect(m.reg("rcx")).toBe(0x2222_ff00n);
  });

  it("sign-extends an 8-bit immediate to 64 bits", () => {
    const m = new TestMachine();
    m.setReg("rax", 0x1_0000_0000n);
    m.runCode("48 83 c0 ff f4"); // add rax, -1; hlt
    expect(m.reg("rax")).toBe(0xffff_ffffn);
    expect(m.rflags & CF).toBe(CF);
  });

  it("clears bits 63:32 on a 32-bit logic result", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xdead_beef_1234_5678n);
    m.runCode("25 00 ff ff ff f4"); // and eax, 0xffffff00; hlt
    expect(m.reg("rax")).toBe(0x1234_5600n);
  });

  it("compares a memory byte with an immediate without writing it", () => {
    const m = new TestMachine();
    m.ram[DATA] = 0x7f;
    m.setReg("rbx", BigInt(DATA));
    m.runCode("80 3b 80 f4"); // cmp byte ptr [rbx], 0x80; hlt
    expect(m.ram[DATA]).toBe(0x7f);
    expect(m.rflags & (CF | OF | SF)).toBe(CF | OF | SF);
  });

  it("runs a LOCK-prefixed INC on memory like a plain one, keeping CF", () => {
    const m = new TestMachine();
    m.write64(DATA, 0x7fffffffffffffffn);
    m.setReg("rbx", BigInt(DATA));
    m.rflags = CF;
    m.runCode("f0 48 ff 03 f4"); // lock inc qword ptr [rbx]; hlt
    expect(m.read64(DATA)).toBe(0x8000000000000000n);
    expect(m.rflags & (CF | OF | SF)).toBe(CF | OF | SF);
  });

  it("negates a memory word and sets CF for a non-zero operand", () => {
    const m = new TestMachine();
    m.write64(DATA, 0x5555_0001n);
    m.setReg("rbx", BigInt(DATA));
    m.runCode("66 f7 1b f4"); // neg word ptr [rbx]; hlt
    expect(m.read64(DATA)).toBe(0x5555_ffffn);
    expect(m.rflags & CF).toBe(CF);
  });

  it("adds a memory source with carry in", () => {
    const m = new TestMachine();
    m.write64(DATA, 0xffff_ffffn);
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rax", 0n);
    m.rflags = CF;
    m.runCode("48 13 03 f4"); // adc rax, [rbx]; hlt
    expect(m.reg("rax")).toBe(0x1_0000_0000n);
    expect(m.rflags & CF).toBe(0);
  });
});
