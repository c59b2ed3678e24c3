// The embedded machine: an in-process VMM core running committed guest images.
export { createEmuMachine, EmuMachine, DEFAULT_EMU_MEMORY } from "./machine";
export type { EmuMachineOptions } from "./machine";
export { loadGuestImage } from "./image";
export type { GuestImage, GuestSymbol } from "./image";
export type { RegionSpec } from "./memory";
export { PORT_DEBUG_CONSOLE, PORT_POWER_OFF, PORT_RESET, PORT_WATCHDOG } from "./devices";
