import {
  EM_AARCH64,
  EM_X86_64,
  ET_CORE,
  FPREGSET_SIZE,
  NT_FPREGSET,
  NT_PRPSINFO,
  NT_PRSTATUS,
  PRSTATUS_REG_OFFSET,
  PRSTATUS_SIZE,
  PT_LOAD,
  PT_NOTE,
  X86_USER_REGS,
  aarch64CurrentSp,
  elfCoreLayout,
  type Aarch64VpState,
  type DebuggerVpState,
  type SegmentRegister,
  type X86VpState,
} from "../../../src/core";

const seg = (selector: number, base = 0n): SegmentRegister => ({ base, limit: 0xffff_ffff, selector, attributes: 0xa09b });

function x86State(tag: bigint): DebuggerVpState {
  const state: X86VpState = {
    gp: Array.from({ length: 16 }, (_, i) => tag * 0x100n + BigInt(i)),
    rip: 0xffff_ffff_8010_1099n + tag,
    rflags: 0x246n,
    cr0: 0x8000_0011n,
    cr2: 0n,
    cr3: 0x1000n,
    cr4: 0x20n,
    cr8: 0n,
    efer: 0x500n,
    kernelGsBase: 0n,
    es: seg(0x10),
    cs: seg(0x08),
    ss: seg(0x18),
    ds: seg(0x20),
    fs: seg(0x28, 0x7000_0000n + tag),
    gs: seg(0x30, 0x8000_0000n + tag),
  };
  return { arch: "x86_64", state };
}

function aarch64State(cpsr: bigint): Aarch64VpState {
  return {
    x: Array.from({ length: 31 }, (_, i) => 0x1000n + BigInt(i)),
    spEl0: 0xaaaa_0000n,
    spEl1: 0xbbbb_0000n,
    pc: 0x4008_0000n,
    cpsr,
    sctlrEl1: 0n,
    tcrEl1: 0n,
    ttbr0El1: 0n,
    ttbr1El1: 0n,
  };
}

interface Note {
  name: string;
  type: number;
  desc: Uint8Array;
  /** Offset of the note header in the file. */
  at: number;
}

/** Walks the notes of a PT_NOTE segment, checking every field is 4-byte aligned. */
function parseNotes(file: Uint8Array, offset: number, size: number): Note[] {
  const v = new DataView(file.buffer, file.byteOffset);
  const out: Note[] = [];
  let at = offset;
  while (at < offset + size) {
    expect(at % 4).toBe(0);
    const namesz = v.getUint32(at, true);
    const descsz = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + ((namesz + 3) & ~3);
    const name = new TextDecoder().decode(file.subarray(nameAt, nameAt + namesz - 1));
    expect(file[nameAt + namesz - 1]).toBe(0);
    out.push({ name, type, desc: file.slice(descAt, descAt + descsz), at });
    at = descAt + ((descsz + 3) & ~3);
  }
  expect(at).toBe(offset + size);
  return out;
}

