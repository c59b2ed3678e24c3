// External interrupt delivery from the xAPIC on the embedded machine (interrupts.ts, apic.ts):
// priority and EOI, TPR/PPR, the STI and MOV SS interrupt shadows (also across debugger steps),
// HLT woken by the timer (its time jumps), one-shot, periodic and masked timers, self NMIs
// blocked until IRETQ, the global disable, illegal vectors, and what a debugger step does with a
// pending interrupt. Every guest below is real code run by X86Vp.

import * as apic from "../../../../src/emu/x86_64/apic.js";
import type { Cpu } from "../../../../src/emu/x86_64/cpu.js";
import { vpPlatform } from "../../../../src/emu/x86_64/msr.js";
import type { VpPlatform } from "../../../../src/emu/x86_64/msr.js";
import { jitOptions } from "../../../../src/emu/x86_64/jit.js";
import { INT_SHADOW, IDTR, RFLAGS } from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, IDT, PTE_P, PTE_RW, TestMachine } from "./harness.js";

const APIC = 0xfee00000;
const LOG_PTR = 0x120000;
const LOG = 0x120100;
const HANDLER_BASE = 0x110000;
const IF = 0x200;

// Guest code (r12 = the APIC page).
const SVR_ON = "41 c7 84 24 f0 00 00 00 ff 01 00 00"; // mov dword [r12+0xf0], 0x1ff
const ipi = (v: number) => `41 c7 84 24 00 03 00 00 ${hex(v)} 00 04 00`; // ICR: fixed, self shorthand, vector v
const hex = (v: number) => v.toString(16).padStart(2, "0");

/**
 * The handler of vector `v`: appends {vector, RBX, RCX, TSC} (32 bytes) to the log at LOG, then
 * EOI (unless `eoi` is false) and IRETQ.
 */
function handler(v: number, eoi = true): string {
  return (
    "50 52 57 41 53 48 8b 3c 25 00 00 12 00 c6 07 " + hex(v) +
    " 48 89 5f 08 48 89 4f 10 0f 31 89 47 18 89 57 1c 48 83 04 25 00 00 12 00 20 " +
    (eoi ? "41 bb b0 00 e0 fe 41 c7 03 00 00 00 00 " : "") +
    "41 5b 5f 5a 58 48 cf"
  );
}

interface Entry {
  vector: number;
  rbx: bigint;
  rcx: bigint;
  tsc: bigint;
}

class ApicMachine extends TestMachine {
  constructor() {
    super();
    this.map(BigInt(APIC), APIC, "4k", PTE_P | PTE_RW);
    this.setReg("r12", BigInt(APIC));
    this.write64(LOG_PTR, BigInt(LOG));
    this.regs[IDTR + 2] = 256 * 16 - 1;
    this.regs[IDTR] = IDT;
    this.regs[IDTR + 1] = 0;
  }

  /** Vector v goes to a logging handler (an interrupt gate); returns the handler's address. */
  route(v: number, eoi = true): number {
    const h = HANDLER_BASE + v * 0x80;
    this.load(h, handler(v, eoi));
    this.vp.invalidateCode(h, 0x80);
    const lo = BigInt(h & 0xffff) | (0x08n << 16n) | (0x8en << 40n) | (BigInt((h >>> 16) & 0xffff) << 48n);
    this.write64(IDT + 16 * v, lo);
    this.write64(IDT + 16 * v + 8, 0n);
    return h;
  }

  log(): Entry[] {
    const out: Entry[] = [];
    const end = Number(this.read64(LOG_PTR));
    for (let a = LOG; a < end; a += 32) {
      out.push({ vector: this.ram[a], rbx: this.read64(a + 8), rcx: this.read64(a + 16), tsc: this.read64(a + 24) });
    }
    return out;
  }

  vectorsLogged(): number[] {
    return this.log().map((e) => e.vector);
  }

  get platform(): VpPlatform {
    return vpPlatform({ bus: this.bus, vp: this.vpIndex } as unknown as Cpu);
  }

  /** Raise fixed vector v in IRR from outside (as another APIC would). */
  post(v: number): void {
    const a = this.platform.apic;
    apic.acceptFixed(a, v);
    apic.refreshEvent(a);
  }

