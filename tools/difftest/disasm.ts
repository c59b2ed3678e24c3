// Instruction decoding for the harness (iced-x86): text, RFLAGS effects, families, static scans.
import { CpuidFeature, Decoder, DecoderOptions, Formatter, FormatterSyntax, Mnemonic, OpKind, Register, type Instruction } from "iced-x86";
import type { CorpusGuest } from "./corpus";

/** RFLAGS bit of each iced-x86 RflagsBits bit. */
const RFLAGS_OF_ICED: [number, number][] = [
  [1, 0x800], // OF
  [2, 0x80], // SF
  [4, 0x40], // ZF
  [8, 0x10], // AF
  [16, 0x1], // CF
  [32, 0x4], // PF
  [64, 0x400], // DF
  [128, 0x200], // IF
  [256, 0x40000], // AC
];
export const FLAG_BITS: Record<string, number> = { CF: 0x1, PF: 0x4, AF: 0x10, ZF: 0x40, SF: 0x80, TF: 0x100, IF: 0x200, DF: 0x400, OF: 0x800, RF: 0x10000, AC: 0x40000 };

function toRflags(iced: number): number {
  let out = 0;
  for (const [i, r] of RFLAGS_OF_ICED) if (iced & i) out |= r;
  return out;
}

export function flagNames(bits: number): string {
  return Object.entries(FLAG_BITS)
    .filter(([, b]) => bits & b)
    .map(([n]) => n)
    .join("|") || "none";
}

/** What the harness needs to know about one decoded instruction. */
export interface DecodedInsn {
  address: bigint;
  length: number;
  text: string;
  /** Lower-case mnemonic, e.g. "blsi". */
  mnemonic: string;
  /** RFLAGS bits the SDM leaves undefined after it. */
  undefinedFlags: number;
  /** RFLAGS bits it defines (written, set or cleared and not undefined). */
  definedFlags: number;
  /** Operand size in bits of its first register operand (0 when none). */
  operandBits: number;
  family: string;
  invalid: boolean;
}

const GENERIC_FEATURES = new Set<number>([CpuidFeature.INTEL8086, CpuidFeature.INTEL186, CpuidFeature.INTEL286, CpuidFeature.INTEL386, CpuidFeature.INTEL486, CpuidFeature.X64, CpuidFeature.INTEL8086_ONLY]);

const MULDIV = new Set([Mnemonic.Mul, Mnemonic.Imul, Mnemonic.Div, Mnemonic.Idiv]);
const SHIFTS = new Set([Mnemonic.Shl, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr, Mnemonic.Shld, Mnemonic.Shrd]);
const BITOPS = new Set([Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc, Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Bswap]);
const SYSTEM = new Set([Mnemonic.Lidt, Mnemonic.Lgdt, Mnemonic.Iretq, Mnemonic.Iretd, Mnemonic.Pushfq, Mnemonic.Popfq, Mnemonic.Int3, Mnemonic.Int, Mnemonic.Out, Mnemonic.In, Mnemonic.Hlt, Mnemonic.Cli, Mnemonic.Sti, Mnemonic.Cpuid, Mnemonic.Xsetbv, Mnemonic.Xgetbv, Mnemonic.Wrmsr, Mnemonic.Rdmsr]);
const STRING = new Set([Mnemonic.Movsb, Mnemonic.Movsw, Mnemonic.Movsd, Mnemonic.Movsq, Mnemonic.Stosb, Mnemonic.Stosw, Mnemonic.Stosd, Mnemonic.Stosq, Mnemonic.Scasb, Mnemonic.Scasw, Mnemonic.Scasd, Mnemonic.Scasq, Mnemonic.Cmpsb, Mnemonic.Cmpsw, Mnemonic.Cmpsd, Mnemonic.Cmpsq, Mnemonic.Lodsb, Mnemonic.Lodsw, Mnemonic.Lodsd, Mnemonic.Lodsq]);

function isCr(r: Register): boolean {
  return r >= Register.CR0 && r <= Register.CR15;
}
function isDr(r: Register): boolean {
  return r >= Register.DR0 && r <= Register.DR15;
}

