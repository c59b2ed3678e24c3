// CPL 3 and the TSS: IRETQ and far RET to user mode, interrupts and exceptions from user mode
// through RSP0 and IST stacks, gate DPL, page U/S checks, privileged instructions, IOPL and the
// I/O permission bitmap, UMIP, SYSCALL/SYSRET, segment privilege checks and #SS for
// non-canonical stack accesses (SDM vol. 3, chapters 5, 6 and 19).
import { CODE, GDT, IDT, PTE_P, PTE_RW, PTE_US, TestMachine } from "./harness.js";
import { GDTR, IDTR, SREG_CS, SREG_DS, SREG_ES, SREG_FS, SREG_GS, SREG_SS } from "../../../../src/emu/x86_64/vp-layout.js";

const USER_SS = 0x23; // GDT 0x20: data, DPL 3
const USER_CS = 0x2b; // GDT 0x28: 64-bit code, DPL 3
const TSS_SEL = 0x40;
const TSS = 0x6000;
const RSP0 = 0x1f0000;
const IST1 = 0x1e0000;
const IOMAP = 0x68;
const UCODE = 0x40000000;
const USTACK_TOP = 0x40002000;
/** A supervisor-only page right above the user stack. */
const SUPER_PAGE = 0x40002000;
/** A read-only user page. */
const RO_PAGE = 0x40003000;
const SYSCALL_ENTRY = 0x3400;
const INT80_HANDLER = 0x3300;

/** Physical homes of the user pages. */
const UCODE_PA = 0x300000;

/** A machine with user segments, a TSS (RSP0, IST1, an I/O bitmap of all ones) and user pages. */
function userMachine(): TestMachine {
  const m = new TestMachine();
  m.installIdt();
  // GDT: 0x20 user data, 0x28 user 64-bit code, 0x40 a 64-bit TSS (16 bytes).
  m.write64(GDT + 0x20, 0x00cff3000000ffffn);
  m.write64(GDT + 0x28, 0x00affb000000ffffn);
  setTssLimit(m, IOMAP + 8192); // the bitmap and its terminating byte
  m.write64(GDT + 0x48, 0n);
  m.regs[GDTR + 2] = 0x4f; // ten entries
  m.ram.fill(0, TSS, TSS + IOMAP);
  m.write64(TSS + 4, BigInt(RSP0));
  m.write64(TSS + 0x24, BigInt(IST1));
  m.view.setUint16(TSS + 0x66, IOMAP, true);
  m.ram.fill(0xff, TSS + IOMAP, TSS + IOMAP + 8193);
  // Vector 0x80: an interrupt gate of DPL 3 to a handler that reports 0x80 and halts.
  m.load(INT80_HANDLER, "b0 80 e6 e9 f4"); // mov al, 0x80; out 0xe9, al; hlt
  m.write64(IDT + 16 * 0x80, BigInt(INT80_HANDLER) | (0x08n << 16n) | (0xeen << 40n) | (3n << 45n));
  m.write64(IDT + 16 * 0x80 + 8, 0n);
  m.regs[IDTR + 2] = 0x80 * 16 + 15;
  // User pages: code, stack, a supervisor page, a read-only user page.
  m.map(BigInt(UCODE), UCODE_PA, "4k", PTE_P | PTE_RW | PTE_US);
  m.map(BigInt(UCODE + 0x1000), UCODE_PA + 0x1000, "4k", PTE_P | PTE_RW | PTE_US);
  m.map(BigInt(SUPER_PAGE), UCODE_PA + 0x2000, "4k", PTE_P | PTE_RW);
  m.map(BigInt(RO_PAGE), UCODE_PA + 0x3000, "4k", PTE_P | PTE_US);
  m.ram[UCODE_PA + 0x3000] = 0x5a;
  return m;
}

/** The 64-bit TSS descriptor (available) at GDT 0x40 with limit `limit`. */
function setTssLimit(m: TestMachine, limit: number): void {
  m.write64(GDT + 0x40, BigInt(limit & 0xffff) | (BigInt(TSS & 0xffffff) << 16n) | (0x89n << 40n) | (BigInt((limit >>> 16) & 0xf) << 48n));
}

