// Which exception a data access to a non-canonical address raises: #SS(0) when the access goes
// through SS (an RSP- or RBP-based operand, an SS override, or the stack of PUSH, POP, CALL, RET,
// ENTER, LEAVE …), #GP(0) otherwise (SDM vol. 3, 6.15, "#SS" and "#GP" in 64-bit mode).
//
// The interpreter raises #GP(0) from the translation, where the segment is not known; this looks
// at the instruction at RIP when the exception is delivered, so the hot paths pay nothing.

import { Decoder, DecoderOptions, Instruction, OpKind, Register } from "iced-x86";
import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as mmuModule from "./mmu.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { GUEST_FAULT } = faultModule;
const { fetchPage, physRead } = mmuModule;
const { RIP } = vpLayoutModule;

/** The up to 15 bytes of the instruction at RIP (fewer when the next page cannot be fetched). */
function instructionBytes(c: Cpu): Uint8Array {
  const r = c.r;
  const lo = r[RIP];
  const hi = r[RIP + 1];
  const out: number[] = [];
  for (let k = 0; k < 15; k++) {
    const s = (lo >>> 0) + k;
    const l = s | 0;
    const h = s > 0xffffffff ? (hi + 1) | 0 : hi;
    try {
      const page = fetchPage(c, l, h);
      out.push(physRead(c, page.ppn * 4096 + (l & 0xfff), 1));
    } catch (e) {
      if (e !== GUEST_FAULT) throw e;
      break;
    }
  }
  return Uint8Array.from(out);
}

/** Whether the instruction at RIP makes its data accesses through SS. */
export function stackAccessAtRip(c: Cpu): boolean {
  // Reading the bytes must not disturb the exception being delivered.
  const { fvec, ferr, ftrap, fsoft, ncan } = c;
  const bytes = instructionBytes(c);
  c.fvec = fvec;
  c.ferr = ferr;
  c.ftrap = ftrap;
  c.fsoft = fsoft;
  c.ncan = ncan;
  if (bytes.length === 0) return false;
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  const ins = new Instruction();
  try {
    decoder.decodeOut(ins);
    for (let i = 0; i < ins.opCount; i++) {
      if (ins.opKind(i) === OpKind.Memory) return ins.memorySegment === Register.SS;
    }
    return ins.isStackInstruction;
  } finally {
    decoder.free();
    ins.free();
  }
}
