// SSE, SSE2 (and later extensions): the XMM registers, MXCSR and the instructions gcc and libgcc emit.

import type { Mnemonic } from "iced-x86";
import type { Translator } from "./insn.js";

/** CPUID bits this family implements (OR-ed into leaf 1 by cpuidLeaf). */
export const SSE_CPUID = { leaf1Ecx: 0, leaf1Edx: 0 };

export const sseTranslators: [Mnemonic, Translator][] = [];
