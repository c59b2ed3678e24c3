// The bridge's register files against the SDK's VP states: numbering, `g`/`p` hex, all-or-nothing
// `G`/`P`, aarch64's current stack pointer by PSTATE mode, and target.xml as src/rsp reads it.
import type { Aarch64VpState, DebuggerVpState, X86VpState } from "../../../src/client";
import { AARCH64_REGISTER_FILE, X86_REGISTER_FILE } from "../../../src/gdb";
import { bigintToLeHex, loadTargetDescription } from "../../../src/rsp";

const seg = (selector: number, base = 0n) => ({ selector, base, limit: 0xffff_ffff, attributes: 0xa09b });

function x86(): DebuggerVpState {
  const s: X86VpState = {
    gp: Array.from({ length: 16 }, (_, i) => BigInt(i) * 0x1111n),
    rip: 0xffff_ffff_8010_1000n,
    rflags: 0x246n,
    cr0: 0x8000_0011n,
    cr2: 0n,
    cr3: 0x1000n,
    cr4: 0x20n,
    cr8: 0n,
    efer: 0x500n,
    kernelGsBase: 0x77n,
    es: seg(0x10),
    cs: seg(0x8),
    ss: seg(0x10),
    ds: seg(0x10),
    fs: seg(0x10, 0xf5n),
    gs: seg(0x10, 0x65n),
  };
  return { arch: "x86_64", state: s };
}

function arm(cpsr: bigint): DebuggerVpState {
  const s: Aarch64VpState = {
    x: Array.from({ length: 31 }, (_, i) => BigInt(i) + 0x100n),
    spEl0: 0xe0n,
    spEl1: 0xe1n,
    pc: 0xffff_0000_4008_1090n,
    cpsr,
    sctlrEl1: 0xc5183dn,
    tcrEl1: 0x4b5103590n,
    ttbr0El1: 0n,
    ttbr1El1: 0x40085000n,
  };
  return { arch: "aarch64", state: s };
}

const regnum = (file: typeof X86_REGISTER_FILE, name: string) => {
  for (let i = 0; i < file.count; i++) if (file.name(i) === name) return i;
  throw new Error(`no ${name}`);
};

async function describe_(xml: string) {
  return loadTargetDescription(async (annex) => {
    if (annex !== "target.xml") throw new Error(annex);
    return xml;
  });
}

