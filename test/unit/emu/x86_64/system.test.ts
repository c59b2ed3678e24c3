// System instructions: port I/O and machine requests, HLT, CPUID, MSRs, SWAPGS, descriptor-table
// registers, control registers, RDTSC, segment loads and far transfers, and the boot state.
import { X86Vp, x86BootState } from "../../../../src/emu/x86_64/index.js";
import {
  CR0, CR3, CR4, EFER, GDTR, GP, HALTED, IDTR, RFLAGS, RIP, SEG_ATTRIBUTES, SEG_BASE, SEG_LIMIT, SEG_SELECTOR, SREG_CS, SREG_DS,
  SREG_FS, SREG_GS, SREG_SS, VP_WORDS, segWord,
} from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, STACK_TOP, TestBus, TestMachine } from "./harness.js";

const DATA = 0x180000;

describe("port I/O", () => {
  it("writes bytes, words and dwords through imm8 and DX ports", () => {
    const m = new TestMachine();
    // mov al, 'A'; out 0xe9, al; mov dx, 0x3f8; mov ax, 0x1234; out dx, ax; mov eax, 0xdeadbeef; out dx, eax; hlt
    m.runCode("b0 41 e6 e9 66 ba f8 03 66 b8 34 12 66 ef b8 ef be ad de ef f4");
    expect(m.bus.outs).toEqual([
      { port: 0xe9, size: 1, value: 0x41 },
      { port: 0x3f8, size: 2, value: 0x1234 },
      { port: 0x3f8, size: 4, value: 0xdeadbeef },
    ]);
  });

  it("reads into AL, AX and EAX (EAX clears bits 63:32)", () => {
    const m = new TestMachine();
    m.bus.inValues.set(0x60, 0x5a);
    m.bus.inValues.set(0x71, 0x8765_4321);
    m.setReg("rax", 0xffff_ffff_ffff_ffffn);
    m.runCode("e4 60 66 ba 71 00 66 ed 89 c3 ed f4"); // in al, 0x60; mov dx, 0x71; in ax, dx; mov ebx, eax; in eax, dx; hlt
    expect(m.bus.ins).toEqual([{ port: 0x60, size: 1 }, { port: 0x71, size: 2 }, { port: 0x71, size: 4 }]);
    expect(m.reg("rbx")).toBe(0xffff_4321n);
    expect(m.reg("rax")).toBe(0x8765_4321n);
  });

  it("finishes the OUT and returns the reset a device asked for", () => {
    const m = new TestMachine();
    m.bus.requests.set(0xcf9, "reset");
    expect(m.runCode("b0 06 66 ba f9 0c ee bb 01 00 00 00 f4")).toEqual({ kind: "reset" }); // mov al, 6; mov dx, 0xcf9; out dx, al; mov ebx, 1; hlt
    expect(m.rip).toBe(BigInt(CODE + 7));
    expect(m.reg("rbx")).toBe(0n);
    expect(m.vp.retired).toBe(3);
  });

  it("returns the power-off a device asked for", () => {
    const m = new TestMachine();
    m.bus.requests.set(0xcf9, "powerOff");
    expect(m.runCode("b0 06 66 ba f9 0c ee bb 01 00 00 00 f4")).toEqual({ kind: "powerOff" });
  });

  it("returns a power-off requested while single-stepping", () => {
    const m = new TestMachine();
    m.bus.requests.set(0xe9, "powerOff");
    m.vp.setDebug({ singleStep: true, slots: [null, null, null, null] });
    m.load(CODE, "b0 41 e6 e9 f4"); // mov al, 'A'; out 0xe9, al; hlt
    m.rip = BigInt(CODE);
    expect(m.vp.run(10)).toEqual({ kind: "singleStep" });
    expect(m.vp.run(10)).toEqual({ kind: "powerOff" });
  });
});

describe("HLT", () => {
  it("halts with RIP after the HLT and stays halted until the word is cleared", () => {
    const m = new TestMachine();
    expect(m.runCode("f4 b8 01 00 00 00 f4")).toEqual({ kind: "halted" }); // hlt; mov eax, 1; hlt
    expect(m.rip).toBe(BigInt(CODE + 1));
    expect(m.word(HALTED)).toBe(1);
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    m.halted = false;
    expect(m.vp.run(100)).toEqual({ kind: "halted" });
    expect(m.reg("rax")).toBe(1n);
  });
});

