// Shift and rotate vectors: (operand, count, carry in, result, flags) per size, from all-clear and
// all-set flags. Produced on an x86-64 host; flags the SDM leaves undefined are not compared.
import { TestMachine } from "./harness.js";

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const STATUS = CF | PF | AF | ZF | SF | OF;
const SIZES = [8, 16, 32, 64] as const;
type Size = (typeof SIZES)[number];

/** [operand, count (in CL), carry in, result, defined flags afterwards]. */
type Vector = [string, number, number, string, number];

interface Family {
  /** `<op> al/ax/eax/rax, cl; hlt`. */
  code: Record<Size, string>;
  vectors: Record<Size, Vector[]>;
}

type Kind = "shift" | "rotate" | "rotateCarry";

/** Flags the SDM defines after `kind` by `count` (CL already masked) at `size` bits. */
function definedFlags(kind: Kind, op: string, size: Size, count: number): number {
  if (count === 0) return 0;
  const of = count === 1 ? OF : 0;
  if (kind === "shift") return PF | ZF | SF | of | (count < size || op === "SAR" ? CF : 0);
  if (kind === "rotateCarry" && size < 32 && count % (size + 1) === 0) return 0;
  return CF | of;
}

/** Flags the instruction may change at all (rotates never touch SF, ZF, AF, PF). */
function writtenFlags(kind: Kind, count: number): number {
  if (count === 0) return 0;
  return kind === "shift" ? STATUS : CF | OF;
}

const RAX_FILL = 0x0123456789abcdefn;