describe("x86-64 register file", () => {
  it("numbers registers in gdb's amd64 order and formats them little-endian, x87 as unavailable without fp", () => {
    const f = X86_REGISTER_FILE;
    expect(f.name(0)).toBe("rax");
    expect(f.name(2)).toBe("rcx");
    expect(f.format(x86(), 2)).toBe(bigintToLeHex(0x1111n, 8)); // rcx is gp[1]
    expect(f.format(x86(), regnum(f, "rip"))).toBe(bigintToLeHex(0xffff_ffff_8010_1000n, 8));
    expect(f.format(x86(), regnum(f, "st0"))).toBe("x".repeat(20));
    expect(f.format(x86(), regnum(f, "gs_base"))).toBe(bigintToLeHex(0x65n, 8)); // gs's own base, not fs's
    expect(f.pc(x86())).toBe(0xffff_ffff_8010_1000n);
  });

  it("G round-trips g without a change, and a P that cannot be made completely is refused", () => {
    const f = X86_REGISTER_FILE;
    const s = x86();
    const same = f.withAll(s, f.formatAll(s));
    expect(same).toEqual({ state: s });
    expect("refused" in f.withAll(s, f.formatAll(s).slice(2))).toBe(true);
    const rax = f.withRegister(s, 0, bigintToLeHex(0xdeadn, 8));
    expect("state" in rax && rax.state.arch === "x86_64" && rax.state.state.gp[0]).toBe(0xdeadn);
    expect((s.state as X86VpState).gp[0]).toBe(0n); // the input is not changed
    expect(f.withRegister(s, regnum(f, "st0"), "01" + "00".repeat(9))).toEqual({ refused: "st0: the FP state is not known" });
  });

  describe("x87 and SSE registers from the state's fp", () => {
    const f = X86_REGISTER_FILE;
    const bytes = (v: bigint, n: number) => Uint8Array.from({ length: n }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
    function withFp(): DebuggerVpState {
      const s = x86();
      (s.state as X86VpState).fp = {
        xmm: Array.from({ length: 16 }, (_, n) => bytes(0x0f0e0d0c_0b0a0908_07060504_03020100n + BigInt(n), 16)),
        mxcsr: 0x1f80,
        // TOP = 6: ST(0) = R6 = 1.0, ST(1) = R7 = 2.0, the rest empty (zeros).
        st: [0x3fff_8000_0000_0000_0000n, 0x4000_8000_0000_0000_0000n, 0n, 0n, 0n, 0n, 0n, 0n].map((v) => bytes(v, 10)),
        fcw: 0x037f,
        fsw: 6 << 11,
        ftw: 0x0fff,
        fop: 0x1e8,
        fip: 0x1234_5678_9abc_def0n,
        fdp: 0xffff_ffff_8020_0010n,
        xcr0: 1n,
      };
      return s;
    }

    it("shows st0-st7 (stack order), the x87 words, xmm0-15 and mxcsr; fiseg/foseg are the pointers' high halves", () => {
      const s = withFp();
      expect(f.format(s, regnum(f, "st0"))).toBe(bigintToLeHex(0x3fff_8000_0000_0000_0000n, 10));
      expect(f.format(s, regnum(f, "st1"))).toBe(bigintToLeHex(0x4000_8000_0000_0000_0000n, 10));
      expect(f.format(s, regnum(f, "xmm3"))).toBe(bigintToLeHex(0x0f0e0d0c_0b0a0908_07060504_03020103n, 16));
      const word = (name: string) => BigInt("0x" + (f.format(s, regnum(f, name)).match(/../g) ?? []).reverse().join(""));
      expect(["fctrl", "fstat", "ftag", "fop", "mxcsr"].map(word)).toEqual([0x037fn, 0x3000n, 0x0fffn, 0x1e8n, 0x1f80n]);
      expect(["fiseg", "fioff", "foseg", "fooff"].map(word)).toEqual([0x1234_5678n, 0x9abc_def0n, 0xffff_ffffn, 0x8020_0010n]);
    });

    it("writes them into a copy of fp; fstat's TOP moves the stack over the same physical registers", () => {
      const s = withFp();
      const fp = () => ((r: ReturnType<typeof f.withRegister>) => ("state" in r && r.state.arch === "x86_64" ? r.state.state.fp! : undefined));
      const xmm = fp()(f.withRegister(s, regnum(f, "xmm15"), bigintToLeHex(0xabcn, 16)));
      expect(xmm?.xmm[15]).toEqual(bytes(0xabcn, 16));
      expect((s.state as X86VpState).fp!.xmm[15]).toEqual(bytes(0x0f0e0d0c_0b0a0908_07060504_03020100n + 15n, 16));
      const st1 = fp()(f.withRegister(s, regnum(f, "st1"), bigintToLeHex(0x4000_c000_0000_0000_0000n, 10)));
      expect(st1?.st[1]).toEqual(bytes(0x4000_c000_0000_0000_0000n, 10));
      // TOP 6 -> 7: ST(0) becomes R7 (2.0), ST(7) R6 (1.0).
      const top7 = fp()(f.withRegister(s, regnum(f, "fstat"), bigintToLeHex(7n << 11n, 4)));
      expect(top7?.fsw).toBe(7 << 11);
      expect(top7?.st[0]).toEqual(bytes(0x4000_8000_0000_0000_0000n, 10));
      expect(top7?.st[7]).toEqual(bytes(0x3fff_8000_0000_0000_0000n, 10));
      const fiseg = fp()(f.withRegister(s, regnum(f, "fiseg"), bigintToLeHex(0xffff_ffffn, 4)));
      expect(fiseg?.fip).toBe(0xffff_ffff_9abc_def0n);
      expect(f.withRegister(s, regnum(f, "mxcsr"), bigintToLeHex(0x1_0000n, 4))).toEqual({ refused: "mxcsr: MXCSR bits 31:16 are reserved" });
      expect(f.withRegister(s, regnum(f, "fctrl"), bigintToLeHex(0x1_0000n, 4))).toEqual({ refused: "fctrl: fctrl is 16 bits" });
      expect(f.withAll(s, f.formatAll(s))).toEqual({ state: s });
    });

    it("declares gdb's SSE feature with vec128 and i386_mxcsr", async () => {
      const d = await describe_(f.targetXml);
      expect(d.byName.get("xmm0")).toMatchObject({ bitsize: 128, feature: "org.gnu.gdb.i386.sse" });
      expect(d.byName.get("mxcsr")).toMatchObject({ bitsize: 32, feature: "org.gnu.gdb.i386.sse" });
      expect(f.targetXml).toMatch(/<union id="vec128">/);
      expect(f.targetXml).toMatch(/<flags id="i386_mxcsr" size="4">/);
    });
  });

  it("serves a target.xml src/rsp loads as i386:x86-64 with the control registers", async () => {
    const d = await describe_(X86_REGISTER_FILE.targetXml);
    expect(d.architecture).toBe("i386:x86-64");
    expect(d.registers).toHaveLength(X86_REGISTER_FILE.count);
    expect(d.byName.get("cr3")?.feature).toBe("org.vmm-debug.x86.sys");
  });
});

describe("aarch64 register file", () => {
  const f = AARCH64_REGISTER_FILE;
  const sp = regnum(f, "sp");

  it("numbers x0–x30, sp, pc, cpsr as gdb's aarch64 core, then the EL1 system registers", async () => {
    const d = await describe_(f.targetXml);
    expect(d.architecture).toBe("aarch64");
    expect(d.registers.slice(0, 34).map((r) => r.name)).toEqual([...Array.from({ length: 31 }, (_, i) => `x${i}`), "sp", "pc", "cpsr"]);
    expect(d.byName.get("cpsr")).toMatchObject({ regnum: 33, bitsize: 32, feature: "org.gnu.gdb.aarch64.core" });
    expect(d.byName.get("ttbr1_el1")?.feature).toBe("org.vmm-debug.aarch64.sys");
    expect(f.format(arm(0x3c5n), 30)).toBe(bigintToLeHex(0x11en, 8));
    expect(f.pc(arm(0x3c5n))).toBe(0xffff_0000_4008_1090n);
  });

  it("shows and writes the stack pointer of the current mode: SP_EL1 at EL1h, SP_EL0 at EL1t and EL0t", () => {
    expect(f.format(arm(0x3c5n), sp)).toBe(bigintToLeHex(0xe1n, 8));
    expect(f.format(arm(0x3c4n), sp)).toBe(bigintToLeHex(0xe0n, 8));
    expect(f.format(arm(0x0n), sp)).toBe(bigintToLeHex(0xe0n, 8));
    const el1h = f.withRegister(arm(0x3c5n), sp, bigintToLeHex(0x9000n, 8));
    expect("state" in el1h && el1h.state.arch === "aarch64" && [el1h.state.state.spEl0, el1h.state.state.spEl1]).toEqual([0xe0n, 0x9000n]);
    const el0 = f.withRegister(arm(0x0n), sp, bigintToLeHex(0x9000n, 8));
    expect("state" in el0 && el0.state.arch === "aarch64" && [el0.state.state.spEl0, el0.state.state.spEl1]).toEqual([0x9000n, 0xe1n]);
  });

  it("at EL2 (whose SP vmm-debug does not carry) shows sp unavailable and refuses to write it", () => {
    expect(f.format(arm(0x3c9n), sp)).toBe("x".repeat(16));
    const r = f.withRegister(arm(0x3c9n), sp, bigintToLeHex(0x9000n, 8));
    expect(r).toEqual({ refused: expect.stringMatching(/^sp: the VP is not at EL0 or EL1/) });
  });

  it("G round-trips g, and refuses an x86 state", () => {
    const s = arm(0x3c5n);
    expect(f.withAll(s, f.formatAll(s))).toEqual({ state: s });
    expect(() => f.formatAll(x86())).toThrow(/x86_64 VP state given to the aarch64 register file/);
  });
});
