// Exception delivery through the IDT: #UD for what the interpreter does not implement, traps,
// IRETQ, #DF for a fault while delivering, triple fault, and the budget exit.
import { CODE, HANDLERS, IDT, STACK_TOP, TestMachine } from "./harness.js";

const IF = 0x200;
/** The harness GDT's 32-bit code segment. */
const CODE32_SELECTOR = 0x18n;

/** The frame a handler sees (no error code): RIP, CS, RFLAGS, RSP, SS. */
function frame(m: TestMachine, withError = false) {
  const base = STACK_TOP - (withError ? 48 : 40);
  const at = (i: number) => m.read64(base + 8 * i);
  return withError
    ? { error: at(0), rip: at(1), cs: at(2), rflags: at(3), rsp: at(4), ss: at(5) }
    : { rip: at(0), cs: at(1), rflags: at(2), rsp: at(3), ss: at(4) };
}

describe("#UD", () => {
  it.each([
    ["an SSE instruction", "0f 28 c1 f4"], // movaps xmm0, xmm1; hlt
    ["a 3DNow! instruction (not advertised: CPUID 0x80000001 EDX.31 clear)", "0f 0f c1 9e f4"], // pfadd mm0, mm1; hlt
    ["an AVX instruction", "c5 f4 58 c2 f4"], // vaddps ymm0, ymm1, ymm2; hlt
    ["UD2", "0f 0b f4"], // ud2; hlt
  ])("is delivered for %s, with RIP at the instruction, which does not retire", (_what, code) => {
    const m = new TestMachine();
    m.installIdt();
    expect(m.runCode(code)).toEqual({ kind: "halted" });
    expect(m.vectors()).toEqual([6]);
    // A fault pushes RFLAGS with RF set (SDM vol. 3, 18.3.1.1), so IRETQ re-runs it without instruction breakpoints.
    expect(frame(m)).toEqual({ rip: BigInt(CODE), cs: 8n, rflags: 0x10002n, rsp: BigInt(STACK_TOP), ss: 0x10n });
    expect(m.rip).toBe(BigInt(HANDLERS + 16 * 6 + 5));
    expect(m.vp.retired).toBe(3); // the handler's mov, out and hlt
  });
});

describe("traps", () => {
  it("delivers INT3 as #BP with RIP after the instruction, and IRETQ returns there", () => {
    const m = new TestMachine();
    m.installIdt();
    m.load(HANDLERS + 16 * 3, "48 cf"); // iretq
    expect(m.runCode("cc b8 01 00 00 00 f4")).toEqual({ kind: "halted" }); // int3; mov eax, 1; hlt
    expect(m.reg("rax")).toBe(1n);
    expect(m.reg("rsp")).toBe(BigInt(STACK_TOP));
    expect(m.read64(STACK_TOP - 40)).toBe(BigInt(CODE + 1));
  });

  it("delivers INT n through gate n", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("cd 1f f4"); // int 0x1f; hlt
    expect(m.vectors()).toEqual([0x1f]);
    expect(frame(m).rip).toBe(BigInt(CODE + 2));
  });

  it("clears IF through an interrupt gate, keeps it through a trap gate, and IRETQ restores RFLAGS", () => {
    const m = new TestMachine();
    m.installIdt([3]);
    m.load(HANDLERS + 16 * 3, "9c 59 48 cf"); // pushfq; pop rcx; iretq
    m.runCode("fb cc bb 02 00 00 00 f4"); // sti; int3; mov ebx, 2; hlt
    expect(BigInt.asUintN(64, m.reg("rcx")) & BigInt(IF)).toBe(BigInt(IF));
    expect(m.rflags & IF).toBe(IF);

    const n = new TestMachine();
    n.installIdt();
    n.load(HANDLERS + 16 * 3, "9c 59 48 cf"); // pushfq; pop rcx; iretq
    n.runCode("fb cc bb 02 00 00 00 f4");
    expect(n.reg("rcx") & BigInt(IF)).toBe(0n);
    expect(n.rflags & IF).toBe(IF);
    expect(n.reg("rbx")).toBe(2n);
  });

  it("aligns the stack to 16 bytes before pushing the frame", () => {
    const m = new TestMachine();
    m.installIdt();
    m.setReg("rsp", BigInt(STACK_TOP - 8));
    m.runCode("0f 0b"); // ud2
    // The frame sits below STACK_TOP - 16: SS at -24, RSP at -32, …, RIP at -56.
    expect(m.read64(STACK_TOP - 32)).toBe(BigInt(STACK_TOP - 8));
    expect(m.read64(STACK_TOP - 56)).toBe(BigInt(CODE));
  });
});

