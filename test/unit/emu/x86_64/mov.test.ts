// Moves, widening moves, LEA, exchanges and sign extensions.
import { SREG_FS, SEG_BASE, segWord } from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, TestMachine } from "./harness.js";

const DATA = 0x180000;
const ZF = 0x40;

describe("MOV", () => {
  it("loads a 64-bit immediate, zero-extends a 32-bit write and keeps the rest of 8-bit registers", () => {
    const m = new TestMachine();
    m.setReg("rbx", 0xffff_ffff_0000_0000n);
    m.setReg("rcx", 0xaaaa_aaaa_aaaa_aaaan);
    m.setReg("rdx", 0xbbbb_bbbb_bbbb_bbbbn);
    // movabs rax, 0x123456789abcdef0; mov ebx, 0xffffffff; mov cl, 0x12; mov dh, 0x34; hlt
    m.runCode("48 b8 f0 de bc 9a 78 56 34 12 bb ff ff ff ff b1 12 b6 34 f4");
    expect(m.reg("rax")).toBe(0x1234_5678_9abc_def0n);
    expect(m.reg("rbx")).toBe(0xffff_ffffn);
    expect(m.reg("rcx")).toBe(0xaaaa_aaaa_aaaa_aa12n);
    expect(m.reg("rdx")).toBe(0xbbbb_bbbb_bbbb_34bbn);
  });

  it("stores immediates of each size, sign-extending the 32-bit one for a quadword", () => {
    const m = new TestMachine();
    m.ram.fill(0xee, DATA, DATA + 16);
    m.setReg("rbx", BigInt(DATA));
    // mov qword [rbx], -1; mov dword [rbx+8], 0x80000000; mov word [rbx+12], 0x1234; mov byte [rbx+14], 0x56; hlt
    m.runCode("48 c7 03 ff ff ff ff c7 43 08 00 00 00 80 66 c7 43 0c 34 12 c6 43 0e 56 f4");
    expect(m.read64(DATA)).toBe(0xffff_ffff_ffff_ffffn);
    expect(m.read64(DATA + 8)).toBe(0xee56_1234_8000_0000n);
  });

  it("moves through 64-bit absolute (moffs) addresses", () => {
    const m = new TestMachine();
    m.ram[DATA] = 0x99;
    m.setReg("rax", 0x1122_3344_5566_7700n);
    m.runCode("a0 00 00 18 00 00 00 00 00 48 a3 10 00 18 00 00 00 00 00 f4"); // movabs al, [0x180000]; movabs [0x180010], rax; hlt
    expect(m.reg("rax")).toBe(0x1122_3344_5566_7799n);
    expect(m.read64(DATA + 0x10)).toBe(0x1122_3344_5566_7799n);
  });

  it("loads RIP-relative data relative to the next instruction", () => {
    const m = new TestMachine();
    m.runCode("48 8b 05 01 00 00 00 f4 88 77 66 55 44 33 22 11"); // mov rax, [rip+data]; hlt; data: .quad 0x1122334455667788
    expect(m.reg("rax")).toBe(0x1122_3344_5566_7788n);
  });

  it("widens with MOVZX, MOVSX and MOVSXD", () => {
    const m = new TestMachine();
    m.write64(DATA, 0x0000_0000_8000_80f0n);
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rsi", 0xffff_ffff_ffff_ffffn);
    // movzx eax, byte [rbx]; movsx rcx, word [rbx]; movsxd rdx, dword [rbx]; movzx si, bl; movsx edi, bl; hlt
    m.runCode("0f b6 03 48 0f bf 0b 48 63 13 66 0f b6 f3 0f be fb f4");
    expect(m.reg("rax")).toBe(0xf0n);
    expect(m.reg("rcx")).toBe(0xffff_ffff_ffff_80f0n);
    expect(m.reg("rdx")).toBe(0xffff_ffff_8000_80f0n);
    expect(m.reg("rsi")).toBe(0xffff_ffff_ffff_0000n);
    expect(m.reg("rdi")).toBe(0n);
  });
});

describe("LEA", () => {
  it("computes addresses without touching memory or adding a segment base, truncating to the register and address size", () => {
    const m = new TestMachine();
    m.regs[segWord(SREG_FS, SEG_BASE)] = 0x1000_0000;
    m.setReg("rbx", 0xffff_ffff_0000_0100n);
    m.setReg("rcx", 2n);
    // lea rax, [rbx+rcx*8-16]; lea ecx, [rbx+rcx*2+1]; lea rdx, [rip+0x10]; lea esi, [ebx+0x10]; lea rdi, fs:[rbx+8]; hlt
    m.runCode("48 8d 44 cb f0 8d 4c 4b 01 48 8d 15 10 00 00 00 67 8d 73 10 64 48 8d 7b 08 f4");
    expect(m.reg("rax")).toBe(0xffff_ffff_0000_0100n);
    expect(m.reg("rcx")).toBe(0x105n);
    expect(m.reg("rdx")).toBe(BigInt(CODE + 16 + 0x10));
    expect(m.reg("rsi")).toBe(0x110n);
    expect(m.reg("rdi")).toBe(0xffff_ffff_0000_0108n);
  });
});

