// FXSAVE/FXRSTOR, XSAVE/XRSTOR and XGETBV/XSETBV for the x87 and SSE components.

import type { Mnemonic } from "iced-x86";
import type { Translator } from "./insn.js";

/** CPUID bits this family implements (OR-ed into leaf 1 by cpuidLeaf). */
export const XSAVE_CPUID = { leaf1Ecx: 0, leaf1Edx: 0 };

/** CPUID leaf 0xD (XSAVE features and sizes), sub-leaf `sub`: [eax, ebx, ecx, edx]. */
export function xsaveCpuidLeaf(sub: number): [number, number, number, number] {
  void sub;
  return [0, 0, 0, 0];
}

export const xsaveTranslators: [Mnemonic, Translator][] = [];
