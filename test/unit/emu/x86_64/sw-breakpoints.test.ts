// Software breakpoints at instruction fetch: they stop before the instruction (by linear address,
// one VP's or every VP's, or by physical address) in the fast loop, the debug loop and batched
// steps, never patch memory, and do not fire again where the VP stopped.
import type { SwBreakpointSpec, X86VpDebug } from "../../../../src/emu/x86_64/index.js";
import { CODE, HANDLERS, TestMachine } from "./harness.js";

const gvaAt = (id: number, address: number, vp = -1, oneShot = false): SwBreakpointSpec => ({
  id,
  kind: "gva",
  lo: address | 0,
  hi: 0,
  vp,
  gpa: 0,
  oneShot,
});
const gpaAt = (id: number, gpa: number): SwBreakpointSpec => ({ id, kind: "gpa", lo: 0, hi: 0, vp: -1, gpa, oneShot: false });

// mov eax, 1; mov ebx, 2; mov ecx, 3; hlt (one block of four instructions)
const THREE_MOVES = "b8 01 00 00 00 bb 02 00 00 00 b9 03 00 00 00 f4";
const SINGLE_STEP: X86VpDebug = { singleStep: true, slots: [null, null, null, null] };

describe("software breakpoints in the interpreter", () => {
  it("stop before the instruction in the middle of a block, with RIP on it, the instructions before it retired", () => {
    const m = new TestMachine();
    m.sw.add(gvaAt(7, CODE + 5));
    expect(m.runCode(THREE_MOVES)).toEqual({ kind: "swBreakpoint", id: 7 });
    expect(m.rip).toBe(BigInt(CODE + 5));
    expect([m.reg("rax"), m.reg("rbx")]).toEqual([1n, 0n]);
    expect(m.vp.retired).toBe(1);
  });

  it("stop at the first instruction of a run, and not again on the next run (the VP steps off it)", () => {
    const m = new TestMachine();
    m.sw.add(gvaAt(1, CODE));
    expect(m.runCode(THREE_MOVES)).toEqual({ kind: "swBreakpoint", id: 1 });
    expect(m.vp.retired).toBe(0);
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect(m.reg("rcx")).toBe(3n);
  });

  it("fire on every pass through a loop, and a one-shot one only once", () => {
    const m = new TestMachine();
    m.sw.add(gvaAt(3, CODE + 5));
    m.sw.add(gvaAt(4, CODE + 7, -1, true));
    m.load(CODE, "b9 03 00 00 00 ff c0 e2 fc f4"); // mov ecx, 3; top: inc eax; loop top; hlt
    m.rip = BigInt(CODE);
    const hits: string[] = [];
    for (let i = 0; i < 10; i++) {
      const x = m.vp.run(100);
      if (x.kind !== "swBreakpoint") break;
      hits.push(`${x.id}@${Number(m.reg("rax"))}`);
    }
    expect(hits).toEqual(["3@0", "4@1", "3@1", "3@2"]);
    expect(m.halted).toBe(true);
    expect(m.sw.count).toBe(1);
  });

  it("match by physical address whatever the virtual address, and one VP's only on that VP", () => {
    const m = new TestMachine();
    m.map(0x4000_0000n, 0, "2m", 1n); // a second virtual view of the low 2 MiB, code included
    m.sw.add(gpaAt(9, CODE + 10));
    m.load(CODE, THREE_MOVES);
    m.rip = 0x4000_0000n + BigInt(CODE);
    expect(m.vp.run(100)).toEqual({ kind: "swBreakpoint", id: 9 });
    expect(m.rip).toBe(0x4000_0000n + BigInt(CODE + 10));

    const other = new TestMachine({ vpIndex: 1 });
    other.sw.add(gvaAt(2, CODE + 5, 0)); // VP 0 only
    expect(other.runCode(THREE_MOVES)).toEqual({ kind: "halted" });
    const own = new TestMachine({ vpIndex: 1 });
    own.sw.add(gvaAt(2, CODE + 5, 1));
    expect(own.runCode(THREE_MOVES)).toEqual({ kind: "swBreakpoint", id: 2 });
  });

  it("names the VP's own breakpoint first when several match one fetch", () => {
    const m = new TestMachine();
    m.sw.add(gpaAt(1, CODE + 5));
    m.sw.add(gvaAt(2, CODE + 5));
    m.sw.add(gvaAt(3, CODE + 5, 0));
    expect(m.runCode(THREE_MOVES)).toEqual({ kind: "swBreakpoint", id: 3 });
    m.sw.remove(3);
    expect(m.runCode(THREE_MOVES)).toEqual({ kind: "swBreakpoint", id: 2 });
    m.sw.remove(2);
    expect(m.runCode(THREE_MOVES)).toEqual({ kind: "swBreakpoint", id: 1 });
  });

  it("take effect on code decoded before they were armed, and stop when removed", () => {
    const m = new TestMachine();
    expect(m.runCode(THREE_MOVES)).toEqual({ kind: "halted" }); // the block is cached now
    m.sw.add(gvaAt(5, CODE + 10));
    m.rip = BigInt(CODE);
    m.halted = false;
    expect(m.vp.run(100)).toEqual({ kind: "swBreakpoint", id: 5 });
    m.sw.remove(5);
    m.rip = BigInt(CODE);
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
  });

  it("leave memory alone, and a guest INT3 still goes to the guest's #BP handler", () => {
    const m = new TestMachine();
    m.installIdt();
    m.sw.add(gvaAt(1, CODE + 1));
    expect(m.runCode("90 cc f4")).toEqual({ kind: "swBreakpoint", id: 1 }); // nop; int3; hlt
    expect(m.ram[CODE + 1]).toBe(0xcc);
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect(m.vectors()).toEqual([3]);
    expect(m.rip).toBe(BigInt(HANDLERS + 16 * 3 + 5));
  });

  it("stop the debug loop before the instruction, and single-stepping off it does not fire it again", () => {
    const m = new TestMachine();
    m.vp.setDebug(SINGLE_STEP);
    m.sw.add(gvaAt(1, CODE + 5));
    m.load(CODE, THREE_MOVES);
    m.rip = BigInt(CODE);
    expect(m.vp.run(100)).toEqual({ kind: "singleStep" });
    expect(m.vp.run(100)).toEqual({ kind: "swBreakpoint", id: 1 });
    expect(m.rip).toBe(BigInt(CODE + 5));
    expect(m.vp.run(100)).toEqual({ kind: "singleStep" });
    expect(m.rip).toBe(BigInt(CODE + 10));
  });

  it("end a batched step before the instruction, but never at the batch's first", () => {
    const m = new TestMachine();
    m.sw.add(gvaAt(1, CODE));
    m.sw.add(gvaAt(2, CODE + 10));
    m.load(CODE, THREE_MOVES);
    m.rip = BigInt(CODE);
    const out = m.vp.stepBatch(100, null, null, () => false);
    expect(out).toEqual({ executed: 2, exit: { kind: "swBreakpoint", id: 2 }, requested: false });
    expect(m.rip).toBe(BigInt(CODE + 10));
    // Resuming from there runs the instruction it stopped before.
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
  });

  it("leave a fetch that faults to the guest (no stop at an unmapped address)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.sw.add(gvaAt(1, 0x7000_0000));
    m.load(CODE, "ff e0"); // jmp rax
    m.setReg("rax", 0x7000_0000n);
    m.rip = BigInt(CODE);
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect(m.vectors()).toEqual([14]);
  });
});
