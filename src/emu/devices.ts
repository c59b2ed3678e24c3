// Port-I/O devices of the embedded x86 machine: debug console, a 16550 UART (COM1), reset,
// power-off, isa-debug-exit, pc-testdev and the watchdog.
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
/** COM1: a 16550 UART (transmit path) at 0x3F8-0x3FF. */
export const PORT_COM1 = 0x3f8;
/**
 * QEMU's isa-debug-exit (iobase 0xF4, iosize 4): a write of v powers the VM off with exit status
 * (v << 1) | 1, as QEMU exits with that status.
 */
export const PORT_DEBUG_EXIT = 0xf4;
/**
 * QEMU's pc-testdev scratch port: a 32-bit value kept as written (bytes at 0xE0-0xE3). Its
 * byte-wide alias at 0xE8-0xEB is left out: 0xE9 is this machine's debug console.
 */
export const PORT_TESTDEV = 0xe0;
/** pc-testdev's 64 KiB of device memory, as `-device pc-testdev` maps it (plain RAM-like bytes). */
export const TESTDEV_IOMEM_GPA = 0xff000000;
export const TESTDEV_IOMEM_SIZE = 0x10000;

/** 16550 line status: transmitter holding register empty and transmitter empty. */
const LSR_THRE_TEMT = 0x60;
/** 16550 line control: the divisor latch access bit. */
const LCR_DLAB = 0x80;

/**
 * The transmit side of a 16550 UART: what the guest writes to THR is console output; the
 * divisor latch, IER, LCR, MCR and SCR keep what is written; IIR reads "no interrupt pending"
 * (no interrupts are raised); LSR always reads transmitter empty; MSR reads 0 (no modem); the
 * receiver never has data (RBR reads 0).
 */
export class Uart16550 {
  ier = 0;
  lcr = 0x03;
  mcr = 0;
  scr = 0;
  dll = 0x0c; // 9600 baud
  dlm = 0;
  fcr = 0;

  constructor(private readonly out: (byte: number) => void) {}

  /** A byte written at offset `reg` (0-7) from the base. */
  write(reg: number, value: number): void {
    const v = value & 0xff;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case 0:
        if (dlab) this.dll = v;
        else if ((this.mcr & 0x10) === 0) this.out(v); // loopback mode sends nothing out
        break;
      case 1:
        if (dlab) this.dlm = v;
        else this.ier = v & 0x0f;
        break;
      case 2: this.fcr = v; break;
      case 3: this.lcr = v; break;
      case 4: this.mcr = v & 0x1f; break;
      case 7: this.scr = v; break;
      default: break; // LSR and MSR are read-only
    }
  }

  /** A byte read at offset `reg` (0-7) from the base. */
  read(reg: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case 0: return dlab ? this.dll : 0;
      case 1: return dlab ? this.dlm : this.ier;
      case 2: return (this.fcr & 1 ? 0xc0 : 0) | 0x01; // FIFOs enabled bits, no interrupt pending
      case 3: return this.lcr;
      case 4: return this.mcr;
      case 5: return LSR_THRE_TEMT;
      case 6: return this.mcr & 0x10 ? ((this.mcr & 0x0c) << 4) | ((this.mcr & 0x03) << 4) : 0;
      default: return this.scr;
    }
  }

  reset(): void {
    this.ier = 0;
    this.lcr = 0x03;
    this.mcr = 0;
    this.scr = 0;
    this.dll = 0x0c;
    this.dlm = 0;
    this.fcr = 0;
  }
}

export interface DeviceEvents {
  /** A complete console line (without the newline) from the 0xE9 debug console or the UART. */
  consoleLine(line: string, source: ConsoleSource): void;
  /**
   * A batch of raw console bytes, in the order the guest wrote them: `runs` is [device, length,
   * device, length, …] with devices as indexes of CONSOLE_DEVICES. `data` is the batch's own copy.
   */
  consoleBytes?(data: Uint8Array, runs: number[]): void;
}

/** The devices of a raw console batch's runs, by index. */
export const CONSOLE_DEVICES = ["debugcon", "com1"] as const;
/** Bytes a raw console batch holds before it is sent. */
export const CONSOLE_BATCH_BYTES = 4096;
/** Most time a byte waits in a raw console batch while the VM runs (the run loop polls). */
export const CONSOLE_BATCH_MS = 4;

/**
 * Raw console bytes gathered into batches: sent when full, when the first byte has waited
 * CONSOLE_BATCH_MS (poll), and whenever the run loop stops or sleeps (flush). A guest writing one
 * byte at a time makes one batch per few milliseconds, and a lone prompt goes within that bound.
 */
class ConsoleBatch {
  private buf = new Uint8Array(CONSOLE_BATCH_BYTES);
  private len = 0;
  private runs: number[] = [];
  private since = 0;
  constructor(private readonly emit: ((data: Uint8Array, runs: number[]) => void) | undefined) {}

  byte(device: number, byte: number): void {
    if (!this.emit) return;
    if (this.len === 0) this.since = performance.now();
    const n = this.runs.length;
    if (n === 0 || this.runs[n - 2] !== device) this.runs.push(device, 1);
    else this.runs[n - 1]++;
    this.buf[this.len++] = byte;
    if (this.len === CONSOLE_BATCH_BYTES) this.flush();
  }

  poll(): void {
    if (this.len !== 0 && performance.now() - this.since >= CONSOLE_BATCH_MS) this.flush();
  }