/**
 * Kernel code that loads TR, reads the supervisor page (so its TLB entry exists at CPL 0) and
 * IRETQs to UCODE at CPL 3 with RSP = USTACK_TOP and RFLAGS = RBX.
 */
const ENTER_USER =
  "66 b8 40 00 0f 00 d8" + // mov ax, 0x40; ltr ax
  "48 8b 04 25 00 20 00 40" + // mov rax, [0x40002000]
  "6a 23 68 00 20 00 40 53 6a 2b 68 00 00 00 40 48 cf"; // push 0x23; push USTACK_TOP; push rbx; push 0x2b; push UCODE; iretq

/** Run `user` at CPL 3 (entered by IRETQ with RFLAGS `flags`), after `kernel` code at CPL 0. */
function runUser(m: TestMachine, user: string, flags = 0x2, kernel = ""): ReturnType<TestMachine["runCode"]> {
  m.load(UCODE_PA, user);
  m.setReg("rbx", BigInt(flags));
  return m.runCode(kernel + ENTER_USER);
}

/** The frame at `top` (no error code unless `withError`). */
function frameAt(m: TestMachine, top: number, withError = false) {
  const base = top - (withError ? 48 : 40);
  const at = (i: number) => m.read64(base + 8 * i);
  return withError
    ? { error: at(0), rip: at(1), cs: at(2), rflags: at(3), rsp: at(4), ss: at(5) }
    : { rip: at(0), cs: at(1), rflags: at(2), rsp: at(3), ss: at(4) };
}

describe("user mode and the TSS", () => {
  it("IRETQ enters CPL 3; INT through a DPL-3 gate returns to CPL 0 on RSP0 with SS null", () => {
    const m = userMachine();
    expect(runUser(m, "bb 07 00 00 00 cd 80")).toEqual({ kind: "halted" }); // mov ebx, 7; int 0x80
    expect(m.vectors()).toEqual([0x80]);
    expect(m.reg("rbx")).toBe(7n);
    expect(frameAt(m, RSP0)).toEqual({ rip: BigInt(UCODE + 7), cs: BigInt(USER_CS), rflags: 2n, rsp: BigInt(USTACK_TOP), ss: BigInt(USER_SS) });
    expect(m.reg("rsp")).toBe(BigInt(RSP0 - 40));
    expect(m.selector(SREG_CS)).toBe(0x08);
    expect(m.selector(SREG_SS)).toBe(0); // a null SS with RPL 0
  });

  it("INT n through a DPL-0 gate from CPL 3 is #GP(n * 8 + 2), reported at the INT", () => {
    const m = userMachine();
    runUser(m, "cd 1f"); // int 0x1f
    expect(m.vectors()).toEqual([13]);
    expect(frameAt(m, RSP0, true)).toEqual({ error: BigInt(0x1f * 8 + 2), rip: BigInt(UCODE), cs: BigInt(USER_CS), rflags: 0x10002n, rsp: BigInt(USTACK_TOP), ss: BigInt(USER_SS) });
  });

  it("a gate with IST 1 runs its handler on TSS.IST1, also without a privilege change", () => {
    const m = userMachine();
    // Gate 3 (#BP) gets IST 1.
    m.write64(IDT + 16 * 3, m.read64(IDT + 16 * 3) | (1n << 32n));
    m.runCode("66 b8 40 00 0f 00 d8 cc"); // mov ax, 0x40; ltr ax; int3
    expect(m.vectors()).toEqual([3]);
    expect(m.reg("rsp")).toBe(BigInt(IST1 - 40));
    expect(frameAt(m, IST1).rip).toBe(BigInt(CODE + 8));
    expect(m.selector(SREG_SS)).toBe(0x10); // no privilege change: SS stays
  });

  it("far RET to CPL 3 pops RSP and SS too", () => {
    const m = userMachine();
    m.load(UCODE_PA, "cd 80");
    // mov ax, 0x40; ltr ax; push 0x23; push USTACK_TOP; push 0x2b; push UCODE; retfq
    m.runCode("66 b8 40 00 0f 00 d8 6a 23 68 00 20 00 40 6a 2b 68 00 00 00 40 48 cb");
    expect(m.vectors()).toEqual([0x80]);
    expect(frameAt(m, RSP0)).toMatchObject({ rip: BigInt(UCODE + 2), cs: BigInt(USER_CS), rsp: BigInt(USTACK_TOP), ss: BigInt(USER_SS) });
  });

  it("IRETQ to CPL 3 nulls DS, ES, FS and GS holding DPL-0 data, and FS/GS keep their bases", () => {
    const m = userMachine();
    // Kernel: GS base 0x1234000 through WRMSR, then to user mode, which reads its selectors.
    const wrGsBase = "b9 01 01 00 c0 b8 00 40 23 01 31 d2 0f 30"; // mov ecx, 0xc0000101; mov eax, 0x1234000; xor edx, edx; wrmsr
    runUser(m, "66 8c de 66 8c c3 66 8c e1 66 8c ea cd 80", 0x2, wrGsBase); // mov si, ds; mov bx, es; mov cx, fs; mov dx, gs; int 0x80
    expect(m.vectors()).toEqual([0x80]);
    expect([m.reg("rsi") & 0xffffn, m.reg("rbx") & 0xffffn, m.reg("rcx") & 0xffffn, m.reg("rdx") & 0xffffn]).toEqual([0n, 0n, 0n, 0n]);
    for (const s of [SREG_DS, SREG_ES, SREG_FS]) expect(m.selector(s)).toBe(0);
    expect(m.segBase(SREG_GS)).toBe(0x1234000n);
  });

  it("IRETQ to CPL 3 keeps DS holding DPL-3 data", () => {
    const m = userMachine();
    runUser(m, "66 8c de cd 80", 0x2, "66 b8 23 00 8e d8"); // kernel: mov ax, 0x23; mov ds, ax — user: mov si, ds; int 0x80
    expect(m.reg("rsi") & 0xffffn).toBe(BigInt(USER_SS));
  });
});

