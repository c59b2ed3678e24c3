// The platform pieces kvm-unit-tests expects of the embedded machine: the COM1 16550 UART,
// isa-debug-exit, pc-testdev (port and memory window), the MSR file, the xAPIC page and its
// timer, LTR/STR, SMSW/LMSW.
import type { GuestBus } from "../../../../src/emu/bus.js";
import { PortDevices, TESTDEV_IOMEM_GPA } from "../../../../src/emu/devices.js";
import { CR0, GDTR } from "../../../../src/emu/x86_64/vp-layout.js";
import { PTE_P, PTE_RW, TestMachine } from "./harness.js";

function devices() {
  const lines: [string, string][] = [];
  const d = new PortDevices({ consoleLine: (line, source) => lines.push([source, line]) }, () => 0);
  return { d, lines };
}

describe("16550 UART at 0x3F8", () => {
  it("turns THR writes into console lines of their own, apart from the 0xE9 console", () => {
    const { d, lines } = devices();
    for (const ch of "hi\r\n") d.portOut(0x3f8, 1, ch.charCodeAt(0));
    d.portOut(0xe9, 1, 0x41);
    d.portOut(0x3f8, 1, 0x42);
    d.portOut(0xe9, 1, 0x0a);
    d.flushConsole();
    expect(lines).toEqual([["uart", "hi"], ["debugcon", "A"], ["uart", "B"]]);
  });

  it("reads LSR 0x60, IIR 0x01, and keeps IER, LCR, MCR, SCR and the divisor latch", () => {
    const { d, lines } = devices();
    expect(d.portIn(0x3fd, 1)).toBe(0x60);
    expect(d.portIn(0x3fa, 1)).toBe(0x01);
    d.portOut(0x3f9, 1, 0x05); // IER
    d.portOut(0x3fb, 1, 0x83); // LCR with DLAB
    d.portOut(0x3f8, 1, 0x01); // DLL: not output
    d.portOut(0x3f9, 1, 0x00); // DLM
    expect([d.portIn(0x3f8, 1), d.portIn(0x3f9, 1), d.portIn(0x3fb, 1)]).toEqual([0x01, 0x00, 0x83]);
    d.portOut(0x3fb, 1, 0x03);
    d.portOut(0x3fc, 1, 0x0b); // MCR
    d.portOut(0x3ff, 1, 0x5a); // SCR
    expect([d.portIn(0x3f9, 1), d.portIn(0x3fb, 1), d.portIn(0x3fc, 1), d.portIn(0x3ff, 1), d.portIn(0x3fe, 1)]).toEqual([0x05, 0x03, 0x0b, 0x5a, 0]);
    d.flushConsole();
    expect(lines).toEqual([]);
  });
});

describe("isa-debug-exit at 0xF4", () => {
  it("powers off with status (v << 1) | 1 for every width", () => {
    const { d } = devices();
    expect(d.portOut(0xf4, 4, 0)).toBe("powerOff");
    expect(d.exitStatus).toBe(1);
    expect(d.portOut(0xf4, 1, 1)).toBe("powerOff");
    expect(d.exitStatus).toBe(3);
    expect(d.portOut(0xf4, 2, 63)).toBe("powerOff");
    expect(d.exitStatus).toBe(127);
    d.reset();
    expect(d.exitStatus).toBeUndefined();
  });
});

describe("pc-testdev", () => {
  it("keeps a 32-bit scratch value at port 0xE0, byte-addressable", () => {
    const { d } = devices();
    d.portOut(0xe0, 4, 0x12345678);
    expect(d.portIn(0xe0, 4)).toBe(0x12345678);
    d.portOut(0xe1, 1, 0xab);
    expect(d.portIn(0xe0, 4)).toBe(0x1234ab78);
    expect(d.portIn(0xe2, 2)).toBe(0x1234);
    expect(d.portIn(0xe3, 1)).toBe(0x12);
  });

  it("maps 64 KiB of memory at 0xFF000000 that the guest reads back", () => {
    const m = new TestMachine();
    const d = devices().d;
    const bus: GuestBus = m.bus;
    bus.mmioRead = (gpa, size) => d.mmioRead(gpa, size);
    bus.mmioWrite = (gpa, size, value) => d.mmioWrite(gpa, size, value);
    m.map(0xff000000n, TESTDEV_IOMEM_GPA, "4k", PTE_P | PTE_RW);
    m.map(0xff00f000n, TESTDEV_IOMEM_GPA + 0xf000, "4k", PTE_P | PTE_RW);
    // mov ebx, 0xff000000; mov rax, 0x1122334455667788; mov [rbx+0x10], rax; mov ecx, [rbx+0x14]; mov byte ptr [rbx+0xffff], 0x5a; hlt
    m.runCode("bb 00 00 00 ff 48 b8 88 77 66 55 44 33 22 11 48 89 43 10 8b 4b 14 c6 83 ff ff 00 00 5a f4");
    expect(m.reg("rcx")).toBe(0x11223344n);
    expect(d.testdevMem[0x10]).toBe(0x88);
    expect(d.testdevMem[0xffff]).toBe(0x5a);
  });
});

