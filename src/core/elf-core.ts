// The ELF core file of a VM (DumpMemory): ELF64 header, one PT_NOTE segment (NT_PRSTATUS per VP,
// followed by its NT_FPREGSET where the backend reports the x86 FP state, then NT_PRPSINFO) and
// one PT_LOAD per RAM region at its guest-physical address. Pure layout: the caller streams
// `head`, then each segment's RAM at its `offset` (zeros in between).
//
// The notes use the Linux layouts gdb, readelf and BFD read: struct elf_prstatus (336 bytes on
// x86-64, 392 on aarch64) whose pr_reg is user_regs_struct (x86-64) or user_pt_regs (aarch64),
// user_fpregs_struct (x86-64: the 512-byte FXSAVE image), and struct elf_prpsinfo (136 bytes).
// pr_pid is VP index + 1, so gdb shows one thread per VP.
import { abridgedTag } from "./x86-fp";
import type { Aarch64VpState, Arch, DebuggerVpState, MemoryRegion, X86FpState, X86VpState } from "./types";

export const ELF_PAGE = 4096;
export const ET_CORE = 4;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const NT_PRSTATUS = 1;
export const NT_FPREGSET = 2;
export const NT_PRPSINFO = 3;
export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
/** sizeof(struct elf_prstatus) by architecture. */
export const PRSTATUS_SIZE = { x86_64: 336, aarch64: 392 } as const;
export const PRPSINFO_SIZE = 136;
/** Offset of pr_reg in struct elf_prstatus (both architectures). */
export const PRSTATUS_REG_OFFSET = 112;
const SIGTRAP = 5;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;

/** One PT_LOAD: `size` bytes of RAM from `gpa`, at file offset `offset`. */
export interface ElfCoreSegment {
  gpa: bigint;
  size: bigint;
  offset: bigint;
}

export interface ElfCoreLayout {
  /** The file's first bytes: ELF header, program headers, notes, and zeros up to the first segment. */
  head: Uint8Array;
  /** The PT_LOADs in file order (each page-aligned, after `head` and the one before). */
  segments: ElfCoreSegment[];
  /** Size of the whole file. */
  totalBytes: bigint;
}

export interface ElfCoreInput {
  arch: Arch;
  /** Every VP's registers, VP 0 first (the order of the NT_PRSTATUS notes). */
  vps: readonly DebuggerVpState[];
  regions: readonly MemoryRegion[];
  /** pr_fname (at most 15 bytes kept). */
  name?: string;
  /** pr_psargs (at most 79 bytes kept). */
  args?: string;
}

const alignUp = (v: bigint, a: bigint) => ((v + a - 1n) / a) * a;
const align4 = (n: number) => (n + 3) & ~3;

/** Lays out the core file of a VM with these VPs and RAM regions. */
export function elfCoreLayout(input: ElfCoreInput): ElfCoreLayout {
  const notes = coreNotes(input);
  const phnum = 1 + input.regions.length;
  if (phnum > 0xfffe) throw new RangeError(`too many memory regions for an ELF core file: ${input.regions.length}`);
  const notesOffset = EHDR_SIZE + PHDR_SIZE * phnum;
  const notesEnd = BigInt(notesOffset + notes.length);
  const segments: ElfCoreSegment[] = [];
  let at = alignUp(notesEnd, BigInt(ELF_PAGE));
  for (const r of input.regions) {
    segments.push({ gpa: r.gpa, size: r.size, offset: at });
    at = alignUp(at + r.size, BigInt(ELF_PAGE));
  }
  const totalBytes = segments.length === 0 ? notesEnd : segments[segments.length - 1].offset + segments[segments.length - 1].size;
  const headLength = Number(segments.length === 0 ? notesEnd : segments[0].offset);
  const head = new Uint8Array(headLength);
  const v = new DataView(head.buffer);
  writeElfHeader(v, input.arch, phnum);
  let ph = EHDR_SIZE;
  writePhdr(v, ph, { type: PT_NOTE, flags: 0, offset: BigInt(notesOffset), addr: 0n, filesz: BigInt(notes.length), memsz: 0n, align: 4n });
  for (const s of segments) {
    ph += PHDR_SIZE;
    writePhdr(v, ph, { type: PT_LOAD, flags: PF_R | PF_W | PF_X, offset: s.offset, addr: s.gpa, filesz: s.size, memsz: s.size, align: BigInt(ELF_PAGE) });
  }
  head.set(notes, notesOffset);
  return { head, segments, totalBytes };
}

