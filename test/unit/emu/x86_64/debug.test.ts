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
