// FXSAVE/FXRSTOR, XSAVE/XSAVEOPT/XRSTOR (x87 and SSE components), XGETBV/XSETBV and the CPUID
// leaves that describe them, on the test machine.
import { CR0, CR4, FCW, FSW, FTW, MXCSR, XCR0, XMM } from "../../../../src/emu/x86_64/vp-layout.js";
import { TestMachine } from "./harness.js";

const BLK = 0x180000;
const CR4_OSFXSR = 0x200;
const CR4_OSXSAVE = 0x40000;

function machine(cr4Bits = CR4_OSFXSR | CR4_OSXSAVE): TestMachine {
  const m = new TestMachine();
  m.installIdt();
  m.regs[CR4] |= cr4Bits;
  m.setReg("rdi", BigInt(BLK));
  return m;
}

function cpuid(m: TestMachine, leaf: number, sub = 0): number[] {
  m.setReg("rax", BigInt(leaf));
  m.setReg("rcx", BigInt(sub));
  m.runCode("0fa2 f4");
  return (["rax", "rbx", "rcx", "rdx"] as const).map((r) => Number(m.reg(r)));
}

function setXmm(m: TestMachine, n: number, words: number[]): void {
  for (let k = 0; k < 4; k++) m.regs[XMM + 4 * n + k] = words[k] >>> 0;
}
function xmm(m: TestMachine, n: number): number[] {
  return [0, 1, 2, 3].map((k) => m.regs[XMM + 4 * n + k]);
}

describe("CPUID for the x87, FXSR and XSAVE", () => {
  it("advertises FPU, FXSR and XSAVE, leaf 0xD and OSXSAVE as CR4 has it", () => {
    const m = machine(0);
    expect(cpuid(m, 0)[0]).toBe(0xd);
    const [, , ecx, edx] = cpuid(m, 1);
    expect(edx & 1).toBe(1);
    expect((edx >>> 24) & 1).toBe(1);
    expect((ecx >>> 26) & 1).toBe(1);
    expect((ecx >>> 27) & 1).toBe(0);
    m.regs[CR4] |= CR4_OSXSAVE;
    expect((cpuid(m, 1)[2] >>> 27) & 1).toBe(1);
    expect(cpuid(m, 0xd, 0)).toEqual([3, 576, 576, 0]);
    expect(cpuid(m, 0xd, 1)).toEqual([1, 0, 0, 0]);
    expect(cpuid(m, 0xd, 2)).toEqual([0, 0, 0, 0]);
  });
});

describe("XGETBV / XSETBV", () => {
  it("#UD while CR4.OSXSAVE is clear", () => {
    const m = machine(CR4_OSFXSR);
    m.setReg("rcx", 0n);
    m.runCode("0f01d0 f4");
    expect(m.vectors()).toEqual([6]);
    m.bus.outs.length = 0;
    m.runCode("0f01d1 f4");
    expect(m.vectors()).toEqual([6]);
  });

  it("reads XCR0 = 1 after reset, accepts 3, refuses x87 off, unknown bits and ECX ≠ 0 (#GP)", () => {
    const m = machine();
    m.setReg("rcx", 0n);
    m.runCode("0f01d0 f4");
    expect([m.reg("rax"), m.reg("rdx")]).toEqual([1n, 0n]);
    m.setReg("rax", 3n);
    m.setReg("rdx", 0n);
    m.runCode("0f01d1 0f01d0 f4");
    expect(m.reg("rax")).toBe(3n);
    expect(m.word(XCR0)).toBe(3);
    for (const [rax, rdx, rcx] of [[2n, 0n, 0n], [7n, 0n, 0n], [3n, 1n, 0n], [3n, 0n, 1n]]) {
      m.bus.outs.length = 0;
      m.setReg("rax", rax);
      m.setReg("rdx", rdx);
      m.setReg("rcx", rcx);
      m.runCode("0f01d1 f4");
      expect(m.vectors()).toEqual([13]);
      expect(m.word(XCR0)).toBe(3);
    }
    m.bus.outs.length = 0;
    m.setReg("rcx", 1n);
    m.runCode("0f01d0 f4"); // XGETBV ECX = 1 (XINUSE) is not advertised
    expect(m.vectors()).toEqual([13]);
  });
});

