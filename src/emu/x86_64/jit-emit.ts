// JavaScript source for one compiled block (see jit.ts): every instruction either calls its op
// closure from a call site of its own, or, for the common register forms, is emitted inline.
//
// Inline forms (registers and immediates only, so they cannot fault or store):
//   MOV r32/r64, r/imm; ADD SUB CMP AND OR XOR TEST r32/r64, r/imm; INC DEC r32/r64;
//   SHL SHR SAR ROL ROR r32/r64, imm (value only: when their flags are dead, else the closure).
// Flags: an inline instruction computes only the flags some later instruction of the block can
// read before they are written again. Every op closure counts as reading all six status flags
// (it may read them, fault, or end the block), and so does the end of the block.

import { Mnemonic } from "iced-x86";
import type { Block } from "./code-cache.js";
import * as flagsModule from "./flags.js";
import type { Insn } from "./insn.js";
import type { Operand } from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { AF, ARITH, CF, OF, PARITY, PF, SF, ZF } = flagsModule;
const { RFLAGS, RIP } = vpLayoutModule;

const TRACE = process.env.VMM_DEBUG_JIT_TRACE !== undefined;

/** What an inline form does. */
interface Form {
  /** Status flags it writes (all of them whenever it runs). */
  writes: number;
  /** Source: `flags` true to compute the written flags too. Null: this form needs its closure then. */
  emit(flags: boolean): string | null;
}

const ALU: ReadonlyMap<Mnemonic, "add" | "sub" | "cmp" | "and" | "or" | "xor" | "test"> = new Map([
  [Mnemonic.Add, "add"], [Mnemonic.Sub, "sub"], [Mnemonic.Cmp, "cmp"], [Mnemonic.And, "and"],
  [Mnemonic.Or, "or"], [Mnemonic.Xor, "xor"], [Mnemonic.Test, "test"],
] as const);

const SHIFTS: ReadonlyMap<Mnemonic, "shl" | "shr" | "sar" | "rol" | "ror"> = new Map([
  [Mnemonic.Shl, "shl"], [Mnemonic.Sal, "shl"], [Mnemonic.Shr, "shr"], [Mnemonic.Sar, "sar"], [Mnemonic.Rol, "rol"], [Mnemonic.Ror, "ror"],
] as const);

function isReg(o: Operand | undefined, size?: number): o is Operand & { kind: "reg" } {
  return o !== undefined && o.kind === "reg" && !o.high8 && (size === undefined || o.size === size);
}

/** Source reading a 32-bit source operand (register or immediate) as a signed word. */
function src32(o: Operand): string | null {
  if (o.kind === "reg" && o.size === 4) return `r[${o.slot}]`;
  if (o.kind === "imm") return String(o.lo | 0);
  return null;
}

/** Source of a 64-bit source operand: [low, high]. */
function src64(o: Operand): [string, string] | null {
  if (o.kind === "reg" && o.size === 8) return [`r[${o.slot}]`, `r[${o.slot + 1}]`];
  if (o.kind === "imm") return [String(o.lo | 0), String(o.hi | 0)];
  return null;
}

const SET_FLAGS = (mask: number, f: string) => `r[${RFLAGS}] = (r[${RFLAGS}] & ${~mask}) | ${f};`;
const SZP32 = (v: string) => `P[${v} & 255] | (${v} === 0 ? ${ZF} : 0) | ((${v} >>> 24) & ${SF})`;
const SZP64 = (lo: string, hi: string) => `P[${lo} & 255] | ((${lo} | ${hi}) === 0 ? ${ZF} : 0) | ((${hi} >>> 24) & ${SF})`;

