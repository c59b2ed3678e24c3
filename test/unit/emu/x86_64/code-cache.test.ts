// The decoded-code cache: self-modifying code, stores by another VP, writes from outside,
// instructions that cross a page boundary.
import { X86Vp, x86BootState } from "../../../../src/emu/x86_64/index.js";
import { GDTR, GP, HALTED, RIP, VP_WORDS } from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, PML4, PTE_P, PTE_RW, STACK_TOP, TestMachine } from "./harness.js";

describe("self-modifying code", () => {
  it("runs the new bytes when an instruction patches the next one in the same block", () => {
    const m = new TestMachine();
    m.runCode("c6 05 01 00 00 00 02 b8 01 00 00 00 f4"); // mov byte [rip+1], 2; mov eax, 1; hlt
    expect(m.reg("rax")).toBe(2n);
  });

  it("keeps data that shares a page with a loop correct", () => {
    const m = new TestMachine();
    // mov ecx, 100; top: add qword [rip+counter], 1; dec ecx; jnz top; hlt; counter: .quad 0
    expect(m.runCode("b9 64 00 00 00 48 83 05 05 00 00 00 01 ff c9 75 f4 f4 00 00 00 00 00 00 00 00", 10_000)).toEqual({ kind: "halted" });
    expect(m.read64(CODE + 18)).toBe(100n);
    expect(m.vp.retired).toBe(1 + 300 + 1);
  });

  it("tells the bus about stores that overwrite decoded code, and only about those", () => {
    const m = new TestMachine();
    m.setReg("rbx", 0x180000n);
    m.runCode("c6 03 f4 f4"); // mov byte [rbx], 0xf4; hlt
    m.setReg("rbx", BigInt(CODE + 0x800));
    m.runCode("c6 03 f4 f4");
    expect(m.bus.guestWrites).toEqual([]);
    m.setReg("rbx", BigInt(CODE + 0x40));
    m.runCode("c6 03 f4 f4");
    expect(m.bus.guestWrites).toEqual([{ gpa: CODE + 0x40, length: 1 }]);
  });
});

describe("other writers", () => {
  it("drops code another VP on the same bus overwrote", () => {
    const m = new TestMachine();
    m.runCode("b8 01 00 00 00 f4"); // mov eax, 1; hlt   (VP 0 decodes and caches it)
    expect(m.reg("rax")).toBe(1n);

    // VP 1 patches VP 0's immediate: mov byte [rbx+1], 9; hlt
    const other = 0x110000;
    m.regs[VP_WORDS + GDTR] = 0x500;
    m.regs[VP_WORDS + GDTR + 2] = 39;
    x86BootState(m.regs, 1, other, 0, PML4);
    m.regs[VP_WORDS + GP + 6] = CODE;
    m.regs[VP_WORDS + GP + 8] = STACK_TOP - 0x1000;
    m.load(other, "c6 43 01 09 f4");
    const vp1 = new X86Vp(m.regs, 1, m.bus);
    expect(vp1.run(10)).toEqual({ kind: "halted" });

    m.rip = BigInt(CODE);
    m.halted = false;
    expect(m.vp.run(10)).toEqual({ kind: "halted" });
    expect(m.reg("rax")).toBe(9n);
  });

  it("runs new code written from outside once told with invalidateCode", () => {
    const m = new TestMachine();
    m.runCode("b8 01 00 00 00 f4"); // mov eax, 1; hlt
    m.ram[CODE + 1] = 7;
    m.vp.invalidateCode(CODE + 1, 1);
    m.rip = BigInt(CODE);
    m.halted = false;
    m.vp.run(10);
    expect(m.reg("rax")).toBe(7n);
    m.ram[CODE + 1] = 8;
    m.vp.invalidateAllCode();
    m.rip = BigInt(CODE);
    m.halted = false;
    m.vp.run(10);
    expect(m.reg("rax")).toBe(8n);
  });

  it("writes its state only to its own words of the shared register file", () => {
    const m = new TestMachine();
    const before = Array.from(m.regs.subarray(VP_WORDS));
    m.runCode("b8 01 00 00 00 f4");
    expect(Array.from(m.regs.subarray(VP_WORDS))).toEqual(before);
    expect(m.regs[HALTED]).toBe(1);
    expect(m.regs[RIP]).toBe(CODE + 6);
  });
});

describe("page-crossing instructions", () => {
  it("executes an instruction whose bytes continue in the next page", () => {
    const m = new TestMachine();
    expect(m.runCode("b8 78 56 34 12 f4", 10, CODE + 0xffd)).toEqual({ kind: "halted" }); // mov eax, 0x12345678; hlt
    expect(m.reg("rax")).toBe(0x1234_5678n);
  });

  it("raises #PF at the instruction when its second page is not mapped", () => {
    const m = new TestMachine();
    m.installIdt();
    const HIGH = 0xffff_8000_0000_0000n;
    m.map(HIGH, 0x1c0000, "4k", PTE_P | PTE_RW);
    m.load(0x1c0ffd, "b8 78 56"); // the first three bytes of mov eax, imm32
    m.rip = HIGH + 0xffdn;
    m.halted = false;
    expect(m.vp.run(10)).toEqual({ kind: "halted" });
    expect(m.vectors()).toEqual([14]);
    expect(m.cr2).toBe(HIGH + 0x1000n);
    expect(m.read64(STACK_TOP - 48)).toBe(0x10n); // error code: instruction fetch, not present
    expect(m.read64(STACK_TOP - 40)).toBe(HIGH + 0xffdn);
  });

  it("re-reads the second page when it is remapped", () => {
    const m = new TestMachine();
    const HIGH = 0xffff_8000_0000_0000n;
    m.map(HIGH, 0x1c0000, "4k", PTE_P | PTE_RW);
    m.map(HIGH + 0x1000n, 0x1c1000, "4k", PTE_P | PTE_RW);
    m.load(0x1c0ffd, "b8 78 56");
    m.load(0x1c1000, "34 12 f4");
    m.load(0x1d0000, "34 99 f4");
    m.rip = HIGH + 0xffdn;
    m.vp.run(10);
    expect(m.reg("rax")).toBe(0x1234_5678n);
    m.write64(m.leafEntry(HIGH + 0x1000n), 0x1d0000n | PTE_P | PTE_RW);
    m.vp.flushTlb();
    m.rip = HIGH + 0xffdn;
    m.halted = false;
    m.vp.run(10);
    expect(m.reg("rax")).toBe(0x9934_5678n);
  });
});