function writeElfHeader(v: DataView, arch: Arch, phnum: number): void {
  // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE.
  [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0].forEach((b, i) => v.setUint8(i, b));
  v.setUint16(16, ET_CORE, true);
  v.setUint16(18, arch === "x86_64" ? EM_X86_64 : EM_AARCH64, true);
  v.setUint32(20, 1, true); // e_version
  v.setBigUint64(24, 0n, true); // e_entry
  v.setBigUint64(32, BigInt(EHDR_SIZE), true); // e_phoff
  v.setBigUint64(40, 0n, true); // e_shoff
  v.setUint32(48, 0, true); // e_flags
  v.setUint16(52, EHDR_SIZE, true);
  v.setUint16(54, PHDR_SIZE, true);
  v.setUint16(56, phnum, true);
  v.setUint16(58, 0, true); // e_shentsize
  v.setUint16(60, 0, true); // e_shnum
  v.setUint16(62, 0, true); // e_shstrndx
}

function writePhdr(
  v: DataView,
  at: number,
  p: { type: number; flags: number; offset: bigint; addr: bigint; filesz: bigint; memsz: bigint; align: bigint },
): void {
  v.setUint32(at, p.type, true);
  v.setUint32(at + 4, p.flags, true);
  v.setBigUint64(at + 8, p.offset, true);
  v.setBigUint64(at + 16, p.addr, true); // p_vaddr
  v.setBigUint64(at + 24, p.addr, true); // p_paddr
  v.setBigUint64(at + 32, p.filesz, true);
  v.setBigUint64(at + 40, p.memsz, true);
  v.setBigUint64(at + 48, p.align, true);
}

/**
 * The PT_NOTE segment's contents: per VP an NT_PRSTATUS, then an NT_FPREGSET when its x86 FP
 * state is known (a reader gives each NT_FPREGSET to the thread of the NT_PRSTATUS before it);
 * then NT_PRPSINFO.
 */
