// Debug slots (DR0–DR3 semantics) and single-step: execute breakpoints stop before the
// instruction, data breakpoints after it, with the slot that fired.
import type { X86Breakpoint, X86VpDebug } from "../../../../src/emu/x86_64/index.js";
import { CODE, HANDLERS, STACK_TOP, TestMachine } from "./harness.js";

const DATA = 0x180000;

function slots(...s: [number, X86Breakpoint][]): X86VpDebug {
  const out: (X86Breakpoint | null)[] = [null, null, null, null];
  for (const [i, b] of s) out[i] = b;
  return { singleStep: false, slots: out };
}
const exec = (address: number): X86Breakpoint => ({ addressLo: address, addressHi: 0, type: 0, length: 1 });
const write = (address: number, length: 1 | 2 | 4 | 8): X86Breakpoint => ({ addressLo: address, addressHi: 0, type: 2, length });
const readWrite = (address: number, length: 1 | 2 | 4 | 8): X86Breakpoint => ({ addressLo: address, addressHi: 0, type: 3, length });

// mov eax, 1; mov ebx, 2; mov ecx, 3; hlt
const THREE_MOVES = "b8 01 00 00 00 bb 02 00 00 00 b9 03 00 00 00 f4";

describe("execute breakpoints", () => {
  it("stop before the instruction at the address, with RIP on it, and report the slot", () => {
    const m = new TestMachine();
    m.vp.setDebug(slots([2, exec(CODE + 5)]));
    expect(m.runCode(THREE_MOVES)).toEqual({ kind: "hwBreakpoint", slot: 2 });
    expect(m.rip).toBe(BigInt(CODE + 5));
    expect([m.reg("rax"), m.reg("rbx")]).toEqual([1n, 0n]);
    expect(m.vp.retired).toBe(1);
  });

  it("do not fire again at the same RIP on the next run, like RFLAGS.RF", () => {
    const m = new TestMachine();
    m.vp.setDebug(slots([0, exec(CODE + 5)]));
    m.runCode(THREE_MOVES);
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect([m.reg("rbx"), m.reg("rcx")]).toEqual([2n, 3n]);
  });

  it("fire again when the debugger moved RIP away before resuming", () => {
    const m = new TestMachine();
    m.vp.setDebug(slots([1, exec(CODE + 5)]));
    m.runCode(THREE_MOVES);
    m.rip = BigInt(CODE);
    expect(m.vp.run(100)).toEqual({ kind: "hwBreakpoint", slot: 1 });
    expect(m.rip).toBe(BigInt(CODE + 5));
  });

  it("fire on every pass through a loop", () => {
    const m = new TestMachine();
    m.vp.setDebug(slots([3, exec(CODE + 5)]));
    m.load(CODE, "b9 03 00 00 00 ff c0 e2 fc f4"); // mov ecx, 3; top: inc eax; loop top; hlt
    m.rip = BigInt(CODE);
    const hits: number[] = [];
    for (let i = 0; i < 10; i++) {
      const x = m.vp.run(100);
      if (x.kind !== "hwBreakpoint") break;
      hits.push(Number(m.reg("rax")));
    }
    expect(hits).toEqual([0, 1, 2]);
    expect(m.halted).toBe(true);
  });

  it("fire at the first instruction of an exception handler", () => {
    const m = new TestMachine();
    m.installIdt();
    m.vp.setDebug(slots([0, exec(HANDLERS + 16 * 6)]));
    expect(m.runCode("0f 0b f4")).toEqual({ kind: "hwBreakpoint", slot: 0 }); // ud2; hlt
    expect(m.rip).toBe(BigInt(HANDLERS + 16 * 6));
  });
});

