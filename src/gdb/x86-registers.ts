// The x86-64 register file as gdb sees it: target.xml, the `g` layout, and X86VpState conversion.
import type { X86VpState } from "../client";
import { bigintToLeHex, leHexToBigint } from "../rsp";

/** One register in gdb's numbering (its index in X86_REGISTERS is its `p`/`P` number). */
export interface X86Register {
  name: string;
  bits: number;
  feature: string;
  type: string;
  group?: string;
  /** Its value, or undefined when the SDK does not carry it (sent as `xx…`: unavailable). */
  get(state: X86VpState): bigint | undefined;
  /** Stores a value; absent for registers the SDK cannot write. */
  set?(state: X86VpState, value: bigint): void;
}

const CORE = "org.gnu.gdb.i386.core";
const SEGMENTS = "org.gnu.gdb.i386.segments";
/** Control registers beyond gdb's features, shown by `info registers` and writable like the rest. */
const SYS = "org.vmm-debug.x86.sys";

/** gdb's order of the 16 general registers, as indices into X86VpState.gp (the x86 encoding order). */
const GP_ORDER: ReadonlyArray<[string, number]> = [
  ["rax", 0], ["rbx", 3], ["rcx", 1], ["rdx", 2], ["rsi", 6], ["rdi", 7], ["rbp", 5], ["rsp", 4],
  ["r8", 8], ["r9", 9], ["r10", 10], ["r11", 11], ["r12", 12], ["r13", 13], ["r14", 14], ["r15", 15],
];
const SEGMENT_NAMES = ["cs", "ss", "ds", "es", "fs", "gs"] as const;
const X87_CONTROL = ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"];
const SYS_REGS = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer"] as const;

const unavailable = () => undefined;

/**
 * gdb's amd64 core feature must hold the x87 registers too (its tdesc check rejects a core
 * without them); the SDK has no x87 state, so they read as unavailable and cannot be written.
 */
export const X86_REGISTERS: readonly X86Register[] = [
  ...GP_ORDER.map(([name, i]): X86Register => ({
    name,
    bits: 64,
    feature: CORE,
    type: name === "rbp" || name === "rsp" ? "data_ptr" : "int64",
    get: (s) => s.gp[i],
    set: (s, v) => {
      s.gp[i] = v;
    },
  })),
  { name: "rip", bits: 64, feature: CORE, type: "code_ptr", get: (s) => s.rip, set: (s, v) => void (s.rip = v) },
  // eflags is 32 bits on gdb's side; the upper half of RFLAGS is reserved (zero).
  { name: "eflags", bits: 32, feature: CORE, type: "i386_eflags", get: (s) => s.rflags & 0xffffffffn, set: (s, v) => void (s.rflags = v) },
  ...SEGMENT_NAMES.map((seg): X86Register => ({
    name: seg,
    bits: 32,
    feature: CORE,
    type: "int32",
    get: (s) => BigInt(s[seg].selector),
    set: (s, v) => {
      s[seg] = { ...s[seg], selector: Number(v & 0xffffn) };
    },
  })),
  ...Array.from({ length: 8 }, (_, i): X86Register => ({ name: `st${i}`, bits: 80, feature: CORE, type: "i387_ext", get: unavailable })),
  ...X87_CONTROL.map((name): X86Register => ({ name, bits: 32, feature: CORE, type: "int", group: "float", get: unavailable })),
  { name: "fs_base", bits: 64, feature: SEGMENTS, type: "int", get: (s) => s.fs.base, set: (s, v) => void (s.fs = { ...s.fs, base: v }) },
  { name: "gs_base", bits: 64, feature: SEGMENTS, type: "int", get: (s) => s.gs.base, set: (s, v) => void (s.gs = { ...s.gs, base: v }) },
  { name: "k_gs_base", bits: 64, feature: SYS, type: "int", group: "system", get: (s) => s.kernelGsBase, set: (s, v) => void (s.kernelGsBase = v) },
  ...SYS_REGS.map((name): X86Register => ({
    name,
    bits: 64,
    feature: SYS,
    type: "int",
    group: "system",
    get: (s) => s[name],
    set: (s, v) => {
      s[name] = v;
    },
  })),
];

/** The register `rip` (for reporting the PC). */
export const X86_RIP = X86_REGISTERS.findIndex((r) => r.name === "rip");