describe("FXSAVE / FXRSTOR", () => {
  it("round trip of the x87 stack, control words, MXCSR and XMM0–15 through the 512-byte image", () => {
    const m = machine();
    for (let n = 0; n < 16; n++) setXmm(m, n, [0x11111111 * (n + 1), n, 0xdeadbeef, 0x80000000 | n]);
    m.regs[MXCSR] = 0x1f80 | 0x6000 | 0x1; // RC toward zero, IE flag
    // fninit; fld1; fldpi; fxsave [rdi]
    m.runCode("dbe3 d9e8 d9eb 0fae07 f4");
    const v = m.view;
    expect(v.getUint16(BLK, true)).toBe(0x037f);
    expect(v.getUint16(BLK + 2, true)).toBe(0x3000);
    expect(v.getUint8(BLK + 4)).toBe(0xc0); // abridged: R6, R7 in use
    expect(v.getUint32(BLK + 24, true)).toBe(0x7f81);
    expect(v.getUint32(BLK + 28, true)).toBe(0xffff);
    expect(v.getBigUint64(BLK + 32, true)).toBe(0xc90fdaa22168c235n); // ST0 = pi
    expect(v.getUint16(BLK + 40, true)).toBe(0x4000);
    expect(v.getBigUint64(BLK + 48, true)).toBe(0x8000000000000000n); // ST1 = 1
    expect(v.getUint32(BLK + 160 + 16 * 5, true)).toBe(0x66666666);
    expect(v.getUint32(BLK + 160 + 16 * 15 + 12, true)).toBe(0x8000000f);
    // Clobber everything, then restore.
    for (let n = 0; n < 16; n++) setXmm(m, n, [0, 0, 0, 0]);
    m.regs[MXCSR] = 0x1f80;
    m.runCode("dbe3 d9ee 0fae0f f4"); // fninit; fldz; fxrstor [rdi]
    expect(xmm(m, 5)).toEqual([0x66666666, 5, 0xdeadbeef, 0x80000005]);
    expect(m.word(MXCSR)).toBe(0x7f81);
    expect(m.word(FSW)).toBe(0x3000);
    expect(m.word(FTW)).toBe(0x0fff);
    expect(m.word(FCW)).toBe(0x037f);
    m.runCode("db7f10 f4"); // fstp tbyte [rdi+16]... into the image's reserved bytes: ST0 is pi
    expect(v.getBigUint64(BLK + 16, true)).toBe(0xc90fdaa22168c235n);
  });

  it("#GP on a misaligned operand and on MXCSR reserved bits; FXSAVE64 writes the same image here", () => {
    const m = machine();
    m.setReg("rdi", BigInt(BLK + 8));
    m.runCode("0fae07 f4");
    expect(m.vectors()).toEqual([13]);
    m.bus.outs.length = 0;
    m.setReg("rdi", BigInt(BLK));
    m.runCode("480fae07 f4");
    expect(m.vectors()).toEqual([]);
    m.view.setUint32(BLK + 24, 0x10000 | 0x1f80, true);
    m.runCode("0fae0f f4");
    expect(m.vectors()).toEqual([13]);
    expect(m.word(MXCSR)).toBe(0x1f80);
  });

  it("#NM with CR0.TS or CR0.EM", () => {
    const m = machine();
    const cr0 = m.regs[CR0];
    m.regs[CR0] = cr0 | 0x8;
    m.runCode("0fae07 f4");
    expect(m.vectors()).toEqual([7]);
    m.bus.outs.length = 0;
    m.regs[CR0] = cr0 | 0x4;
    m.runCode("0fae0f f4");
    expect(m.vectors()).toEqual([7]);
  });
});

