// The iced-free form of a decoded instruction that family translators turn into op closures.

import type { Code, Mnemonic } from "iced-x86";
import type { OpFn } from "./cpu.js";
import type { Operand } from "./operands.js";

/** How an instruction ends its block. */
export const END_NONE = 0;
/** A branch: the op sets RIP itself. */
export const END_JUMP = 1;
/** Ends the block (it may stop the VP or change translations); the loop sets RIP to the next instruction. */
export const END_STOP = 2;

/** One decoded instruction: numbers only. */
export interface Insn {
  readonly code: Code;
  readonly mnemonic: Mnemonic;
  readonly length: number;
  /** Address of the instruction and of the next one, as words. */
  readonly ripLo: number;
  readonly ripHi: number;
  readonly nextLo: number;
  readonly nextHi: number;
  readonly ops: readonly Operand[];
  /** F3 (REP/REPE) and F2 (REPNE) prefixes. */
  readonly rep: boolean;
  readonly repne: boolean;
  /** 32-bit address size (0x67 prefix) for string and LOOP instructions. */
  readonly addr32: boolean;
  /** Segment of the memory operand (SREG_*), or -1. */
  readonly seg: number;
  /** Condition code × 32 for Jcc/SETcc/CMOVcc/LOOPcc, else -1. */
  readonly cc32: number;
  /** Position in its block (RDTSC adds it to the retired count at block start). */
  readonly index: number;
  /** Set by the translator: END_*. */
  end: number;
}

/** Turns one instruction of a family into its semantics. */
export type Translator = (d: Insn) => OpFn;

/** Thrown by a translator for an operand form it does not implement: the instruction is #UD. */
export class UnsupportedForm extends Error {
  constructor(message = "operand form not implemented") {
    super(message);
  }
}