  /** Load code at CODE without running it. */
  place(code: string): void {
    this.load(CODE, code);
    this.vp.invalidateCode(CODE, code.length);
    this.rip = BigInt(CODE);
    this.halted = false;
  }

  step(n = 1) {
    return this.vp.stepBatch(n, null, null, () => false);
  }
}

describe("xAPIC interrupt delivery: priority, TPR/PPR and EOI", () => {
  it("delivers the highest vector first, the next after each EOI, when IF opens", () => {
    const m = new ApicMachine();
    for (const v of [0x40, 0x41, 0x80]) m.route(v);
    // IF = 0: three requests wait in IRR; sti; nop; nop; cli; hlt
    m.runCode([SVR_ON, ipi(0x40), ipi(0x80), ipi(0x41), "fb 90 90 fa f4"].join(" "));
    expect(m.vectorsLogged()).toEqual([0x80, 0x41, 0x40]);
    expect(m.halted).toBe(true);
    const a = m.platform.apic;
    expect([...a.irr, ...a.isr].every((w) => w === 0)).toBe(true);
  });

  it("TPR holds back a vector of its class or below until lowered; TPR bits 7:4 are CR8", () => {
    const m = new ApicMachine();
    m.route(0x40);
    m.route(0x60);
    m.runCode(
      [
        SVR_ON,
        "41 c7 84 24 80 00 00 00 50 00 00 00", // TPR = 0x50
        "44 0f 20 c1", // mov rcx, cr8
        ipi(0x40),
        ipi(0x60),
        "fb 90 90 fa", // sti; nop; nop; cli
        "bb 07 00 00 00", // mov ebx, 7
        "41 c7 84 24 80 00 00 00 00 00 00 00", // TPR = 0
        "fb 90 fa f4", // sti; nop; cli; hlt
      ].join(" "),
    );
    const log = m.log();
    expect(log.map((e) => e.vector)).toEqual([0x60, 0x40]);
    expect(log[0].rcx).toBe(5n);
    expect(log[0].rbx).toBe(0n);
    expect(log[1].rbx).toBe(7n);
  });

  it("an in-service vector without EOI holds lower classes back (PPR) until the EOI", () => {
    const m = new ApicMachine();
    m.route(0x40);
    m.route(0x80, false);
    m.runCode([SVR_ON, ipi(0x40), ipi(0x80), "fb 90 90 fa f4"].join(" "));
    expect(m.vectorsLogged()).toEqual([0x80]);
    const a = m.platform.apic;
    expect(a.isr[4]).toBe(1); // 0x80
    expect(a.irr[2]).toBe(1); // 0x40
    expect(apic.apicRead({ r: m.regs, bus: m.bus, vp: 0 } as unknown as Cpu, a, 0xa0)).toBe(0x80); // PPR
    // EOI; sti; nop; cli; hlt
    m.runCode("41 c7 84 24 b0 00 00 00 00 00 00 00 fb 90 fa f4");
    expect(m.vectorsLogged()).toEqual([0x80, 0x40]);
  });

  it("vectors 0-15 are illegal: ESR says so and nothing reaches IRR", () => {
    const m = new ApicMachine();
    // ICR fixed self vector 5; eax = ESR; edx = IRR[0]; hlt
    m.runCode([SVR_ON, "41 c7 84 24 00 03 00 00 05 00 04 00 41 8b 84 24 80 02 00 00 41 8b 94 24 00 02 00 00 f4"].join(" "));
    expect(Number(m.reg("rax")) & 0x20).toBe(0x20);
    expect(m.reg("rdx")).toBe(0n);
  });

  it("IA32_APIC_BASE.EN clear: nothing is delivered; set again: the waiting request is", () => {
    const m = new ApicMachine();
    m.route(0x40);
    // rdmsr 0x1b; EN off; sti; nop; nop; cli; mov ebx, 7; EN on; sti; nop; cli; hlt
    m.runCode([SVR_ON, ipi(0x40), "b9 1b 00 00 00 0f 32 25 ff f7 ff ff 0f 30 fb 90 90 fa bb 07 00 00 00 0d 00 08 00 00 0f 30 fb 90 fa f4"].join(" "));
    const log = m.log();
    expect(log.map((e) => e.vector)).toEqual([0x40]);
    expect(log[0].rbx).toBe(7n);
  });

  it("a software-disabled APIC (SVR bit 8 clear) keeps the LVT entries masked", () => {
    const m = new ApicMachine();
    // SVR = 0xff; LVT timer = 0x50; eax = LVT timer; hlt
    m.runCode("41 c7 84 24 f0 00 00 00 ff 00 00 00 41 c7 84 24 20 03 00 00 50 00 00 00 41 8b 84 24 20 03 00 00 f4");
    expect(Number(m.reg("rax"))).toBe(0x10050);
  });
});