const FAMILIES: Record<string, Family & { kind: Kind }> = {

  SHL: {
    kind: "shift",
    code: {
      8: "d2 e0 f4", // shl al, cl; hlt
      16: "66 d3 e0 f4", // shl ax, cl; hlt
      32: "d3 e0 f4", // shl eax, cl; hlt
      64: "48 d3 e0 f4", // shl rax, cl; hlt
    },
    vectors: {
      8: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x1", 1, 0, "0x2", 0],
        ["0x7f", 3, 0, "0xf8", CF | SF],
        ["0x80", 7, 0, "0x0", PF | ZF],
        ["0x7f", 8, 0, "0x0", PF | ZF],
        ["0x7f", 9, 0, "0x0", PF | ZF],
        ["0xff", 1, 0, "0xfe", CF | SF],
        ["0xff", 3, 0, "0xf8", CF | SF],
        ["0x1", 7, 0, "0x80", SF],
        ["0x1", 8, 0, "0x0", PF | ZF],
        ["0x1", 9, 0, "0x0", PF | ZF],
        ["0x7f", 1, 0, "0xfe", SF | OF],
        ["0x80", 3, 0, "0x0", PF | ZF],
      ],
      16: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x7fff", 1, 0, "0xfffe", SF | OF],
        ["0x8000", 3, 0, "0x0", PF | ZF],
        ["0xffff", 15, 0, "0x8000", CF | PF | SF],
        ["0x1", 16, 0, "0x0", PF | ZF],
        ["0x8000", 17, 0, "0x0", PF | ZF],
        ["0xffff", 1, 0, "0xfffe", CF | SF],
        ["0x7fff", 3, 0, "0xfff8", CF | SF],
        ["0x7fff", 15, 0, "0x8000", CF | PF | SF],
        ["0x7fff", 16, 0, "0x0", PF | ZF],
        ["0x1", 17, 0, "0x0", PF | ZF],
        ["0x8000", 1, 0, "0x0", CF | PF | ZF | OF],
        ["0x1", 3, 0, "0x8", 0],
      ],
      32: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x80000000", 0, 0, "0x80000000", 0],
        ["0xffffffff", 1, 0, "0xfffffffe", CF | SF],
        ["0xffffffff", 3, 0, "0xfffffff8", CF | SF],
        ["0xffffffff", 31, 0, "0x80000000", CF | PF | SF],
        ["0x1", 0, 0, "0x1", 0],
        ["0x7fffffff", 1, 0, "0xfffffffe", SF | OF],
        ["0x80000000", 3, 0, "0x0", PF | ZF],
        ["0x7fffffff", 31, 0, "0x80000000", CF | PF | SF],
        ["0x7fffffff", 0, 0, "0x7fffffff", 0],
        ["0x1", 1, 0, "0x2", 0],
        ["0x1", 3, 0, "0x8", 0],
        ["0x80000000", 31, 0, "0x0", PF | ZF],
      ],
      64: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x8000000000000000", 0, 0, "0x8000000000000000", 0],
        ["0x1", 1, 0, "0x2", 0],
        ["0x1", 3, 0, "0x8", 0],
        ["0x1", 63, 0, "0x8000000000000000", PF | SF],
        ["0x7fffffffffffffff", 0, 0, "0x7fffffffffffffff", 0],
        ["0x7fffffffffffffff", 1, 0, "0xfffffffffffffffe", SF | OF],
        ["0x7fffffffffffffff", 3, 0, "0xfffffffffffffff8", CF | SF],
        ["0x7fffffffffffffff", 63, 0, "0x8000000000000000", CF | PF | SF],
        ["0xffffffffffffffff", 0, 0, "0xffffffffffffffff", 0],
        ["0xffffffffffffffff", 1, 0, "0xfffffffffffffffe", CF | SF],
        ["0x8000000000000000", 3, 0, "0x0", PF | ZF],
        ["0x8000000000000000", 63, 0, "0x0", PF | ZF],
      ],
    },
  },
  SHR: {
    kind: "shift",
    code: {
      8: "d2 e8 f4", // shr al, cl; hlt
      16: "66 d3 e8 f4", // shr ax, cl; hlt
      32: "d3 e8 f4", // shr eax, cl; hlt
      64: "48 d3 e8 f4", // shr rax, cl; hlt
    },
    vectors: {
      8: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x1", 1, 0, "0x0", CF | PF | ZF],
        ["0x7f", 3, 0, "0xf", CF | PF],
        ["0x80", 7, 0, "0x1", 0],
        ["0x7f", 8, 0, "0x0", PF | ZF],
        ["0x7f", 9, 0, "0x0", PF | ZF],
        ["0xff", 1, 0, "0x7f", CF | OF],
        ["0xff", 3, 0, "0x1f", CF],
        ["0x1", 7, 0, "0x0", PF | ZF],
        ["0x1", 8, 0, "0x0", PF | ZF],
        ["0x1", 9, 0, "0x0", PF | ZF],
        ["0x7f", 1, 0, "0x3f", CF | PF],
        ["0x80", 3, 0, "0x10", 0],
      ],
      16: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x7fff", 1, 0, "0x3fff", CF | PF],
        ["0x8000", 3, 0, "0x1000", PF],
        ["0xffff", 15, 0, "0x1", CF],
        ["0x1", 16, 0, "0x0", PF | ZF],
        ["0x8000", 17, 0, "0x0", PF | ZF],
        ["0xffff", 1, 0, "0x7fff", CF | PF | OF],
        ["0x7fff", 3, 0, "0xfff", CF | PF],
        ["0x7fff", 15, 0, "0x0", CF | PF | ZF],
        ["0x7fff", 16, 0, "0x0", PF | ZF],
        ["0x1", 17, 0, "0x0", PF | ZF],
        ["0x8000", 1, 0, "0x4000", PF | OF],
        ["0x1", 3, 0, "0x0", PF | ZF],
      ],
      32: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x80000000", 0, 0, "0x80000000", 0],
        ["0xffffffff", 1, 0, "0x7fffffff", CF | PF | OF],
        ["0xffffffff", 3, 0, "0x1fffffff", CF | PF],
        ["0xffffffff", 31, 0, "0x1", CF],
        ["0x1", 0, 0, "0x1", 0],
        ["0x7fffffff", 1, 0, "0x3fffffff", CF | PF],
        ["0x80000000", 3, 0, "0x10000000", PF],
        ["0x7fffffff", 31, 0, "0x0", CF | PF | ZF],
        ["0x7fffffff", 0, 0, "0x7fffffff", 0],
        ["0x1", 1, 0, "0x0", CF | PF | ZF],
        ["0x1", 3, 0, "0x0", PF | ZF],
        ["0x80000000", 31, 0, "0x1", 0],
      ],
      64: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x8000000000000000", 0, 0, "0x8000000000000000", 0],
        ["0x1", 1, 0, "0x0", CF | PF | ZF],
        ["0x1", 3, 0, "0x0", PF | ZF],
        ["0x1", 63, 0, "0x0", PF | ZF],
        ["0x7fffffffffffffff", 0, 0, "0x7fffffffffffffff", 0],
        ["0x7fffffffffffffff", 1, 0, "0x3fffffffffffffff", CF | PF],
        ["0x7fffffffffffffff", 3, 0, "0xfffffffffffffff", CF | PF],
        ["0x7fffffffffffffff", 63, 0, "0x0", CF | PF | ZF],
        ["0xffffffffffffffff", 0, 0, "0xffffffffffffffff", 0],
        ["0xffffffffffffffff", 1, 0, "0x7fffffffffffffff", CF | PF | OF],
        ["0x8000000000000000", 3, 0, "0x1000000000000000", PF],
        ["0x8000000000000000", 63, 0, "0x1", 0],
      ],
    },
  },
  SAR: {
    kind: "shift",
    code: {
      8: "d2 f8 f4", // sar al, cl; hlt
      16: "66 d3 f8 f4", // sar ax, cl; hlt
      32: "d3 f8 f4", // sar eax, cl; hlt
      64: "48 d3 f8 f4", // sar rax, cl; hlt
    },
    vectors: {
      8: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x1", 1, 0, "0x0", CF | PF | ZF],
        ["0x7f", 3, 0, "0xf", CF | PF],
        ["0x80", 7, 0, "0xff", PF | SF],
        ["0x7f", 8, 0, "0x0", PF | ZF],
        ["0x7f", 9, 0, "0x0", PF | ZF],
        ["0xff", 1, 0, "0xff", CF | PF | SF],
        ["0xff", 3, 0, "0xff", CF | PF | SF],
        ["0x1", 7, 0, "0x0", PF | ZF],
        ["0x1", 8, 0, "0x0", PF | ZF],
        ["0x1", 9, 0, "0x0", PF | ZF],
        ["0x7f", 1, 0, "0x3f", CF | PF],
        ["0x80", 3, 0, "0xf0", PF | SF],
      ],
      16: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x7fff", 1, 0, "0x3fff", CF | PF],
        ["0x8000", 3, 0, "0xf000", PF | SF],
        ["0xffff", 15, 0, "0xffff", CF | PF | SF],
        ["0x1", 16, 0, "0x0", PF | ZF],
        ["0x8000", 17, 0, "0xffff", CF | PF | SF],
        ["0xffff", 1, 0, "0xffff", CF | PF | SF],
        ["0x7fff", 3, 0, "0xfff", CF | PF],
        ["0x7fff", 15, 0, "0x0", CF | PF | ZF],
        ["0x7fff", 16, 0, "0x0", PF | ZF],
        ["0x1", 17, 0, "0x0", PF | ZF],
        ["0x8000", 1, 0, "0xc000", PF | SF],
        ["0x1", 3, 0, "0x0", PF | ZF],
      ],
      32: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x80000000", 0, 0, "0x80000000", 0],
        ["0xffffffff", 1, 0, "0xffffffff", CF | PF | SF],
        ["0xffffffff", 3, 0, "0xffffffff", CF | PF | SF],
        ["0xffffffff", 31, 0, "0xffffffff", CF | PF | SF],
        ["0x1", 0, 0, "0x1", 0],
        ["0x7fffffff", 1, 0, "0x3fffffff", CF | PF],
        ["0x80000000", 3, 0, "0xf0000000", PF | SF],
        ["0x7fffffff", 31, 0, "0x0", CF | PF | ZF],
        ["0x7fffffff", 0, 0, "0x7fffffff", 0],
        ["0x1", 1, 0, "0x0", CF | PF | ZF],
        ["0x1", 3, 0, "0x0", PF | ZF],
        ["0x80000000", 31, 0, "0xffffffff", PF | SF],
      ],
      64: [
        ["0x0", 1, 0, "0x0", PF | ZF],
        ["0x8000000000000000", 0, 0, "0x8000000000000000", 0],
        ["0x1", 1, 0, "0x0", CF | PF | ZF],
        ["0x1", 3, 0, "0x0", PF | ZF],
        ["0x1", 63, 0, "0x0", PF | ZF],
        ["0x7fffffffffffffff", 0, 0, "0x7fffffffffffffff", 0],
        ["0x7fffffffffffffff", 1, 0, "0x3fffffffffffffff", CF | PF],
        ["0x7fffffffffffffff", 3, 0, "0xfffffffffffffff", CF | PF],
        ["0x7fffffffffffffff", 63, 0, "0x0", CF | PF | ZF],
        ["0xffffffffffffffff", 0, 0, "0xffffffffffffffff", 0],
        ["0xffffffffffffffff", 1, 0, "0xffffffffffffffff", CF | PF | SF],
        ["0x8000000000000000", 3, 0, "0xf000000000000000", PF | SF],
        ["0x8000000000000000", 63, 0, "0xffffffffffffffff", PF | SF],
      ],
    },
  },
  ROL: {
    kind: "rotate",
    code: {
      8: "d2 c0 f4", // rol al, cl; hlt
      16: "66 d3 c0 f4", // rol ax, cl; hlt
      32: "d3 c0 f4", // rol eax, cl; hlt
      64: "48 d3 c0 f4", // rol rax, cl; hlt
    },
    vectors: {
      8: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x1", 1, 0, "0x2", 0],
        ["0x7f", 3, 0, "0xfb", CF],
        ["0x80", 7, 0, "0x40", 0],
        ["0x7f", 8, 0, "0x7f", CF],
        ["0x7f", 9, 0, "0xfe", 0],
        ["0xff", 1, 0, "0xff", CF],
        ["0xff", 3, 0, "0xff", CF],
        ["0x1", 7, 0, "0x80", 0],
        ["0x1", 8, 0, "0x1", CF],
        ["0x1", 9, 0, "0x2", 0],
        ["0x7f", 1, 0, "0xfe", OF],
        ["0x80", 3, 0, "0x4", 0],
      ],
      16: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x7fff", 1, 0, "0xfffe", OF],
        ["0x8000", 3, 0, "0x4", 0],
        ["0xffff", 15, 0, "0xffff", CF],
        ["0x1", 16, 0, "0x1", CF],
        ["0x8000", 17, 0, "0x1", CF],
        ["0xffff", 1, 0, "0xffff", CF],
        ["0x7fff", 3, 0, "0xfffb", CF],
        ["0x7fff", 15, 0, "0xbfff", CF],
        ["0x7fff", 16, 0, "0x7fff", CF],
        ["0x1", 17, 0, "0x2", 0],
        ["0x8000", 1, 0, "0x1", CF | OF],
        ["0x1", 3, 0, "0x8", 0],
      ],
      32: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x80000000", 0, 0, "0x80000000", 0],
        ["0xffffffff", 1, 0, "0xffffffff", CF],
        ["0xffffffff", 3, 0, "0xffffffff", CF],
        ["0xffffffff", 31, 0, "0xffffffff", CF],
        ["0x1", 0, 0, "0x1", 0],
        ["0x7fffffff", 1, 0, "0xfffffffe", OF],
        ["0x80000000", 3, 0, "0x4", 0],
        ["0x7fffffff", 31, 0, "0xbfffffff", CF],
        ["0x7fffffff", 0, 0, "0x7fffffff", 0],
        ["0x1", 1, 0, "0x2", 0],
        ["0x1", 3, 0, "0x8", 0],
        ["0x80000000", 31, 0, "0x40000000", 0],
      ],
      64: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x8000000000000000", 0, 0, "0x8000000000000000", 0],
        ["0x1", 1, 0, "0x2", 0],
        ["0x1", 3, 0, "0x8", 0],
        ["0x1", 63, 0, "0x8000000000000000", 0],
        ["0x7fffffffffffffff", 0, 0, "0x7fffffffffffffff", 0],
        ["0x7fffffffffffffff", 1, 0, "0xfffffffffffffffe", OF],
        ["0x7fffffffffffffff", 3, 0, "0xfffffffffffffffb", CF],
        ["0x7fffffffffffffff", 63, 0, "0xbfffffffffffffff", CF],
        ["0xffffffffffffffff", 0, 0, "0xffffffffffffffff", 0],
        ["0xffffffffffffffff", 1, 0, "0xffffffffffffffff", CF],
        ["0x8000000000000000", 3, 0, "0x4", 0],
        ["0x8000000000000000", 63, 0, "0x4000000000000000", 0],
      ],
    },
  },
  ROR: {
    kind: "rotate",
    code: {
      8: "d2 c8 f4", // ror al, cl; hlt
      16: "66 d3 c8 f4", // ror ax, cl; hlt
      32: "d3 c8 f4", // ror eax, cl; hlt
      64: "48 d3 c8 f4", // ror rax, cl; hlt
    },
    vectors: {
      8: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x1", 1, 0, "0x80", CF | OF],
        ["0x7f", 3, 0, "0xef", CF],
        ["0x80", 7, 0, "0x1", 0],
        ["0x7f", 8, 0, "0x7f", 0],
        ["0x7f", 9, 0, "0xbf", CF],
        ["0xff", 1, 0, "0xff", CF],
        ["0xff", 3, 0, "0xff", CF],
        ["0x1", 7, 0, "0x2", 0],
        ["0x1", 8, 0, "0x1", 0],
        ["0x1", 9, 0, "0x80", CF],
        ["0x7f", 1, 0, "0xbf", CF | OF],
        ["0x80", 3, 0, "0x10", 0],
      ],
      16: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x7fff", 1, 0, "0xbfff", CF | OF],
        ["0x8000", 3, 0, "0x1000", 0],
        ["0xffff", 15, 0, "0xffff", CF],
        ["0x1", 16, 0, "0x1", 0],
        ["0x8000", 17, 0, "0x4000", 0],
        ["0xffff", 1, 0, "0xffff", CF],
        ["0x7fff", 3, 0, "0xefff", CF],
        ["0x7fff", 15, 0, "0xfffe", CF],
        ["0x7fff", 16, 0, "0x7fff", 0],
        ["0x1", 17, 0, "0x8000", CF],
        ["0x8000", 1, 0, "0x4000", OF],
        ["0x1", 3, 0, "0x2000", 0],
      ],
      32: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x80000000", 0, 0, "0x80000000", 0],
        ["0xffffffff", 1, 0, "0xffffffff", CF],
        ["0xffffffff", 3, 0, "0xffffffff", CF],
        ["0xffffffff", 31, 0, "0xffffffff", CF],
        ["0x1", 0, 0, "0x1", 0],
        ["0x7fffffff", 1, 0, "0xbfffffff", CF | OF],
        ["0x80000000", 3, 0, "0x10000000", 0],
        ["0x7fffffff", 31, 0, "0xfffffffe", CF],
        ["0x7fffffff", 0, 0, "0x7fffffff", 0],
        ["0x1", 1, 0, "0x80000000", CF | OF],
        ["0x1", 3, 0, "0x20000000", 0],
        ["0x80000000", 31, 0, "0x1", 0],
      ],
      64: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x8000000000000000", 0, 0, "0x8000000000000000", 0],
        ["0x1", 1, 0, "0x8000000000000000", CF | OF],
        ["0x1", 3, 0, "0x2000000000000000", 0],
        ["0x1", 63, 0, "0x2", 0],
        ["0x7fffffffffffffff", 0, 0, "0x7fffffffffffffff", 0],
        ["0x7fffffffffffffff", 1, 0, "0xbfffffffffffffff", CF | OF],
        ["0x7fffffffffffffff", 3, 0, "0xefffffffffffffff", CF],
        ["0x7fffffffffffffff", 63, 0, "0xfffffffffffffffe", CF],
        ["0xffffffffffffffff", 0, 0, "0xffffffffffffffff", 0],
        ["0xffffffffffffffff", 1, 0, "0xffffffffffffffff", CF],
        ["0x8000000000000000", 3, 0, "0x1000000000000000", 0],
        ["0x8000000000000000", 63, 0, "0x1", 0],
      ],
    },
  },
  RCL: {
    kind: "rotateCarry",
    code: {
      8: "d2 d0 f4", // rcl al, cl; hlt
      16: "66 d3 d0 f4", // rcl ax, cl; hlt
      32: "d3 d0 f4", // rcl eax, cl; hlt
      64: "48 d3 d0 f4", // rcl rax, cl; hlt
    },
    vectors: {
      8: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x7f", 1, 0, "0xfe", OF],
        ["0x7f", 1, 1, "0xff", OF],
        ["0x1", 3, 0, "0x8", 0],
        ["0x7f", 3, 1, "0xfd", CF],
        ["0x80", 7, 0, "0x20", 0],
        ["0x7f", 7, 1, "0xdf", CF],
        ["0x80", 8, 0, "0x40", 0],
        ["0x1", 8, 1, "0x80", CF],
        ["0x80", 9, 0, "0x80", 0],
        ["0x1", 9, 1, "0x1", 0],
        ["0x1", 1, 0, "0x2", 0],
        ["0x80", 1, 1, "0x1", CF | OF],
      ],
      16: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x8000", 1, 0, "0x0", CF | OF],
        ["0x1", 1, 1, "0x3", 0],
        ["0x7fff", 3, 0, "0xfff9", CF],
        ["0x1", 3, 1, "0xc", 0],
        ["0x7fff", 15, 0, "0x9fff", CF],
        ["0x7fff", 15, 1, "0xdfff", CF],
        ["0x1", 16, 0, "0x0", CF],
        ["0x8000", 16, 1, "0xc000", 0],
        ["0x7fff", 17, 0, "0x7fff", 0],
        ["0x1", 17, 1, "0x1", 0],
        ["0x7fff", 1, 0, "0xfffe", OF],
        ["0x7fff", 1, 1, "0xffff", OF],
      ],
      32: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x80000000", 0, 0, "0x80000000", 0],
        ["0x1", 0, 1, "0x1", 0],
        ["0x80000000", 1, 0, "0x0", CF | OF],
        ["0xffffffff", 1, 1, "0xffffffff", CF],
        ["0xffffffff", 3, 0, "0xfffffffb", CF],
        ["0x80000000", 3, 1, "0x6", 0],
        ["0xffffffff", 31, 0, "0xbfffffff", CF],
        ["0xffffffff", 31, 1, "0xffffffff", CF],
        ["0x7fffffff", 0, 0, "0x7fffffff", 0],
        ["0x7fffffff", 0, 1, "0x7fffffff", 0],
        ["0xffffffff", 1, 0, "0xfffffffe", CF],
        ["0x1", 1, 1, "0x3", 0],
      ],
      64: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x7fffffffffffffff", 0, 0, "0x7fffffffffffffff", 0],
        ["0x8000000000000000", 0, 1, "0x8000000000000000", 0],
        ["0xffffffffffffffff", 1, 0, "0xfffffffffffffffe", CF],
        ["0x1", 1, 1, "0x3", 0],
        ["0x1", 3, 0, "0x8", 0],
        ["0x8000000000000000", 3, 1, "0x6", 0],
        ["0x1", 63, 0, "0x8000000000000000", 0],
        ["0x1", 63, 1, "0xc000000000000000", 0],
        ["0x1", 0, 0, "0x1", 0],
        ["0x7fffffffffffffff", 0, 1, "0x7fffffffffffffff", 0],
        ["0x8000000000000000", 1, 0, "0x0", CF | OF],
        ["0x8000000000000000", 1, 1, "0x1", CF | OF],
      ],
    },
  },
  RCR: {
    kind: "rotateCarry",
    code: {
      8: "d2 d8 f4", // rcr al, cl; hlt
      16: "66 d3 d8 f4", // rcr ax, cl; hlt
      32: "d3 d8 f4", // rcr eax, cl; hlt
      64: "48 d3 d8 f4", // rcr rax, cl; hlt
    },
    vectors: {
      8: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x7f", 1, 0, "0x3f", CF],
        ["0x7f", 1, 1, "0xbf", CF | OF],
        ["0x1", 3, 0, "0x40", 0],
        ["0x7f", 3, 1, "0xef", CF],
        ["0x80", 7, 0, "0x1", 0],
        ["0x7f", 7, 1, "0xfe", CF],
        ["0x80", 8, 0, "0x0", CF],
        ["0x1", 8, 1, "0x3", 0],
        ["0x80", 9, 0, "0x80", 0],
        ["0x1", 9, 1, "0x1", 0],
        ["0x1", 1, 0, "0x0", CF],
        ["0x80", 1, 1, "0xc0", 0],
      ],
      16: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x8000", 1, 0, "0x4000", OF],
        ["0x1", 1, 1, "0x8000", CF | OF],
        ["0x7fff", 3, 0, "0xcfff", CF],
        ["0x1", 3, 1, "0x6000", 0],
        ["0x7fff", 15, 0, "0xfffc", CF],
        ["0x7fff", 15, 1, "0xfffe", CF],
        ["0x1", 16, 0, "0x2", 0],
        ["0x8000", 16, 1, "0x1", CF],
        ["0x7fff", 17, 0, "0x7fff", 0],
        ["0x1", 17, 1, "0x1", 0],
        ["0x7fff", 1, 0, "0x3fff", CF],
        ["0x7fff", 1, 1, "0xbfff", CF | OF],
      ],
      32: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x80000000", 0, 0, "0x80000000", 0],
        ["0x1", 0, 1, "0x1", 0],
        ["0x80000000", 1, 0, "0x40000000", OF],
        ["0xffffffff", 1, 1, "0xffffffff", CF],
        ["0xffffffff", 3, 0, "0xdfffffff", CF],
        ["0x80000000", 3, 1, "0x30000000", 0],
        ["0xffffffff", 31, 0, "0xfffffffd", CF],
        ["0xffffffff", 31, 1, "0xffffffff", CF],
        ["0x7fffffff", 0, 0, "0x7fffffff", 0],
        ["0x7fffffff", 0, 1, "0x7fffffff", 0],
        ["0xffffffff", 1, 0, "0x7fffffff", CF | OF],
        ["0x1", 1, 1, "0x80000000", CF | OF],
      ],
      64: [
        ["0x0", 1, 0, "0x0", 0],
        ["0x7fffffffffffffff", 0, 0, "0x7fffffffffffffff", 0],
        ["0x8000000000000000", 0, 1, "0x8000000000000000", 0],
        ["0xffffffffffffffff", 1, 0, "0x7fffffffffffffff", CF | OF],
        ["0x1", 1, 1, "0x8000000000000000", CF | OF],
        ["0x1", 3, 0, "0x4000000000000000", 0],
        ["0x8000000000000000", 3, 1, "0x3000000000000000", 0],
        ["0x1", 63, 0, "0x4", 0],
        ["0x1", 63, 1, "0x6", 0],
        ["0x1", 0, 0, "0x1", 0],
        ["0x7fffffffffffffff", 0, 1, "0x7fffffffffffffff", 0],
        ["0x8000000000000000", 1, 0, "0x4000000000000000", OF],
        ["0x8000000000000000", 1, 1, "0xc000000000000000", 0],
      ],
    },
  },

};

