// Paging: 4 KiB, 2 MiB and 1 GiB pages, Accessed/Dirty bits, write protection, NX, not-present and
// reserved-bit page faults delivered through the IDT with CR2 and the error code, canonical
// addresses, 5-level paging and TLB flushes.
import { CR3, CR4 } from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, PML4, PTE_A, PTE_D, PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US, STACK_TOP, TestMachine } from "./harness.js";

const HIGH = 0xffff_8000_0000_0000n;

/** The #PF frame the IDT handler sees: error code at RSP, then RIP. */
function pageFault(m: TestMachine): { vector: number; cr2: bigint; error: bigint; rip: bigint } {
  return { vector: m.vectors()[0], cr2: m.cr2, error: m.read64(STACK_TOP - 48), rip: m.read64(STACK_TOP - 40) };
}

describe("page sizes", () => {
  it("translates through a 4 KiB page and sets Accessed, then Dirty on a write", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P | PTE_RW);
    m.write64(0x181008, 0x1234_5678n);
    // movabs rax, HIGH+0x1008; mov rbx, [rax]; mov qword [rax+8], 5; hlt
    m.runCode("48 b8 08 10 00 00 00 80 ff ff 48 8b 18 48 c7 40 08 05 00 00 00 f4");
    expect(m.reg("rbx")).toBe(0x1234_5678n);
    expect(m.read64(0x181010)).toBe(5n);
    const pte = m.read64(m.leafEntry(HIGH + 0x1000n));
    expect(pte & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    expect(m.read64(PML4 + 256 * 8) & PTE_A).toBe(PTE_A);
  });

  it("sets Accessed but not Dirty for a read", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P | PTE_RW);
    m.runCode("48 b8 08 10 00 00 00 80 ff ff 48 8b 18 f4"); // movabs rax, HIGH+0x1008; mov rbx, [rax]; hlt
    expect(m.read64(m.leafEntry(HIGH + 0x1000n)) & (PTE_A | PTE_D)).toBe(PTE_A);
  });

  it("translates through a 2 MiB page", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x20_0000n, 0x40_0000, "2m", PTE_P | PTE_RW);
    m.write64(0x41_2345, 0xfeed_beefn);
    m.runCode("48 b8 45 23 21 00 00 80 ff ff 48 8b 18 f4"); // movabs rax, HIGH+0x212345; mov rbx, [rax]; hlt
    expect(m.reg("rbx")).toBe(0xfeed_beefn);
  });

  it("translates through a 1 GiB page", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x4000_0000n, 0, "1g", PTE_P | PTE_RW);
    m.write64(0x18_0000, 0xcafen);
    m.runCode("48 b8 00 00 18 40 00 80 ff ff 48 8b 18 f4"); // movabs rax, HIGH+0x40180000; mov rbx, [rax]; hlt
    expect(m.reg("rbx")).toBe(0xcafen);
  });

  it("lets CPL 0 read a user page", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P | PTE_US);
    m.write64(0x181008, 77n);
    m.runCode("48 b8 08 10 00 00 00 80 ff ff 48 8b 18 f4"); // movabs rax, HIGH+0x1008; mov rbx, [rax]; hlt
    expect(m.reg("rbx")).toBe(77n);
  });

  it("reads all ones from a guest-physical address that is not RAM and drops writes to it", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x1000n, 0x4000_0000, "4k", PTE_P | PTE_RW);
    // movabs rax, HIGH+0x1008; mov rbx, [rax]; mov qword [rax+8], 5; hlt
    m.runCode("48 b8 08 10 00 00 00 80 ff ff 48 8b 18 48 c7 40 08 05 00 00 00 f4");
    expect(m.reg("rbx")).toBe(0xffff_ffff_ffff_ffffn);
    expect(m.halted).toBe(true);
  });
});

