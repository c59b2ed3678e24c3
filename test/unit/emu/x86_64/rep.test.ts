// String instructions with and without REP: direction flag, overlap, page spans, faults part-way,
// REPE/REPNE termination, segment overrides, 32-bit address size and string port I/O.
import { SREG_FS, SEG_BASE, segWord } from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, PTE_P, PTE_RW, STACK_TOP, TestMachine } from "./harness.js";

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

// Architectural stepping: with the debugger's single-step (or a Step batch, or the guest's TF) a
// REP instruction takes one step per iteration, RIP staying on it until the last.
describe("REP one iteration per step", () => {
  const STEP = { singleStep: true, slots: [null, null, null, null] };
  const NONE = { singleStep: false, slots: [null, null, null, null] };

  it("single-steps REP MOVSQ: RCX falls by 1 per step and RIP moves only after the last", () => {
    const m = new TestMachine();
    for (let i = 0; i < 128; i++) m.ram[SRC + i] = i + 1;
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 16n);
    m.load(CODE, "f3 48 a5 f4"); // rep movsq; hlt
    m.vp.invalidateCode(CODE, 4);
    m.rip = BigInt(CODE);
    m.vp.setDebug(STEP);
    for (let i = 1; i <= 16; i++) {
      expect(m.vp.run(1000)).toEqual({ kind: "singleStep" });
      expect(m.reg("rcx")).toBe(BigInt(16 - i));
      expect([m.reg("rsi"), m.reg("rdi")]).toEqual([BigInt(SRC + 8 * i), BigInt(DST + 8 * i)]);
      expect(m.rip).toBe(BigInt(i < 16 ? CODE : CODE + 3));
      // Exactly the elements done so far are copied.
      expect(bytes(m, DST + 8 * (i - 1), 9)).toBe(bytes(m, SRC + 8 * (i - 1), 8) + "00");
    }
    expect(m.vp.retired).toBe(1);
    expect(m.vp.run(1000)).toEqual({ kind: "singleStep" }); // hlt
    expect(m.halted).toBe(true);
  });

  it("a Step batch of 128 over a 1 KiB REP MOVSQ ends exactly at the next instruction, a batch of 1 moves RCX by 1", () => {
    const m = new TestMachine();
    for (let i = 0; i < 1024; i++) m.ram[SRC + i] = (i * 13) & 0xff;
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 128n);
    // rep movsq; mov eax, 1; mov ebx, 2; hlt
    m.load(CODE, "f3 48 a5 b8 01 00 00 00 bb 02 00 00 00 f4");
    m.vp.invalidateCode(CODE, 14);
    m.rip = BigInt(CODE);
    let out = m.vp.stepBatch(1, null, null, () => false);
    expect(out).toEqual({ executed: 1, exit: { kind: "budget" }, requested: false });
    expect([m.reg("rcx"), m.rip]).toEqual([127n, BigInt(CODE)]);
    const pcs = new Uint32Array(2 * 127);
    out = m.vp.stepBatch(127, pcs, null, () => false);
    expect(out.executed).toBe(127);
    expect([m.reg("rcx"), m.rip, m.reg("rax")]).toEqual([0n, BigInt(CODE + 3), 0n]);
    // Every step but the last left RIP on the REP.
    for (let i = 0; i < 126; i++) expect(pcs[2 * i]).toBe(CODE);
    expect(pcs[2 * 126]).toBe(CODE + 3);
    expect(Buffer.compare(m.ram.subarray(DST, DST + 1024), m.ram.subarray(SRC, SRC + 1024))).toBe(0);

    // Again from the start: one batch of 130 does the 128 iterations and the two moves.
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 128n);
    m.rip = BigInt(CODE);
    out = m.vp.stepBatch(130, null, null, () => false);
    expect(out.executed).toBe(130);
    expect([m.rip, m.reg("rax"), m.reg("rbx")]).toEqual([BigInt(CODE + 13), 1n, 2n]);
    // The batch does not change how run() executes a REP afterwards: one instruction, at once.
    m.setReg("rcx", 128n);
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    const retired = m.vp.retired;
    m.rip = BigInt(CODE);
    expect(m.vp.run(1)).toEqual({ kind: "budget" });
    expect([m.reg("rcx"), m.rip, m.vp.retired - retired]).toEqual([0n, BigInt(CODE + 3), 1]);
  });

  it("single-steps REP STOSB across a page boundary one byte at a time", () => {
    const m = new TestMachine();
    const at = DST + 0x1000 - 3;
    m.setReg("rdi", BigInt(at));
    m.setReg("rcx", 6n);
    m.setReg("rax", 0x5an);
    m.load(CODE, "f3 aa f4"); // rep stosb; hlt
    m.vp.invalidateCode(CODE, 3);
    m.rip = BigInt(CODE);
    m.vp.setDebug(STEP);
    for (let i = 1; i <= 6; i++) {
      expect(m.vp.run(1000)).toEqual({ kind: "singleStep" });
      expect(bytes(m, at, 7)).toBe("5a".repeat(i) + "00".repeat(7 - i));
      expect([m.reg("rcx"), m.reg("rdi"), m.rip]).toEqual([BigInt(6 - i), BigInt(at + i), BigInt(i < 6 ? CODE : CODE + 2)]);
    }
  });

  it("REPE CMPSB ends early at the first difference: the step of the mismatch moves RIP on", () => {
    const m = new TestMachine();
    m.load(SRC, "61 62 63 64 65");
    m.load(DST, "61 62 78 64 65");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 5n);
    m.load(CODE, "f3 a6 f4"); // repe cmpsb; hlt
    m.vp.invalidateCode(CODE, 3);
    m.rip = BigInt(CODE);
    const pcs = new Uint32Array(6);
    expect(m.vp.stepBatch(3, pcs, null, () => false).executed).toBe(3);
    expect([pcs[0], pcs[2], pcs[4]]).toEqual([CODE, CODE, CODE + 2]);
    expect([m.reg("rcx"), m.reg("rsi"), m.reg("rdi")]).toEqual([2n, BigInt(SRC + 3), BigInt(DST + 3)]);
    expect(m.rflags & ZF).toBe(0);
  });

  it("REP with RCX = 0 is one step that moves RIP on and touches nothing", () => {
    const m = new TestMachine();
    m.setReg("rdi", BigInt(DST));
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rcx", 0n);
    m.vp.setDebug(STEP);
    expect(m.runCode("f3 48 a5 f4")).toEqual({ kind: "singleStep" });
    expect([m.rip, m.reg("rcx"), m.reg("rsi"), m.reg("rdi")]).toEqual([BigInt(CODE + 3), 0n, BigInt(SRC), BigInt(DST)]);
    expect(m.vp.retired).toBe(1);
  });

  it("resuming at full speed part-way finishes the REP in one go", () => {
    const m = new TestMachine();
    for (let i = 0; i < 4 * 4096; i++) m.ram[SRC + i] = i * 5;
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", BigInt(4096 / 2));
    m.load(CODE, "f3 48 a5 f4");
    m.vp.invalidateCode(CODE, 4);
    m.rip = BigInt(CODE);
    m.vp.setDebug(STEP);
    for (let i = 0; i < 3; i++) m.vp.run(1000);
    expect([m.reg("rcx"), m.rip]).toEqual([BigInt(2048 - 3), BigInt(CODE)]);
    m.vp.setDebug(NONE);
    expect(m.vp.run(2)).toEqual({ kind: "halted" });
    expect(m.reg("rcx")).toBe(0n);
    expect(Buffer.compare(m.ram.subarray(DST, DST + 4 * 4096), m.ram.subarray(SRC, SRC + 4 * 4096))).toBe(0);
  });

  it("an execute slot on the REP fires once before it, not again between its iterations", () => {
    const m = new TestMachine();
    m.setReg("rdi", BigInt(DST));
    m.setReg("rcx", 3n);
    m.vp.setDebug({ singleStep: true, slots: [{ addressLo: CODE, addressHi: 0, type: 0, length: 1 }, null, null, null] });
    expect(m.runCode("f3 aa f4")).toEqual({ kind: "hwBreakpoint", slot: 0 });
    expect(m.reg("rcx")).toBe(3n);
    const seen: [string, bigint][] = [];
    for (let i = 0; i < 3; i++) seen.push([m.vp.run(1000).kind, m.reg("rcx")]);
    expect(seen).toEqual([["singleStep", 2n], ["singleStep", 1n], ["singleStep", 0n]]);
    expect(m.rip).toBe(BigInt(CODE + 2));
  });
});