describe("CPUID, MSRs, SWAPGS", () => {
  const text = (...words: bigint[]) => Buffer.from(new Uint32Array(words.map(Number)).buffer).toString("latin1");

  it("names the vendor in EBX, EDX, ECX", () => {
    const m = new TestMachine();
    m.runCode("31 c0 0f a2 f4"); // xor eax, eax; cpuid; hlt
    expect(text(m.reg("rbx"), m.reg("rdx"), m.reg("rcx"))).toBe("VmmDebugEmu ");
    expect(m.reg("rax")).toBeGreaterThanOrEqual(1n);
  });

  it("reports long mode, NX and 1 GiB pages in leaf 0x80000001", () => {
    const m = new TestMachine();
    m.runCode("b8 01 00 00 80 0f a2 f4"); // mov eax, 0x80000001; cpuid; hlt
    const edx = m.reg("rdx");
    expect([(edx >> 29n) & 1n, (edx >> 20n) & 1n, (edx >> 26n) & 1n]).toEqual([1n, 1n, 1n]);
  });

  it("reads EFER", () => {
    const m = new TestMachine();
    m.runCode("b9 80 00 00 c0 0f 32 f4"); // mov ecx, 0xc0000080; rdmsr; hlt
    expect([m.reg("rax"), m.reg("rdx")]).toEqual([0xd00n, 0n]);
  });

  it("writes FS_BASE and KERNEL_GS_BASE, and SWAPGS exchanges GS's base", () => {
    const m = new TestMachine();
    m.write64(0x2010, 0x77n);
    // wrmsr FS_BASE = 0xffff8000_00001000; wrmsr KERNEL_GS_BASE = 0x2000; swapgs; mov rax, gs:[0x10]; hlt
    m.runCode("b9 00 01 00 c0 b8 00 10 00 00 ba 00 80 ff ff 0f 30 b9 02 01 00 c0 b8 00 20 00 00 31 d2 0f 30 0f 01 f8 65 48 8b 04 25 10 00 00 00 f4");
    expect(m.segBase(SREG_FS)).toBe(0xffff_8000_0000_1000n);
    expect(m.segBase(SREG_GS)).toBe(0x2000n);
    expect(m.reg("rax")).toBe(0x77n);
  });

  it("raises #GP for an MSR it does not implement", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("b9 78 56 34 12 0f 32 f4"); // mov ecx, 0x12345678; rdmsr; hlt
    expect(m.vectors()).toEqual([13]);
  });

  it("raises #GP for an EFER write that would leave long mode", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("b9 80 00 00 c0 31 c0 31 d2 0f 30 f4"); // mov ecx, 0xc0000080; xor eax, eax; xor edx, edx; wrmsr; hlt
    expect(m.vectors()).toEqual([13]);
    expect(m.efer).toBe(0xd00n);
  });
});