function formOf(d: Insn): Form | null {
  const m = d.mnemonic;
  const [a, b] = d.ops;
  if (d.ops.length === 2 && m === Mnemonic.Mov && isReg(a)) {
    if (a.size === 4) {
      const s = src32(b);
      if (s === null) return null;
      return { writes: 0, emit: () => `r[${a.slot}] = ${s}; r[${a.slot + 1}] = 0;` };
    }
    if (a.size === 8) {
      const s = src64(b);
      if (s === null) return null;
      // Both words read before either is written (mov rax, rax).
      return { writes: 0, emit: () => `{ const l = ${s[0]}, h = ${s[1]}; r[${a.slot}] = l; r[${a.slot + 1}] = h; }` };
    }
    return null;
  }
  const alu = ALU.get(m);
  if (alu !== undefined && d.ops.length === 2 && isReg(a)) {
    const writes = alu !== "cmp" && alu !== "test";
    if (a.size === 4) {
      const s = src32(b);
      if (s === null) return null;
      const d0 = a.slot;
      return {
        writes: ARITH,
        emit(flags) {
          let body = `const a = r[${d0}], b = ${s};`;
          let f = "";
          switch (alu) {
            case "add":
              body += " const t = (a >>> 0) + (b >>> 0), v = t | 0;";
              f = `(t > 0xffffffff ? ${CF} : 0) | ${SZP32("v")} | ((a ^ b ^ v) & ${AF}) | ((((a ^ v) & (b ^ v)) >>> 20) & ${OF})`;
              break;
            case "sub": case "cmp":
              body += " const t = (a >>> 0) - (b >>> 0), v = t | 0;";
              f = `(t < 0 ? ${CF} : 0) | ${SZP32("v")} | ((a ^ b ^ v) & ${AF}) | ((((a ^ b) & (a ^ v)) >>> 20) & ${OF})`;
              break;
            default: {
              const op = alu === "or" ? "|" : alu === "xor" ? "^" : "&";
              body += ` const v = a ${op} b;`;
              f = SZP32("v");
            }
          }
          if (flags) body += " " + SET_FLAGS(ARITH, `(${f})`);
          if (writes) body += ` r[${d0}] = v; r[${d0 + 1}] = 0;`;
          else if (!flags) return "";
          return `{ ${body} }`;
        },
      };
    }
    if (a.size === 8) {
      const s = src64(b);
      if (s === null) return null;
      const d0 = a.slot;
      return {
        writes: ARITH,
        emit(flags) {
          let body = `const al = r[${d0}], ah = r[${d0 + 1}], bl = ${s[0]}, bh = ${s[1]};`;
          let f = "";
          switch (alu) {
            case "add":
              body += " const sl = (al >>> 0) + (bl >>> 0), lo = sl | 0, sh = (ah >>> 0) + (bh >>> 0) + (sl > 0xffffffff ? 1 : 0), hi = sh | 0;";
              f = `(sh > 0xffffffff ? ${CF} : 0) | ${SZP64("lo", "hi")} | ((al ^ bl ^ lo) & ${AF}) | ((((ah ^ hi) & (bh ^ hi)) >>> 20) & ${OF})`;
              break;
            case "sub": case "cmp":
              body += " const dl = (al >>> 0) - (bl >>> 0), lo = dl | 0, dh = (ah >>> 0) - (bh >>> 0) - (dl < 0 ? 1 : 0), hi = dh | 0;";
              f = `(dh < 0 ? ${CF} : 0) | ${SZP64("lo", "hi")} | ((al ^ bl ^ lo) & ${AF}) | ((((ah ^ bh) & (ah ^ hi)) >>> 20) & ${OF})`;
              break;
            default: {
              const op = alu === "or" ? "|" : alu === "xor" ? "^" : "&";
              body += ` const lo = al ${op} bl, hi = ah ${op} bh;`;
              f = SZP64("lo", "hi");
            }
          }
          if (flags) body += " " + SET_FLAGS(ARITH, `(${f})`);
          if (writes) body += ` r[${d0}] = lo; r[${d0 + 1}] = hi;`;
          else if (!flags) return "";
          return `{ ${body} }`;
        },
      };
    }
    return null;
  }
  if ((m === Mnemonic.Inc || m === Mnemonic.Dec) && d.ops.length === 1 && isReg(a) && (a.size === 4 || a.size === 8)) {
    const inc = m === Mnemonic.Inc;
    const d0 = a.slot;
    const W = ARITH & ~CF;
    if (a.size === 4) {
      return {
        writes: W,
        emit(flags) {
          let body = inc
            ? `const a = r[${d0}], v = (a + 1) | 0;`
            : `const a = r[${d0}], v = (a - 1) | 0;`;
          if (flags) {
            const of = inc ? `(((a ^ v) & (1 ^ v)) >>> 20) & ${OF}` : `(((a ^ 1) & (a ^ v)) >>> 20) & ${OF}`;
            body += " " + SET_FLAGS(W, `(${SZP32("v")} | ((a ^ 1 ^ v) & ${AF}) | (${of}))`);
          }
          return `{ ${body} r[${d0}] = v; r[${d0 + 1}] = 0; }`;
        },
      };
    }
    return {
      writes: W,
      emit(flags) {
        let body = inc
          ? `const al = r[${d0}], ah = r[${d0 + 1}], lo = (al + 1) | 0, hi = lo === 0 ? (ah + 1) | 0 : ah;`
          : `const al = r[${d0}], ah = r[${d0 + 1}], lo = (al - 1) | 0, hi = al === 0 ? (ah - 1) | 0 : ah;`;
        if (flags) {
          const of = inc ? `((((ah ^ hi) & (0 ^ hi)) >>> 20) & ${OF})` : `((((ah ^ 0) & (ah ^ hi)) >>> 20) & ${OF})`;
          body += " " + SET_FLAGS(W, `(${SZP64("lo", "hi")} | ((al ^ 1 ^ lo) & ${AF}) | ${of})`);
        }
        return `{ ${body} r[${d0}] = lo; r[${d0 + 1}] = hi; }`;
      },
    };
  }
  if ((m === Mnemonic.Movzx || m === Mnemonic.Movsx) && d.ops.length === 2 && isReg(a) && (a.size === 4 || a.size === 8) && b.kind === "reg" && (b.size === 1 || b.size === 2)) {
    const src = b.high8 ? `(r[${b.slot}] >> 8)` : `r[${b.slot}]`;
    const v = m === Mnemonic.Movzx
      ? `${src} & ${b.size === 1 ? 0xff : 0xffff}`
      : `(${src} << ${b.size === 1 ? 24 : 16}) >> ${b.size === 1 ? 24 : 16}`;
    const hi = m === Mnemonic.Movsx && a.size === 8 ? "v >> 31" : "0";
    return { writes: 0, emit: () => `{ const v = ${v}; r[${a.slot}] = v; r[${a.slot + 1}] = ${hi}; }` };
  }
  if (m === Mnemonic.Not && d.ops.length === 1 && isReg(a) && (a.size === 4 || a.size === 8)) {
    return { writes: 0, emit: () => a.size === 4 ? `r[${a.slot}] = ~r[${a.slot}]; r[${a.slot + 1}] = 0;` : `r[${a.slot}] = ~r[${a.slot}]; r[${a.slot + 1}] = ~r[${a.slot + 1}];` };
  }
  const sh = SHIFTS.get(m);
  if (sh !== undefined && d.ops.length === 2 && isReg(a) && (a.size === 4 || a.size === 8) && b.kind === "imm") {
    const d0 = a.slot;
    if (a.size === 4) {
      const n = b.lo & 31;
      if (n === 0) return null;
      const rot = sh === "rol" || sh === "ror";
      return {
        writes: rot ? CF | OF : ARITH,
        emit(flags) {
          const v =
            sh === "shl" ? `a << ${n}` : sh === "shr" ? `a >>> ${n}` : sh === "sar" ? `a >> ${n}`
              : sh === "rol" ? `(a << ${n}) | (a >>> ${32 - n})` : `(a >>> ${n}) | (a << ${32 - n})`;
          let f = "";
          if (flags) {
            // As shift-rotate.ts computes them.
            switch (sh) {
              case "shl": f = SET_FLAGS(ARITH, `(((a >>> ${32 - n}) & 1) | ${SZP32("v")} | ((((v >>> 31) & 1) ^ ((a >>> ${32 - n}) & 1)) << 11))`); break;
              case "shr": f = SET_FLAGS(ARITH, `(((a >>> ${n - 1}) & 1) | ${SZP32("v")} | (((a >>> 31) & 1) << 11))`); break;
              case "sar": f = SET_FLAGS(ARITH, `(((a >> ${n - 1}) & 1) | ${SZP32("v")})`); break;
              case "rol": f = SET_FLAGS(CF | OF, `((v & 1) | ((((v >>> 31) & 1) ^ (v & 1)) << 11))`); break;
              default: f = SET_FLAGS(CF | OF, `(((v >>> 31) & 1) | ((((v >>> 31) & 1) ^ ((v >>> 30) & 1)) << 11))`);
            }
          }
          return `{ const a = r[${d0}], v = (${v}) | 0; ${f} r[${d0}] = v; r[${d0 + 1}] = 0; }`;
        },
      };
    }
    const n = b.lo & 63;
    if (n === 0 || sh === "rol" || sh === "ror") return null;
    return {
      writes: ARITH,
      emit(flags) {
        if (flags) return null;
        let lo: string;
        let hi: string;
        if (sh === "shl") {
          if (n < 32) { hi = `(h << ${n}) | (l >>> ${32 - n})`; lo = `l << ${n}`; } else { hi = `l << ${n - 32}`; lo = "0"; }
        } else {
          const sr = sh === "sar" ? ">>" : ">>>";
          if (n < 32) { lo = `(l >>> ${n}) | (h << ${32 - n})`; hi = `h ${sr} ${n}`; } else { lo = `h ${sr} ${n - 32}`; hi = sh === "sar" ? "h >> 31" : "0"; }
        }
        return `{ const l = r[${d0}], h = r[${d0 + 1}]; r[${d0}] = (${lo}) | 0; r[${d0 + 1}] = (${hi}) | 0; }`;
      },
    };
  }
  return null;
}

