// Near control transfers: JMP CALL RET Jcc LOOP/LOOPcc JRCXZ (far ones live in system.ts).

import { Code, Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as operandsModule from "./operands.js";
import * as mmuModule from "./mmu.js";
import * as stackModule from "./stack.js";
import * as transfersModule from "./transfers.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { gp } = faultModule;
const { testCc, ZF } = flagsModule;
const { END_JUMP, UnsupportedForm } = insnModule;
const { reader64 } = operandsModule;
const { rd64 } = mmuModule;
const { addRsp, push64 } = stackModule;
const { farCall, farJmp } = transfersModule;
const { CR4, GP, RFLAGS, RIP } = vpLayoutModule;

const RCX = GP + 2;
const RSP = GP + 8;

/** #GP unless the high word of a branch target is canonical. */
export function checkTarget(c: Cpu, hi: number): void {
  if ((((hi >> 15) + 1) >>> 1) === 0) return;
  const top = c.r[CR4] & 0x1000 ? hi >> 24 : 1;
  if (top !== 0 && top !== -1) gp(c, 0);
}

function translateJmp(d: Insn): OpFn {
  if (d.code === Code.Jmp_m1664 || d.code === Code.Jmp_m1632) return farJmp(d);
  d.end = END_JUMP;
  const t = d.ops[0];
  if (t.kind === "branch") {
    const lo = t.lo;
    const hi = t.hi;
    return (c) => {
      const r = c.r;
      r[RIP] = lo;
      r[RIP + 1] = hi;
    };
  }
  if ((t.kind === "reg" || t.kind === "mem") && t.size === 8) {
    const rd = reader64(t);
    return (c) => {
      const lo = rd(c);
      const hi = c.mhi;
      checkTarget(c, hi);
      const r = c.r;
      r[RIP] = lo;
      r[RIP + 1] = hi;
    };
  }
  throw new UnsupportedForm();
}

function translateCall(d: Insn): OpFn {
  if (d.code === Code.Call_m1664 || d.code === Code.Call_m1632) return farCall(d);
  d.end = END_JUMP;
  const t = d.ops[0];
  const nl = d.nextLo;
  const nh = d.nextHi;
  if (t.kind === "branch") {
    const lo = t.lo;
    const hi = t.hi;
    return (c) => {
      push64(c, nl, nh);
      const r = c.r;
      r[RIP] = lo;
      r[RIP + 1] = hi;
    };
  }
  if ((t.kind === "reg" || t.kind === "mem") && t.size === 8) {
    const rd = reader64(t);
    return (c) => {
      const lo = rd(c);
      const hi = c.mhi;
      checkTarget(c, hi);
      push64(c, nl, nh);
      const r = c.r;
      r[RIP] = lo;
      r[RIP + 1] = hi;
    };
  }
  throw new UnsupportedForm();
}

function translateRet(d: Insn): OpFn {
  if (d.code !== Code.Retnq && d.code !== Code.Retnq_imm16) throw new UnsupportedForm();
  d.end = END_JUMP;
  const imm = d.ops.length > 0 && d.ops[0].kind === "imm" ? d.ops[0].lo & 0xffff : 0;
  return (c) => {
    const r = c.r;
    const lo = rd64(c, r[RSP], r[RSP + 1]);
    const hi = c.mhi;
    checkTarget(c, hi);
    addRsp(c, 8 + imm);
    r[RIP] = lo;
    r[RIP + 1] = hi;
  };
}

function translateJcc(d: Insn): OpFn {
  const t = d.ops[0];
  if (t.kind !== "branch" || d.cc32 < 0) throw new UnsupportedForm();
  d.end = END_JUMP;
  const cc = d.cc32;
  const tl = t.lo;
  const th = t.hi;
  const nl = d.nextLo;
  const nh = d.nextHi;
  return (c) => {
    const r = c.r;
    if (testCc(cc, r[RFLAGS])) {
      r[RIP] = tl;
      r[RIP + 1] = th;
    } else {
      r[RIP] = nl;
      r[RIP + 1] = nh;
    }
  };
}

/** LOOP, LOOPE, LOOPNE: count down RCX (ECX with a 0x67 prefix) without touching flags. */
function translateLoop(d: Insn, zfWanted: number): OpFn {
  const t = d.ops[0];
  if (t.kind !== "branch") throw new UnsupportedForm();
  d.end = END_JUMP;
  const tl = t.lo;
  const th = t.hi;
  const nl = d.nextLo;
  const nh = d.nextHi;
  const addr32 = d.addr32;
  return (c) => {
    const r = c.r;
    let nz: boolean;
    if (addr32) {
      r[RCX] = (r[RCX] - 1) | 0;
      r[RCX + 1] = 0;
      nz = r[RCX] !== 0;
    } else {
      const lo = r[RCX];
      r[RCX] = (lo - 1) | 0;
      if (lo === 0) r[RCX + 1] = (r[RCX + 1] - 1) | 0;
      nz = (r[RCX] | r[RCX + 1]) !== 0;
    }
    const zf = r[RFLAGS] & ZF;
    const take = nz && (zfWanted < 0 || (zfWanted === 1 ? zf !== 0 : zf === 0));
    r[RIP] = take ? tl : nl;
    r[RIP + 1] = take ? th : nh;
  };
}

function translateJrcxz(d: Insn): OpFn {
  const t = d.ops[0];
  if (t.kind !== "branch") throw new UnsupportedForm();
  d.end = END_JUMP;
  const tl = t.lo;
  const th = t.hi;
  const nl = d.nextLo;
  const nh = d.nextHi;
  const addr32 = d.mnemonic === Mnemonic.Jecxz;
  return (c) => {
    const r = c.r;
    const zero = addr32 ? r[RCX] === 0 : (r[RCX] | r[RCX + 1]) === 0;
    r[RIP] = zero ? tl : nl;
    r[RIP + 1] = zero ? th : nh;
  };
}

const jccMnemonics = [
  Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe, Mnemonic.Ja,
  Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg,
];

export const branchTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Jmp, translateJmp],
  [Mnemonic.Call, translateCall],
  [Mnemonic.Ret, translateRet],
  ...jccMnemonics.map((m): [Mnemonic, Translator] => [m, translateJcc]),
  [Mnemonic.Loop, (d) => translateLoop(d, -1)],
  [Mnemonic.Loope, (d) => translateLoop(d, 1)],
  [Mnemonic.Loopne, (d) => translateLoop(d, 0)],
  [Mnemonic.Jrcxz, translateJrcxz],
  [Mnemonic.Jecxz, translateJrcxz],
];