describe("double and triple faults", () => {
  it("triple-faults on any exception before the guest loads an IDT", () => {
    const m = new TestMachine();
    expect(m.runCode("0f 0b f4")).toEqual({ kind: "tripleFault" }); // ud2; hlt
    expect(m.rip).toBe(BigInt(CODE));
  });

  it("handles a fault while delivering a benign exception serially: #UD whose gate is not present gives #NP (IDT error code, EXT set)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.write64(IDT + 16 * 6, m.read64(IDT + 16 * 6) & ~(0x80n << 40n)); // #UD gate not present
    expect(m.runCode("0f 0b f4")).toEqual({ kind: "halted" });
    expect(m.vectors()).toEqual([11]);
    expect(frame(m, true)).toMatchObject({ error: BigInt(6 * 8 + 2 + 1), rip: BigInt(CODE) });
  });

  it("delivers #DF with error code 0 when a contributory exception faults while a contributory one is delivered", () => {
    const m = new TestMachine();
    m.installIdt();
    for (const v of [6, 11]) m.write64(IDT + 16 * v, m.read64(IDT + 16 * v) & ~(0x80n << 40n)); // #UD and #NP gates not present
    expect(m.runCode("0f 0b f4")).toEqual({ kind: "halted" });
    expect(m.vectors()).toEqual([8]);
    expect(frame(m, true)).toMatchObject({ error: 0n, rip: BigInt(CODE) });

    // #DE is contributory itself: a not-present #DE gate is #DF at once.
    const n = new TestMachine();
    n.installIdt();
    n.write64(IDT, n.read64(IDT) & ~(0x80n << 40n));
    n.runCode("31 c9 f7 f1 f4"); // xor ecx, ecx; div ecx; hlt
    expect(n.vectors()).toEqual([8]);
  });

  it("triple-faults when delivering #DF faults too", () => {
    const m = new TestMachine();
    m.installIdt();
    m.write64(IDT + 16 * 6, 0n);
    m.write64(IDT + 16 * 13, 0n);
    m.write64(IDT + 16 * 8, 0n);
    expect(m.runCode("0f 0b f4")).toEqual({ kind: "tripleFault" });
  });

  it("triple-faults when the stack is not mapped (the #PF and the #DF frames both fault)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.setReg("rsp", 0x4000_0000n);
    expect(m.runCode("0f 0b f4")).toEqual({ kind: "tripleFault" });
    expect(m.cr2).toBe(0x4000_0000n - 8n);
  });

  it("rejects a gate whose selector is not a 64-bit code segment with #GP(selector, EXT)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.write64(IDT + 16 * 6, (m.read64(IDT + 16 * 6) & ~(0xffffn << 16n)) | (CODE32_SELECTOR << 16n));
    m.runCode("0f 0b f4");
    expect(m.vectors()).toEqual([13]);
    expect(frame(m, true).error).toBe(CODE32_SELECTOR | 1n);
  });
});

describe("budget", () => {
  it("stops after exactly the budget and counts retired instructions", () => {
    const m = new TestMachine();
    expect(m.runCode("eb fe", 1000)).toEqual({ kind: "budget" }); // jmp .
    expect(m.vp.retired).toBe(1000);
    expect(m.vp.run(7)).toEqual({ kind: "budget" });
    expect(m.vp.retired).toBe(1007);
    expect(m.rip).toBe(BigInt(CODE));
  });

  it("stops in the middle of a straight-line block with RIP at the next instruction", () => {
    const m = new TestMachine();
    // five 1-byte NOPs then HLT
    expect(m.runCode("90 90 90 90 90 f4", 3)).toEqual({ kind: "budget" });
    expect(m.rip).toBe(BigInt(CODE + 3));
    expect(m.vp.run(10)).toEqual({ kind: "halted" });
    expect(m.vp.retired).toBe(6);
  });

  it("returns at once for a halted VP, without running", () => {
    const m = new TestMachine();
    m.runCode("f4");
    expect(m.vp.run(10)).toEqual({ kind: "halted" });
    expect(m.vp.retired).toBe(1);
  });
});
