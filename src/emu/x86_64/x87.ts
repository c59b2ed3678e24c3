// The x87 FPU: 80-bit registers, the stack, control/status/tag words and the instructions gcc emits.

import type { Mnemonic } from "iced-x86";
import type { Translator } from "./insn.js";

export const x87Translators: [Mnemonic, Translator][] = [];