describe.each(Object.entries(FAMILIES))("%s", (name, family) => {
  it.each(SIZES)("shifts by CL at %i bits, sets the defined flags and leaves the others", (size) => {
    const mask = (1n << BigInt(size)) - 1n;
    for (const [operand, count, carry, result, flags] of family.vectors[size]) {
      for (const others of [0, STATUS & ~CF]) {
        const preset = family.kind === "rotateCarry" ? others | carry : others === 0 ? 0 : STATUS;
        const m = new TestMachine();
        m.setReg("rax", (RAX_FILL & ~mask) | BigInt(operand));
        m.setReg("rcx", BigInt(count));
        m.rflags = preset;
        expect(m.runCode(family.code[size], 10)).toEqual({ kind: "halted" });
        // A 32-bit register write clears bits 63:32, even for a count of 0.
        const expected = size === 32 ? BigInt(result) : (RAX_FILL & ~mask) | BigInt(result);
        const defined = definedFlags(family.kind, name, size, count);
        const untouched = STATUS & ~writtenFlags(family.kind, count);
        expect({ operand, count, carry, rax: m.reg("rax") }).toEqual({ operand, count, carry, rax: expected });
        expect({ operand, count, carry, preset, flags: m.rflags & defined }).toEqual({ operand, count, carry, preset, flags });
        expect({ operand, count, preset, untouched: m.rflags & untouched }).toEqual({ operand, count, preset, untouched: preset & untouched });
      }
    }
  });
});