describe("page faults", () => {
  it("delivers #PF with CR2 and error code 0 for a read of a not-present page, RIP at the load", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("48 b8 78 56 34 12 00 80 ff ff 48 8b 18 f4"); // movabs rax, HIGH+0x12345678; mov rbx, [rax]; hlt
    expect(pageFault(m)).toEqual({ vector: 14, cr2: HIGH + 0x1234_5678n, error: 0n, rip: BigInt(CODE + 10) });
  });

  it("reports a write to a not-present page with W set in the error code", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("48 b8 78 56 34 12 00 80 ff ff 89 18 f4"); // movabs rax, HIGH+0x12345678; mov [rax], ebx; hlt
    expect(pageFault(m)).toMatchObject({ vector: 14, error: 2n });
  });

  it("faults a supervisor write to a read-only page while CR0.WP is set (error P|W)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P);
    m.runCode("48 b8 00 10 00 00 00 80 ff ff c6 00 01 f4"); // movabs rax, HIGH+0x1000; mov byte [rax], 1; hlt
    expect(pageFault(m)).toMatchObject({ vector: 14, cr2: HIGH + 0x1000n, error: 3n });
    expect(m.ram[0x181000]).toBe(0);
  });

  it("lets a supervisor write a read-only page once the guest clears CR0.WP", () => {
    const m = new TestMachine();
    m.installIdt();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P);
    // mov rax, cr0; btr rax, 16; mov cr0, rax; movabs rax, HIGH+0x1000; mov byte [rax], 1; hlt
    m.runCode("0f 20 c0 48 0f ba f0 10 0f 22 c0 48 b8 00 10 00 00 00 80 ff ff c6 00 01 f4");
    expect(m.vectors()).toEqual([]);
    expect(m.ram[0x181000]).toBe(1);
  });

  it("refuses to execute an NX page (error P|I/D)", () => {
    const m = new TestMachine();
    m.installIdt();
    m.map(HIGH + 0x3000n, 0x183000, "4k", PTE_P | PTE_RW | PTE_NX);
    m.load(0x183000, "f4");
    m.runCode("48 b8 00 30 00 00 00 80 ff ff ff e0"); // movabs rax, HIGH+0x3000; jmp rax
    expect(pageFault(m)).toEqual({ vector: 14, cr2: HIGH + 0x3000n, error: 0x11n, rip: HIGH + 0x3000n });
  });

  it("executes the same page when NX is clear", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x3000n, 0x183000, "4k", PTE_P | PTE_RW);
    m.load(0x183000, "b8 2a 00 00 00 f4"); // mov eax, 42; hlt
    m.runCode("48 b8 00 30 00 00 00 80 ff ff ff e0"); // movabs rax, HIGH+0x3000; jmp rax
    expect(m.reg("rax")).toBe(42n);
  });

  it("reports a reserved bit (PS in a PML4 entry) with RSVD and P set", () => {
    const m = new TestMachine();
    m.installIdt();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P | PTE_RW);
    m.write64(PML4 + 256 * 8, m.read64(PML4 + 256 * 8) | PTE_PS);
    m.runCode("48 b8 08 10 00 00 00 80 ff ff 48 8b 18 f4"); // movabs rax, HIGH+0x1008; mov rbx, [rax]; hlt
    expect(pageFault(m)).toMatchObject({ vector: 14, error: 9n });
  });

  it("faults an access that crosses into a not-present page at that page, writing nothing", () => {
    const m = new TestMachine();
    m.installIdt();
    m.map(HIGH + 0x5000n, 0x185000, "4k", PTE_P | PTE_RW);
    m.setReg("rbx", 0x1122_3344_5566_7788n);
    m.runCode("48 b8 fc 5f 00 00 00 80 ff ff 48 89 18 f4"); // movabs rax, HIGH+0x5ffc; mov [rax], rbx; hlt
    expect(pageFault(m)).toMatchObject({ vector: 14, cr2: HIGH + 0x6000n, error: 2n });
    expect(m.read64(0x185ff8)).toBe(0n);
  });

  it("reads a value that spans two mapped pages", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x5000n, 0x185000, "4k", PTE_P | PTE_RW);
    m.map(HIGH + 0x6000n, 0x190000, "4k", PTE_P | PTE_RW);
    m.load(0x185ffc, "88 77 66 55");
    m.load(0x190000, "44 33 22 11");
    m.setReg("rcx", 0xa1a2_a3a4_a5a6_a7a8n);
    // movabs rax, HIGH+0x5ffc; mov rbx, [rax]; mov [rax], rcx; hlt
    m.runCode("48 b8 fc 5f 00 00 00 80 ff ff 48 8b 18 48 89 08 f4");
    expect(m.reg("rbx")).toBe(0x1122_3344_5566_7788n);
    expect(m.read64(0x185ff8) >> 32n).toBe(0xa5a6_a7a8n);
    expect(m.read64(0x190000) & 0xffff_ffffn).toBe(0xa1a2_a3a4n);
  });
});