export function coreNotes(input: ElfCoreInput): Uint8Array {
  const parts: Uint8Array[] = [];
  input.vps.forEach((s, i) => {
    if (s.arch !== input.arch) throw new RangeError(`VP ${i} has ${s.arch} registers in an ${input.arch} core`);
    parts.push(elfNote("CORE", NT_PRSTATUS, prstatus(s, i + 1)));
    if (s.arch === "x86_64" && s.state.fp !== undefined) parts.push(elfNote("CORE", NT_FPREGSET, x86Fpregset(s.state.fp)));
  });
  parts.push(elfNote("CORE", NT_PRPSINFO, prpsinfo(input.name ?? "vmm-debug", input.args ?? "", 1)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One ELF note: Elf64_Nhdr, the NUL-terminated name and the descriptor, each padded to 4 bytes. */
export function elfNote(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name + "\0");
  const out = new Uint8Array(12 + align4(nameBytes.length) + align4(desc.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + align4(nameBytes.length));
  return out;
}

/** sizeof(struct user_fpregs_struct) on x86-64: the FXSAVE image. */
export const FPREGSET_SIZE = 512;
/** MXCSR_MASK as the embedded machine's FXSAVE stores it (and QEMU's): every MXCSR bit writable but the reserved ones. */
const FXSAVE_MXCSR_MASK = 0xffff;

/**
 * user_fpregs_struct of one x86-64 VP: the 64-bit FXSAVE layout (FCW, FSW, abridged tag, FOP,
 * FIP, FDP, MXCSR, MXCSR_MASK, ST(0)–ST(7) in 16-byte slots, XMM0–XMM15).
 */
export function x86Fpregset(fp: X86FpState): Uint8Array {
  const out = new Uint8Array(FPREGSET_SIZE);
  const v = new DataView(out.buffer);
  v.setUint16(0, fp.fcw, true);
  v.setUint16(2, fp.fsw, true);
  out[4] = abridgedTag(fp.ftw);
  v.setUint16(6, fp.fop, true);
  v.setBigUint64(8, BigInt.asUintN(64, fp.fip), true);
  v.setBigUint64(16, BigInt.asUintN(64, fp.fdp), true);
  v.setUint32(24, fp.mxcsr >>> 0, true);
  v.setUint32(28, FXSAVE_MXCSR_MASK, true);
  // FXSAVE's register slots hold ST(i), in stack order, as X86FpState.st does.
  fp.st.forEach((st, i) => out.set(st.subarray(0, 10), 32 + 16 * i));
  fp.xmm.forEach((x, i) => out.set(x.subarray(0, 16), 160 + 16 * i));
  return out;
}

/** struct elf_prstatus of one VP: SIGTRAP, pr_pid `pid`, pr_reg from its registers. */
export function prstatus(s: DebuggerVpState, pid: number): Uint8Array {
  const regs = s.arch === "x86_64" ? x86UserRegs(s.state) : aarch64UserRegs(s.state);
  const out = new Uint8Array(PRSTATUS_SIZE[s.arch]);
  const v = new DataView(out.buffer);
  v.setInt32(0, SIGTRAP, true); // pr_info.si_signo
  v.setInt16(12, SIGTRAP, true); // pr_cursig
  v.setInt32(32, pid, true); // pr_pid
  v.setInt32(36, 0, true); // pr_ppid
  v.setInt32(40, pid, true); // pr_pgrp
  v.setInt32(44, 1, true); // pr_sid
  regs.forEach((r, i) => v.setBigUint64(PRSTATUS_REG_OFFSET + 8 * i, BigInt.asUintN(64, r), true));
  return out;
}

/** struct elf_prpsinfo: state "R", the name and arguments. */
export function prpsinfo(name: string, args: string, pid: number): Uint8Array {
  const out = new Uint8Array(PRPSINFO_SIZE);
  const v = new DataView(out.buffer);
  v.setUint8(1, "R".charCodeAt(0)); // pr_sname
  v.setInt32(24, pid, true); // pr_pid
  v.setInt32(32, pid, true); // pr_pgrp
  v.setInt32(36, pid, true); // pr_sid
  const enc = new TextEncoder();
  out.set(enc.encode(name).subarray(0, 15), 40); // pr_fname[16]
  out.set(enc.encode(args).subarray(0, 79), 56); // pr_psargs[80]
  return out;
}

/** x86-64 user_regs_struct order (27 registers). */
export const X86_USER_REGS = [
  "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi",
  "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
] as const;

/** `gp` index of each general register (RAX RCX RDX RBX RSP RBP RSI RDI R8–R15). */
const GP = { rax: 0, rcx: 1, rdx: 2, rbx: 3, rsp: 4, rbp: 5, rsi: 6, rdi: 7, r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15 } as const;

export function x86UserRegs(s: X86VpState): bigint[] {
  return X86_USER_REGS.map((name) => {
    switch (name) {
      case "orig_rax":
        return 0xffff_ffff_ffff_ffffn; // -1: not in a system call
      case "rip":
        return s.rip;
      case "eflags":
        return s.rflags;
      case "cs":
      case "ss":
      case "ds":
      case "es":
      case "fs":
      case "gs":
        return BigInt(s[name].selector);
      case "fs_base":
        return s.fs.base;
      case "gs_base":
        return s.gs.base;
      default:
        return s.gp[GP[name]];
    }
  });
}

/** PSTATE.M[3:0] of the modes whose stack pointer Aarch64VpState carries (as the gdb bridge reads them). */
const EL0T = 0x0n;
const EL1T = 0x4n;
const EL1H = 0x5n;

/** The stack pointer the VP uses now: SP_EL1 at EL1h, SP_EL0 at EL0t/EL1t; 0 elsewhere (not carried). */
export function aarch64CurrentSp(s: Aarch64VpState): bigint {
  if ((s.cpsr & 0x10n) !== 0n) return 0n; // AArch32 state
  const mode = s.cpsr & 0xfn;
  if (mode === EL1H) return s.spEl1;
  if (mode === EL0T || mode === EL1T) return s.spEl0;
  return 0n;
}

/** aarch64 user_pt_regs: x0–x30, sp, pc, pstate (34 registers). */
export function aarch64UserRegs(s: Aarch64VpState): bigint[] {
  return [...s.x, aarch64CurrentSp(s), s.pc, s.cpsr];
}
