// The aarch64 register file as gdb sees it: gdb's aarch64 core feature (x0–x30, sp, pc, cpsr)
// plus the EL1 system registers Aarch64VpState carries.
import type { Aarch64VpState } from "../client";
import { type GdbRegister, type RegisterFile, type RegisterTable, registerFile, unwrapAarch64 } from "./registers";

type Aarch64Register = GdbRegister<Aarch64VpState>;

const CORE = "org.gnu.gdb.aarch64.core";
/** The stack pointers of both levels and the translation registers, shown by `info registers system`. */
const SYS = "org.vmm-debug.aarch64.sys";

/** PSTATE.M[3:0] of the modes whose stack pointer Aarch64VpState carries: EL0t, EL1t (SP_EL0), EL1h (SP_EL1). */
const EL0T = 0x0n;
const EL1T = 0x4n;
const EL1H = 0x5n;

/** The SP the VP uses now (`sp` in gdb), by PSTATE's mode; undefined at EL2/EL3, whose SP vmm-debug does not carry. */
function currentSp(s: Aarch64VpState): "spEl0" | "spEl1" | undefined {
  if ((s.cpsr & 0x10n) !== 0n) return undefined; // AArch32 state
  const mode = s.cpsr & 0xfn;
  if (mode === EL1H) return "spEl1";
  if (mode === EL0T || mode === EL1T) return "spEl0";
  return undefined;
}

const CPSR_FLAGS = `  <flags id="cpsr_flags" size="4">
    <field name="SP" start="0" end="0"/>
    <field name="EL" start="2" end="3"/>
    <field name="nRW" start="4" end="4"/>
    <field name="F" start="6" end="6"/>
    <field name="I" start="7" end="7"/>
    <field name="A" start="8" end="8"/>
    <field name="D" start="9" end="9"/>
    <field name="SS" start="21" end="21"/>
    <field name="PAN" start="22" end="22"/>
    <field name="V" start="28" end="28"/>
    <field name="C" start="29" end="29"/>
    <field name="Z" start="30" end="30"/>
    <field name="N" start="31" end="31"/>
  </flags>
`;

const SYS_REGS: ReadonlyArray<[string, "spEl0" | "spEl1" | "sctlrEl1" | "tcrEl1" | "ttbr0El1" | "ttbr1El1"]> = [
  ["sp_el0", "spEl0"],
  ["sp_el1", "spEl1"],
  ["sctlr_el1", "sctlrEl1"],
  ["tcr_el1", "tcrEl1"],
  ["ttbr0_el1", "ttbr0El1"],
  ["ttbr1_el1", "ttbr1El1"],
];

export const AARCH64_REGISTERS: readonly Aarch64Register[] = [
  ...Array.from({ length: 31 }, (_, i): Aarch64Register => ({
    name: `x${i}`,
    bits: 64,
    feature: CORE,
    type: i === 29 ? "data_ptr" : "int",
    get: (s) => s.x[i],
    set: (s, v) => void (s.x[i] = v),
  })),
  {
    name: "sp",
    bits: 64,
    feature: CORE,
    type: "data_ptr",
    get: (s) => {
      const which = currentSp(s);
      return which === undefined ? undefined : s[which];
    },
    set: (s, v) => {
      const which = currentSp(s);
      if (which === undefined) return "the VP is not at EL0 or EL1, whose stack pointers are all vmm-debug carries";
      s[which] = v;
    },
  },
  { name: "pc", bits: 64, feature: CORE, type: "code_ptr", get: (s) => s.pc, set: (s, v) => void (s.pc = v) },
  // gdb's cpsr is 32 bits; PSTATE's upper half is reserved (zero).
  { name: "cpsr", bits: 32, feature: CORE, type: "cpsr_flags", get: (s) => s.cpsr & 0xffff_ffffn, set: (s, v) => void (s.cpsr = v) },
  ...SYS_REGS.map(([name, field]): Aarch64Register => ({
    name,
    bits: 64,
    feature: SYS,
    type: "int",
    group: "system",
    get: (s) => s[field],
    set: (s, v) => void (s[field] = v),
  })),
];

const regnum = (name: string) => AARCH64_REGISTERS.findIndex((r) => r.name === name);

export const AARCH64_TABLE: RegisterTable<Aarch64VpState> = {
  arch: "aarch64",
  architecture: "aarch64",
  registers: AARCH64_REGISTERS,
  featureTypes: { [CORE]: CPSR_FLAGS },
  expedite: [regnum("x29"), regnum("sp"), regnum("pc")],
  pc: regnum("pc"),
  clone: (s) => ({ ...s, x: [...s.x] }),
};

/** The aarch64 register file gdb sees. */
export const AARCH64_REGISTER_FILE: RegisterFile = registerFile(AARCH64_TABLE, unwrapAarch64, (state) => ({ arch: "aarch64", state }));