interface Phdr {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

function parsePhdrs(head: Uint8Array): Phdr[] {
  const v = new DataView(head.buffer, head.byteOffset);
  const phoff = Number(v.getBigUint64(32, true));
  return Array.from({ length: v.getUint16(56, true) }, (_, i) => {
    const at = phoff + i * v.getUint16(54, true);
    return {
      type: v.getUint32(at, true),
      flags: v.getUint32(at + 4, true),
      offset: v.getBigUint64(at + 8, true),
      vaddr: v.getBigUint64(at + 16, true),
      paddr: v.getBigUint64(at + 24, true),
      filesz: v.getBigUint64(at + 32, true),
      memsz: v.getBigUint64(at + 40, true),
      align: v.getBigUint64(at + 48, true),
    };
  });
}

describe("elfCoreLayout", () => {
  const regions = [
    { gpa: 0n, size: 0xa0000n, name: "low" },
    { gpa: 0x10_0000n, size: 0x1234n, name: "odd" }, // not a page multiple: the next segment is still page-aligned
    { gpa: 0x1_0000_0000n, size: 0x20_0000n, name: "high" },
  ];
  const vps = [x86State(1n), x86State(2n)];
  const layout = elfCoreLayout({ arch: "x86_64", vps, regions, name: "demo", args: "vmm-debug demo" });
  const head = layout.head;
  const v = new DataView(head.buffer);

  it("writes an ELF64 little-endian ET_CORE header for x86-64", () => {
    expect([...head.subarray(0, 7)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    expect(v.getUint16(16, true)).toBe(ET_CORE);
    expect(v.getUint16(18, true)).toBe(EM_X86_64);
    expect(v.getUint32(20, true)).toBe(1);
    expect(v.getBigUint64(32, true)).toBe(64n); // e_phoff
    expect(v.getBigUint64(40, true)).toBe(0n); // no section headers
    expect(v.getUint16(52, true)).toBe(64);
    expect(v.getUint16(54, true)).toBe(56);
    expect(v.getUint16(56, true)).toBe(1 + regions.length);
  });

  it("has one PT_NOTE right after the program headers and one page-aligned PT_LOAD per region, in file order", () => {
    const ph = parsePhdrs(head);
    expect(ph[0]).toMatchObject({ type: PT_NOTE, offset: BigInt(64 + 56 * 4), memsz: 0n });
    const notesEnd = ph[0].offset + ph[0].filesz;
    const loads = ph.slice(1);
    expect(loads.map((p) => p.type)).toEqual([PT_LOAD, PT_LOAD, PT_LOAD]);
    let end = notesEnd;
    loads.forEach((p, i) => {
      expect(p.offset % 4096n).toBe(0n);
      expect(p.offset).toBeGreaterThanOrEqual(end);
      expect(p.offset - end).toBeLessThan(4096n); // no more padding than alignment needs
      expect(p).toMatchObject({ vaddr: regions[i].gpa, paddr: regions[i].gpa, filesz: regions[i].size, memsz: regions[i].size, align: 4096n, flags: 7 });
      expect(layout.segments[i]).toEqual({ gpa: regions[i].gpa, size: regions[i].size, offset: p.offset });
      end = p.offset + p.filesz;
    });
    expect(layout.totalBytes).toBe(end);
    expect(BigInt(head.length)).toBe(loads[0].offset);
    // Everything between the notes and the first segment is zero.
    expect(head.subarray(Number(notesEnd)).every((b) => b === 0)).toBe(true);
  });

  it("carries one NT_PRSTATUS per VP (pid = VP + 1, registers in user_regs_struct order) and an NT_PRPSINFO", () => {
    const ph = parsePhdrs(head)[0];
    const notes = parseNotes(head, Number(ph.offset), Number(ph.filesz));
    expect(notes.map((n) => [n.name, n.type])).toEqual([
      ["CORE", NT_PRSTATUS],
      ["CORE", NT_PRSTATUS],
      ["CORE", NT_PRPSINFO],
    ]);
    notes.slice(0, 2).forEach((n, vp) => {
      expect(n.desc.length).toBe(PRSTATUS_SIZE.x86_64);
      const d = new DataView(n.desc.buffer);
      expect(d.getInt32(32, true)).toBe(vp + 1);
      const reg = (name: (typeof X86_USER_REGS)[number]) => d.getBigUint64(PRSTATUS_REG_OFFSET + 8 * X86_USER_REGS.indexOf(name), true);
      const s = vps[vp].state as X86VpState;
      expect(reg("rax")).toBe(s.gp[0]);
      expect(reg("rcx")).toBe(s.gp[1]);
      expect(reg("rbx")).toBe(s.gp[3]);
      expect(reg("rsp")).toBe(s.gp[4]);
      expect(reg("rbp")).toBe(s.gp[5]);
      expect(reg("rdi")).toBe(s.gp[7]);
      expect(reg("r8")).toBe(s.gp[8]);
      expect(reg("r15")).toBe(s.gp[15]);
      expect(reg("rip")).toBe(s.rip);
      expect(reg("eflags")).toBe(s.rflags);
      expect(reg("cs")).toBe(0x08n);
      expect(reg("ss")).toBe(0x18n);
      expect(reg("fs_base")).toBe(s.fs.base);
      expect(reg("gs_base")).toBe(s.gs.base);
      expect(reg("gs")).toBe(0x30n);
      // r15 is the first register, gs the 27th and last, before pr_fpvalid.
      expect(d.getBigUint64(PRSTATUS_REG_OFFSET, true)).toBe(s.gp[15]);
      expect(d.getBigUint64(PRSTATUS_REG_OFFSET + 26 * 8, true)).toBe(0x30n);
    });
    const ps = notes[2].desc;
    expect(ps.length).toBe(136);
    expect(new TextDecoder().decode(ps.subarray(40, 44))).toBe("demo");
    expect(ps[44]).toBe(0);
  });

  it("lays out an aarch64 core: EM_AARCH64, 392-byte prstatus with x0..x30, the current SP, pc, pstate", () => {
    const el1h = aarch64State(0x3c5n);
    const el0 = aarch64State(0x0n);
    const l = elfCoreLayout({
      arch: "aarch64",
      vps: [
        { arch: "aarch64", state: el1h },
        { arch: "aarch64", state: el0 },
      ],
      regions: [{ gpa: 0x4000_0000n, size: 0x800_0000n, name: "ram" }],
    });
    const d = new DataView(l.head.buffer);
    expect(d.getUint16(18, true)).toBe(EM_AARCH64);
    const ph = parsePhdrs(l.head);
    expect(ph[1]).toMatchObject({ type: PT_LOAD, vaddr: 0x4000_0000n, paddr: 0x4000_0000n, filesz: 0x800_0000n });
    expect(l.totalBytes).toBe(ph[1].offset + 0x800_0000n);
    const notes = parseNotes(l.head, Number(ph[0].offset), Number(ph[0].filesz));
    expect(notes.map((n) => n.type)).toEqual([NT_PRSTATUS, NT_PRSTATUS, NT_PRPSINFO]);
    const regs = (n: Note) => {
      expect(n.desc.length).toBe(PRSTATUS_SIZE.aarch64);
      const v = new DataView(n.desc.buffer);
      return Array.from({ length: 34 }, (_, i) => v.getBigUint64(PRSTATUS_REG_OFFSET + 8 * i, true));
    };
    const r0 = regs(notes[0]);
    expect(r0.slice(0, 31)).toEqual(el1h.x);
    expect(r0[31]).toBe(el1h.spEl1);
    expect(r0[32]).toBe(el1h.pc);
    expect(r0[33]).toBe(0x3c5n);
    expect(regs(notes[1])[31]).toBe(el0.spEl0);
    expect(new DataView(notes[1].desc.buffer).getInt32(32, true)).toBe(2);
  });

  it("follows each x86 VP's NT_PRSTATUS with its NT_FPREGSET (the FXSAVE image) when the FP state is known", () => {
    const withFp = x86State(1n);
    const s = withFp.state as X86VpState;
    const xmm = Array.from({ length: 16 }, (_, n) => Uint8Array.from({ length: 16 }, (_, k) => n * 16 + k));
    const st = Array.from({ length: 8 }, (_, i) => Uint8Array.from({ length: 10 }, (_, k) => 0x80 + i * 10 + k));
    s.fp = { xmm, st, mxcsr: 0x9fa0, fcw: 0x037f, fsw: 0x3000 | 0x21, ftw: 0x0fff, fop: 0x5d9, fip: 0x1122_3344_5566_7788n, fdp: 0xffff_8000_0000_1000n };
    const l = elfCoreLayout({ arch: "x86_64", vps: [withFp, x86State(2n)], regions: [{ gpa: 0n, size: 0x1000n, name: "ram" }] });
    const ph = parsePhdrs(l.head);
    const notes = parseNotes(l.head, Number(ph[0].offset), Number(ph[0].filesz));
    // VP 1 reports no FP state (as a backend that cannot read it): no NT_FPREGSET for it.
    expect(notes.map((n) => n.type)).toEqual([NT_PRSTATUS, NT_FPREGSET, NT_PRSTATUS, NT_PRPSINFO]);
    const f = notes[1].desc;
    expect(notes[1].name).toBe("CORE");
    expect(f.length).toBe(FPREGSET_SIZE);
    const v = new DataView(f.buffer, f.byteOffset, f.length);
    expect([v.getUint16(0, true), v.getUint16(2, true), f[4], v.getUint16(6, true)]).toEqual([0x037f, 0x3021, 0xc0, 0x5d9]);
    expect([v.getBigUint64(8, true), v.getBigUint64(16, true)]).toEqual([0x1122_3344_5566_7788n, 0xffff_8000_0000_1000n]);
    expect([v.getUint32(24, true), v.getUint32(28, true)]).toEqual([0x9fa0, 0xffff]);
    for (let i = 0; i < 8; i++) {
      expect(f.subarray(32 + 16 * i, 42 + 16 * i)).toEqual(st[i]);
      expect(f.subarray(42 + 16 * i, 48 + 16 * i)).toEqual(new Uint8Array(6));
    }
    for (let n = 0; n < 16; n++) expect(f.subarray(160 + 16 * n, 176 + 16 * n)).toEqual(xmm[n]);
    expect(f.subarray(416)).toEqual(new Uint8Array(96));
  });

  it("picks the SP by PSTATE mode as the gdb bridge does", () => {
    expect(aarch64CurrentSp(aarch64State(0x5n))).toBe(0xbbbb_0000n); // EL1h
    expect(aarch64CurrentSp(aarch64State(0x4n))).toBe(0xaaaa_0000n); // EL1t
    expect(aarch64CurrentSp(aarch64State(0x0n))).toBe(0xaaaa_0000n); // EL0t
    expect(aarch64CurrentSp(aarch64State(0x9n))).toBe(0n); // EL2h: not carried
  });

  it("refuses a VP state of the other architecture", () => {
    expect(() => elfCoreLayout({ arch: "aarch64", vps: [x86State(0n)], regions: [] })).toThrow(/x86_64 registers in an aarch64 core/);
  });

  it("without RAM regions the file ends with the notes", () => {
    const l = elfCoreLayout({ arch: "x86_64", vps: [x86State(0n)], regions: [] });
    const ph = parsePhdrs(l.head);
    expect(ph.length).toBe(1);
    expect(l.totalBytes).toBe(ph[0].offset + ph[0].filesz);
    expect(BigInt(l.head.length)).toBe(l.totalBytes);
  });
});