describe("descriptor tables and control registers", () => {
  it("loads and stores GDTR and IDTR", () => {
    const m = new TestMachine();
    m.load(DATA, "27 00 00 05 00 00 00 00 00 00");
    m.load(DATA + 32, "ff 01 00 10 00 00 00 80 ff ff");
    m.setReg("rbx", BigInt(DATA));
    m.runCode("0f 01 13 0f 01 43 10 0f 01 5b 20 0f 01 4b 30 f4"); // lgdt [rbx]; sgdt [rbx+16]; lidt [rbx+32]; sidt [rbx+48]; hlt
    expect([m.word(GDTR), m.word(GDTR + 1), m.word(GDTR + 2)]).toEqual([0x500, 0, 0x27]);
    expect([m.word(IDTR), m.word(IDTR + 1), m.word(IDTR + 2)]).toEqual([0x1000, 0xffff8000, 0x1ff]);
    expect(Buffer.from(m.ram.subarray(DATA + 16, DATA + 26)).toString("hex")).toBe("27000005000000000000");
    expect(Buffer.from(m.ram.subarray(DATA + 48, DATA + 58)).toString("hex")).toBe("ff01001000000080ffff");
  });

  it("reads CR0, CR3, CR4 and CR8", () => {
    const m = new TestMachine();
    m.runCode("0f 20 e0 0f 20 db 44 0f 20 c1 0f 20 c2 f4"); // mov rax, cr4; mov rbx, cr3; mov rcx, cr8; mov rdx, cr0; hlt
    expect([m.reg("rax"), m.reg("rbx"), m.reg("rcx"), m.reg("rdx")]).toEqual([0x20n, 0x10000n, 0n, 0x8001_0033n]);
  });

  it("writes CR8 (the task priority)", () => {
    const m = new TestMachine();
    m.runCode("b8 05 00 00 00 44 0f 22 c0 44 0f 20 c3 f4"); // mov eax, 5; mov cr8, rax; mov rbx, cr8; hlt
    expect(m.reg("rbx")).toBe(5n);
  });

  it("raises #GP when the guest clears CR0.PG (long mode only)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("0f 20 c0 48 0f ba f0 1f 0f 22 c0 f4"); // mov rax, cr0; btr rax, 31; mov cr0, rax; hlt
    expect(m.vectors()).toEqual([13]);
    expect(m.cr0).toBe(0x8001_0033n);
  });

  it("reloads CR3 with the same value", () => {
    const m = new TestMachine();
    expect(m.runCode("0f 20 d8 0f 22 d8 f4")).toEqual({ kind: "halted" }); // mov rax, cr3; mov cr3, rax; hlt
    expect(m.cr3).toBe(0x10000n);
  });

  it("reads the debug registers' reset values and ignores writes", () => {
    const m = new TestMachine();
    m.runCode("0f 21 f8 0f 23 c0 f4"); // mov rax, dr7; mov dr0, rax; hlt
    expect(m.reg("rax")).toBe(0x400n);
  });

  it("clears CR0.TS with CLTS", () => {
    const m = new TestMachine();
    m.regs[CR0] |= 8;
    m.runCode("0f 06 f4"); // clts; hlt
    expect(m.cr0 & 8n).toBe(0n);
  });
});

describe("RDTSC", () => {
  it("reads the number of instructions retired before it", () => {
    const m = new TestMachine();
    m.runCode("90 90 0f 31 f4"); // nop; nop; rdtsc; hlt
    expect([m.reg("rax"), m.reg("rdx")]).toEqual([2n, 0n]);
  });
});

describe("segments and far transfers", () => {
  it("loads data segments from the GDT and a null selector into GS", () => {
    const m = new TestMachine();
    m.write64(0x500 + 16, 0x00cf_9300_0000_ffffn | (0x12n << 16n) | (0x34n << 56n)); // base 0x34000012
    // mov eax, 0x10; mov ds, ax; mov es, ax; mov fs, ax; xor ecx, ecx; mov gs, cx; hlt
    m.runCode("b8 10 00 00 00 8e d8 8e c0 8e e0 31 c9 8e e9 f4");
    expect(m.segBase(SREG_FS)).toBe(0x3400_0012n);
    expect(m.word(segWord(SREG_DS, SEG_ATTRIBUTES))).toBe(0xc093);
    expect(m.word(segWord(SREG_DS, SEG_LIMIT))).toBe(0xffff_ffff);
    expect(m.selector(SREG_GS)).toBe(0);
  });

  it("raises #NP with the selector for a segment that is not present", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("b8 20 00 00 00 8e d8 f4"); // mov eax, 0x20; mov ds, ax; hlt
    expect(m.vectors()).toEqual([11]);
    expect(m.read64(STACK_TOP - 48)).toBe(0x20n);
  });

  it("moves selectors to and from memory and registers", () => {
    const m = new TestMachine();
    m.load(DATA, "10 00");
    m.setReg("rbx", BigInt(DATA));
    m.runCode("8e 1b 66 8c d8 8c 53 02 f4"); // mov ds, [rbx]; mov ax, ds; mov [rbx+2], ss; hlt
    expect(m.reg("rax") & 0xffffn).toBe(0x10n);
    expect(m.ram[DATA + 2]).toBe(0x10);
  });

  it("jumps far through memory to a 64-bit code segment", () => {
    const m = new TestMachine();
    m.write64(DATA, BigInt(CODE + 0x100));
    m.load(DATA + 8, "08 00");
    m.load(CODE + 0x100, "f4");
    m.setReg("rbx", BigInt(DATA));
    expect(m.runCode("48 ff 2b")).toEqual({ kind: "halted" }); // rex.w jmp fword ptr [rbx]  (m16:64)
    expect(m.rip).toBe(BigInt(CODE + 0x101));
    expect(m.selector(SREG_CS)).toBe(8);
  });

  it("refuses a far jump to a 32-bit code segment with #GP(selector)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.write64(DATA, BigInt(CODE + 0x100));
    m.load(DATA + 8, "18 00");
    m.setReg("rbx", BigInt(DATA));
    m.runCode("48 ff 2b");
    expect(m.vectors()).toEqual([13]);
    expect(m.read64(STACK_TOP - 48)).toBe(0x18n);
  });

  it("returns far with RETFQ", () => {
    const m = new TestMachine();
    expect(m.runCode("6a 08 48 8d 05 03 00 00 00 50 48 cb f4")).toEqual({ kind: "halted" }); // push 8; lea rax, [rip+t]; push rax; retfq; t: hlt
    expect(m.reg("rsp")).toBe(BigInt(STACK_TOP));
    expect(m.rip).toBe(BigInt(CODE + 13));
  });

  it("IRETQ pops RIP, CS, RFLAGS, RSP and SS", () => {
    const m = new TestMachine();
    m.rflags = 0x1; // CF, pushed by PUSHFQ and restored by IRETQ
    // push 0x10; push 0x1ff000; pushfq; push 8; lea rax, [rip+back]; push rax; iretq; back: hlt
    expect(m.runCode("6a 10 68 00 f0 1f 00 9c 6a 08 48 8d 05 03 00 00 00 50 48 cf f4")).toEqual({ kind: "halted" });
    expect(m.reg("rsp")).toBe(0x1f_f000n);
    expect(m.rflags & 1).toBe(1);
    expect(m.selector(SREG_SS)).toBe(0x10);
  });
});