describe("exchanges", () => {
  it("swaps registers and a register with memory", () => {
    const m = new TestMachine();
    m.setReg("rax", 1n);
    m.setReg("rbx", 2n);
    m.setReg("rcx", 0xffff_ffff_0000_0003n);
    m.setReg("rdx", 0xffff_ffff_0000_0004n);
    m.setReg("rsi", BigInt(DATA));
    m.setReg("rdi", 5n);
    m.write64(DATA, 6n);
    m.runCode("48 93 87 d1 48 87 3e f4"); // xchg rax, rbx; xchg ecx, edx; xchg [rsi], rdi; hlt
    expect([m.reg("rax"), m.reg("rbx"), m.reg("rcx"), m.reg("rdx"), m.reg("rdi"), m.read64(DATA)]).toEqual([2n, 1n, 4n, 3n, 6n, 5n]);
  });

  it("XADD stores the sum and returns the old value", () => {
    const m = new TestMachine();
    m.setReg("rsi", BigInt(DATA));
    m.setReg("rax", 5n);
    m.write64(DATA, 0xffff_ffff_ffff_fffen);
    m.runCode("48 0f c1 06 f4"); // xadd [rsi], rax; hlt
    expect(m.read64(DATA)).toBe(3n);
    expect(m.reg("rax")).toBe(0xffff_ffff_ffff_fffen);
    expect(m.rflags & 1).toBe(1);
  });

  it("CMPXCHG stores on a match and loads the accumulator on a mismatch", () => {
    const m = new TestMachine();
    m.setReg("rsi", BigInt(DATA));
    m.write64(DATA, 7n);
    m.setReg("rax", 7n);
    m.setReg("rbx", 9n);
    m.runCode("48 0f b1 1e f4"); // cmpxchg [rsi], rbx; hlt
    expect(m.read64(DATA)).toBe(9n);
    expect(m.rflags & ZF).toBe(ZF);
    m.runCode("48 0f b1 1e f4");
    expect(m.read64(DATA)).toBe(9n);
    expect(m.reg("rax")).toBe(9n);
    expect(m.rflags & ZF).toBe(0);
  });

  it("CMPXCHG16B compares RDX:RAX with 16 bytes and stores RCX:RBX", () => {
    const m = new TestMachine();
    m.setReg("rsi", BigInt(DATA));
    m.write64(DATA, 1n);
    m.write64(DATA + 8, 2n);
    m.setReg("rax", 1n);
    m.setReg("rdx", 2n);
    m.setReg("rbx", 3n);
    m.setReg("rcx", 4n);
    m.runCode("48 0f c7 0e f4"); // cmpxchg16b [rsi]; hlt
    expect([m.read64(DATA), m.read64(DATA + 8)]).toEqual([3n, 4n]);
    expect(m.rflags & ZF).toBe(ZF);
  });

  it("CMPXCHG8B loads EDX:EAX from memory on a mismatch", () => {
    const m = new TestMachine();
    m.setReg("rsi", BigInt(DATA));
    m.write64(DATA, 0x1111_2222_3333_4444n);
    m.runCode("0f c7 0e f4"); // cmpxchg8b [rsi]; hlt
    expect([m.reg("rax"), m.reg("rdx")]).toEqual([0x3333_4444n, 0x1111_2222n]);
    expect(m.rflags & ZF).toBe(0);
  });

  it("BSWAP reverses bytes in 32 and 64 bits", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xffff_ffff_1122_3344n);
    m.setReg("rbx", 0x0102_0304_0506_0708n);
    m.runCode("0f c8 48 0f cb f4"); // bswap eax; bswap rbx; hlt
    expect(m.reg("rax")).toBe(0x4433_2211n);
    expect(m.reg("rbx")).toBe(0x0807_0605_0403_0201n);
  });

  it("XLATB loads AL from [RBX + AL]", () => {
    const m = new TestMachine();
    m.ram[DATA + 0x42] = 0x99;
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rax", 0x1142n);
    m.runCode("d7 f4"); // xlatb; hlt
    expect(m.reg("rax")).toBe(0x1199n);
  });
});

describe("sign extension of the accumulator", () => {
  const cases: [string, string, bigint, bigint, bigint, bigint][] = [
    // [asm, code, rax before, rdx before, rax after, rdx after]
    ["cbw", "66 98 f4", 0x1234_5680n, 0n, 0x1234_ff80n, 0n],
    ["cwde", "98 f4", 0xffff_ffff_1234_8000n, 0n, 0xffff_8000n, 0n],
    ["cdqe", "48 98 f4", 0x1234_5678_8000_0000n, 0n, 0xffff_ffff_8000_0000n, 0n],
    ["cwd", "66 99 f4", 0x8000n, 0x1234_5678n, 0x8000n, 0x1234_ffffn],
    ["cdq", "99 f4", 0x7fff_ffffn, 0xffff_ffff_ffff_ffffn, 0x7fff_ffffn, 0n],
    ["cqo", "48 99 f4", 0x8000_0000_0000_0000n, 0n, 0x8000_0000_0000_0000n, 0xffff_ffff_ffff_ffffn],
  ];
  it.each(cases)("%s fills the wider register with the sign", (_asm, code, rax, rdx, raxAfter, rdxAfter) => {
    const m = new TestMachine();
    m.setReg("rax", rax);
    m.setReg("rdx", rdx);
    m.runCode(code);
    expect([m.reg("rax"), m.reg("rdx")]).toEqual([raxAfter, rdxAfter]);
  });
});