describe("XSAVE / XRSTOR", () => {
  it("XSAVE writes the requested components and sets their XSTATE_BV bits", () => {
    const m = machine();
    m.setReg("rax", 3n);
    m.setReg("rdx", 0n);
    m.setReg("rcx", 0n);
    m.runCode("0f01d1 f4"); // XCR0 = x87 | SSE
    setXmm(m, 3, [1, 2, 3, 4]);
    m.ram.fill(0, BLK, BLK + 576);
    m.setReg("rax", 1n); // RFBM = x87 only
    m.runCode("dbe3 d9e8 0fae27 f4");
    expect(m.view.getBigUint64(BLK + 512, true)).toBe(1n);
    expect(m.view.getUint32(BLK + 24, true)).toBe(0); // MXCSR not saved
    expect(m.view.getUint32(BLK + 160 + 48, true)).toBe(0);
    m.setReg("rax", 0xffffffffn);
    m.setReg("rdx", 0xffffffffn);
    m.runCode("0fae37 f4"); // XSAVEOPT: everything XCR0 enables
    expect(m.view.getBigUint64(BLK + 512, true)).toBe(3n);
    expect(m.view.getUint32(BLK + 24, true)).toBe(0x1f80);
    expect(m.view.getUint32(BLK + 160 + 48, true)).toBe(1);
    expect(m.view.getUint16(BLK + 2, true)).toBe(0x3800);
  });

  it("XRSTOR loads the components XSTATE_BV marks and initializes the others", () => {
    const m = machine();
    m.setReg("rax", 3n);
    m.setReg("rdx", 0n);
    m.setReg("rcx", 0n);
    m.runCode("0f01d1 f4");
    setXmm(m, 7, [7, 7, 7, 7]);
    m.runCode("dbe3 d9eb 0fae27 f4"); // fldpi; xsave (RFBM 3)
    // XSTATE_BV = x87 only: SSE goes to its initial state (XMM zero) but MXCSR still loads.
    m.view.setBigUint64(BLK + 512, 1n, true);
    m.view.setUint32(BLK + 24, 0x1f80 | 0x2000, true);
    m.runCode("dbe3 0fae2f f4"); // fninit; xrstor
    expect(xmm(m, 7)).toEqual([0, 0, 0, 0]);
    expect(m.word(MXCSR)).toBe(0x3f80);
    expect(m.word(FSW)).toBe(0x3800);
    // XSTATE_BV = SSE only: the x87 goes to its FNINIT state.
    m.view.setBigUint64(BLK + 512, 2n, true);
    m.runCode("0fae2f f4");
    expect([m.word(FCW), m.word(FSW), m.word(FTW)]).toEqual([0x37f, 0, 0xffff]);
  });

  it("#GP: misaligned area, XSTATE_BV beyond XCR0, compacted or reserved header bytes; #UD without OSXSAVE; #NM with TS", () => {
    const m = machine();
    m.setReg("rax", 3n);
    m.setReg("rdx", 0n);
    m.runCode("0fae27 f4");
    const cases: [string, () => void][] = [
      ["misaligned", () => m.setReg("rdi", BigInt(BLK + 16))],
      ["bv bit 2", () => m.view.setBigUint64(BLK + 512, 7n, true)],
      ["xcomp_bv", () => m.view.setBigUint64(BLK + 520, 1n << 63n, true)],
      ["reserved", () => m.view.setBigUint64(BLK + 528, 1n, true)],
    ];
    for (const [, prep] of cases) {
      m.bus.outs.length = 0;
      m.setReg("rdi", BigInt(BLK));
      m.ram.fill(0, BLK + 512, BLK + 576);
      m.view.setBigUint64(BLK + 512, 3n, true);
      prep();
      m.runCode("0fae2f f4");
      expect(m.vectors()).toEqual([13]);
    }
    m.setReg("rdi", BigInt(BLK));
    m.bus.outs.length = 0;
    m.regs[CR4] &= ~CR4_OSXSAVE;
    m.runCode("0fae27 f4");
    expect(m.vectors()).toEqual([6]);
    m.bus.outs.length = 0;
    m.regs[CR4] |= CR4_OSXSAVE;
    m.regs[CR0] |= 0x8;
    m.runCode("0fae27 f4");
    expect(m.vectors()).toEqual([7]);
  });
});