describe("boot state", () => {
  it("starts in 64-bit long mode at the entry with RDI = VP index and no IDT", () => {
    const regs = new Uint32Array(new SharedArrayBuffer(VP_WORDS * 4 * 2));
    regs.fill(0xaaaa_aaaa);
    x86BootState(regs, 1, 0x8000_1000, 0xffff_ffff, 0x20_0000);
    const w = (i: number) => regs[VP_WORDS + i];
    expect([w(RIP), w(RIP + 1)]).toEqual([0x8000_1000, 0xffff_ffff]);
    expect([w(GP + 14), w(GP + 15), w(GP), w(GP + 30)]).toEqual([1, 0, 0, 0]);
    expect([w(CR0), w(CR4), w(EFER), w(CR3), w(CR3 + 1)]).toEqual([0x8001_0033, 0x20, 0xd00, 0x20_0000, 0]);
    expect(w(RFLAGS)).toBe(2);
    expect([w(segWord(SREG_CS, SEG_SELECTOR)), w(segWord(SREG_CS, SEG_ATTRIBUTES)), w(segWord(SREG_CS, SEG_LIMIT))]).toEqual([8, 0xa09b, 0xffff_ffff]);
    expect([w(segWord(SREG_SS, SEG_SELECTOR)), w(segWord(SREG_SS, SEG_ATTRIBUTES)), w(segWord(SREG_SS, SEG_BASE))]).toEqual([0x10, 0xc093, 0]);
    expect([w(IDTR), w(IDTR + 1), w(IDTR + 2)]).toEqual([0, 0, 0]);
    expect(w(HALTED)).toBe(0);
    // GDTR stays as the caller wrote it, and VP 0's words are untouched.
    expect(w(GDTR)).toBe(0xaaaa_aaaa);
    expect(regs[RIP]).toBe(0xaaaa_aaaa);
  });

  it("runs VP 1 from its own words in a shared register file", () => {
    const m = new TestMachine({ vpIndex: 1 });
    expect(m.runCode("48 89 f8 f4")).toEqual({ kind: "halted" }); // mov rax, rdi; hlt
    expect(m.reg("rax")).toBe(1n);
    expect(m.regs[RIP]).toBe(0);
  });

  it("rejects a VP index outside the register file", () => {
    const regs = new Uint32Array(new SharedArrayBuffer(VP_WORDS * 4));
    expect(() => new X86Vp(regs, 1, new TestBus(new Uint8Array(4096)))).toThrow(RangeError);
  });
});