describe("page protection at CPL 3", () => {
  it("a user read of a supervisor page is #PF with U and P set, though CPL 0 had it in the TLB", () => {
    const m = userMachine();
    runUser(m, "48 8b 04 25 00 20 00 40 cd 80"); // mov rax, [SUPER_PAGE]; int 0x80
    expect(m.vectors()).toEqual([14]);
    expect(frameAt(m, RSP0, true)).toMatchObject({ error: 0x5n, rip: BigInt(UCODE) });
    expect(m.cr2).toBe(BigInt(SUPER_PAGE));
  });

  it("a user write to a read-only user page is #PF(P | W | U) whatever CR0.WP says; a read works", () => {
    const m = userMachine();
    runUser(m, "c6 04 25 00 30 00 40 01"); // mov byte [RO_PAGE], 1
    expect(m.vectors()).toEqual([14]);
    expect(frameAt(m, RSP0, true).error).toBe(0x7n);
    expect(m.ram[UCODE_PA + 0x3000]).toBe(0x5a);

    const n = userMachine();
    runUser(n, "40 8a 34 25 00 30 00 40 cd 80"); // mov sil, [RO_PAGE]; int 0x80
    expect(n.vectors()).toEqual([0x80]);
    expect(n.reg("rsi") & 0xffn).toBe(0x5an);
  });

  it("user code cannot run from a supervisor page (#PF with P, U and, as EFER.NXE is set, I/D)", () => {
    const m = userMachine();
    m.write64(UCODE_PA + 0x3008, BigInt(SUPER_PAGE));
    runUser(m, "ff 24 25 08 30 00 40"); // jmp [RO_PAGE + 8]
    expect(m.vectors()).toEqual([14]);
    expect(m.efer & 0x800n).toBe(0x800n);
    expect(frameAt(m, RSP0, true)).toMatchObject({ error: 0x15n, rip: BigInt(SUPER_PAGE) });
  });
});

