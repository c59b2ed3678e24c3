// A tiny guest machine for the interpreter tests: RAM over a SharedArrayBuffer, a recording
// port bus, 4-level page tables built in RAM, a flat GDT and an optional IDT.

import type { GuestBus, MachineRequest, RamRegion } from "../../../../src/emu/bus.js";
import { SwBreakpointSet, X86Vp, x86BootState } from "../../../../src/emu/x86_64/index.js";
import {
  CR0, CR2, CR3, CR4, EFER, GDTR, GP, HALTED, IDTR, RFLAGS, RIP, SEG_BASE, SEG_SELECTOR, VP_WORDS, segWord,
} from "../../../../src/emu/x86_64/vp-layout.js";

export const RAM_SIZE = 8 * 1024 * 1024;
export const PML4 = 0x10000;
export const GDT = 0x500;
export const IDT = 0x1000;
export const CODE = 0x100000;
export const STACK_TOP = 0x200000;
/** Handlers installed by `installIdt` start here, 16 bytes apart: vector v at HANDLERS + 16 v. */
export const HANDLERS = 0x3000;

export const PTE_P = 1n;
export const PTE_RW = 2n;
export const PTE_US = 4n;
export const PTE_A = 0x20n;
export const PTE_D = 0x40n;
export const PTE_PS = 0x80n;
export const PTE_NX = 1n << 63n;

export const REG = { rax: 0, rcx: 1, rdx: 2, rbx: 3, rsp: 4, rbp: 5, rsi: 6, rdi: 7, r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15 } as const;
export type RegName = keyof typeof REG;

export interface PortWrite { port: number; size: number; value: number }

export class TestBus implements GuestBus {
  readonly regions: RamRegion[];
  readonly outs: PortWrite[] = [];
  readonly ins: { port: number; size: number }[] = [];
  readonly guestWrites: { gpa: number; length: number }[] = [];
  /** Values IN returns, by port (all ones otherwise). */
  readonly inValues = new Map<number, number>();
  /** What OUT to a port answers. */
  readonly requests = new Map<number, MachineRequest>();

  constructor(readonly ram: Uint8Array) {
    this.regions = [{ gpa: 0, size: ram.length, bytes: ram, name: "ram" }];
  }

  regionAt(gpa: number): RamRegion | undefined {
    return this.regions.find((r) => gpa >= r.gpa && gpa < r.gpa + r.size);
  }

  portOut(port: number, size: number, value: number): MachineRequest {
    this.outs.push({ port, size, value });
    return this.requests.get(port) ?? "none";
  }

  portIn(port: number, size: number): number {
    this.ins.push({ port, size });
    const v = this.inValues.get(port);
    return v === undefined ? (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1) : v;
  }

  noteGuestWrite(gpa: number, length: number): void {
    this.guestWrites.push({ gpa, length });
  }
}

export class TestMachine {
  readonly ram = new Uint8Array(new SharedArrayBuffer(RAM_SIZE));
  readonly view = new DataView(this.ram.buffer);
  readonly regs = new Uint32Array(new SharedArrayBuffer(VP_WORDS * 4 * 2));
  readonly bus = new TestBus(this.ram);
  /** The VP's software breakpoints. */
  readonly sw = new SwBreakpointSet();
  readonly vp: X86Vp;
  private nextTable = PML4 + 0x1000;

  constructor(options: { identity?: "2m" | "none"; vpIndex?: number } = {}) {
    // Flat GDT: null, 64-bit code 0x08, data 0x10, a 32-bit code segment 0x18, a not-present data 0x20.
    this.write64(GDT, 0n);
    this.write64(GDT + 8, 0x00af9b000000ffffn);
    this.write64(GDT + 16, 0x00cf93000000ffffn);
    this.write64(GDT + 24, 0x00cf9b000000ffffn);
    this.write64(GDT + 32, 0x00cf13000000ffffn);
    const vpIndex = options.vpIndex ?? 0;
    const b = vpIndex * VP_WORDS;
    this.regs[b + GDTR] = GDT;
    this.regs[b + GDTR + 1] = 0;
    this.regs[b + GDTR + 2] = 39;
    x86BootState(this.regs, vpIndex, CODE, 0, PML4);
    this.vpIndex = vpIndex;
    if ((options.identity ?? "2m") === "2m") {
      for (let a = 0; a < RAM_SIZE; a += 0x200000) this.map(BigInt(a), a, "2m", PTE_P | PTE_RW);
    }
    this.setReg("rsp", BigInt(STACK_TOP));
    this.vp = new X86Vp(this.regs, vpIndex, this.bus, this.sw);
  }

  readonly vpIndex: number;

  // ------------------------------------------------------------ memory

  write64(gpa: number, v: bigint): void {
    this.view.setBigUint64(gpa, BigInt.asUintN(64, v), true);
  }
  read64(gpa: number): bigint {
    return this.view.getBigUint64(gpa, true);
  }
  load(gpa: number, hex: string): void {
    const clean = hex.replace(/\s+/g, "");
    for (let i = 0; i < clean.length; i += 2) this.ram[gpa + i / 2] = parseInt(clean.slice(i, i + 2), 16);
  }