describe("count encodings", () => {
  it("shifts by 1 with the D1 form and sets OF from the top bits", () => {
    const m = new TestMachine();
    m.setReg("rax", 0x4000_0000_0000_0000n);
    m.runCode("48 d1 e0 f4"); // shl rax, 1; hlt
    expect(m.reg("rax")).toBe(0x8000_0000_0000_0000n);
    expect(m.rflags & (CF | OF | SF)).toBe(OF | SF);
  });

  it("masks an immediate count to 6 bits for 64-bit operands", () => {
    const m = new TestMachine();
    m.setReg("rax", 0x8000_0000_0000_0001n);
    m.runCode("48 c1 c8 41 f4"); // ror rax, 0x41; hlt  (count 65 & 63 = 1)
    expect(m.reg("rax")).toBe(0xc000_0000_0000_0000n);
    expect(m.rflags & CF).toBe(CF);
  });

  it("changes no flag for a masked count of 0, but still clears bits 63:32 of a 32-bit register", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xffff_ffff_0000_0001n);
    m.setReg("rcx", 32n);
    m.rflags = CF | ZF;
    m.runCode("d3 e0 f4"); // shl eax, cl; hlt  (count 32 & 31 = 0)
    expect(m.reg("rax")).toBe(0x0000_0000_0000_0001n);
    expect(m.rflags & STATUS).toBe(CF | ZF);
    m.setReg("rax", 0xffff_ffff_0000_0001n);
    m.runCode("48 d3 e0 f4"); // shl rax, cl; hlt  (count 32: a real shift at 64 bits)
    expect(m.reg("rax")).toBe(0x0000_0001_0000_0000n);
  });

  it("shifts a memory operand in place", () => {
    const m = new TestMachine();
    m.write64(0x180000, 0x8000_0000_0000_0002n);
    m.setReg("rbx", 0x180000n);
    m.runCode("48 d1 3b f4"); // sar qword ptr [rbx], 1; hlt
    expect(m.read64(0x180000)).toBe(0xc000_0000_0000_0001n);
  });

  it("shifts double-width with SHLD and SHRD", () => {
    const m = new TestMachine();
    m.setReg("rax", 0x1234_5678_9abc_def0n);
    m.setReg("rbx", 0xfedc_ba98_7654_3210n);
    m.runCode("48 0f a4 d8 10 f4"); // shld rax, rbx, 16; hlt
    expect(m.reg("rax")).toBe(0x5678_9abc_def0_fedcn);
    m.setReg("rax", 0x1234_5678_9abc_def0n);
    m.runCode("48 0f ac d8 10 f4"); // shrd rax, rbx, 16; hlt
    expect(m.reg("rax")).toBe(0x3210_1234_5678_9abcn);
  });
});
