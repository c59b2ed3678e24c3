// A VP's register file as gdb sees it, for any architecture: target.xml, the `g` layout, `p`/`P`
// and `G` against the SDK's VP state. Each architecture supplies its table (x86-registers.ts,
// aarch64-registers.ts); the connection sees only the arch-erased `RegisterFile`.
import type { Aarch64VpState, Arch, DebuggerVpState, X86VpState } from "../client";
import { bigintToLeHex, leHexToBigint } from "../rsp";

/** One register in gdb's numbering (its index in the table is its `p`/`P` number). */
export interface GdbRegister<S> {
  name: string;
  bits: number;
  feature: string;
  type: string;
  group?: string;
  /** Its value, or undefined when the SDK does not carry it (sent as `xx…`: unavailable). */
  get(state: S): bigint | undefined;
  /** Stores a value; absent for registers the SDK cannot write. Returns a reason to refuse, if any. */
  set?(state: S, value: bigint): string | void;
}

/** One architecture's table and how to copy its state. */
export interface RegisterTable<S> {
  arch: Arch;
  /** target.xml's <architecture>. */
  architecture: string;
  registers: readonly GdbRegister<S>[];
  /** Type definitions (<flags>, <struct>) placed at the top of a feature, by feature name. */
  featureTypes?: Readonly<Record<string, string>>;
  /** Register numbers gdb wants in every stop reply (pc, sp, frame pointer). */
  expedite: readonly number[];
  /** The register number of the program counter. */
  pc: number;
  clone(state: S): S;
}

type Change = { state: DebuggerVpState } | { refused: string };

/** The register file of one architecture, against the SDK's arch-tagged VP state. */
export interface RegisterFile {
  readonly arch: Arch;
  readonly count: number;
  readonly targetXml: string;
  readonly expedite: readonly number[];
  name(regnum: number): string | undefined;
  /** One register as `p` answers it: little-endian hex, or `x` digits when unavailable. */
  format(state: DebuggerVpState, regnum: number): string;
  /** The `g` reply: every register in order. */
  formatAll(state: DebuggerVpState): string;
  /** The program counter. */
  pc(state: DebuggerVpState): bigint;
  /**
   * A copy of `state` with register `regnum` set from its hex value, or a sentence saying why it
   * cannot be. Hex that is all `x` (gdb's "unavailable") leaves the register as it is; an
   * unwritable register accepts only its current value (or zero, which gdb sends for one it could
   * not read), so a `G` that round-trips a `g` works.
   */
  withRegister(state: DebuggerVpState, regnum: number, hex: string): Change;
  /** A copy of `state` with every register of a `G` payload set, or why not (then nothing is set). */
  withAll(state: DebuggerVpState, hex: string): Change;
}

export function buildTargetXml<S>(table: RegisterTable<S>): string {
  let out = `<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n  <architecture>${table.architecture}</architecture>\n`;
  let feature = "";
  table.registers.forEach((r, regnum) => {
    if (r.feature !== feature) {
      if (feature) out += "</feature>\n";
      feature = r.feature;
      out += `<feature name="${feature}">\n`;
      out += table.featureTypes?.[feature] ?? "";
    }
    out += `  <reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${regnum}"${r.group ? ` group="${r.group}"` : ""}/>\n`;
  });
  return out + "</feature>\n</target>\n";
}

/** Wraps one architecture's table as an arch-erased register file. */
export function registerFile<S>(table: RegisterTable<S>, unwrap: (state: DebuggerVpState) => S | undefined, wrap: (state: S) => DebuggerVpState): RegisterFile {
  const regs = table.registers;
  const allHex = regs.reduce((n, r) => n + r.bits / 4, 0);
  const stateOf = (s: DebuggerVpState): S => {
    const v = unwrap(s);
    if (v === undefined) throw new Error(`a ${s.arch} VP state given to the ${table.arch} register file`);
    return v;
  };
  const format = (s: S, regnum: number): string => {
    const r = regs[regnum];
    const v = r.get(s);
    return v === undefined ? "x".repeat(r.bits / 4) : bigintToLeHex(BigInt.asUintN(r.bits, v), r.bits / 8);
  };
  const withOne = (s: S, regnum: number, hex: string): { state: S } | { refused: string } => {
    const r = regs[regnum];
    if (!r) return { refused: `register ${regnum} does not exist` };
    if (hex.length !== r.bits / 4) return { refused: `${r.name} takes ${r.bits / 8} bytes, got ${hex.length / 2}` };
    if (/^x+$/i.test(hex)) return { state: s };
    let value: bigint;
    try {
      value = leHexToBigint(hex);
    } catch {
      return { refused: `${r.name}: "${hex}" is not hex` };
    }
    const current = r.get(s);
    if (!r.set) return value === 0n || value === current ? { state: s } : { refused: `${r.name} cannot be written through vmm-debug` };
    if (value === current) return { state: s };
    const next = table.clone(s);
    const why = r.set(next, value);
    return why ? { refused: `${r.name}: ${why}` } : { state: next };
  };
  return {
    arch: table.arch,
    count: regs.length,
    targetXml: buildTargetXml(table),
    expedite: table.expedite,
    name: (regnum) => regs[regnum]?.name,
    format: (state, regnum) => format(stateOf(state), regnum),
    formatAll: (state) => {
      const s = stateOf(state);
      return regs.map((_, i) => format(s, i)).join("");
    },
    pc: (state) => regs[table.pc].get(stateOf(state)) ?? 0n,
    withRegister(state, regnum, hex) {
      const r = withOne(stateOf(state), regnum, hex);
      return "refused" in r ? r : { state: wrap(r.state) };
    },
    withAll(state, hex) {
      if (hex.length !== allHex) return { refused: `G needs ${allHex / 2} bytes, got ${hex.length / 2}` };
      let next = stateOf(state);
      let at = 0;
      for (let i = 0; i < regs.length; i++) {
        const len = regs[i].bits / 4;
        const r = withOne(next, i, hex.slice(at, at + len));
        if ("refused" in r) return r;
        next = r.state;
        at += len;
      }
      return { state: wrap(next) };
    },
  };
}

export const unwrapX86 = (s: DebuggerVpState): X86VpState | undefined => (s.arch === "x86_64" ? s.state : undefined);
export const unwrapAarch64 = (s: DebuggerVpState): Aarch64VpState | undefined => (s.arch === "aarch64" ? s.state : undefined);