describe("canonical addresses and 5-level paging", () => {
  it("raises #GP(0) for a non-canonical data address", () => {
    const m = new TestMachine();
    m.installIdt();
    m.runCode("48 b8 00 00 00 00 00 80 00 00 48 8b 18 f4"); // movabs rax, 0x0000800000000000; mov rbx, [rax]; hlt
    expect(m.vectors()).toEqual([13]);
    expect(m.read64(STACK_TOP - 48)).toBe(0n);
  });

  it("walks five levels when CR4.LA57 is set, where bit 48 is part of the address", () => {
    const m = new TestMachine();
    const pml5 = 0x30000;
    m.ram.fill(0, pml5, pml5 + 0x1000);
    m.write64(pml5, BigInt(PML4) | PTE_P | PTE_RW);
    m.write64(pml5 + 8, BigInt(PML4) | PTE_P | PTE_RW);
    m.regs[CR3] = pml5;
    m.regs[CR4] |= 0x1000;
    m.vp.flushTlb();
    m.write64(0x18_0000, 0x5a5an);
    m.runCode("48 b8 00 00 18 00 00 00 01 00 48 8b 18 f4"); // movabs rax, 0x0001000000180000; mov rbx, [rax]; hlt
    expect(m.reg("rbx")).toBe(0x5a5an);
  });
});

describe("TLB", () => {
  it("keeps using a cached translation until INVLPG, then walks again", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P | PTE_RW);
    m.write64(0x181000, 1n);
    m.write64(0x182000, 2n);
    m.setReg("rax", HIGH + 0x1000n);
    m.runCode("48 8b 18 f4"); // mov rbx, [rax]; hlt
    expect(m.reg("rbx")).toBe(1n);
    m.write64(m.leafEntry(HIGH + 0x1000n), 0x182000n | PTE_P | PTE_RW);
    m.runCode("48 8b 18 0f 01 38 48 8b 08 f4"); // mov rbx, [rax]; invlpg [rax]; mov rcx, [rax]; hlt
    expect([m.reg("rbx"), m.reg("rcx")]).toEqual([1n, 2n]);
  });

  it("INVLPG drops only the named page's entry while only 4 KiB pages are cached, and everything once a large page is", () => {
    // Code, stack and data all in 4 KiB pages (no identity map of 2 MiB pages).
    const m = new TestMachine({ identity: "none" });
    m.map(BigInt(CODE), CODE, "4k", PTE_P | PTE_RW);
    m.map(BigInt(STACK_TOP - 0x1000), STACK_TOP - 0x1000, "4k", PTE_P | PTE_RW);
    const A = 0x5000_0000n;
    const B = 0x5000_1000n;
    m.map(A, 0x181000, "4k", PTE_P | PTE_RW);
    m.map(B, 0x183000, "4k", PTE_P | PTE_RW);
    m.map(0x5020_0000n, 0x40_0000, "2m", PTE_P | PTE_RW);
    m.write64(0x181000, 1n);
    m.write64(0x182000, 2n);
    m.write64(0x183000, 3n);
    m.write64(0x184000, 4n);
    m.runCode("48 8b 1c 25 00 00 00 50 48 8b 14 25 00 10 00 50 f4"); // mov rbx, [A]; mov rdx, [B]; hlt
    expect([m.reg("rbx"), m.reg("rdx")]).toEqual([1n, 3n]);
    m.write64(m.leafEntry(A), 0x182000n | PTE_P | PTE_RW);
    m.write64(m.leafEntry(B), 0x184000n | PTE_P | PTE_RW);
    // invlpg [A]; mov rcx, [A]; mov rsi, [B]; hlt — B's entry survives (the SDM allows either).
    m.runCode("0f 01 3c 25 00 00 00 50 48 8b 0c 25 00 00 00 50 48 8b 34 25 00 10 00 50 f4", 1000, CODE + 0x100);
    expect([m.reg("rcx"), m.reg("rsi")]).toEqual([2n, 3n]);
    // mov rax, [the 2 MiB page]; invlpg [A]; mov rsi, [B]; hlt — a cached large page makes INVLPG drop everything.
    m.runCode("48 8b 04 25 00 00 20 50 0f 01 3c 25 00 00 00 50 48 8b 34 25 00 10 00 50 f4", 1000, CODE + 0x200);
    expect(m.reg("rsi")).toBe(4n);
  });

  it("forgets translations when told to flush from outside", () => {
    const m = new TestMachine();
    m.map(HIGH + 0x1000n, 0x181000, "4k", PTE_P | PTE_RW);
    m.write64(0x182000, 2n);
    m.setReg("rax", HIGH + 0x1000n);
    m.runCode("48 8b 18 f4"); // mov rbx, [rax]; hlt
    m.write64(m.leafEntry(HIGH + 0x1000n), 0x182000n | PTE_P | PTE_RW);
    m.vp.flushTlb();
    m.runCode("48 8b 18 f4");
    expect(m.reg("rbx")).toBe(2n);
  });
});