describe("MSRs", () => {
  it("reads IA32_APIC_BASE as 0xFEE00900 on the BSP and 0xFEE00800 on another VP", () => {
    const m = new TestMachine();
    m.runCode("b9 1b 00 00 00 0f 32 f4"); // mov ecx, 0x1b; rdmsr; hlt
    expect([m.reg("rax"), m.reg("rdx")]).toEqual([0xfee00900n, 0n]);
    const m1 = new TestMachine({ vpIndex: 1 });
    m1.runCode("b9 1b 00 00 00 0f 32 f4");
    expect(m1.reg("rax")).toBe(0xfee00800n);
  });

  it("PAT resets to 0x0007040600070406, takes valid types and #GPs on a reserved one", () => {
    const m = new TestMachine();
    // mov ecx, 0x277; rdmsr; mov r8, rax; mov r9, rdx; mov eax, 0x07070707; xor edx, edx; wrmsr; rdmsr; hlt
    m.runCode("b9 77 02 00 00 0f 32 49 89 c0 49 89 d1 b8 07 07 07 07 31 d2 0f 30 0f 32 f4");
    expect([m.reg("r8"), m.reg("r9"), m.reg("rax"), m.reg("rdx")]).toEqual([0x00070406n, 0x00070406n, 0x07070707n, 0n]);
    const bad = new TestMachine();
    bad.installIdt();
    bad.runCode("b9 77 02 00 00 b8 02 00 00 00 31 d2 0f 30 f4"); // PAT entry 0 = 2 (reserved)
    expect(bad.vectors()).toEqual([13]);
  });

  it("LSTAR keeps a canonical address and #GPs on a non-canonical one", () => {
    const m = new TestMachine();
    m.runCode("b9 82 00 00 c0 b8 bc 9a 78 56 ba 34 12 00 00 0f 30 31 c0 31 d2 0f 32 f4");
    expect([m.reg("rax"), m.reg("rdx")]).toEqual([0x56789abcn, 0x1234n]);
    const bad = new TestMachine();
    bad.installIdt();
    bad.runCode("b9 82 00 00 c0 b8 00 10 00 00 ba aa aa aa aa 0f 30 f4"); // 0xaaaaaaaa_00001000
    expect(bad.vectors()).toEqual([13]);
  });

  it("a TSC write sets the offset RDTSC reads", () => {
    const m = new TestMachine();
    m.runCode("b9 10 00 00 00 b8 00 00 00 00 ba 01 00 00 00 0f 30 0f 31 f4"); // wrmsr TSC = 1 << 32; rdtsc
    expect(m.reg("rdx")).toBe(1n);
    expect(m.reg("rax")).toBeLessThan(16n);
  });

  it("RDTSCP returns TSC_AUX in ECX and RDPID in a register", () => {
    const m = new TestMachine();
    // mov ecx, 0xc0000103; mov eax, 0x2a; xor edx, edx; wrmsr; rdtscp; mov r8, rcx; rdpid rbx; hlt
    m.runCode("b9 03 01 00 c0 b8 2a 00 00 00 31 d2 0f 30 0f 01 f9 49 89 c8 f3 0f c7 fb f4");
    expect([m.reg("r8"), m.reg("rbx")]).toEqual([0x2an, 0x2an]);
    expect(m.reg("rax")).toBeGreaterThan(0n);
  });

  it("the AMD perf MSRs read 0 and take writes; an unknown MSR is #GP", () => {
    const m = new TestMachine();
    m.runCode("b9 04 00 01 c0 31 c0 31 d2 0f 30 b8 05 00 00 00 0f 32 f4");
    expect(m.reg("rax")).toBe(0n);
    const bad = new TestMachine();
    bad.installIdt();
    bad.runCode("b9 78 56 34 12 0f 32 f4"); // mov ecx, 0x12345678; rdmsr
    expect(bad.vectors()).toEqual([13]);
  });
});

