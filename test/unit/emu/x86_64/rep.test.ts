// String instructions with and without REP: direction flag, overlap, page spans, faults part-way,
// REPE/REPNE termination, segment overrides, 32-bit address size and string port I/O.
import { SREG_FS, SEG_BASE, segWord } from "../../../../src/emu/x86_64/vp-layout.js";
import { PTE_P, PTE_RW, STACK_TOP, TestMachine } from "./harness.js";

const SRC = 0x180000;
const DST = 0x190000;
const ZF = 0x40;
const DF = 0x400;

function bytes(m: TestMachine, at: number, n: number): string {
  return Buffer.from(m.ram.subarray(at, at + n)).toString("hex");
}

describe("MOVS and STOS", () => {
  it("REP MOVSB copies RCX bytes forward and advances RSI and RDI", () => {
    const m = new TestMachine();
    m.load(SRC, "01 02 03 04 05");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 5n);
    m.runCode("f3 a4 f4"); // rep movsb; hlt
    expect(bytes(m, DST, 6)).toBe("010203040500");
    expect([m.reg("rsi"), m.reg("rdi"), m.reg("rcx")]).toEqual([BigInt(SRC + 5), BigInt(DST + 5), 0n]);
  });

  it("REP MOVSQ copies across several pages", () => {
    const m = new TestMachine();
    for (let i = 0; i < 3 * 4096; i++) m.ram[SRC + 8 + i] = i * 7;
    m.setReg("rsi", BigInt(SRC + 8));
    m.setReg("rdi", BigInt(DST + 24));
    m.setReg("rcx", BigInt((3 * 4096) / 8));
    m.runCode("f3 48 a5 f4"); // rep movsq; hlt
    expect(Buffer.compare(m.ram.subarray(DST + 24, DST + 24 + 3 * 4096), m.ram.subarray(SRC + 8, SRC + 8 + 3 * 4096))).toBe(0);
    expect(m.vp.retired).toBe(2);
  });

  it("REP MOVSB with the destination just above the source repeats the pattern, as element order demands", () => {
    const m = new TestMachine();
    m.load(SRC, "ab cd");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(SRC + 1));
    m.setReg("rcx", 8n);
    m.runCode("f3 a4 f4");
    expect(bytes(m, SRC, 10)).toBe("ab".repeat(9) + "00");
  });

  it("copies backwards with DF set", () => {
    const m = new TestMachine();
    m.load(SRC, "01 02 03 04");
    m.setReg("rsi", BigInt(SRC + 3));
    m.setReg("rdi", BigInt(DST + 3));
    m.setReg("rcx", 4n);
    m.runCode("fd f3 a4 fc f4"); // std; rep movsb; cld; hlt
    expect(bytes(m, DST, 4)).toBe("01020304");
    expect([m.reg("rsi"), m.reg("rdi")]).toEqual([BigInt(SRC - 1), BigInt(DST - 1)]);
  });

  it("REP STOSB and REP STOSQ fill memory from the accumulator", () => {
    const m = new TestMachine();
    m.setReg("rax", 0x1122_3344_5566_77een);
    m.setReg("rdi", BigInt(DST + 3));
    m.setReg("rcx", 5000n);
    m.runCode("f3 aa f4"); // rep stosb; hlt
    expect(m.ram.subarray(DST + 3, DST + 5003).every((b) => b === 0xee)).toBe(true);
    expect([m.ram[DST + 2], m.ram[DST + 5003]]).toEqual([0, 0]);
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 3n);
    m.runCode("f3 48 ab f4"); // rep stosq; hlt
    expect([m.read64(DST), m.read64(DST + 16)]).toEqual([0x1122_3344_5566_77een, 0x1122_3344_5566_77een]);
    expect(m.reg("rdi")).toBe(BigInt(DST + 24));
  });

  it("does nothing for RCX = 0", () => {
    const m = new TestMachine();
    m.setReg("rdi", BigInt(DST));
    m.setReg("rax", 0xffn);
    m.runCode("f3 aa f4");
    expect(m.ram[DST]).toBe(0);
    expect(m.reg("rdi")).toBe(BigInt(DST));
  });

  it("moves a single word without REP", () => {
    const m = new TestMachine();
    m.load(SRC, "34 12");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 9n);
    m.runCode("66 a5 f4"); // movsw; hlt
    expect(bytes(m, DST, 3)).toBe("341200");
    expect(m.reg("rcx")).toBe(9n);
  });

  it("stops at a page fault part-way with RCX, RSI and RDI describing the work left", () => {
    const m = new TestMachine();
    m.installIdt();
    const HIGH = 0xffff_8000_0000_0000n;
    m.map(HIGH, DST, "4k", PTE_P | PTE_RW);
    m.setReg("rdi", HIGH + 0xff0n);
    m.setReg("rcx", 32n);
    m.setReg("rax", 0x77n);
    m.runCode("f3 aa f4"); // rep stosb; hlt
    expect(m.vectors()).toEqual([14]);
    expect(m.cr2).toBe(HIGH + 0x1000n);
    expect([m.reg("rcx"), m.reg("rdi")]).toEqual([16n, HIGH + 0x1000n]);
    expect(m.read64(STACK_TOP - 40)).toBe(0x100000n); // RIP still at the REP STOSB
    expect(m.ram[DST + 0xfff]).toBe(0x77);
  });

  it("reads the source through an FS override", () => {
    const m = new TestMachine();
    m.regs[segWord(SREG_FS, SEG_BASE)] = SRC;
    m.load(SRC + 0x10, "99 88");
    m.setReg("rsi", 0x10n);
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 2n);
    m.runCode("64 f3 a4 f4"); // rep movsb es:[rdi], fs:[rsi]; hlt
    expect(bytes(m, DST, 2)).toBe("9988");
  });

  it("uses ECX and EDI with a 0x67 prefix", () => {
    const m = new TestMachine();
    m.setReg("rdi", 0xffff_ffff_0000_0000n | BigInt(DST));
    m.setReg("rcx", 0x1_0000_0002n);
    m.setReg("rax", 0x5an);
    m.runCode("67 f3 aa f4"); // addr32 rep stosb; hlt
    expect(bytes(m, DST, 3)).toBe("5a5a00");
    expect([m.reg("rcx"), m.reg("rdi")]).toEqual([0n, BigInt(DST + 2)]);
  });
});

