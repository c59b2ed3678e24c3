// Human and JSON output of the debugger commands: tables, xxd-style hexdumps, gdb-style
// registers, stops.
import { x87ToNumber, xmmToBigint, type Aarch64VpState, type DebugStopReason, type DebuggerVpState, type UnreadableRange, type X86FpState, type X86VpState } from "../client";
import { type SymbolTable, hex, symbolize } from "./address";

/** JSON with every bigint as a "0x…" string and byte arrays as hex strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, k: string, v: unknown) {
      // `this[k]` is the value before its toJSON (a Buffer's would make it {type, data}).
      const original = this[k];
      if (typeof v === "bigint") return hex(v);
      if (original instanceof Uint8Array) return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString("hex");
      if (original instanceof BigUint64Array) return Array.from(original, (x) => hex(x));
      if (original instanceof Date) return original.toISOString();
      return v;
    },
    2,
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(toJson(value) + "\n");
}

/** Columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/**
 * An xxd-style hexdump: address, 16 bytes in groups of 2, the ASCII; bytes listed in
 * `unreadable` (offsets from `address`) show as `??`.
 */
export function hexdump(address: bigint, data: Uint8Array, unreadable: UnreadableRange[] = []): string {
  const bad = (i: number) => unreadable.some((r) => i >= r.offset && i < r.offset + r.length);
  const end = address + BigInt(data.length);
  const width = end > 0xffffffffn ? 16 : 8;
  const lines: string[] = [];
  for (let off = 0; off < data.length; off += 16) {
    let hexPart = "";
    let ascii = "";
    for (let i = off; i < off + 16; i++) {
      if (i < data.length) {
        const b = data[i];
        const unreadableByte = bad(i);
        hexPart += unreadableByte ? "??" : b.toString(16).padStart(2, "0");
        ascii += unreadableByte ? "?" : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
      } else {
        hexPart += "  ";
      }
      if (i % 2 === 1) hexPart += " ";
    }
    lines.push(`${(address + BigInt(off)).toString(16).padStart(width, "0")}: ${hexPart} ${ascii}`);
  }
  return lines.join("\n") + (lines.length ? "\n" : "");
}

const X86_GP = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
/** gdb's order for the general registers. */
const X86_GDB_ORDER = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
const EFLAGS: [number, string][] = [
  [0, "CF"],
  [2, "PF"],
  [4, "AF"],
  [6, "ZF"],
  [7, "SF"],
  [8, "TF"],
  [9, "IF"],
  [10, "DF"],
  [11, "OF"],
  [16, "RF"],
  [17, "VM"],
  [18, "AC"],
  [21, "ID"],
];

/** Registers by gdb's names, in gdb's `info registers` order. */
export function registerList(state: DebuggerVpState): [string, bigint][] {
  if (state.arch === "x86_64") {
    const s: X86VpState = state.state;
    const gp = Object.fromEntries(X86_GP.map((n, i) => [n, s.gp[i]]));
    return [
      ...X86_GDB_ORDER.map((n): [string, bigint] => [n, gp[n]]),
      ["rip", s.rip],
      ["eflags", s.rflags],
      ["cs", BigInt(s.cs.selector)],
      ["ss", BigInt(s.ss.selector)],
      ["ds", BigInt(s.ds.selector)],
      ["es", BigInt(s.es.selector)],
      ["fs", BigInt(s.fs.selector)],
      ["gs", BigInt(s.gs.selector)],
      ["fs_base", s.fs.base],
      ["gs_base", s.gs.base],
      ["k_gs_base", s.kernelGsBase],
      ["cr0", s.cr0],
      ["cr2", s.cr2],
      ["cr3", s.cr3],
      ["cr4", s.cr4],
      ["cr8", s.cr8],
      ["efer", s.efer],
    ];
  }
  const s: Aarch64VpState = state.state;
  return [
    ...s.x.map((v, i): [string, bigint] => [`x${i}`, v]),
    ["sp", currentSp(s)],
    ["pc", s.pc],
    ["cpsr", s.cpsr],
    ["sp_el0", s.spEl0],
    ["sp_el1", s.spEl1],
    ["sctlr_el1", s.sctlrEl1],
    ["tcr_el1", s.tcrEl1],
    ["ttbr0_el1", s.ttbr0El1],
    ["ttbr1_el1", s.ttbr1El1],
  ];
}