describe("SMEP and SMAP", () => {
  const setSmap = "0f 20 e0 0d 00 00 20 00 0f 22 e0"; // mov rax, cr4; or eax, 0x200000; mov cr4, rax
  const setSmep = "0f 20 e0 0d 00 00 10 00 0f 22 e0"; // mov rax, cr4; or eax, 0x100000; mov cr4, rax

  it("CR4.SMAP: a supervisor read of a user page needs RFLAGS.AC (STAC), and CLAC takes it back without a flush", () => {
    const m = userMachine();
    // stac; mov cl, [RO_PAGE]; clac; mov bl, [RO_PAGE]; hlt
    m.runCode(setSmap + "0f 01 cb 8a 0c 25 00 30 00 40 0f 01 ca 8a 1c 25 00 30 00 40 f4");
    expect(m.reg("rcx") & 0xffn).toBe(0x5an);
    expect(m.vectors()).toEqual([14]);
    expect(m.cr2).toBe(BigInt(RO_PAGE));
    // P set (a protection fault), U clear (a supervisor access), at the second read.
    const f = frameAt(m, 0x200000, true);
    expect(f).toMatchObject({ error: 1n, rip: BigInt(CODE + 11 + 13) });
  });

  it("without CR4.SMAP a supervisor read of a user page works with AC clear", () => {
    const m = userMachine();
    m.runCode("8a 04 25 00 30 00 40 f4"); // mov al, [RO_PAGE]; hlt
    expect(m.vectors()).toEqual([]);
    expect(m.reg("rax") & 0xffn).toBe(0x5an);
  });

  it("CR4.SMAP: a user page CPL 3 had in the TLB is off limits to the kernel after INT (leaving CPL 3 drops the TLB)", () => {
    const m = userMachine();
    m.load(INT80_HANDLER, "8a 04 25 00 10 00 40 f4"); // the kernel reads the user stack page: mov al, [UCODE + 0x1000]; hlt
    runUser(m, "8a 04 25 00 10 00 40 cd 80", 0x2, setSmap); // user: mov al, [UCODE + 0x1000]; int 0x80
    expect(m.vectors()).toEqual([14]);
    expect(m.cr2).toBe(BigInt(UCODE + 0x1000));
    // The #PF frame sits below INT's, aligned to 16.
    expect(frameAt(m, RSP0 - 48, true)).toMatchObject({ error: 1n, rip: BigInt(INT80_HANDLER), cs: 8n });
  });

  it("CR4.SMEP: the kernel cannot run code in a user page (#PF with P and I/D); without SMEP it can", () => {
    const m = userMachine();
    m.load(UCODE_PA, "f4"); // hlt
    m.runCode(setSmep + "48 c7 c0 00 00 00 40 ff e0"); // mov rax, UCODE; jmp rax
    expect(m.vectors()).toEqual([14]);
    expect(frameAt(m, 0x200000, true)).toMatchObject({ error: 0x11n, rip: BigInt(UCODE) });

    const n = userMachine();
    n.load(UCODE_PA, "f4");
    n.runCode("48 c7 c0 00 00 00 40 ff e0");
    expect(n.vectors()).toEqual([]);
    expect(n.rip).toBe(BigInt(UCODE + 1));

    // I/D is reported under SMEP even with EFER.NXE clear.
    const o = userMachine();
    o.load(UCODE_PA, "f4");
    const clearNxe = "b9 80 00 00 c0 0f 32 25 ff f7 ff ff 0f 30"; // mov ecx, EFER; rdmsr; and eax, ~NXE; wrmsr
    o.runCode(clearNxe + setSmep + "48 c7 c0 00 00 00 40 ff e0");
    expect(o.efer & 0x800n).toBe(0n);
    expect(frameAt(o, 0x200000, true)).toMatchObject({ error: 0x11n, rip: BigInt(UCODE) });
  });

  it("STAC at CPL 3 is #UD", () => {
    const m = userMachine();
    runUser(m, "0f 01 cb");
    expect(m.vectors()).toEqual([6]);
  });
});

