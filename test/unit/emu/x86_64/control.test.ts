// Control flow and the stack: Jcc/SETcc/CMOVcc against the SDM condition table, LOOP, JRCXZ,
// CALL/RET/JMP in all near forms, PUSH/POP, LEAVE/ENTER, PUSHFQ/POPFQ.
import { CODE, STACK_TOP, TestMachine } from "./harness.js";

const CF = 0x1, PF = 0x4, ZF = 0x40, SF = 0x80, OF = 0x800;

/** The 16 conditions in encoding order, as the SDM defines them. */
const CONDITIONS: [string, (f: number) => boolean][] = [
  ["o", (f) => (f & OF) !== 0],
  ["no", (f) => (f & OF) === 0],
  ["b", (f) => (f & CF) !== 0],
  ["ae", (f) => (f & CF) === 0],
  ["e", (f) => (f & ZF) !== 0],
  ["ne", (f) => (f & ZF) === 0],
  ["be", (f) => (f & (CF | ZF)) !== 0],
  ["a", (f) => (f & (CF | ZF)) === 0],
  ["s", (f) => (f & SF) !== 0],
  ["ns", (f) => (f & SF) === 0],
  ["p", (f) => (f & PF) !== 0],
  ["np", (f) => (f & PF) === 0],
  ["l", (f) => ((f & SF) !== 0) !== ((f & OF) !== 0)],
  ["ge", (f) => ((f & SF) !== 0) === ((f & OF) !== 0)],
  ["le", (f) => (f & ZF) !== 0 || ((f & SF) !== 0) !== ((f & OF) !== 0)],
  ["g", (f) => (f & ZF) === 0 && ((f & SF) !== 0) === ((f & OF) !== 0)],
];

/** Every combination of the five flags conditions read. */
const FLAG_SETS = Array.from({ length: 32 }, (_, k) =>
  (k & 1 ? CF : 0) | (k & 2 ? PF : 0) | (k & 4 ? ZF : 0) | (k & 8 ? SF : 0) | (k & 16 ? OF : 0));

describe("conditions", () => {
  it.each(CONDITIONS.map(([name, holds], cc) => [name, cc, holds] as const))("j%s branches exactly when its condition holds", (_name, cc, holds) => {
    // jcc taken; mov eax, 1; hlt; taken: mov eax, 2; hlt
    const code = `${(0x70 + cc).toString(16)} 06 b8 01 00 00 00 f4 b8 02 00 00 00 f4`;
    for (const flags of FLAG_SETS) {
      const m = new TestMachine();
      m.rflags = flags;
      m.runCode(code);
      expect({ flags, taken: m.reg("rax") === 2n }).toEqual({ flags, taken: holds(flags) });
      expect(m.rflags & 0x8d5).toBe(flags);
    }
  });

  it.each(CONDITIONS.map(([name, holds], cc) => [name, cc, holds] as const))("set%s writes 1 or 0 to AL and nothing else", (_name, cc, holds) => {
    const code = `0f ${(0x90 + cc).toString(16)} c0 f4`; // setcc al; hlt
    for (const flags of FLAG_SETS) {
      const m = new TestMachine();
      m.setReg("rax", 0x1234_5678_9abc_deffn);
      m.rflags = flags;
      m.runCode(code);
      expect({ flags, rax: m.reg("rax") }).toEqual({ flags, rax: 0x1234_5678_9abc_de00n | (holds(flags) ? 1n : 0n) });
    }
  });

  it("CMOVcc with a false condition still clears bits 63:32 of a 32-bit destination", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xffff_ffff_0000_0001n);
    m.setReg("rbx", 2n);
    m.runCode("0f 44 c3 f4"); // cmove eax, ebx; hlt  (ZF = 0)
    expect(m.reg("rax")).toBe(1n);
    m.rflags = ZF;
    m.runCode("0f 44 c3 f4");
    expect(m.reg("rax")).toBe(2n);
  });

  it("CMOVcc reads a memory source and moves all 64 bits when the condition holds", () => {
    const m = new TestMachine();
    m.write64(0x180000, 0x8765_4321_0fed_cba9n);
    m.setReg("rbx", 0x180000n);
    m.runCode("48 0f 45 03 f4"); // cmovne rax, [rbx]; hlt
    expect(m.reg("rax")).toBe(0x8765_4321_0fed_cba9n);
  });
});

describe("loops", () => {
  it("LOOP counts RCX down to zero without touching the flags", () => {
    const m = new TestMachine();
    m.rflags = ZF | CF;
    m.runCode("b9 05 00 00 00 ff c0 e2 fc f4"); // mov ecx, 5; top: inc eax; loop top; hlt
    expect(m.reg("rax")).toBe(5n);
    expect(m.reg("rcx")).toBe(0n);
    expect(m.rflags & CF).toBe(CF);
  });

  it("LOOPNE also stops when ZF becomes set", () => {
    const m = new TestMachine();
    m.setReg("rcx", 100n);
    m.runCode("ff c0 83 f8 03 e0 f9 f4"); // top: inc eax; cmp eax, 3; loopne top; hlt
    expect(m.reg("rax")).toBe(3n);
    expect(m.reg("rcx")).toBe(97n);
  });

  it("JRCXZ tests all 64 bits of RCX", () => {
    const code = "e3 06 b8 01 00 00 00 f4 b8 02 00 00 00 f4"; // jrcxz z; mov eax, 1; hlt; z: mov eax, 2; hlt
    const m = new TestMachine();
    m.setReg("rcx", 0x1_0000_0000n);
    m.runCode(code);
    expect(m.reg("rax")).toBe(1n);
    m.setReg("rcx", 0n);
    m.runCode(code);
    expect(m.reg("rax")).toBe(2n);
  });
});

