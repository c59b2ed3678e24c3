// CLC STC CMC CLD STD CLI STI LAHF SAHF PUSHFQ POPFQ.

import { Code, Mnemonic } from "iced-x86";
import type { OpFn } from "./cpu.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import * as privilegeModule from "./privilege.js";
import type { Translator } from "./insn.js";
import * as interruptsModule from "./interrupts.js";
import * as stackModule from "./stack.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { AF, CF, DF, FIXED1, IF, IOPL, PF, POPF_MASK, RF, SF, VM, ZF } = flagsModule;
const { END_STOP, UnsupportedForm } = insnModule;
const { requireIopl } = privilegeModule;
const { pop64, push64 } = stackModule;
const { stiOp } = interruptsModule;
const { GP, RFLAGS, SEG_SELECTOR, SREG_CS, segWord } = vpLayoutModule;

const CS_SEL = segWord(SREG_CS, SEG_SELECTOR);

const RAX = GP;
const LAHF_MASK = SF | ZF | AF | PF | CF;

function setBits(mask: number, value: number): OpFn {
  return (c) => {
    const r = c.r;
    r[RFLAGS] = (r[RFLAGS] & ~mask) | value;
  };
}

const cmcOp: OpFn = (c) => {
  c.r[RFLAGS] ^= CF;
};

const lahfOp: OpFn = (c) => {
  const r = c.r;
  r[RAX] = (r[RAX] & ~0xff00) | (((r[RFLAGS] & LAHF_MASK) | FIXED1) << 8);
};

const sahfOp: OpFn = (c) => {
  const r = c.r;
  r[RFLAGS] = (r[RFLAGS] & ~LAHF_MASK) | ((r[RAX] >> 8) & LAHF_MASK);
};

/** PUSHFQ pushes RFLAGS with VM and RF read as 0. */
const pushfqOp: OpFn = (c) => push64(c, (c.r[RFLAGS] & ~(VM | RF)) | FIXED1, 0);

/**
 * POPFQ: at CPL 0 every modifiable flag may change; above CPL 0 IOPL stays, and above IOPL IF
 * stays too (no fault); VM, VIF, VIP stay; RF is cleared. It ends its block, so a TF it sets is
 * seen by the run loop before the next instruction (which traps).
 */
const popfqOp: OpFn = (c) => {
  const v = pop64(c);
  const r = c.r;
  let mask = POPF_MASK;
  const level = r[CS_SEL] & 3;
  if (level !== 0) {
    mask &= ~IOPL;
    if (level > ((r[RFLAGS] & IOPL) >>> 12)) mask &= ~IF;
  }
  r[RFLAGS] = ((r[RFLAGS] & ~mask & ~RF) | (v & mask) | FIXED1);
};

/** STI (interrupts.ts), #GP(0) above IOPL. */
const stiChecked: OpFn = (c) => {
  requireIopl(c);
  stiOp(c);
};

/** CLI: #GP(0) above IOPL. */
function setIf(value: number): OpFn {
  return (c) => {
    requireIopl(c);
    const r = c.r;
    r[RFLAGS] = (r[RFLAGS] & ~IF) | value;
  };
}

export const rflagsTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Clc, () => setBits(CF, 0)],
  [Mnemonic.Stc, () => setBits(CF, CF)],
  [Mnemonic.Cmc, () => cmcOp],
  [Mnemonic.Cld, () => setBits(DF, 0)],
  [Mnemonic.Std, () => setBits(DF, DF)],
  [Mnemonic.Cli, () => setIf(0)],
  // STI ends its block: the run loop looks for an interrupt after the instruction in its shadow.
  [Mnemonic.Sti, (d) => {
    d.end = END_STOP;
    return stiChecked;
  }],
  [Mnemonic.Lahf, () => lahfOp],
  [Mnemonic.Sahf, () => sahfOp],
  [Mnemonic.Pushfq, () => pushfqOp],
  [Mnemonic.Popfq, (d) => {
    d.end = END_STOP;
    return popfqOp;
  }],
  [Mnemonic.Pushf, (d) => {
    if (d.code !== Code.Pushfq) throw new UnsupportedForm();
    return pushfqOp;
  }],
];