describe("protection keys (CR4.PKE)", () => {
  const setPke = "0f 20 e0 0d 00 00 40 00 0f 22 e0"; // mov rax, cr4; or eax, 0x400000; mov cr4, rax
  /** mov eax, v; xor ecx, ecx; xor edx, edx; wrpkru */
  const wrpkru = (v: number) => `b8 ${v.toString(16).padStart(2, "0")} 00 00 00 31 c9 31 d2 0f 01 ef`;
  const clearWp = "0f 20 c0 25 ff ff fe ff 0f 22 c0"; // mov rax, cr0; and eax, ~CR0.WP; mov cr0, rax
  const PK_PAGE = 0x40004000; // a user page with protection key 1 (PKRU bits 2 AD, 3 WD)
  const PK_SUPER = 0x40005000; // a supervisor page with key 1
  function pkMachine(): TestMachine {
    const m = userMachine();
    m.map(BigInt(PK_PAGE), UCODE_PA + 0x4000, "4k", PTE_P | PTE_RW | PTE_US | (1n << 59n));
    m.map(BigInt(PK_SUPER), UCODE_PA + 0x5000, "4k", PTE_P | PTE_RW | (1n << 59n));
    m.ram[UCODE_PA + 0x4000] = 0x77;
    return m;
  }

  it("RDPKRU and WRPKRU are #UD without CR4.PKE and #GP(0) with ECX ≠ 0; WRPKRU sets what RDPKRU reads", () => {
    const m = pkMachine();
    m.runCode("31 c9 0f 01 ee f4"); // xor ecx, ecx; rdpkru; hlt
    expect(m.vectors()).toEqual([6]);

    const n = pkMachine();
    n.runCode(setPke + wrpkru(0x0c) + "31 c9 0f 01 ee f4");
    expect(n.vectors()).toEqual([]);
    expect(n.reg("rax")).toBe(0x0cn);

    const o = pkMachine();
    o.runCode(setPke + "b9 01 00 00 00 0f 01 ee"); // mov ecx, 1; rdpkru
    expect(o.vectors()).toEqual([13]);
  });

  it("CPUID leaf 7 ECX.OSPKE (bit 4) mirrors CR4.PKE", () => {
    const cpuid7 = "b8 07 00 00 00 31 c9 0f a2 f4"; // mov eax, 7; xor ecx, ecx; cpuid; hlt
    const m = pkMachine();
    m.runCode(cpuid7);
    expect(m.reg("rcx") & 0x18n).toBe(0x08n); // PKU, not OSPKE
    const n = pkMachine();
    n.runCode(setPke + cpuid7);
    expect(n.reg("rcx") & 0x18n).toBe(0x18n);
  });

  it("access-disable for the page's key: a user read is #PF with PK, P and U", () => {
    const m = pkMachine();
    runUser(m, "8a 0c 25 00 40 00 40 cd 80", 0x2, setPke + wrpkru(0x04)); // user: mov cl, [PK_PAGE]; int 0x80
    expect(m.vectors()).toEqual([14]);
    expect(frameAt(m, RSP0, true)).toMatchObject({ error: 0x25n, rip: BigInt(UCODE) });
    expect(m.cr2).toBe(BigInt(PK_PAGE));
  });

  it("write-disable: a user read works, a user write is #PF(PK | P | W | U)", () => {
    const m = pkMachine();
    runUser(m, "8a 0c 25 00 40 00 40 cd 80", 0x2, setPke + wrpkru(0x08));
    expect(m.vectors()).toEqual([0x80]);
    expect(m.reg("rcx") & 0xffn).toBe(0x77n);

    const n = pkMachine();
    runUser(n, "c6 04 25 00 40 00 40 01", 0x2, setPke + wrpkru(0x08)); // mov byte [PK_PAGE], 1
    expect(n.vectors()).toEqual([14]);
    expect(frameAt(n, RSP0, true).error).toBe(0x27n);
    expect(n.ram[UCODE_PA + 0x4000]).toBe(0x77);
  });

  it("a key violation sets PK in the error code of whichever check faults (a read-only page written with write-disable)", () => {
    for (const [pkru, error] of [[0x08, 0x27n], [0x00, 0x07n]] as const) {
      const m = pkMachine();
      m.map(BigInt(PK_PAGE), UCODE_PA + 0x4000, "4k", PTE_P | PTE_US | (1n << 59n)); // read-only now
      runUser(m, "c6 04 25 00 40 00 40 01", 0x2, setPke + wrpkru(pkru)); // mov byte [PK_PAGE], 1
      expect(m.vectors()).toEqual([14]);
      expect(frameAt(m, RSP0, true).error).toBe(error);
    }
  });

  it("write-disable binds a supervisor write only with CR0.WP; keys on supervisor pages mean nothing", () => {
    const m = pkMachine();
    m.runCode(setPke + wrpkru(0x08) + "c6 04 25 00 40 00 40 01 f4"); // mov byte [PK_PAGE], 1; hlt
    expect(m.vectors()).toEqual([14]);
    expect(frameAt(m, 0x200000, true).error).toBe(0x23n);

    const n = pkMachine();
    n.runCode(setPke + clearWp + wrpkru(0x08) + "c6 04 25 00 40 00 40 01 f4");
    expect(n.vectors()).toEqual([]);
    expect(n.ram[UCODE_PA + 0x4000]).toBe(1);

    const o = pkMachine();
    o.runCode(setPke + wrpkru(0x0c) + "c6 04 25 00 50 00 40 01 f4"); // mov byte [PK_SUPER], 1; hlt
    expect(o.vectors()).toEqual([]);
    expect(o.ram[UCODE_PA + 0x5000]).toBe(1);
  });

  it("WRPKRU takes effect at once: a page the TLB holds faults after access-disable", () => {
    const m = pkMachine();
    // mov esi, [PK_PAGE]; (PKRU = 4); mov ebx, [PK_PAGE]; hlt
    m.runCode(setPke + "8b 34 25 00 40 00 40" + wrpkru(0x04) + "8b 1c 25 00 40 00 40 f4");
    expect(m.reg("rsi") & 0xffn).toBe(0x77n);
    expect(m.vectors()).toEqual([14]);
    expect(frameAt(m, 0x200000, true).error).toBe(0x21n);
  });
});