describe("calls and jumps", () => {
  it("CALL pushes the return address and RET pops it", () => {
    const m = new TestMachine();
    expect(m.runCode("e8 01 00 00 00 f4 b8 07 00 00 00 c3")).toEqual({ kind: "halted" }); // call f; hlt; f: mov eax, 7; ret
    expect(m.reg("rax")).toBe(7n);
    expect(m.rip).toBe(BigInt(CODE + 6));
    expect(m.reg("rsp")).toBe(BigInt(STACK_TOP));
    expect(m.read64(STACK_TOP - 8)).toBe(BigInt(CODE + 5));
  });

  it("RET imm16 releases the callee's arguments", () => {
    const m = new TestMachine();
    m.runCode("6a 01 6a 02 e8 01 00 00 00 f4 c2 10 00"); // push 1; push 2; call g; hlt; g: ret 16
    expect(m.reg("rsp")).toBe(BigInt(STACK_TOP));
  });

  it("calls through a register", () => {
    const m = new TestMachine();
    m.runCode("48 8d 05 03 00 00 00 ff d0 f4 bb 03 00 00 00 c3"); // lea rax, [rip+t]; call rax; hlt; t: mov ebx, 3; ret
    expect(m.reg("rbx")).toBe(3n);
    expect(m.rip).toBe(BigInt(CODE + 10));
  });

  it("jumps through memory", () => {
    const m = new TestMachine();
    m.write64(0x180000, BigInt(CODE + 0x100));
    m.load(CODE + 0x100, "b8 09 00 00 00 f4"); // mov eax, 9; hlt
    m.setReg("rbx", 0x180000n);
    m.runCode("ff 23"); // jmp qword ptr [rbx]
    expect(m.reg("rax")).toBe(9n);
  });

  it("raises #GP at a jump to a non-canonical address", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("48 b8 00 00 00 00 00 00 00 80 ff e0"); // movabs rax, 0x8000000000000000; jmp rax
    expect(m.vectors()).toEqual([13]);
    expect(m.read64(STACK_TOP - 40)).toBe(BigInt(CODE + 10)); // the pushed RIP is the JMP's
    expect(m.read64(STACK_TOP - 48)).toBe(0n); // error code
  });
});

describe("stack", () => {
  it("pushes sign-extended immediates and memory, and pops into memory and registers", () => {
    const m = new TestMachine();
    m.write64(0x180000, 0xabcdn);
    m.setReg("rbx", 0x180000n);
    // push -2; push 0x12345678; push qword [rbx]; pop qword [rbx+8]; pop rcx; pop rdx; hlt
    m.runCode("6a fe 68 78 56 34 12 ff 33 8f 43 08 59 5a f4");
    expect(m.read64(0x180008)).toBe(0xabcdn);
    expect(m.reg("rcx")).toBe(0x1234_5678n);
    expect(m.reg("rdx")).toBe(0xffff_ffff_ffff_fffen);
    expect(m.reg("rsp")).toBe(BigInt(STACK_TOP));
  });

  it("pushes and pops 16-bit values with an operand-size prefix", () => {
    const m = new TestMachine();
    m.setReg("rax", 0xffff_ffff_ffff_0000n);
    m.runCode("66 68 34 12 66 58 f4"); // push word 0x1234; pop ax; hlt
    expect(m.reg("rax")).toBe(0xffff_ffff_ffff_1234n);
    expect(m.reg("rsp")).toBe(BigInt(STACK_TOP));
  });

  it("LEAVE undoes a frame set up by hand and by ENTER", () => {
    const m = new TestMachine();
    m.setReg("rbp", 0x1111n);
    m.runCode("55 48 89 e5 48 83 ec 20 c9 f4"); // push rbp; mov rbp, rsp; sub rsp, 32; leave; hlt
    expect([m.reg("rsp"), m.reg("rbp")]).toEqual([BigInt(STACK_TOP), 0x1111n]);
    m.runCode("c8 10 00 00 c9 f4"); // enter 16, 0; leave; hlt
    expect([m.reg("rsp"), m.reg("rbp")]).toEqual([BigInt(STACK_TOP), 0x1111n]);
  });

  it("PUSHFQ and POPFQ move RFLAGS through the stack, keeping bit 1 set", () => {
    const m = new TestMachine();
    m.rflags = CF | ZF;
    m.setReg("rbx", BigInt(OF | SF | 0x400));
    m.runCode("9c 58 53 9d f4"); // pushfq; pop rax; push rbx; popfq; hlt
    expect(m.reg("rax")).toBe(BigInt(CF | ZF | 2));
    expect(m.rflags).toBe(OF | SF | 0x400 | 2);
  });

  it("pushes FS's selector and pops it into GS", () => {
    const m = new TestMachine();
    m.runCode("0f a0 0f a9 f4"); // push fs; pop gs; hlt
    expect(m.selector(5)).toBe(0x10);
    expect(m.reg("rsp")).toBe(BigInt(STACK_TOP));
  });
});