describe("interrupt shadows", () => {
  it("STI that sets IF holds a pending interrupt for one more instruction", () => {
    const m = new ApicMachine();
    m.route(0x40);
    // xor ebx, ebx; xor ecx, ecx; sti; mov ebx, 1; mov ecx, 2; cli; hlt
    m.runCode([SVR_ON, ipi(0x40), "31 db 31 c9 fb bb 01 00 00 00 b9 02 00 00 00 fa f4"].join(" "));
    const log = m.log();
    expect(log.map((e) => e.vector)).toEqual([0x40]);
    expect([log[0].rbx, log[0].rcx]).toEqual([1n, 0n]);
  });

  it("the STI shadow is VP state (word 93): single steps see it and keep it across stops", () => {
    const m = new ApicMachine();
    const h = m.route(0x40);
    m.runCode([SVR_ON, ipi(0x40), "f4"].join(" "));
    expect(m.vectorsLogged()).toEqual([]);
    m.place("fb bb 01 00 00 00 b9 02 00 00 00 f4"); // sti; mov ebx, 1; mov ecx, 2; hlt
    expect(m.step().executed).toBe(1);
    expect(m.word(INT_SHADOW)).toBe(1);
    expect(m.rip).toBe(BigInt(CODE + 1));
    expect(m.step().executed).toBe(1); // mov ebx, 1: in the shadow
    expect(m.word(INT_SHADOW)).toBe(0);
    expect(m.reg("rbx")).toBe(1n);
    expect(m.rip).toBe(BigInt(CODE + 6));
    // The next step delivers the interrupt: it ends at the handler's first instruction.
    expect(m.step().executed).toBe(1);
    expect(m.rip).toBe(BigInt(h));
    expect(m.reg("rcx")).toBe(0n);
    expect(m.vectorsLogged()).toEqual([]);
  });

  it("MOV SS holds an interrupt that arrives right after it for one instruction", () => {
    const m = new ApicMachine();
    const h = m.route(0x40);
    m.runCode([SVR_ON, "f4"].join(" "));
    m.place("66 8c d0 8e d0 bb 01 00 00 00 b9 02 00 00 00 f4"); // mov ax, ss; mov ss, ax; mov ebx, 1; mov ecx, 2; hlt
    m.rflags = m.rflags | IF;
    m.step(2);
    expect(m.word(INT_SHADOW)).toBe(1);
    m.post(0x40);
    m.step(); // mov ebx, 1 runs in the shadow
    expect(m.reg("rbx")).toBe(1n);
    expect(m.rip).toBe(BigInt(CODE + 10));
    m.step();
    expect(m.rip).toBe(BigInt(h));
    expect(m.reg("rcx")).toBe(0n);
  });
});