describe("data breakpoints", () => {
  it("fire after a store completes, with RIP at the next instruction", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rax", 0x55n);
    m.vp.setDebug(slots([1, write(DATA, 8)]));
    // mov [rbx], rax; mov rcx, [rbx]; mov dword [rbx+8], 1; hlt
    expect(m.runCode("48 89 03 48 8b 0b c7 43 08 01 00 00 00 f4")).toEqual({ kind: "hwBreakpoint", slot: 1 });
    expect(m.rip).toBe(BigInt(CODE + 3));
    expect(m.read64(DATA)).toBe(0x55n);
    // A write slot ignores the load that follows; the store to [rbx+8] is outside it.
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
  });

  it("read-or-write slots fire on loads too", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.vp.setDebug(slots([0, readWrite(DATA, 8)]));
    expect(m.runCode("48 8b 0b 48 89 03 f4")).toEqual({ kind: "hwBreakpoint", slot: 0 }); // mov rcx, [rbx]; mov [rbx], rax; hlt
    expect(m.rip).toBe(BigInt(CODE + 3));
    expect(m.vp.run(100)).toEqual({ kind: "hwBreakpoint", slot: 0 });
    expect(m.rip).toBe(BigInt(CODE + 6));
  });

  it("report the lowest slot when several match", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.vp.setDebug(slots([3, write(DATA, 1)], [2, readWrite(DATA + 4, 4)]));
    expect(m.runCode("48 89 03 f4")).toEqual({ kind: "hwBreakpoint", slot: 2 }); // mov [rbx], rax; hlt
  });

  it("count the read and the write of a read-modify-write", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.vp.setDebug(slots([1, write(DATA, 8)]));
    expect(m.runCode("48 83 03 01 f4")).toEqual({ kind: "hwBreakpoint", slot: 1 }); // add qword [rbx], 1; hlt
    expect(m.read64(DATA)).toBe(1n);
  });

  it("count stack pushes and pops", () => {
    const m = new TestMachine();
    m.vp.setDebug(slots([0, write(STACK_TOP - 8, 8)]));
    expect(m.runCode("e8 01 00 00 00 f4 c3")).toEqual({ kind: "hwBreakpoint", slot: 0 }); // call f; hlt; f: ret
    expect(m.rip).toBe(BigInt(CODE + 6));
    m.vp.setDebug(slots([0, readWrite(STACK_TOP - 8, 8)]));
    expect(m.vp.run(100)).toEqual({ kind: "hwBreakpoint", slot: 0 });
    expect(m.rip).toBe(BigInt(CODE + 5));
  });

  it("match any overlap with [address, address + length) and nothing outside it", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.vp.setDebug(slots([0, write(DATA, 4)]));
    // mov byte [rbx+3], al; mov byte [rbx+4], al; hlt
    expect(m.runCode("88 43 03 88 43 04 f4")).toEqual({ kind: "hwBreakpoint", slot: 0 });
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    m.vp.setDebug(slots([0, write(DATA + 8, 8)]));
    expect(m.runCode("48 89 43 04 f4")).toEqual({ kind: "hwBreakpoint", slot: 0 }); // mov [rbx+4], rax; hlt (bytes 4..11)
  });

  it("fire on a page the TLB already maps, armed while the VP was stopped", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    const code = "48 8b 8b 00 01 00 00 48 89 8b 00 01 00 00 48 89 03 f4"; // mov rcx, [rbx+0x100]; mov [rbx+0x100], rcx; mov [rbx], rax; hlt
    m.runCode(code);
    m.vp.setDebug(slots([2, write(DATA, 8)]));
    expect(m.runCode(code)).toEqual({ kind: "hwBreakpoint", slot: 2 });
    expect(m.rip).toBe(BigInt(CODE + 17));
  });

  it("ignore instruction fetches", () => {
    const m = new TestMachine();
    m.vp.setDebug(slots([0, readWrite(CODE, 8)]));
    expect(m.runCode("90 90 f4")).toEqual({ kind: "halted" }); // nop; nop; hlt
  });

  it("stop firing once the slots are cleared", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.vp.setDebug(slots([0, write(DATA, 8)]));
    m.vp.setDebug(slots());
    expect(m.runCode("48 89 03 f4")).toEqual({ kind: "halted" });
  });
});

describe("single-step", () => {
  const step: X86VpDebug = { singleStep: true, slots: [null, null, null, null] };

  it("runs exactly one instruction per run()", () => {
    const m = new TestMachine();
    m.vp.setDebug(step);
    m.load(CODE, THREE_MOVES);
    m.rip = BigInt(CODE);
    const rips: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      expect(m.vp.run(1000)).toEqual({ kind: "singleStep" });
      rips.push(m.rip);
    }
    expect(rips).toEqual([BigInt(CODE + 5), BigInt(CODE + 10), BigInt(CODE + 15)]);
    expect(m.vp.retired).toBe(3);
  });

  it("stops after delivering an exception, at the handler", () => {
    const m = new TestMachine();
    m.installIdt();
    m.vp.setDebug(step);
    expect(m.runCode("0f 0b f4")).toEqual({ kind: "singleStep" }); // ud2; hlt
    expect(m.rip).toBe(BigInt(HANDLERS + 16 * 6));
    expect(m.vp.retired).toBe(0);
  });

  it("reports a data breakpoint rather than the step when the instruction hit one", () => {
    const m = new TestMachine();
    m.setReg("rbx", BigInt(DATA));
    m.vp.setDebug({ singleStep: true, slots: [null, write(DATA, 8), null, null] });
    expect(m.runCode("48 89 03 f4")).toEqual({ kind: "hwBreakpoint", slot: 1 });
  });

  it("steps over HLT and leaves the VP halted", () => {
    const m = new TestMachine();
    m.vp.setDebug(step);
    expect(m.runCode("f4")).toEqual({ kind: "singleStep" });
    expect(m.halted).toBe(true);
    expect(m.vp.run(10)).toEqual({ kind: "halted" });
  });

  it("returns to full speed when single-step is turned off", () => {
    const m = new TestMachine();
    m.vp.setDebug(step);
    m.load(CODE, THREE_MOVES);
    m.rip = BigInt(CODE);
    m.vp.run(10);
    m.vp.setDebug({ singleStep: false, slots: [null, null, null, null] });
    expect(m.vp.run(10)).toEqual({ kind: "halted" });
    expect(m.vp.retired).toBe(4);
  });
});

