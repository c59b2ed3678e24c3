// SETcc and CMOVcc (Jcc and LOOPcc are in branch.ts).

import { Mnemonic } from "iced-x86";
import type { OpFn } from "./cpu.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as operandsModule from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { testCc } = flagsModule;
const { UnsupportedForm } = insnModule;
const { reader, reader64, writer } = operandsModule;
const { RFLAGS } = vpLayoutModule;

function translateSetcc(d: Insn): OpFn {
  const cc = d.cc32;
  const dst = d.ops[0];
  if (cc < 0 || (dst.kind !== "reg" && dst.kind !== "mem")) throw new UnsupportedForm();
  const wr = writer(dst);
  return (c) => wr(c, testCc(cc, c.r[RFLAGS]) ? 1 : 0);
}

/** CMOVcc reads its source even when the condition is false, and a 32-bit form always zeroes the high half. */
function translateCmov(d: Insn): OpFn {
  const cc = d.cc32;
  const [dst, src] = d.ops;
  if (cc < 0 || dst.kind !== "reg") throw new UnsupportedForm();
  const s = dst.slot;
  if (dst.size === 8) {
    const rd = reader64(src);
    return (c) => {
      const lo = rd(c);
      if (testCc(cc, c.r[RFLAGS])) {
        const r = c.r;
        r[s] = lo;
        r[s + 1] = c.mhi;
      }
    };
  }
  const rd = reader(src);
  if (dst.size === 4) {
    return (c) => {
      const v = rd(c);
      const r = c.r;
      if (testCc(cc, r[RFLAGS])) r[s] = v;
      r[s + 1] = 0;
    };
  }
  return (c) => {
    const v = rd(c);
    const r = c.r;
    if (testCc(cc, r[RFLAGS])) r[s] = (r[s] & ~0xffff) | v;
  };
}

const setcc = [
  Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne, Mnemonic.Setbe, Mnemonic.Seta,
  Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl, Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg,
];
const cmovcc = [
  Mnemonic.Cmovo, Mnemonic.Cmovno, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmove, Mnemonic.Cmovne, Mnemonic.Cmovbe, Mnemonic.Cmova,
  Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp, Mnemonic.Cmovl, Mnemonic.Cmovge, Mnemonic.Cmovle, Mnemonic.Cmovg,
];

export const condTranslators: [Mnemonic, Translator][] = [
  ...setcc.map((m): [Mnemonic, Translator] => [m, translateSetcc]),
  ...cmovcc.map((m): [Mnemonic, Translator] => [m, translateCmov]),
];
