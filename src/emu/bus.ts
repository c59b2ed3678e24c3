// What a VP interpreter may touch outside its registers: guest physical memory and I/O ports.
//
// Interpreters reach memory only through this interface (they never own the MMU's backing
// store), so the machine can keep RAM in SharedArrayBuffers and devices on the port bus.

/** One contiguous range of guest RAM backed by a shared buffer. */
export interface RamRegion {
  /** First guest physical address (a multiple of 4096, below 2^52). */
  readonly gpa: number;
  /** Size in bytes (a multiple of 4096). */
  readonly size: number;
  /** The bytes, over a SharedArrayBuffer. */
  readonly bytes: Uint8Array;
  readonly name: string;
}

/** What a device asks of the machine when the guest touches it. */
export type MachineRequest = "none" | "reset" | "powerOff";

export interface GuestBus {
  /** RAM regions sorted by gpa, non-overlapping. GPAs are plain numbers (guest physical space < 2^52). */
  readonly regions: readonly RamRegion[];
  /** Find the region holding `gpa`, or undefined when the address is not RAM. */
  regionAt(gpa: number): RamRegion | undefined;
  /** An OUT instruction. `size` is 1, 2 or 4. */
  portOut(port: number, size: number, value: number, vp: number): MachineRequest;
  /** An IN instruction; returns the value (all ones for an unclaimed port). */
  portIn(port: number, size: number, vp: number): number;
  /**
   * Called by the interpreter after the guest itself wrote `length` bytes at `gpa`, so decoded
   * code cached for those pages can be dropped. Interpreters call it on every guest store.
   */
  noteGuestWrite(gpa: number, length: number): void;
  /**
   * A read of `size` (1, 2, 4) bytes at a guest physical address that is not RAM and not the
   * VP's own xAPIC page (memory-mapped devices); undefined (or no method) reads all ones.
   */
  mmioRead?(gpa: number, size: number, vp: number): number | undefined;
  /** A write of `size` bytes at a guest physical address that is not RAM (dropped when unclaimed). */
  mmioWrite?(gpa: number, size: number, value: number, vp: number): void;
}
