// The x86-64 interpreter's public API.

export { X86Vp } from "./vp.js";
export type { X86Breakpoint, X86Exit, X86StepOutcome, X86VpDebug } from "./vp.js";
export { STEP_STOP_CHECK } from "./vp.js";
export { SwBreakpointSet } from "./sw-breakpoints.js";
export type { SwBreakpointSpec } from "./sw-breakpoints.js";
export { x86BootState } from "./boot-state.js";
export {
  BOOT_CODE_ATTRIBUTES, BOOT_CODE_SELECTOR, BOOT_CR0, BOOT_CR4, BOOT_DATA_ATTRIBUTES, BOOT_DATA_SELECTOR, BOOT_EFER,
} from "./boot-state.js";
