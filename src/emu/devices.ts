// Port-I/O devices of the embedded x86 machine: debug console, reset, power-off, watchdog.
import type { MachineRequest } from "./bus";

/** Bochs/QEMU-style debug console: bytes written here are the guest's console output. */
export const PORT_DEBUG_CONSOLE = 0xe9;
/** PCI reset control register: writing a value with bit 2 (reset CPU) set resets the VM. */
export const PORT_RESET = 0xcf9;
/** ACPI PM1a control (as on QEMU q35): writing SLP_EN|SLP_TYP=5 (0x3400) or 0x2000 powers off. */
export const PORT_POWER_OFF = 0x604;
/**
 * Watchdog: a 32-bit write arms it to expire after that many thousand guest instructions
 * (summed over all VPs) unless written again; 0 disarms. Reading returns 1 while armed.
 */
export const PORT_WATCHDOG = 0x4f0;

export interface DeviceEvents {
  /** A complete console line (without the newline). */
  consoleLine(line: string): void;
}

/** The devices on the port bus, plus watchdog bookkeeping driven by the run loop. */
export class PortDevices {
  private consoleBuffer = "";
  /** Total retired instructions at which the watchdog fires; 0 when disarmed. */
  watchdogDeadline = 0;

  constructor(
    private readonly events: DeviceEvents,
    private readonly retiredTotal: () => number,
  ) {}

  portOut(port: number, size: number, value: number): MachineRequest {
    switch (port) {
      case PORT_DEBUG_CONSOLE:
        this.consoleByte(value & 0xff);
        return "none";
      case PORT_RESET:
        return size === 1 && (value & 0x04) !== 0 ? "reset" : "none";
      case PORT_POWER_OFF:
        return size >= 2 && (value & 0x2000) !== 0 ? "powerOff" : "none";
      case PORT_WATCHDOG:
        this.watchdogDeadline = value === 0 ? 0 : this.retiredTotal() + (value >>> 0) * 1000;
        return "none";
      default:
        return "none";
    }
  }

  portIn(port: number, size: number): number {
    const ones = size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    switch (port) {
      case PORT_WATCHDOG:
        return this.watchdogDeadline !== 0 ? 1 : 0;
      case PORT_DEBUG_CONSOLE:
        return 0xe9; // the Bochs convention: reading the port tells the guest the console exists
      default:
        return ones;
    }
  }

  /** True (and disarms) when the watchdog has expired. */
  watchdogExpired(): boolean {
    if (this.watchdogDeadline !== 0 && this.retiredTotal() >= this.watchdogDeadline) {
      this.watchdogDeadline = 0;
      return true;
    }
    return false;
  }

  reset(): void {
    this.watchdogDeadline = 0;
    this.flushConsole();
  }

  flushConsole(): void {
    if (this.consoleBuffer) {
      this.events.consoleLine(this.consoleBuffer);
      this.consoleBuffer = "";
    }
  }

  private consoleByte(byte: number): void {
    if (byte === 0x0a) {
      this.events.consoleLine(this.consoleBuffer);
      this.consoleBuffer = "";
    } else if (byte !== 0x0d) {
      this.consoleBuffer += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : "?";
      if (this.consoleBuffer.length >= 4096) this.flushConsole();
    }
  }
}