  /** Map virtual `va` to physical `pa` with a 4 KiB, 2 MiB or 1 GiB page; `flags` go on every level's entry (NX only on the leaf). */
  map(va: bigint, pa: number, size: "4k" | "2m" | "1g", flags: bigint): void {
    const leafLevel = size === "4k" ? 1 : size === "2m" ? 2 : 3;
    let table = PML4;
    const upper = (flags & ~PTE_NX & ~PTE_A & ~PTE_D) | PTE_P | PTE_RW | PTE_US;
    for (let level = 4; level > leafLevel; level--) {
      const idx = Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
      const ea = table + idx * 8;
      let e = this.read64(ea);
      if ((e & PTE_P) === 0n) {
        const t = this.nextTable;
        this.nextTable += 0x1000;
        this.ram.fill(0, t, t + 0x1000);
        e = BigInt(t) | upper;
        this.write64(ea, e);
      }
      table = Number(e & 0x000ffffffffff000n);
    }
    const idx = Number((va >> BigInt(12 + 9 * (leafLevel - 1))) & 511n);
    this.write64(table + idx * 8, BigInt(pa) | flags | (leafLevel > 1 ? PTE_PS : 0n));
  }

  /** The leaf entry's address for `va` (after `map`). */
  leafEntry(va: bigint): number {
    let table = PML4;
    for (let level = 4; level >= 1; level--) {
      const idx = Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
      const ea = table + idx * 8;
      const e = this.read64(ea);
      if (level === 1 || (e & PTE_PS) !== 0n) return ea;
      table = Number(e & 0x000ffffffffff000n);
    }
    throw new Error("unreachable");
  }

  /**
   * An IDT at IDT with 32 interrupt gates (CS 0x08); vector v's handler at HANDLERS + 16 v is
   * `out 0xE0 + 0, al`-free: `mov al, v; out 0xE9, al; hlt` so a test sees which vector ran.
   */
  installIdt(trapGates: number[] = []): void {
    for (let v = 0; v < 32; v++) {
      const h = HANDLERS + 16 * v;
      // mov al, v ; out 0xe9, al ; hlt
      this.ram.set([0xb0, v, 0xe6, 0xe9, 0xf4], h);
      const type = trapGates.includes(v) ? 0xf : 0xe;
      const lo = BigInt(h & 0xffff) | (0x08n << 16n) | (BigInt(0x80 | type) << 40n) | (BigInt((h >>> 16) & 0xffff) << 48n);
      this.write64(IDT + 16 * v, lo);
      this.write64(IDT + 16 * v + 8, 0n);
    }
    this.w(IDTR, IDT);
    this.w(IDTR + 1, 0);
    this.w(IDTR + 2, 32 * 16 - 1);
  }

  // ------------------------------------------------------------ registers

  private w(i: number, v: number): void {
    this.regs[this.vpIndex * VP_WORDS + i] = v >>> 0;
  }
  word(i: number): number {
    return this.regs[this.vpIndex * VP_WORDS + i];
  }
  private get64(i: number): bigint {
    return (BigInt(this.word(i + 1)) << 32n) | BigInt(this.word(i));
  }
  private set64(i: number, v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.w(i, Number(u & 0xffffffffn));
    this.w(i + 1, Number(u >> 32n));
  }

  reg(name: RegName): bigint {
    return this.get64(GP + 2 * REG[name]);
  }
  setReg(name: RegName, v: bigint): void {
    this.set64(GP + 2 * REG[name], v);
  }
  get rip(): bigint {
    return this.get64(RIP);
  }
  set rip(v: bigint) {
    this.set64(RIP, v);
  }
  get rflags(): number {
    return this.word(RFLAGS);
  }
  set rflags(v: number) {
    this.w(RFLAGS, v | 2);
  }
  get cr2(): bigint {
    return this.get64(CR2);
  }
  get cr0(): bigint {
    return this.get64(CR0);
  }
  get cr3(): bigint {
    return this.get64(CR3);
  }
  get cr4(): bigint {
    return this.get64(CR4);
  }
  get efer(): bigint {
    return this.get64(EFER);
  }
  get halted(): boolean {
    return this.word(HALTED) !== 0;
  }
  set halted(v: boolean) {
    this.w(HALTED, v ? 1 : 0);
  }
  segBase(sreg: number): bigint {
    return this.get64(segWord(sreg, SEG_BASE));
  }
  selector(sreg: number): number {
    return this.word(segWord(sreg, SEG_SELECTOR));
  }

  /** Load code at CODE (or `at`), point RIP at it, leave HLT and run up to `max` instructions. */
  runCode(hex: string, max = 1000, at = CODE): ReturnType<X86Vp["run"]> {
    this.load(at, hex);
    this.vp.invalidateCode(at, hex.length);
    this.rip = BigInt(at);
    this.halted = false;
    return this.vp.run(max);
  }

  /** Vectors the IDT handlers reported through port 0xE9. */
  vectors(): number[] {
    return this.bus.outs.filter((o) => o.port === 0xe9).map((o) => o.value);
  }
}