describe("privileged instructions", () => {
  it.each([
    ["HLT", "f4"],
    ["MOV CR3, RAX", "0f 22 d8"],
    ["MOV RAX, CR0", "0f 20 c0"],
    ["MOV DR7, RAX", "0f 23 f8"],
    ["WRMSR", "0f 30"],
    ["RDMSR", "0f 32"],
    ["LGDT [RAX]", "0f 01 10"],
    ["INVLPG [RAX]", "0f 01 38"],
    ["SWAPGS", "0f 01 f8"],
    ["WBINVD", "0f 09"],
    ["CLI (IOPL 0)", "fa"],
    ["STI (IOPL 0)", "fb"],
    ["OUT (IOPL 0, bitmap all ones)", "e6 80"],
    ["LTR AX", "0f 00 d8"],
    ["CLTS", "0f 06"],
  ])("%s at CPL 3 is #GP(0) at the instruction", (_name, code) => {
    const m = userMachine();
    runUser(m, code);
    expect(m.vectors()).toEqual([13]);
    expect(frameAt(m, RSP0, true)).toMatchObject({ error: 0n, rip: BigInt(UCODE), cs: BigInt(USER_CS) });
    expect(m.bus.outs.filter((o) => o.port === 0x80)).toEqual([]);
  });

  it("IOPL 3 allows CLI, STI and port I/O at CPL 3", () => {
    const m = userMachine();
    // cli; sti; out 0x80, al; push 0x202; popfq; pushfq; pop rcx; int 0x80
    runUser(m, "fa fb e6 80 68 02 02 00 00 9d 9c 59 cd 80", 0x3002);
    expect(m.vectors()).toEqual([0x80]);
    expect(m.bus.outs.filter((o) => o.port === 0x80).length).toBe(1);
    // POPF at CPL 3 cannot lower IOPL; it may set IF at CPL ≤ IOPL.
    expect(Number(m.reg("rcx")) & 0x3200).toBe(0x3200);
  });

  it("POPF at CPL 3 above IOPL changes neither IF nor IOPL, and does not fault", () => {
    const m = userMachine();
    runUser(m, "68 02 32 00 00 9d 9c 59 cd 80"); // push 0x3202; popfq; pushfq; pop rcx; int 0x80
    expect(m.vectors()).toEqual([0x80]);
    expect(Number(m.reg("rcx")) & 0x3200).toBe(0);
  });

  it("the TSS I/O bitmap opens single ports at CPL 3; an access is allowed only if every byte is", () => {
    const m = userMachine();
    m.ram[TSS + IOMAP + (0x70 >> 3)] &= ~(1 << (0x70 & 7));
    runUser(m, "e6 70 cd 80"); // out 0x70, al; int 0x80
    expect(m.vectors()).toEqual([0x80]);
    expect(m.bus.outs.filter((o) => o.port === 0x70).length).toBe(1);

    for (const code of ["e6 71", "66 ba 6f 00 66 ef"]) { // out 0x71, al; mov dx, 0x6f; out dx, ax (0x6f–0x70)
      const n = userMachine();
      n.ram[TSS + IOMAP + (0x70 >> 3)] &= ~(1 << (0x70 & 7));
      runUser(n, code);
      expect(n.vectors()).toEqual([13]);
      expect(n.bus.outs.filter((o) => o.port !== 0xe9)).toEqual([]);
    }
  });

  it.each([
    ["RDTSC", "0f 31 cd 80"],
    ["RDTSCP", "0f 01 f9 cd 80"],
  ])("CR4.TSD makes %s at CPL 3 #GP(0); without it it works at CPL 3", (_name, code) => {
    const setTsd = "0f 20 e0 83 c8 04 0f 22 e0"; // mov rax, cr4; or eax, 4; mov cr4, rax
    const m = userMachine();
    runUser(m, code, 0x2, setTsd);
    expect(m.vectors()).toEqual([13]);
    expect(frameAt(m, RSP0, true)).toMatchObject({ error: 0n, rip: BigInt(UCODE) });

    const n = userMachine();
    runUser(n, code);
    expect(n.vectors()).toEqual([0x80]);
  });

  it("the bitmap is read a word at a time: a port whose byte is the last inside the TSS limit is refused", () => {
    for (const [extra, allowed] of [[0, false], [1, true]] as const) {
      const m = userMachine();
      m.ram[TSS + IOMAP + (0x70 >> 3)] &= ~(1 << (0x70 & 7));
      setTssLimit(m, IOMAP + (0x70 >> 3) + extra);
      runUser(m, "e6 70 cd 80"); // out 0x70, al; int 0x80
      expect(m.vectors()).toEqual([allowed ? 0x80 : 13]);
    }
  });

  it("CR4.UMIP makes SGDT at CPL 3 #GP(0); without it SGDT works at CPL 3", () => {
    const setUmip = "0f 20 e0 0d 00 08 00 00 0f 22 e0"; // mov rax, cr4; or eax, 0x800; mov cr4, rax
    const m = userMachine();
    runUser(m, "0f 01 44 24 f0 cd 80", 0x2, setUmip); // sgdt [rsp-16]; int 0x80
    expect(m.vectors()).toEqual([13]);

    const n = userMachine();
    runUser(n, "0f 01 44 24 f0 cd 80");
    expect(n.vectors()).toEqual([0x80]);
    expect(n.view.getUint16(UCODE_PA + 0x1000 + 0x1000 - 16, true)).toBe(0x4f);
  });
});