/** The stack pointer of the current mode: SP_EL1 at EL1h, SP_EL0 otherwise. */
function currentSp(s: Aarch64VpState): bigint {
  const m = Number(s.cpsr & 0xfn);
  return m === 0b0101 ? s.spEl1 : s.spEl0;
}

export function pcOf(state: DebuggerVpState): bigint {
  return state.arch === "x86_64" ? state.state.rip : state.state.pc;
}

const MXCSR_FLAGS: [number, string][] = [
  [0, "IE"],
  [1, "DE"],
  [2, "ZE"],
  [3, "OE"],
  [4, "UE"],
  [5, "PE"],
  [6, "DAZ"],
  [7, "IM"],
  [8, "DM"],
  [9, "ZM"],
  [10, "OM"],
  [11, "UM"],
  [12, "PM"],
  [15, "FZ"],
];

const U32 = 0xffff_ffffn;

function leBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

/**
 * The x87 and SSE registers by gdb's names and order (st0–st7 in stack order, the raw 80-bit
 * value; fiseg/foseg the high halves of FIP/FDP as gdb shows them in 64-bit mode), then xmm0–15
 * and mxcsr; xcr0 last when the backend reports it.
 */
export function fpRegisterList(fp: X86FpState): [string, bigint][] {
  return [
    ...fp.st.map((b, i): [string, bigint] => [`st${i}`, leBigint(b)]),
    ["fctrl", BigInt(fp.fcw)],
    ["fstat", BigInt(fp.fsw)],
    ["ftag", BigInt(fp.ftw)],
    ["fiseg", (fp.fip >> 32n) & U32],
    ["fioff", fp.fip & U32],
    ["foseg", (fp.fdp >> 32n) & U32],
    ["fooff", fp.fdp & U32],
    ["fop", BigInt(fp.fop)],
    ...fp.xmm.map((b, i): [string, bigint] => [`xmm${i}`, xmmToBigint(b)]),
    ["mxcsr", BigInt(fp.mxcsr)],
    ...(fp.xcr0 !== undefined ? [["xcr0", fp.xcr0] as [string, bigint]] : []),
  ];
}

/** The x87/SSE lines of `regs --fp`: st as gdb shows it (value, raw), xmm as 128-bit hex with its two doubles, mxcsr's flags. */
function formatFpRegisters(fp: X86FpState): string[] {
  const top = (fp.fsw >> 11) & 7;
  return fpRegisterList(fp).map(([name, value]) => {
    const st = /^st(\d)$/.exec(name);
    if (st) {
      const i = Number(st[1]);
      const tag = (fp.ftw >> (2 * ((top + i) & 7))) & 3;
      const raw = `(raw 0x${value.toString(16).padStart(20, "0")})`;
      return `${name.padEnd(15)}${(tag === 3 ? "<empty>" : String(x87ToNumber(fp.st[i]))).padEnd(19)}${raw}`;
    }
    if (name.startsWith("xmm")) {
      const b = fp.xmm[Number(name.slice(3))];
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return `${name.padEnd(15)}0x${value.toString(16).padStart(32, "0")}  v2_double {${dv.getFloat64(0, true)}, ${dv.getFloat64(8, true)}}`;
    }
    let natural: string;
    if (name === "mxcsr") natural = `[ ${MXCSR_FLAGS.filter(([bit]) => (value >> BigInt(bit)) & 1n).map(([, n]) => `${n} `).join("")}]`;
    else if (name === "fstat") natural = `TOP=${top}`;
    else natural = value.toString();
    return `${name.padEnd(15)}${hex(value).padEnd(19)}${natural}`;
  });
}