  flush(): void {
    if (this.len === 0) return;
    const data = this.buf.slice(0, this.len);
    const runs = this.runs;
    this.len = 0;
    this.runs = [];
    this.emit!(data, runs);
  }
}

/** Which device a console line came from. */
export type ConsoleSource = "debugcon" | "uart";

/** Collects console bytes into lines (one per device). */
class LineBuffer {
  private text = "";
  constructor(private readonly emit: (line: string) => void) {}

  byte(byte: number): void {
    if (byte === 0x0a) {
      this.emit(this.text);
      this.text = "";
    } else if (byte !== 0x0d) {
      this.text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : "?";
      if (this.text.length >= 4096) this.flush();
    }
  }

  flush(): void {
    if (this.text) {
      this.emit(this.text);
      this.text = "";
    }
  }
}

/** The devices on the port bus, plus watchdog bookkeeping driven by the run loop. */
export class PortDevices {
  private readonly debugcon: LineBuffer;
  private readonly uartLines: LineBuffer;
  readonly uart: Uart16550;
  /** Total retired instructions at which the watchdog fires; 0 when disarmed. */
  watchdogDeadline = 0;
  /** The status the guest last powered off with through isa-debug-exit (cleared by reset). */
  exitStatus: number | undefined;
  /** pc-testdev's scratch word at port 0xE0. */
  testdevData = 0;
  /** pc-testdev's device memory at TESTDEV_IOMEM_GPA. */
  readonly testdevMem = new Uint8Array(TESTDEV_IOMEM_SIZE);

  constructor(
    private readonly events: DeviceEvents,
    private readonly retiredTotal: () => number,
  ) {
    this.debugcon = new LineBuffer((line) => this.events.consoleLine(line, "debugcon"));
    this.uartLines = new LineBuffer((line) => this.events.consoleLine(line, "uart"));
    this.raw = new ConsoleBatch(this.events.consoleBytes && ((data, runs) => this.events.consoleBytes!(data, runs)));
    this.uart = new Uart16550((b) => {
      this.uartLines.byte(b);
      this.raw.byte(1, b);
    });
  }

  private readonly raw: ConsoleBatch;

  portOut(port: number, size: number, value: number): MachineRequest {
    if (port >= PORT_COM1 && port < PORT_COM1 + 8) {
      // A wider access writes its low byte to the register it names (as QEMU's serial does).
      this.uart.write(port - PORT_COM1, value);
      return "none";
    }
    if (port >= PORT_DEBUG_EXIT && port < PORT_DEBUG_EXIT + 4) {
      // QEMU ignores the port offset and width: the value written is the code.
      this.exitStatus = (((value & (size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff)) << 1) | 1) >>> 0;
      return "powerOff";
    }
    if (port >= PORT_TESTDEV && port < PORT_TESTDEV + 4) {
      this.testdevWrite(port - PORT_TESTDEV, size, value);
      return "none";
    }
    switch (port) {
      case PORT_DEBUG_CONSOLE:
        this.debugcon.byte(value & 0xff);
        this.raw.byte(0, value & 0xff);
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
    if (port >= PORT_COM1 && port < PORT_COM1 + 8) {
      const b = this.uart.read(port - PORT_COM1);
      return size === 1 ? b : b | (ones & ~0xff); // the bytes above read as an unclaimed port
    }
    if (port >= PORT_TESTDEV && port < PORT_TESTDEV + 4) {
      const off = port & 3;
      return (this.testdevData >>> (8 * off)) & ones & (0xffffffff >>> (8 * off));
    }
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
    this.exitStatus = undefined;
    this.testdevData = 0;
    this.testdevMem.fill(0);
    this.uart.reset();
    this.flushConsole();
  }

  flushConsole(): void {
    this.debugcon.flush();
    this.uartLines.flush();
    this.raw.flush();
  }

  /** Sends the raw console batch now (line buffers keep their partial lines). */
  flushRawConsole(): void {
    this.raw.flush();
  }

  /** Sends the raw console batch if its first byte has waited CONSOLE_BATCH_MS (the run loop calls this every turn). */
  pollConsole(): void {
    this.raw.poll();
  }

  /** A read of `size` (1, 2, 4) bytes of memory-mapped device space; undefined when unclaimed. */
  mmioRead(gpa: number, size: number): number | undefined {
    const off = gpa - TESTDEV_IOMEM_GPA;
    if (off < 0 || off + size > TESTDEV_IOMEM_SIZE) return undefined;
    let v = 0;
    for (let k = size - 1; k >= 0; k--) v = (v << 8) | this.testdevMem[off + k];
    return v;
  }

  /** A write of `size` bytes of memory-mapped device space (dropped when unclaimed). */
  mmioWrite(gpa: number, size: number, value: number): void {
    const off = gpa - TESTDEV_IOMEM_GPA;
    if (off < 0 || off + size > TESTDEV_IOMEM_SIZE) return;
    for (let k = 0; k < size; k++) this.testdevMem[off + k] = (value >>> (8 * k)) & 0xff;
  }

  /** pc-testdev port 0xE0: an access of `size` bytes at byte `off` replaces those bytes. */
  private testdevWrite(off: number, size: number, value: number): void {
    for (let k = 0; k < size && off + k < 4; k++) {
      const shift = 8 * (off + k);
      this.testdevData = ((this.testdevData & ~(0xff << shift)) | (((value >>> (8 * k)) & 0xff) << shift)) >>> 0;
    }
  }
}