describe("segment loads at CPL 3", () => {
  it("MOV DS with a DPL-0 data selector is #GP(selector)", () => {
    const m = userMachine();
    runUser(m, "66 b8 10 00 8e d8"); // mov ax, 0x10; mov ds, ax
    expect(m.vectors()).toEqual([13]);
    expect(frameAt(m, RSP0, true).error).toBe(0x10n);
  });

  it("MOV SS with a null selector is #GP(0) at CPL 3", () => {
    const m = userMachine();
    runUser(m, "66 b8 03 00 8e d0"); // mov ax, 3; mov ss, ax
    expect(m.vectors()).toEqual([13]);
    expect(frameAt(m, RSP0, true).error).toBe(0n);
  });
});

describe("SYSCALL and SYSRET", () => {
  // EFER.SCE, STAR = 0x0018_0008_0000_0000, LSTAR = SYSCALL_ENTRY, FMASK = 0x700 (TF IF DF).
  const setup = "b9 80 00 00 c0 0f 32 83 c8 01 0f 30 b9 81 00 00 c0 31 c0 ba 08 00 18 00 0f 30 b9 82 00 00 c0 b8 00 34 00 00 31 d2 0f 30 b9 84 00 00 c0 b8 00 07 00 00 0f 30";

  it("SYSCALL enters CPL 0 at LSTAR with RCX/R11 saved and FMASK applied; SYSRETQ returns to CPL 3", () => {
    const m = userMachine();
    // Kernel entry: mov r12, rcx; mov r13, r11; mov r14w, cs; mov r15w, ss; sysretq
    m.load(SYSCALL_ENTRY, "49 89 cc 4d 89 dd 66 41 8c ce 66 41 8c d7 48 0f 07");
    runUser(m, "0f 05 cd 80", 0x602, setup); // syscall; int 0x80 (entered with IF and DF set)
    expect(m.vectors()).toEqual([0x80]);
    expect(m.reg("r12")).toBe(BigInt(UCODE + 2));
    expect(m.reg("r13")).toBe(0x602n);
    expect(m.reg("r14") & 0xffffn).toBe(0x08n);
    expect(m.reg("r15") & 0xffffn).toBe(0x10n);
    // Back at CPL 3 after SYSRETQ: CS = STAR[63:48] + 16 | 3, SS = STAR[63:48] + 8 | 3, RFLAGS = R11.
    expect(frameAt(m, RSP0)).toEqual({ rip: BigInt(UCODE + 4), cs: BigInt(USER_CS), rflags: 0x602n, rsp: BigInt(USTACK_TOP), ss: BigInt(USER_SS) });
  });

  it("a SYSCALL made with TF set raises no #DB when SFMASK clears TF (TF is taken as SYSCALL ends)", () => {
    const m = userMachine();
    m.load(SYSCALL_ENTRY, "49 89 cc f4"); // mov r12, rcx; hlt
    // pushfq; or qword [rsp], 0x100; popfq; syscall — TF traps after the instruction following the POPF.
    runUser(m, "9c 48 81 0c 24 00 01 00 00 9d 0f 05", 0x2, setup);
    expect(m.vectors()).toEqual([]);
    expect(m.halted).toBe(true);
    expect(m.reg("r12")).toBe(BigInt(UCODE + 12));
    expect(m.reg("r11") & 0x100n).toBe(0x100n);
  });

  it("SYSCALL without EFER.SCE is #UD; SYSRETQ at CPL 3 is #GP(0)", () => {
    const m = userMachine();
    runUser(m, "0f 05");
    expect(m.vectors()).toEqual([6]);

    const n = userMachine();
    runUser(n, "48 0f 07", 0x2, setup);
    expect(n.vectors()).toEqual([13]);
  });

  it("SYSRETQ to a non-canonical RCX is #GP(0) at CPL 0", () => {
    const m = userMachine();
    m.runCode(setup + "48 b9 00 00 00 00 00 00 00 80 48 0f 07"); // mov rcx, 1 << 63; sysretq
    expect(m.vectors()).toEqual([13]);
    expect(m.selector(SREG_CS)).toBe(0x08);
  });
});