/**
 * The factory source for `blk`: called as factory(o = ops, B = block, A = BLOCK_ABORT, K = consts),
 * it returns the block's function (c, m) => whole runs done (see jit.ts). Blocks without decoded Insns (page-crossing) call closures only.
 */
export function emitBlock(blk: Block): { source: string; consts: unknown[] } {
  const n = blk.ops.length;
  const insns = blk.insns;
  const forms: (Form | null)[] = [];
  for (let i = 0; i < n; i++) forms.push(insns !== null ? formOf(insns[i]) : null);
  // Backward flag liveness: which inline forms must compute their flags.
  const wantFlags = new Array<boolean>(n).fill(true);
  let live = ARITH;
  for (let i = n - 1; i >= 0; i--) {
    const f = forms[i];
    if (f === null) {
      live = ARITH;
      continue;
    }
    wantFlags[i] = (live & f.writes) !== 0;
    live &= ~f.writes;
  }
  const lines: string[] = [];
  const pro: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = forms[i];
    const s = f !== null ? f.emit(wantFlags[i]) : null;
    if (s !== null) {
      lines.push(s);
      continue;
    }
    pro.push(`o${i} = o[${i}]`);
    lines.push(`k = ${i}; o${i}(c);${TRACE && insns !== null ? ` // ${Mnemonic[insns[i].mnemonic]} ${insns[i].ops.map((o) => o.kind + ("size" in o ? o.size : "")).join(",")}` : ""}`);
    // The instruction may have stored over this block's code: stop before the next one.
    if (i < n - 1) lines.push(`if (B.valid === false) { k = ${i + 1}; throw A; }`);
  }
  // A block whose last instruction branches back to its start runs again without returning to
  // the run loop while its branch goes there, up to `m` whole runs (the budget the loop allows).
  const last = insns !== null && n > 0 ? insns[n - 1] : null;
  const t = last !== null ? last.ops[0] : undefined;
  const selfLoop = blk.lastSetsRip && t !== undefined && t.kind === "branch" && t.lo === blk.vlo && t.hi === blk.vhi;
  const body = selfLoop
    ? [
      `for (;;) {`,
      ...lines.map((l) => "  " + l),
      `  it++;`,
      `  if (it >= m || r[${RIP}] !== ${blk.vlo} || r[${RIP + 1}] !== ${blk.vhi} || B.valid === false) return it;`,
      `}`,
    ]
    : [...lines, `return 1;`];
  const source = [
    `"use strict";`,
    `const P = K[0]${pro.length > 0 ? ", " + pro.join(", ") : ""};`,
    `return function jitBlock_${(blk.vlo >>> 0).toString(16)}(c, m) {`,
    `  const r = c.r;`,
    `  let k = 0, it = 0;`,
    `  try {`,
    ...body.map((l) => "    " + l),
    `  } catch (e) {`,
    `    c.jk = k;`,
    `    c.jn = it;`,
    `    throw e;`,
    `  }`,
    `};`,
  ].join("\n");
  return { source, consts: [PARITY] };
}

export { CF, PF };
