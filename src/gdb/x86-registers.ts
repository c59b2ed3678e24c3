// The x86-64 register file as gdb sees it: gdb's amd64 core (x87 included), SSE and segment
// features plus the control registers.
import type { X86FpState, X86VpState } from "../client";
import { type GdbRegister, type RegisterFile, type RegisterTable, registerFile, unwrapX86 } from "./registers";

type X86Register = GdbRegister<X86VpState>;

const CORE = "org.gnu.gdb.i386.core";
const SSE = "org.gnu.gdb.i386.sse";
const SEGMENTS = "org.gnu.gdb.i386.segments";
/** Control registers beyond gdb's features, shown by `info registers` and writable like the rest. */
const SYS = "org.vmm-debug.x86.sys";

/** gdb's order of the 16 general registers, as indices into X86VpState.gp (the x86 encoding order). */
const GP_ORDER: ReadonlyArray<[string, number]> = [
  ["rax", 0], ["rbx", 3], ["rcx", 1], ["rdx", 2], ["rsi", 6], ["rdi", 7], ["rbp", 5], ["rsp", 4],
  ["r8", 8], ["r9", 9], ["r10", 10], ["r11", 11], ["r12", 12], ["r13", 13], ["r14", 14], ["r15", 15],
];
const SEGMENT_NAMES = ["cs", "ss", "ds", "es", "fs", "gs"] as const;
const SYS_REGS = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer"] as const;
const U32 = 0xffff_ffffn;

function bytesToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