describe("LODS, CMPS, SCAS", () => {
  it("LODSD loads EAX and clears bits 63:32", () => {
    const m = new TestMachine();
    m.load(SRC, "78 56 34 12");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rax", 0xffff_ffff_ffff_ffffn);
    m.runCode("ad f4"); // lodsd; hlt
    expect([m.reg("rax"), m.reg("rsi")]).toEqual([0x1234_5678n, BigInt(SRC + 4)]);
  });

  it("REPE CMPSB stops at the first difference", () => {
    const m = new TestMachine();
    m.load(SRC, "61 62 63 64");
    m.load(DST, "61 62 7a 64");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 4n);
    m.runCode("f3 a6 f4"); // repe cmpsb; hlt
    expect([m.reg("rcx"), m.reg("rsi")]).toEqual([1n, BigInt(SRC + 3)]);
    expect(m.rflags & ZF).toBe(0);
  });

  it("REPNE SCASB finds the first matching byte", () => {
    const m = new TestMachine();
    m.load(DST, "10 20 30 00 40");
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 100n);
    m.setReg("rax", 0n);
    m.runCode("f2 ae f4"); // repne scasb; hlt
    expect([m.reg("rcx"), m.reg("rdi")]).toEqual([96n, BigInt(DST + 4)]);
    expect(m.rflags & ZF).toBe(ZF);
  });
});

describe("string port I/O", () => {
  it("REP OUTSB writes RCX bytes to port DX", () => {
    const m = new TestMachine();
    m.load(SRC, "68 69 21");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdx", 0xe9n);
    m.setReg("rcx", 3n);
    m.runCode("f3 6e f4"); // rep outsb; hlt
    expect(m.bus.outs.map((o) => o.value)).toEqual([0x68, 0x69, 0x21]);
  });

  it("REP INSW stores words read from port DX, backwards with DF set", () => {
    const m = new TestMachine();
    m.bus.inValues.set(0x1f0, 0xbeef);
    m.setReg("rdi", BigInt(DST + 2));
    m.setReg("rdx", 0x1f0n);
    m.setReg("rcx", 2n);
    m.rflags = DF;
    m.runCode("66 f3 6d f4"); // rep insw; hlt
    expect(bytes(m, DST, 4)).toBe("efbeefbe");
    expect(m.reg("rdi")).toBe(BigInt(DST - 2));
  });
});