describe("data breakpoints inside a REP string instruction", () => {
  it("a write slot in a REP MOVSQ destination stops after that iteration, RCX/RSI/RDI describing the rest", () => {
    const m = new TestMachine();
    const SRC = 0x170000;
    for (let i = 0; i < 128; i++) m.ram[SRC + i] = 0x80 + i;
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DATA));
    m.setReg("rcx", 16n);
    m.vp.setDebug(slots([2, write(DATA + 44, 4)])); // inside element 5 (bytes 40..47)
    expect(m.runCode("f3 48 a5 f4")).toEqual({ kind: "hwBreakpoint", slot: 2 }); // rep movsq; hlt
    expect([m.rip, m.reg("rcx"), m.reg("rsi"), m.reg("rdi")]).toEqual([BigInt(CODE), 10n, BigInt(SRC + 48), BigInt(DATA + 48)]);
    expect(m.ram[DATA + 47]).toBe(0x80 + 47);
    expect(m.ram[DATA + 48]).toBe(0);
    // Resuming finishes the REP without stopping again and without re-running element 5.
    expect(m.vp.run(1000)).toEqual({ kind: "halted" });
    expect(m.reg("rcx")).toBe(0n);
    expect(Buffer.compare(m.ram.subarray(DATA, DATA + 128), m.ram.subarray(SRC, SRC + 128))).toBe(0);
    expect(m.vp.retired).toBe(2);
  });

  it("a read-or-write slot on a REPE CMPSB source stops after the iteration that read it", () => {
    const m = new TestMachine();
    const SRC = 0x170000;
    m.load(SRC, "61 62 63 64");
    m.load(DATA, "61 62 63 64");
    m.setReg("rsi", BigInt(SRC));
    m.setReg("rdi", BigInt(DATA));
    m.setReg("rcx", 4n);
    m.vp.setDebug(slots([0, readWrite(SRC + 1, 1)]));
    expect(m.runCode("f3 a6 f4")).toEqual({ kind: "hwBreakpoint", slot: 0 });
    expect([m.rip, m.reg("rcx")]).toEqual([BigInt(CODE), 2n]);
  });
});