describe("non-canonical addresses", () => {
  const NC = "48 b8 00 00 00 00 00 00 00 80"; // mov rax, 1 << 63
  it.each([
    ["an RSP-based operand", NC + "48 83 0c 04 00", 12], // or qword [rsp + rax], 0
    ["an RBP-based operand", NC + "48 83 4c 05 00 00", 12], // or qword [rbp + rax + 0], 0
    ["PUSH with a non-canonical RSP", "48 bc 00 00 00 00 00 00 00 80 50", 12], // mov rsp, 1 << 63; push rax
    ["an RBX-based operand", NC + "48 83 0c 03 00", 13], // or qword [rbx + rax], 0
  ])("%s raises the right vector (#SS or #GP) with error code 0", (_what, code, vector) => {
    const m = userMachine();
    m.write64(TSS + 0x24, BigInt(IST1));
    // #SS and #GP run on IST1 so a bad RSP does not turn them into #DF.
    for (const v of [12, 13]) m.write64(IDT + 16 * v, m.read64(IDT + 16 * v) | (1n << 32n));
    m.runCode("66 b8 40 00 0f 00 d8" + code); // ltr first: the IST needs TR
    expect(m.vectors()).toEqual([vector]);
    expect(frameAt(m, IST1, true).error).toBe(0n);
    expect(frameAt(m, IST1, true).rip).toBe(BigInt(CODE + 7 + 10));
  });
});