describe("xAPIC page at 0xFEE00000", () => {
  function apicMachine(vpIndex = 0): TestMachine {
    const m = new TestMachine({ vpIndex });
    m.map(0xfee00000n, 0xfee00000, "4k", PTE_P | PTE_RW);
    return m;
  }

  it("reads ID and version, keeps TPR, and a fixed IPI to itself is never busy and lands in IRR", () => {
    const m = apicMachine(1);
    // eax = ID, ecx = version, [TPR] = 0x20, edx = TPR, ICR hi = 1 << 24 (VP 1), ICR lo = 0x4041, esi = ICR lo, edi = IRR[2]
    m.runCode(
      "bb 00 00 e0 fe 8b 43 20 8b 4b 30 c7 83 80 00 00 00 20 00 00 00 8b 93 80 00 00 00 c7 83 10 03 00 00 00 00 00 01 c7 83 00 03 00 00 41 40 00 00 8b b3 00 03 00 00 8b bb 20 02 00 00 f4",
    );
    expect([m.reg("rax"), m.reg("rcx"), m.reg("rdx")]).toEqual([0x01000000n, 0x50014n, 0x20n]);
    expect(m.reg("rsi") & 0x1000n).toBe(0n);
    expect(m.reg("rdi")).toBe(2n); // vector 0x41 is bit 1 of IRR word 2
  });

  it("clearing IA32_APIC_BASE.EN clears CPUID.1:EDX.APIC and unmaps the page (reads all ones)", () => {
    const m = apicMachine();
    // cpuid(1) -> r8; APIC_BASE &= ~EN; cpuid(1) -> r9; eax = [0xfee00030]
    m.runCode("b8 01 00 00 00 0f a2 49 89 d0 b9 1b 00 00 00 0f 32 25 ff f7 ff ff 0f 30 b8 01 00 00 00 0f a2 49 89 d1 bb 00 00 e0 fe 8b 43 30 f4");
    expect([(m.reg("r8") >> 9n) & 1n, (m.reg("r9") >> 9n) & 1n]).toEqual([1n, 0n]);
    expect(m.reg("rax")).toBe(0xffffffffn);
  });

  it("the timer counts retired instructions down to 0 in one-shot mode and reloads in periodic mode", () => {
    // divide by 1, LVT timer vector 0x20 (one-shot), initial 1000; a 300-iteration loop; read current;
    // a 1000-iteration loop; read current again.
    const body = (lvt: string) =>
      "bb 00 00 e0 fe c7 83 e0 03 00 00 0b 00 00 00 c7 83 20 03 00 00 " + lvt + " c7 83 80 03 00 00 e8 03 00 00 " +
      "b9 2c 01 00 00 ff c9 75 fc 8b 83 90 03 00 00 " + // mov ecx, 300; l: dec ecx; jnz l; mov eax, [rbx+0x390]
      "b9 e8 03 00 00 ff c9 75 fc 8b 93 90 03 00 00 f4"; // mov ecx, 1000; l: dec ecx; jnz l; mov edx, [rbx+0x390]; hlt
    const m = apicMachine();
    m.runCode(body("20 00 00 00"), 10_000);
    const first = Number(m.reg("rax"));
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(1000 - 500);
    expect(m.reg("rdx")).toBe(0n);
    const p = apicMachine();
    p.runCode(body("20 00 02 00"), 10_000);
    expect(Number(p.reg("rdx"))).toBeGreaterThan(0);
    expect(Number(p.reg("rdx"))).toBeLessThanOrEqual(1000);
  });
});

describe("LTR/STR and SMSW/LMSW", () => {
  it("LTR loads a 64-bit TSS descriptor and marks it busy; STR reads the selector; a busy TSS is #GP", () => {
    const m = new TestMachine();
    m.installIdt();
    // GDT entry 5-6 (selector 0x28): available 64-bit TSS at 0x12345678, limit 0x67.
    m.write64(0x500 + 40, 0x12_0089_345678_0067n);
    m.write64(0x500 + 48, 0n);
    m.regs[GDTR + 2] = 55;
    m.runCode("66 b8 28 00 0f 00 d8 0f 00 c9 f4"); // mov ax, 0x28; ltr ax; str ecx; hlt
    expect(m.reg("rcx")).toBe(0x28n);
    expect((m.read64(0x500 + 40) >> 40n) & 0xffn).toBe(0x8bn);
    m.runCode("66 b8 28 00 0f 00 d8 f4");
    expect(m.vectors()).toEqual([13]);
  });

  it("LLDT takes a null selector or an LDT descriptor and SLDT reads the selector back", () => {
    const m = new TestMachine();
    m.installIdt();
    m.write64(0x500 + 56, 0x0000_8200_1000_00ffn); // selector 0x38: LDT at 0x1000, limit 0xff
    m.write64(0x500 + 64, 0n);
    m.regs[GDTR + 2] = 71;
    m.setReg("rcx", 0xffffn);
    // xor eax, eax; lldt ax; sldt ecx; mov ax, 0x38; lldt ax; sldt edx; hlt
    m.runCode("31 c0 0f 00 d0 0f 00 c1 66 b8 38 00 0f 00 d0 0f 00 c2 f4");
    expect([m.reg("rcx"), m.reg("rdx")]).toEqual([0n, 0x38n]);
    expect(m.vectors()).toEqual([]);
    m.runCode("66 b8 08 00 0f 00 d0 f4"); // lldt of a code segment: #GP
    expect(m.vectors()).toEqual([13]);
  });

  it("SMSW stores CR0 and LMSW sets TS without clearing PE", () => {
    const m = new TestMachine();
    const cr0 = m.word(CR0);
    // smsw eax; mov word [0x180000], 0; smsw [0x180000]; mov bx, 8; lmsw bx; mov rcx, cr0; hlt
    m.runCode("0f 01 e0 66 c7 04 25 00 00 18 00 00 00 0f 01 24 25 00 00 18 00 66 bb 08 00 0f 01 f3 0f 20 c1 f4");
    expect(Number(m.reg("rax"))).toBe(cr0);
    expect(m.view.getUint16(0x180000, true)).toBe(cr0 & 0xffff);
    expect(Number(m.reg("rcx"))).toBe(((cr0 & ~0xe) | 0x8) >>> 0); // MP and EM loaded as 0, PE kept
  });
});