/**
 * Like gdb's `info registers`: name, hex, and the natural value (decimal, flags, symbol); with
 * `fp`, the x87 and SSE registers after them (x86 only).
 */
export function formatRegisters(state: DebuggerVpState, symbols: SymbolTable | undefined, fp = false): string {
  const lines = registerList(state).map(([name, value]) => {
    let natural: string;
    if (name === "eflags") natural = `[ ${EFLAGS.filter(([bit]) => (value >> BigInt(bit)) & 1n).map(([, n]) => `${n} `).join("")}]`;
    else if (name === "rip" || name === "pc") {
      const sym = symbolize(value, symbols);
      natural = `${hex(value)}${sym ? ` <${sym}>` : ""}`;
    } else if (name === "cpsr") natural = aarch64Flags(value);
    else if (name === "rsp" || name === "rbp" || name === "sp" || name === "x29") natural = hex(value); // pointers, as gdb shows them
    else if (/^(cs|ss|ds|es|fs|gs)$/.test(name) || /^x\d+$/.test(name) || /^r/.test(name)) natural = signed(value).toString();
    else natural = hex(value);
    return `${name.padEnd(15)}${hex(value).padEnd(19)}${natural}`;
  });
  if (fp && state.arch === "x86_64" && state.state.fp) lines.push(...formatFpRegisters(state.state.fp));
  return lines.join("\n") + "\n";
}

function aarch64Flags(cpsr: bigint): string {
  const flags = [
    [31n, "N"],
    [30n, "Z"],
    [29n, "C"],
    [28n, "V"],
    [9n, "D"],
    [8n, "A"],
    [7n, "I"],
    [6n, "F"],
  ] as const;
  const set = flags.filter(([bit]) => (cpsr >> bit) & 1n).map(([, n]) => n);
  const el = Number((cpsr >> 2n) & 3n);
  return `[ ${[...set, `EL=${el}`, (cpsr & 1n) === 1n ? "SP=h" : "SP=t"].join(" ")} ]`;
}

function signed(v: bigint): bigint {
  return v >= 1n << 63n ? v - (1n << 64n) : v;
}

/** Registers as JSON: every register by its gdb name as "0x…", plus the raw state. */
export function registersJson(vm: string, vp: number, state: DebuggerVpState, fp = false): object {
  const list = registerList(state);
  if (fp && state.arch === "x86_64" && state.state.fp) list.push(...fpRegisterList(state.state.fp));
  return { vm, vp, arch: state.arch, pc: pcOf(state), registers: Object.fromEntries(list), state: state.state };
}

/** A stop in words: "software breakpoint 1 on VP 0". */
export function describeStop(reason: DebugStopReason): string {
  switch (reason.kind) {
    case "break":
      return "break (the VM was stopped on request)";
    case "powerOff":
      return "the VM powered off";
    case "reset":
      return "the VM reset";
    case "watchdog":
      return "watchdog";
    case "tripleFault":
      return `triple fault on VP ${reason.vp}`;
    case "singleStep":
      return `single step on VP ${reason.vp}`;
    case "hwBreakpoint": {
      const b = reason.breakpoint;
      const what = b.type === "execute" ? "hardware breakpoint" : `${b.type === "write" ? "write" : "read/write"} watchpoint`;
      return `${what} at ${hex(b.address)}${b.type === "execute" ? "" : ` (${b.size} bytes)`} on VP ${reason.vp}`;
    }
    case "softwareBreakpoint":
      return `software breakpoint ${reason.id} on VP ${reason.vp}`;
  }
}

/** A progress-free short size: 256 MiB, 4 KiB, 12 bytes. */
export function size(n: bigint | number): string {
  const v = BigInt(n);
  for (const [unit, k] of [
    ["GiB", 1n << 30n],
    ["MiB", 1n << 20n],
    ["KiB", 1n << 10n],
  ] as const) {
    if (v >= k && v % k === 0n) return `${v / k} ${unit}`;
  }
  return `${v} bytes`;
}