const EFLAGS_FLAGS = `  <flags id="i386_eflags" size="4">
    <field name="CF" start="0" end="0"/>
    <field name="" start="1" end="1"/>
    <field name="PF" start="2" end="2"/>
    <field name="AF" start="4" end="4"/>
    <field name="ZF" start="6" end="6"/>
    <field name="SF" start="7" end="7"/>
    <field name="TF" start="8" end="8"/>
    <field name="IF" start="9" end="9"/>
    <field name="DF" start="10" end="10"/>
    <field name="OF" start="11" end="11"/>
    <field name="NT" start="14" end="14"/>
    <field name="RF" start="16" end="16"/>
    <field name="VM" start="17" end="17"/>
    <field name="AC" start="18" end="18"/>
    <field name="VIF" start="19" end="19"/>
    <field name="VIP" start="20" end="20"/>
    <field name="ID" start="21" end="21"/>
  </flags>
`;

/** target.xml: one document, features in register order, every register numbered. */
export function x86TargetXml(): string {
  let out = '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n  <architecture>i386:x86-64</architecture>\n';
  let feature = "";
  X86_REGISTERS.forEach((r, regnum) => {
    if (r.feature !== feature) {
      if (feature) out += "</feature>\n";
      feature = r.feature;
      out += `<feature name="${feature}">\n`;
      if (feature === CORE) out += EFLAGS_FLAGS;
    }
    out += `  <reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${regnum}"${r.group ? ` group="${r.group}"` : ""}/>\n`;
  });
  return out + "</feature>\n</target>\n";
}

/** One register as `p` answers it: little-endian hex, or `x` digits when unavailable. */
export function formatRegister(state: X86VpState, regnum: number): string {
  const r = X86_REGISTERS[regnum];
  const v = r.get(state);
  return v === undefined ? "x".repeat(r.bits / 4) : bigintToLeHex(BigInt.asUintN(r.bits, v), r.bits / 8);
}

/** The `g` reply: every register in order. */
export function formatAllRegisters(state: X86VpState): string {
  return X86_REGISTERS.map((_, i) => formatRegister(state, i)).join("");
}

/** Length in hex digits of a complete `G` payload. */
export const ALL_REGISTERS_HEX = X86_REGISTERS.reduce((n, r) => n + r.bits / 4, 0);

/**
 * A copy of `state` with register `regnum` set from its hex value, or a sentence saying why it
 * cannot be. Hex that is all `x` (gdb's "unavailable") leaves the register as it is; an
 * unwritable register accepts only its current value (or zero, which gdb sends for one it could
 * not read), so a `G` that round-trips a `g` works.
 */
export function withRegister(state: X86VpState, regnum: number, hex: string): { state: X86VpState } | { refused: string } {
  const r = X86_REGISTERS[regnum];
  if (!r) return { refused: `register ${regnum} does not exist` };
  if (hex.length !== r.bits / 4) return { refused: `${r.name} takes ${r.bits / 8} bytes, got ${hex.length / 2}` };
  if (/^x+$/i.test(hex)) return { state };
  let value: bigint;
  try {
    value = leHexToBigint(hex);
  } catch {
    return { refused: `${r.name}: "${hex}" is not hex` };
  }
  if (!r.set) {
    const current = r.get(state);
    return value === 0n || value === current ? { state } : { refused: `${r.name} cannot be written through vmm-debug` };
  }
  const next = cloneState(state);
  r.set(next, value);
  return { state: next };
}

/** A copy of `state` with every register of a `G` payload set, or why not (then nothing is set). */
export function withAllRegisters(state: X86VpState, hex: string): { state: X86VpState } | { refused: string } {
  if (hex.length !== ALL_REGISTERS_HEX) return { refused: `G needs ${ALL_REGISTERS_HEX / 2} bytes, got ${hex.length / 2}` };
  let next = state;
  let at = 0;
  for (let i = 0; i < X86_REGISTERS.length; i++) {
    const len = X86_REGISTERS[i].bits / 4;
    const r = withRegister(next, i, hex.slice(at, at + len));
    if ("refused" in r) return r;
    next = r.state;
    at += len;
  }
  return { state: next };
}

function cloneState(s: X86VpState): X86VpState {
  return {
    ...s,
    gp: [...s.gp],
    es: { ...s.es },
    cs: { ...s.cs },
    ss: { ...s.ss },
    ds: { ...s.ds },
    fs: { ...s.fs },
    gs: { ...s.gs },
  };
}