// The guest's own debug state: TF traps (#DB, DR6.BS) after every instruction and after every
// REP iteration; RF; DR6/DR7 as the guest wrote them; the debugger's stepping invisible to it.
describe("guest TF, RF, DR6 and DR7", () => {
  const DB_HANDLER = 0x4000;
  const TRAP_RIPS = 0x190000;
  const TRAP_FLAGS = 0x191000;
  const RF = 0x10000;
  const TF = 0x100;

  /** Vector 1 → a handler counting traps in R15, recording each frame's RIP at R14[R15], RFLAGS at R12[R15], DR6 in R13, then clearing DR6. */
  function installDbCounter(m: TestMachine): void {
    m.installIdt();
    m.load(
      DB_HANDLER,
      "49 ff c7" + //          inc r15
        "48 8b 04 24" + //     mov rax, [rsp]
        "4b 89 04 fe" + //     mov [r14 + r15*8], rax
        "48 8b 44 24 10" + //  mov rax, [rsp + 16]
        "4b 89 04 fc" + //     mov [r12 + r15*8], rax
        "0f 21 f0" + //        mov rax, dr6
        "49 89 c5" + //        mov r13, rax
        "31 c0" + //           xor eax, eax
        "0f 23 f0" + //        mov dr6, rax
        "48 cf", //            iretq
    );
    const h = BigInt(DB_HANDLER);
    m.write64(0x1000 + 16, (h & 0xffffn) | (0x08n << 16n) | (0x8en << 40n) | (((h >> 16n) & 0xffffn) << 48n));
    m.setReg("r14", BigInt(TRAP_RIPS));
    m.setReg("r12", BigInt(TRAP_FLAGS));
  }

  // pushfq; or dword [rsp], 0x100; popfq      (TF on: the first trap comes after the next instruction)
  // rep movsb (RCX = 5); nop
  // pushfq; and dword [rsp], ~0x100; popfq   (TF off: the POPFQ itself still traps)
  // hlt
  const TF_PROGRAM = "9c 81 0c 24 00 01 00 00 9d f3 a4 90 9c 81 24 24 ff fe ff ff 9d f4";

  it("traps after each REP iteration and each instruction while TF is set, with DR6.BS and RF between iterations", () => {
    const m = new TestMachine();
    installDbCounter(m);
    m.setReg("rsi", 0x170000n);
    m.setReg("rdi", BigInt(DATA));
    m.setReg("rcx", 5n);
    expect(m.runCode(TF_PROGRAM, 10_000)).toEqual({ kind: "halted" });
    const n = Number(m.reg("r15"));
    expect(n).toBe(9);
    const rips = Array.from({ length: n }, (_, i) => Number(m.read64(TRAP_RIPS + 8 * (i + 1)) - BigInt(CODE)));
    expect(rips).toEqual([9, 9, 9, 9, 11, 12, 13, 20, 21]);
    const flags = Array.from({ length: n }, (_, i) => Number(m.read64(TRAP_FLAGS + 8 * (i + 1))));
    expect(flags.map((f) => (f & RF) !== 0)).toEqual([true, true, true, true, false, false, false, false, false]);
    // The POPFQ that clears TF still traps (TF was set as it started); its frame shows TF clear.
    expect(flags.map((f) => (f & TF) !== 0)).toEqual([true, true, true, true, true, true, true, true, false]);
    expect(m.reg("r13")).toBe(0xffff4ff0n); // DR6 as the handler read it: BS
    expect(m.reg("rcx")).toBe(0n);
    expect(m.rip).toBe(BigInt(CODE + 22));
    expect(m.rflags & (TF | RF)).toBe(0);
  });

  it("the same program under the debugger's single-step: one stop per instruction or iteration, the handler's included", () => {
    const m = new TestMachine();
    installDbCounter(m);
    m.setReg("rsi", 0x170000n);
    m.setReg("rdi", BigInt(DATA));
    m.setReg("rcx", 5n);
    m.load(CODE, TF_PROGRAM);
    m.vp.invalidateCode(CODE, 22);
    m.rip = BigInt(CODE);
    const out = m.vp.stepBatch(1000, null, null, () => false);
    expect(out.exit).toEqual({ kind: "halted" });
    // 3 + 5 + 1 + 3 + 1 guest steps and 10 handler instructions per trap.
    expect(out.executed).toBe(13 + 9 * 10);
    expect(m.reg("r15")).toBe(9n);
  });

  it("the debugger's single-step alone sets neither DR6.BS nor TF", () => {
    const m = new TestMachine();
    m.vp.setDebug({ singleStep: true, slots: [null, null, null, null] });
    m.load(CODE, "0f 21 f0 9c 5b f4"); // mov rax, dr6; pushfq; pop rbx; hlt
    m.vp.invalidateCode(CODE, 6);
    m.rip = BigInt(CODE);
    for (let i = 0; i < 4; i++) expect(m.vp.run(100)).toEqual({ kind: "singleStep" });
    expect(m.reg("rax")).toBe(0xffff0ff0n);
    expect(Number(m.reg("rbx")) & TF).toBe(0);
  });

  it("DR6, DR7 and DR0 keep what the guest writes; bits 63:32 set in DR6 are #GP", () => {
    const m = new TestMachine();
    m.installIdt();
    m.setReg("rax", 0x4001n);
    m.setReg("rbx", 0x000f0303n);
    // mov dr6, rax; mov dr7, rbx; mov rcx, dr6; mov rdx, dr7; mov dr0, rax; mov rsi, dr0; hlt
    expect(m.runCode("0f 23 f0 0f 23 fb 0f 21 f1 0f 21 fa 0f 23 c0 0f 21 c6 f4")).toEqual({ kind: "halted" });
    expect([m.reg("rcx"), m.reg("rdx"), m.reg("rsi")]).toEqual([0xffff4ff1n, 0x000f0703n, 0x4001n]);
    m.setReg("rax", 1n << 32n);
    m.runCode("0f 23 f0 f4"); // mov dr6, rax
    expect(m.vectors()).toEqual([13]);
  });

  it("RF suppresses an execute breakpoint for one instruction and is cleared when it completes", () => {
    const m = new TestMachine();
    m.vp.setDebug(slots([1, exec(CODE)]));
    m.rflags = RF;
    m.load(CODE, "90 f4");
    m.vp.invalidateCode(CODE, 2);
    m.rip = BigInt(CODE);
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect(m.rflags & RF).toBe(0);
    m.rip = BigInt(CODE);
    m.halted = false;
    expect(m.vp.run(100)).toEqual({ kind: "hwBreakpoint", slot: 1 });
  });

  it("RF is cleared after the first instruction on the fast path too", () => {
    const m = new TestMachine();
    m.rflags = RF;
    expect(m.runCode("90 90 f4")).toEqual({ kind: "halted" });
    expect(m.rflags & RF).toBe(0);
  });
});