/** A family name for grouping: the ISA extension, or a class of base instructions. */
function familyOf(insn: Instruction): string {
  const features = Array.from(insn.cpuidFeatures()).filter((f) => !GENERIC_FEATURES.has(f));
  const m = insn.mnemonic;
  const regs: Register[] = [];
  for (let i = 0; i < insn.opCount; i++) if (insn.opKind(i) === OpKind.Register) regs.push(insn.opRegister(i));
  if (regs.some(isDr)) return "mov-dr";
  if (regs.some(isCr)) return "mov-cr";
  if (STRING.has(m) && !regs.some((r) => r >= Register.XMM0 && r <= Register.XMM31)) {
    return insn.hasRepPrefix || insn.hasRepePrefix || insn.hasRepnePrefix ? "rep-string" : "string";
  }
  if (insn.hasLockPrefix || m === Mnemonic.Xchg || m === Mnemonic.Cmpxchg || m === Mnemonic.Xadd) return "atomic";
  if (features.length > 0) {
    const names = features.map((f) => CpuidFeature[f]).filter((n) => n !== undefined);
    if (names.length) return names.join("+").toLowerCase();
  }
  if (MULDIV.has(m)) return "muldiv";
  if (SHIFTS.has(m)) return "shift-rotate";
  if (BITOPS.has(m)) return "bitops";
  if (SYSTEM.has(m)) return "system";
  if (insn.isJmpNearIndirect || insn.isCallNearIndirect) return "indirect-branch";
  if (insn.isJccShort || insn.isJccNear) return "jcc";
  if ((Mnemonic[m] ?? "").toLowerCase().startsWith("set")) return "setcc";
  if (m === Mnemonic.Movzx || m === Mnemonic.Movsx || m === Mnemonic.Movsxd) return "extend";
  if (m === Mnemonic.Adc || m === Mnemonic.Sbb) return "adc-sbb";
  if (m === Mnemonic.Neg || m === Mnemonic.Not) return "neg-not";
  return "base";
}

function formatterText(formatter: Formatter, insn: Instruction): string {
  return insn.isInvalid ? "(bad)" : formatter.format(insn);
}

function describe(insn: Instruction, formatter: Formatter): DecodedInsn {
  const undefinedFlags = toRflags(insn.rflagsUndefined);
  const definedFlags = toRflags(insn.rflagsWritten | insn.rflagsCleared | insn.rflagsSet) & ~undefinedFlags;
  let operandBits = 0;
  if (insn.opCount > 0 && insn.opKind(0) === OpKind.Register) {
    const r = insn.opRegister(0);
    operandBits = r >= Register.RAX && r <= Register.R15 ? 64 : r >= Register.EAX && r <= Register.R15D ? 32 : r >= Register.AX && r <= Register.R15W ? 16 : 8;
  }
  return {
    address: insn.ip,
    length: insn.length,
    text: formatterText(formatter, insn),
    mnemonic: (Mnemonic[insn.mnemonic] ?? "?").toLowerCase(),
    undefinedFlags,
    definedFlags,
    operandBits,
    family: insn.isInvalid ? "invalid" : familyOf(insn),
    invalid: insn.isInvalid,
  };
}

/** Decodes instructions of one guest image (static code: its bytes never change). */
export class ImageDecoder {
  private readonly cache = new Map<bigint, DecodedInsn>();
  private readonly formatter = new Formatter(FormatterSyntax.Gas);

  constructor(private readonly guest: CorpusGuest) {}

  /** The instruction at `address`, or undefined outside the image. */
  at(address: bigint): DecodedInsn | undefined {
    const hit = this.cache.get(address);
    if (hit) return hit;
    const { bytes, loadGpa } = this.guest.image;
    const off = Number(address - loadGpa);
    if (address < loadGpa || off >= bytes.length) return undefined;
    const decoder = new Decoder(64, bytes.subarray(off, Math.min(bytes.length, off + 15)), DecoderOptions.None);
    decoder.ip = address;
    const insn = decoder.decode();
    try {
      const d = describe(insn, this.formatter);
      this.cache.set(address, d);
      return d;
    } finally {
      insn.free();
      decoder.free();
    }
  }

  text(address: bigint): string {
    return this.at(address)?.text ?? "(outside the image)";
  }

  /**
   * Every instruction of the image's 64-bit code found by decoding linearly from each function
   * symbol to the next (the 32-bit Multiboot entry and data are skipped).
   */
  scan(): DecodedInsn[] {
    const fns = this.guest.functions;
    const out: DecodedInsn[] = [];
    const skip = /^(entry32|no_long_mode|no_long_mode_msg|gdt64|gdt64_end|gdt64_descriptor|no_idt_descriptor|multiboot_header|crt0_idt|crt0_stack_top|__bss_start|__bss_end|corpus_passes)$/;
    const end = this.guest.image.loadGpa + BigInt(this.guest.image.bytes.length);
    for (let i = 0; i < fns.length; i++) {
      if (skip.test(fns[i].name)) continue;
      const stop = i + 1 < fns.length ? fns[i + 1].address : end;
      let a = fns[i].address;
      while (a < stop && a < end) {
        const d = this.at(a);
        if (!d || d.invalid) break;
        out.push(d);
        a += BigInt(d.length);
      }
    }
    return out;
  }

  free(): void {
    this.formatter.free();
  }
}