describe("single-step and pending interrupts", () => {
  it("a debugger single-step with an interrupt pending delivers it and stops at the handler", () => {
    const m = new ApicMachine();
    const h = m.route(0x40);
    m.place("90 90 f4");
    m.rflags = m.rflags | IF;
    m.post(0x40);
    m.vp.setDebug({ singleStep: true, slots: [null, null, null, null] });
    expect(m.vp.run(100)).toEqual({ kind: "singleStep" });
    expect(m.rip).toBe(BigInt(h));
    // The pushed frame returns to the instruction that had not run yet.
    expect(m.read64(Number(m.reg("rsp")))).toBe(BigInt(CODE));
    expect(m.rflags & IF).toBe(0);
    m.vp.setDebug({ singleStep: false, slots: [null, null, null, null] });
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect(m.vectorsLogged()).toEqual([0x40]);
  });

  it("single-stepping a VP halted with IF set: the step wakes it into the handler", () => {
    const m = new ApicMachine();
    const h = m.route(0x40);
    m.place("f4 90 f4"); // hlt; nop; hlt
    m.rflags = m.rflags | IF;
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    m.vp.setDebug({ singleStep: true, slots: [null, null, null, null] });
    expect(m.vp.run(100)).toEqual({ kind: "halted" }); // nothing to wake it
    m.post(0x40);
    expect(m.vp.run(100)).toEqual({ kind: "singleStep" });
    expect(m.rip).toBe(BigInt(h));
    expect(m.halted).toBe(false);
    expect(m.read64(Number(m.reg("rsp")))).toBe(BigInt(CODE + 1)); // returns after the HLT
    // A batched step does the same.
    m.vp.setDebug({ singleStep: false, slots: [null, null, null, null] });
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect(m.rip).toBe(BigInt(CODE + 3));
    m.post(0x40);
    const out = m.step(1);
    expect(out.executed).toBe(1);
    expect(m.rip).toBe(BigInt(h));
  });
});

describe("breakpoints and pending interrupts", () => {
  for (const watch of [false, true]) {
    it(`resuming from a software breakpoint runs that instruction before a pending interrupt, which does not stop there again (${watch ? "per-instruction loop" : "fast loop"})`, () => {
      const m = new ApicMachine();
      m.route(0x40);
      // mov eax, 1; mov ebx, 2; mov ecx, 3; hlt
      m.place("b8 01 00 00 00 bb 02 00 00 00 b9 03 00 00 00 f4");
      m.rflags = m.rflags | IF;
      if (watch) m.vp.setDebug({ singleStep: false, slots: [null, null, null, { addressLo: 0x1ff000, addressHi: 0, type: 2, length: 8 }] });
      m.sw.add({ id: 9, kind: "gva", lo: CODE + 5, hi: 0, vp: -1, gpa: 0, oneShot: false });
      expect(m.vp.run(100)).toEqual({ kind: "swBreakpoint", id: 9 });
      expect(m.rip).toBe(BigInt(CODE + 5));
      m.post(0x40);
      expect(m.vp.run(100)).toEqual({ kind: "halted" });
      const log = m.log();
      expect(log.map((e) => e.vector)).toEqual([0x40]);
      // The interrupt came after the instruction the breakpoint stopped before.
      expect(log[0].rbx).toBe(2n);
      expect(m.reg("rcx")).toBe(3n);
    });
  }
});

