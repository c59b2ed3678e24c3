// Hot blocks compiled into one JavaScript function each (new Function source per block).
//
// The interpreter runs a block as `for (i…) ops[i](c)`: one megamorphic call site for every
// instruction of every block, which V8 can neither predict nor inline. A compiled block calls
// its instructions from call sites of its own (o0(c); o1(c); …), each always the same closure,
// so V8 inlines them into one optimised function per hot block; the common register forms
// (jit-emit.ts) are emitted as source and skip the closure altogether, computing only the
// flags that a later instruction of the block can read.
//
// Semantics stay the interpreter's:
// - a compiled block runs only as a whole (the run loop uses the op loop when a breakpoint or
//   the budget cuts the block short, and the per-instruction loop for TF, single-step, data
//   watch and REP stepping);
// - precise exceptions: the index of the instruction that threw goes to `c.jk` (the run loop
//   then sets RIP as it does for the op loop);
// - self-modifying code: after each instruction that may store, a block whose code was
//   overwritten (Block.valid false) stops with BLOCK_ABORT before its next instruction, as the
//   op loop does through code-cache.ts's abortOp.

import type { Block } from "./code-cache.js";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as jitEmitModule from "./jit-emit.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { BLOCK_ABORT } = faultModule;
const { emitBlock } = jitEmitModule;

/**
 * A compiled block: runs all of its instructions, up to `m` times over while it branches back to
 * its own start, and returns how many whole runs it did; when it throws, c.jn holds the whole
 * runs done and c.jk the index of the instruction that threw.
 */
export type JitFn = (c: Cpu, m: number) => number;

/** Tuning and a switch for tests (compiled vs interpreted). */
export const jitOptions = {
  enabled: true,
  /** Whole-block runs before a block is compiled (VMM_DEBUG_JIT_THRESHOLD=1 compiles every block: for tests). */
  threshold: Number(process.env.VMM_DEBUG_JIT_THRESHOLD) >= 1 ? Number(process.env.VMM_DEBUG_JIT_THRESHOLD) : 16,
};

/** Blocks compiled so far (all VPs). */
export const jitStats = { compiled: 0, failed: 0 };

/** Compile `blk` (sets blk.jit; on failure blk.jit stays null and the block is not tried again). */
export function compileBlock(blk: Block): void {
  blk.heat = -1 >>> 1; // never again, whatever happens
  if (!blk.valid) return;
  try {
    const { source, consts } = emitBlock(blk);
    if (process.env.VMM_DEBUG_JIT_TRACE) process.stderr.write(`jit: block at ${(blk.vlo >>> 0).toString(16)}\n${source}\n`);
    const factory = new Function("o", "B", "A", "K", source) as (o: readonly OpFn[], b: Block, a: symbol, k: readonly unknown[]) => JitFn;
    blk.jit = factory(blk.ops.slice(), blk, BLOCK_ABORT, consts);
    jitStats.compiled++;
  } catch (e) {
    jitStats.failed++;
    if (process.env.VMM_DEBUG_JIT_TRACE) process.stderr.write(`jit: block at ${(blk.vlo >>> 0).toString(16)} not compiled: ${String(e)}\n`);
  }
}
