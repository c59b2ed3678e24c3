// Names for the gdb remote protocol's numbers the QEMU backend uses: Z packet types, stop signals.

/** `Z`/`z` packet types. Under TCG QEMU treats Z0 and Z1 alike: no guest memory is patched. */
export const ZType = {
  Software: 0,
  HardwareExecute: 1,
  Write: 2,
  Read: 3,
  Access: 4,
} as const;
export type ZType = (typeof ZType)[keyof typeof ZType];

/** Whether a Z type is a watchpoint (Z2–Z4) rather than an execute breakpoint (Z0, Z1). */
export function isWatchpoint(type: ZType): boolean {
  return type === ZType.Write || type === ZType.Read || type === ZType.Access;
}

/** gdb's signal numbers in stop replies (gdb's own numbering, the same on every host). */
export const GdbSignal = {
  /** Interrupted: our 0x03, a QMP `stop`, the stop QEMU sends unprompted when a client connects. */
  SIGINT: 2,
  /** A single step, a breakpoint or a watchpoint. */
  SIGTRAP: 5,
} as const;
export type GdbSignal = (typeof GdbSignal)[keyof typeof GdbSignal];
