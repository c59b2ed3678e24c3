// The x86-64 register file as gdb sees it: gdb's amd64 core and segment features plus the control registers.
import type { X86VpState } from "../client";
import { type GdbRegister, type RegisterFile, type RegisterTable, registerFile, unwrapX86 } from "./registers";

type X86Register = GdbRegister<X86VpState>;

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

const regnum = (name: string) => X86_REGISTERS.findIndex((r) => r.name === name);

export const X86_TABLE: RegisterTable<X86VpState> = {
  arch: "x86_64",
  architecture: "i386:x86-64",
  registers: X86_REGISTERS,
  featureTypes: { [CORE]: EFLAGS_FLAGS },
  expedite: [regnum("rbp"), regnum("rsp"), regnum("rip")],
  pc: regnum("rip"),
  clone: cloneState,
};

/** The x86-64 register file gdb sees. */
export const X86_REGISTER_FILE: RegisterFile = registerFile(X86_TABLE, unwrapX86, (state) => ({ arch: "x86_64", state }));

/** target.xml for x86-64 VPs. */
export function x86TargetXml(): string {
  return X86_REGISTER_FILE.targetXml;
}