function bigintToBytes(v: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** ST(0)–ST(7) as the physical registers R0–R7 they are under status word `fsw` (TOP = bits 13:11). */
function physicalOf(fp: X86FpState): Uint8Array[] {
  const top = (fp.fsw >> 11) & 7;
  const out: Uint8Array[] = new Array(8);
  for (let i = 0; i < 8; i++) out[(top + i) & 7] = fp.st[i];
  return out;
}

/**
 * An FP register: read from the state's `fp` (unavailable while it is unknown, e.g. after a step
 * whose register trace says nothing about it), written into a copy of it.
 */
function fpRegister(name: string, bits: number, feature: string, type: string, group: string | undefined, get: (fp: X86FpState) => bigint, set: (fp: X86FpState, v: bigint) => string | void): X86Register {
  return {
    name,
    bits,
    feature,
    type,
    ...(group ? { group } : {}),
    get: (s) => (s.fp ? get(s.fp) : undefined),
    set: (s, v) => {
      if (!s.fp) return "the FP state is not known";
      return set(s.fp, v);
    },
  };
}

/** A 16-bit x87 word shown in gdb's 32-bit register. */
function x87Word(name: string, field: "fcw" | "ftw"): X86Register {
  return fpRegister(name, 32, CORE, "int", "float", (fp) => BigInt(fp[field]), (fp, v) => {
    if (v > 0xffffn) return `${name} is 16 bits`;
    fp[field] = Number(v);
  });
}

/** Half of a 64-bit x87 pointer (FXSAVE64: gdb's fiseg/foseg are the high halves, fioff/fooff the low ones). */
function x87PointerHalf(name: string, field: "fip" | "fdp", high: boolean): X86Register {
  const shift = high ? 32n : 0n;
  return fpRegister(name, 32, CORE, "int", "float", (fp) => (fp[field] >> shift) & U32, (fp, v) => {
    fp[field] = (fp[field] & ~(U32 << shift)) | ((v & U32) << shift);
  });
}

const X87_REGISTERS: readonly X86Register[] = [
  ...Array.from({ length: 8 }, (_, i) =>
    fpRegister(`st${i}`, 80, CORE, "i387_ext", undefined, (fp) => bytesToBigint(fp.st[i]), (fp, v) => {
      fp.st[i] = bigintToBytes(v, 10);
    }),
  ),
  x87Word("fctrl", "fcw"),
  // A new TOP moves the stack over the same physical registers, as on the processor.
  fpRegister("fstat", 32, CORE, "int", "float", (fp) => BigInt(fp.fsw), (fp, v) => {
    if (v > 0xffffn) return "fstat is 16 bits";
    const physical = physicalOf(fp);
    fp.fsw = Number(v);
    const top = (fp.fsw >> 11) & 7;
    fp.st = Array.from({ length: 8 }, (_, i) => physical[(top + i) & 7]);
  }),
  // The full tag word (two bits per physical register), as gdb's i387 code expects.
  x87Word("ftag", "ftw"),
  x87PointerHalf("fiseg", "fip", true),
  x87PointerHalf("fioff", "fip", false),
  x87PointerHalf("foseg", "fdp", true),
  x87PointerHalf("fooff", "fdp", false),
  fpRegister("fop", 32, CORE, "int", "float", (fp) => BigInt(fp.fop), (fp, v) => {
    if (v > 0x7ffn) return "fop is 11 bits";
    fp.fop = Number(v);
  }),
];

const SSE_REGISTERS: readonly X86Register[] = [
  ...Array.from({ length: 16 }, (_, n) =>
    fpRegister(`xmm${n}`, 128, SSE, "vec128", undefined, (fp) => bytesToBigint(fp.xmm[n]), (fp, v) => {
      fp.xmm[n] = bigintToBytes(v, 16);
    }),
  ),
  fpRegister("mxcsr", 32, SSE, "i386_mxcsr", "vector", (fp) => BigInt(fp.mxcsr), (fp, v) => {
    if (v > 0xffffn) return "MXCSR bits 31:16 are reserved";
    fp.mxcsr = Number(v);
  }),
];

/**
 * gdb's amd64 register set: the core feature with the x87 registers (gdb's tdesc check rejects a
 * core without them), the SSE feature (xmm0–xmm15, mxcsr), then the segment bases and the
 * control registers. The x87 and SSE registers come from the VP state's `fp`.
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
  ...X87_REGISTERS,
  ...SSE_REGISTERS,
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

const SSE_TYPES = `  <vector id="v4f" type="ieee_single" count="4"/>
  <vector id="v2d" type="ieee_double" count="2"/>
  <vector id="v16i8" type="int8" count="16"/>
  <vector id="v8i16" type="int16" count="8"/>
  <vector id="v4i32" type="int32" count="4"/>
  <vector id="v2i64" type="int64" count="2"/>
  <union id="vec128">
    <field name="v4_float" type="v4f"/>
    <field name="v2_double" type="v2d"/>
    <field name="v16_int8" type="v16i8"/>
    <field name="v8_int16" type="v8i16"/>
    <field name="v4_int32" type="v4i32"/>
    <field name="v2_int64" type="v2i64"/>
    <field name="uint128" type="uint128"/>
  </union>
  <flags id="i386_mxcsr" size="4">
    <field name="IE" start="0" end="0"/>
    <field name="DE" start="1" end="1"/>
    <field name="ZE" start="2" end="2"/>
    <field name="OE" start="3" end="3"/>
    <field name="UE" start="4" end="4"/>
    <field name="PE" start="5" end="5"/>
    <field name="DAZ" start="6" end="6"/>
    <field name="IM" start="7" end="7"/>
    <field name="DM" start="8" end="8"/>
    <field name="ZM" start="9" end="9"/>
    <field name="OM" start="10" end="10"/>
    <field name="UM" start="11" end="11"/>
    <field name="PM" start="12" end="12"/>
    <field name="FZ" start="15" end="15"/>
  </flags>
`;

function cloneState(s: X86VpState): X86VpState {
  return {
    ...s,
    ...(s.fp ? { fp: { ...s.fp, xmm: [...s.fp.xmm], st: [...s.fp.st] } } : {}),
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
  featureTypes: { [CORE]: EFLAGS_FLAGS, [SSE]: SSE_TYPES },
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