describe("HLT and the timer", () => {
  it("HLT with IF set wakes at the timer's expiry: time jumps, RIP goes on after the HLT", () => {
    const m = new ApicMachine();
    m.route(0x50);
    const tscBefore = BigInt(m.vp.retired);
    // divide 1; LVT timer 0x50 one-shot; r13d = TSC; initial 100000; sti; hlt; mov ebx, 1; cli; hlt
    const x = m.runCode(
      [SVR_ON, "41 c7 84 24 e0 03 00 00 0b 00 00 00 41 c7 84 24 20 03 00 00 50 00 00 00 0f 31 41 89 c5 41 c7 84 24 80 03 00 00 a0 86 01 00 fb f4 bb 01 00 00 00 fa f4"].join(" "),
      1000,
    );
    expect(x).toEqual({ kind: "halted" });
    expect(m.vp.retired).toBeLessThan(100); // nothing spun through the wait
    const log = m.log();
    expect(log.map((e) => e.vector)).toEqual([0x50]);
    const start = BigInt(Number(m.reg("r13")));
    expect(log[0].tsc - start).toBeGreaterThanOrEqual(100000n);
    expect(log[0].tsc - start).toBeLessThan(100100n);
    expect(tscBefore).toBe(0n);
    expect(m.reg("rbx")).toBe(1n);
    expect(m.halted).toBe(true);
  });

  it("HLT with IF clear stays halted although the timer fires", () => {
    const m = new ApicMachine();
    m.route(0x50);
    // divide 1; LVT 0x50; initial 100; cli; hlt
    expect(m.runCode([SVR_ON, "41 c7 84 24 e0 03 00 00 0b 00 00 00 41 c7 84 24 20 03 00 00 50 00 00 00 41 c7 84 24 80 03 00 00 64 00 00 00 fa f4"].join(" "))).toEqual({ kind: "halted" });
    expect(m.vp.run(1000)).toEqual({ kind: "halted" });
    expect(m.vectorsLogged()).toEqual([]);
    expect(m.halted).toBe(true);
  });

  it("a periodic timer interrupts a compiled loop that waits on itself, once per period", () => {
    const saved = jitOptions.threshold;
    jitOptions.threshold = 2;
    try {
      const m = new ApicMachine();
      m.route(0x50);
      // divide 1; LVT 0x50 periodic; initial 2000; sti; l: cmp qword [LOG_PTR], LOG + 3 * 32; jb l; cli; hlt
      const x = m.runCode(
        [SVR_ON, "41 c7 84 24 e0 03 00 00 0b 00 00 00 41 c7 84 24 20 03 00 00 50 00 02 00 41 c7 84 24 80 03 00 00 d0 07 00 00 fb 48 81 3c 25 00 00 12 00 60 01 12 00 72 f2 fa f4"].join(" "),
        100_000,
      );
      expect(x).toEqual({ kind: "halted" });
      const log = m.log();
      expect(log.map((e) => e.vector)).toEqual([0x50, 0x50, 0x50]);
      for (let i = 1; i < 3; i++) {
        const d = Number(log[i].tsc - log[i - 1].tsc);
        expect(d).toBeGreaterThanOrEqual(2000 - 64);
        expect(d).toBeLessThanOrEqual(2000 + 64);
      }
    } finally {
      jitOptions.threshold = saved;
    }
  });

  it("a masked LVT timer counts to 0 but raises nothing", () => {
    const m = new ApicMachine();
    m.route(0x50);
    // divide 1; LVT 0x10050; initial 500; sti; 1000 x dec/jnz; cli; eax = current; edx = IRR[2]; hlt
    m.runCode(
      [SVR_ON, "41 c7 84 24 e0 03 00 00 0b 00 00 00 41 c7 84 24 20 03 00 00 50 00 01 00 41 c7 84 24 80 03 00 00 f4 01 00 00 fb b9 e8 03 00 00 ff c9 75 fc fa 41 8b 84 24 90 03 00 00 41 8b 94 24 20 02 00 00 f4"].join(" "),
      10_000,
    );
    expect(m.reg("rax")).toBe(0n);
    expect(m.reg("rdx")).toBe(0n);
    expect(m.vectorsLogged()).toEqual([]);
  });

  it("divide by 2: the current count falls one per two instructions", () => {
    const m = new ApicMachine();
    // divide 2; initial 10000; 1000 x dec/jnz; eax = current; hlt
    m.runCode("41 c7 84 24 e0 03 00 00 00 00 00 00 41 c7 84 24 80 03 00 00 10 27 00 00 b9 e8 03 00 00 ff c9 75 fc 41 8b 84 24 90 03 00 00 f4", 10_000);
    const cur = Number(m.reg("rax"));
    expect(cur).toBeGreaterThan(10000 - 1010);
    expect(cur).toBeLessThan(10000 - 990);
  });
});

describe("NMI to self", () => {
  it("is delivered with IF clear, and a second one waits for the handler's IRETQ", () => {
    const m = new ApicMachine();
    const h = m.route(2);
    m.place([SVR_ON, "41 c7 84 24 10 03 00 00 00 00 00 00 41 c7 84 24 00 03 00 00 00 04 00 00 90 90 bb 01 00 00 00 f4"].join(" "));
    expect(m.rflags & IF).toBe(0);
    m.step(3); // SVR, ICR high, ICR low (NMI to APIC ID 0)
    m.step(); // the NMI
    expect(m.rip).toBe(BigInt(h));
    expect(m.regs[RFLAGS] & IF).toBe(0);
    // Another NMI while the first is in service: blocked until IRETQ.
    m.platform.apic.nmiPending = true;
    apic.refreshEvent(m.platform.apic);
    expect(m.vp.run(1000)).toEqual({ kind: "halted" });
    const log = m.log();
    expect(log.map((e) => e.vector)).toEqual([2, 2]);
    expect(m.reg("rbx")).toBe(1n);
  });
});
