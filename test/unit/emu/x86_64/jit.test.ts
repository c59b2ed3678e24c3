// Compiled blocks (jit.ts) against the interpreter's op loop: the same guest state after random
// instruction streams, precise faults in the middle of a compiled block, self-modifying code
// that overwrites a compiled block while it runs, and breakpoints inside compiled blocks.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { GuestBus } from "../../../../src/emu/bus.js";
import { bootMachine, loadGuestImage } from "../../../../src/emu/image.js";
import { GuestMemory } from "../../../../src/emu/memory.js";
import { X86Vp } from "../../../../src/emu/x86_64/index.js";
import { jitOptions, jitStats } from "../../../../src/emu/x86_64/jit.js";
import { RFLAGS, VP_WORDS } from "../../../../src/emu/x86_64/vp-layout.js";
import { CODE, HANDLERS, REG, STACK_TOP, TestMachine } from "./harness.js";

const DATA = 0x180000;
const saved = { ...jitOptions };

beforeAll(() => {
  jitOptions.threshold = 2;
});
afterAll(() => {
  Object.assign(jitOptions, saved);
});

/** A small deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ");

/** Registers the random streams use: not RSP (the stack), not R15 (the loop counter). */
const USABLE = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];

/** REX prefix for a reg/rm pair (null when none is needed). */
function rex(w: boolean, reg: number, rm: number): number[] {
  const v = 0x40 | (w ? 8 : 0) | (reg >= 8 ? 4 : 0) | (rm >= 8 ? 1 : 0);
  return v === 0x40 ? [] : [v];
}
const modrm = (reg: number, rm: number) => 0xc0 | ((reg & 7) << 3) | (rm & 7);

/** One random instruction: mostly the JIT's inline forms, some that stay op closures. */
function randomInsn(next: () => number): number[] {
  const pick = <T>(xs: readonly T[]) => xs[next() % xs.length];
  const a = pick(USABLE);
  const b = pick(USABLE);
  const w = (next() & 1) === 1;
  const imm8 = next() & 0xff;
  switch (next() % 16) {
    case 0: case 1: case 2: // ALU r/m, r: add or adc sbb and sub xor cmp
      return [...rex(w, b, a), pick([0x01, 0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39]), modrm(b, a)];
    case 3: case 4: // ALU r/m, imm8
      return [...rex(w, 0, a), 0x83, modrm(pick([0, 1, 2, 3, 4, 5, 6, 7]), a), imm8];
    case 5: // test
      return [...rex(w, b, a), 0x85, modrm(b, a)];
    case 6: // mov r/m, r
      return [...rex(w, b, a), 0x89, modrm(b, a)];
    case 7: { // mov r32, imm32 / mov r64, imm32 (sign-extended)
      const v = next();
      const le = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
      return w ? [...rex(true, 0, a), 0xc7, modrm(0, a), ...le] : [...rex(false, 0, a), 0xb8 + (a & 7), ...le];
    }
    case 8: // inc / dec
      return [...rex(w, 0, a), 0xff, modrm(next() & 1, a)];
    case 9: case 10: // shifts and rotates by imm8 (rol ror shl shr sar), count 0 included
      return [...rex(w, 0, a), 0xc1, modrm(pick([0, 1, 4, 5, 7]), a), next() % 3 === 0 ? 0 : imm8 & 63];
    case 11: // setcc r8 / cmovcc
      return next() & 1
        ? [...rex(false, 0, a), 0x0f, 0x90 + (next() & 15), modrm(0, a)]
        : [...rex(w, a, b), 0x0f, 0x40 + (next() & 15), modrm(a, b)];
    case 12: // imul r, r/m
      return [...rex(w, a, b), 0x0f, 0xaf, modrm(a, b)];
    case 13: // lea r, [b + a*2 + d8]
      return leaSib(a, b, imm8);
    case 14: // pushfq; pop r (reads every flag)
      return [0x9c, ...(a >= 8 ? [0x41] : []), 0x58 + (a & 7)];
    default: // store to and add from the data page: mov [rip-free abs], r via r/m with disp32 off a fixed base
      return memOp(next, a, w);
  }
}

function leaSib(a: number, b: number, d8: number): number[] {
  // lea a, [b + b*2 + d8]: avoid index = RSP (100b without REX.X).
  const idx = b;
  const r = 0x48 | (a >= 8 ? 4 : 0) | (idx >= 8 ? 2 : 0) | (b >= 8 ? 1 : 0);
  if ((idx & 7) === 4 && idx < 8) return [0x90];
  return [r, 0x8d, 0x44 | ((a & 7) << 3), (1 << 6) | ((idx & 7) << 3) | (b & 7), d8];
}

/** mov [DATA + off], r / add r, [DATA + off] through a 32-bit absolute address (SIB, no base). */
function memOp(next: () => number, a: number, w: boolean): number[] {
  const off = (next() % 64) * 8;
  const addr = DATA + off;
  const le = [addr & 0xff, (addr >>> 8) & 0xff, (addr >>> 16) & 0xff, addr >>> 24];
  const op = next() & 1 ? 0x89 : 0x03;
  return [...rex(w, a, 0), op, 0x04 | ((a & 7) << 3), 0x25, ...le];
}

/** A loop of `body` run `iterations` times (R15 counts), then HLT. */
function loop(body: number[], iterations: number): string {
  // mov r15d, n ; top: body ; dec r15d ; jnz top ; hlt
  const n = iterations;
  const head = [0x41, 0xbf, n & 0xff, (n >>> 8) & 0xff, 0, 0];
  const tail = [0x41, 0xff, 0xcf];
  const rel = -(body.length + tail.length + 6);
  const jnz = [0x0f, 0x85, rel & 0xff, (rel >>> 8) & 0xff, (rel >>> 16) & 0xff, (rel >>> 24) & 0xff];
  return hex([...head, ...body, ...tail, ...jnz, 0xf4]);
}

interface Snapshot { regs: bigint[]; rip: bigint; rflags: number; retired: number; data: string; outs: string }

function snapshot(m: TestMachine): Snapshot {
  return {
    regs: Object.keys(REG).map((k) => m.reg(k as keyof typeof REG)),
    rip: m.rip,
    rflags: m.rflags,
    retired: m.vp.retired,
    data: Buffer.from(m.ram.subarray(DATA, DATA + 1024)).toString("hex"),
    outs: JSON.stringify(m.bus.outs),
  };
}

/** Run the same setup with and without the JIT; returns both snapshots and the exits. */
function both(setup: (m: TestMachine) => void, run: (m: TestMachine) => unknown) {
  const out: { snap: Snapshot; exit: unknown; compiled: number }[] = [];
  for (const enabled of [false, true]) {
    jitOptions.enabled = enabled;
    const before = jitStats.compiled;
    const m = new TestMachine();
    setup(m);
    const exit = run(m);
    out.push({ snap: snapshot(m), exit, compiled: jitStats.compiled - before });
  }
  jitOptions.enabled = true;
  return { interp: out[0], jit: out[1] };
}

function seedRegs(m: TestMachine, next: () => number): void {
  for (const r of USABLE) m.setReg(Object.keys(REG)[r] as keyof typeof REG, (BigInt(next()) << 32n) | BigInt(next()));
  m.rflags = next() & 0x8d5;
  m.setReg("rsp", BigInt(STACK_TOP));
}

describe("compiled blocks match the interpreter", () => {
  it("over 200 random instruction streams (registers, RFLAGS, memory, retired count)", () => {
    let compiled = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const next = rng(seed * 7919);
      const body: number[] = [];
      const count = 1 + (next() % 40);
      for (let i = 0; i < count; i++) body.push(...randomInsn(next));
      const code = loop(body, 5);
      const { interp, jit } = both(
        (m) => seedRegs(m, rng(seed)),
        (m) => m.runCode(code, 100_000),
      );
      expect({ seed, ...jit.snap }).toEqual({ seed, ...interp.snap });
      expect(jit.exit).toEqual(interp.exit);
      compiled += jit.compiled;
    }
    expect(compiled).toBeGreaterThan(150);
  });
});

describe("faults inside a compiled block", () => {
  it("leave RIP, registers and flags as the interpreter does (#PF on the 4th instruction)", () => {
    // top: add eax, 1 ; cmp eax, 3 ; cmovae rbx, rsi ; mov ecx, [rbx] ; add edx, ecx ; dec r15d ; jnz top
    // rbx points at mapped data until eax reaches 3, then at an unmapped address: #PF mid-block.
    const code = loop([0x83, 0xc0, 0x01, 0x83, 0xf8, 0x05, 0x48, 0x0f, 0x43, 0xde, 0x8b, 0x0b, 0x01, 0xca], 10);
    const { interp, jit } = both(
      (m) => {
        m.installIdt();
        m.setReg("rbx", BigInt(DATA));
        m.setReg("rsi", 0x7f0000000000n);
        m.setReg("rsp", BigInt(STACK_TOP));
      },
      (m) => m.runCode(code, 10_000),
    );
    expect(jit.snap).toEqual(interp.snap);
    expect(jit.compiled).toBeGreaterThan(0);
    expect(jit.snap.rip).toBe(BigInt(HANDLERS + 16 * 14 + 5)); // the #PF handler's HLT
  });

  it("report the faulting instruction's RIP in the exception frame", () => {
    const code = loop([0x83, 0xc0, 0x01, 0x83, 0xf8, 0x05, 0x48, 0x0f, 0x43, 0xde, 0x8b, 0x0b, 0x01, 0xca], 10);
    jitOptions.enabled = true;
    const m = new TestMachine();
    m.installIdt();
    m.setReg("rbx", BigInt(DATA));
    m.setReg("rsi", 0x7f0000000000n);
    m.setReg("rsp", BigInt(STACK_TOP));
    m.runCode(code, 10_000);
    expect(m.vectors()).toEqual([14]);
    // #PF pushes error code, RIP, CS, RFLAGS, RSP, SS: RIP is at RSP + 8.
    expect(m.read64(Number(m.reg("rsp")) + 8)).toBe(BigInt(CODE + 6 + 10));
    expect(m.reg("rax")).toBe(14n); // the handler's mov al, 14 over the 5 the loop reached
  });
});

describe("self-modifying code in a compiled block", () => {
  it("runs the new bytes when the block's own store overwrites a later instruction of it", () => {
    // top: mov ebx, DATA2 ; cmp r15d, 1 ; cmove ebx, edx ; mov byte [rbx], 5 ; add eax, 1 ; add eax, 1 ; dec r15d ; jnz top
    // rdx = the address of the second ADD's imm8: only the last iteration patches it (to 5).
    const body = [0xbb, 0, 0, 0x18, 0, 0x41, 0x83, 0xff, 0x01, 0x0f, 0x44, 0xda, 0xc6, 0x03, 0x05, 0x83, 0xc0, 0x01, 0x83, 0xc0, 0x01];
    const code = loop(body, 20);
    const patched = CODE + 6 + body.length - 1;
    const { interp, jit } = both(
      (m) => m.setReg("rdx", BigInt(patched)),
      (m) => m.runCode(code, 100_000),
    );
    expect(jit.compiled).toBeGreaterThan(0);
    expect(jit.snap).toEqual(interp.snap);
    expect(jit.snap.regs[0]).toBe(19n * 2n + 1n + 5n);
  });

  it("drops a compiled block when another run's store rewrites it", () => {
    jitOptions.enabled = true;
    const m = new TestMachine();
    // mov eax, 0 ; top: add eax, 2 ; dec r15d ; jnz top ; hlt
    m.runCode(loop([0x83, 0xc0, 0x02], 10), 10_000);
    expect(m.reg("rax")).toBe(20n);
    // A guest store rewrites the loop's immediate (add eax, 3), then the loop runs again.
    m.setReg("rax", 0n);
    m.setReg("rbx", BigInt(CODE + 6 + 2));
    m.runCode("c6 03 03 f4", 100, CODE + 0x100); // mov byte [rbx], 3 ; hlt
    m.rip = BigInt(CODE);
    m.halted = false;
    m.vp.run(10_000);
    expect(m.reg("rax")).toBe(30n);
  });
});

describe("breakpoints inside compiled blocks", () => {
  // top: add eax, 1 ; add ebx, 2 ; add ecx, 3 ; dec r15d ; jnz top ; hlt
  const body = [0x83, 0xc0, 0x01, 0x83, 0xc3, 0x02, 0x83, 0xc1, 0x03];
  const mid = CODE + 6 + 6; // add ecx, 3

  it("a software breakpoint stops before its instruction, with the instructions before it done", () => {
    jitOptions.enabled = true;
    const m = new TestMachine();
    m.runCode(loop(body, 1000), 50); // hot: compiled
    const before = jitStats.compiled;
    expect(before).toBeGreaterThan(0);
    const rax = m.reg("rax");
    m.sw.add({ id: 7, kind: "gva", lo: mid, hi: 0, vp: -1, gpa: 0, oneShot: false });
    expect(m.vp.run(10_000)).toEqual({ kind: "swBreakpoint", id: 7 });
    expect(m.rip).toBe(BigInt(mid));
    expect(m.reg("rcx") + 3n).toBe(m.reg("rbx") / 2n * 3n);
    expect(m.reg("rax") > rax).toBe(true);
    // Resuming steps off it and stops there on the next iteration.
    const retired = m.vp.retired;
    expect(m.vp.run(10_000)).toEqual({ kind: "swBreakpoint", id: 7 });
    expect(m.vp.retired - retired).toBe(5);
  });

  it("a breakpoint at the start of a block that loops to itself fires on every pass", () => {
    jitOptions.enabled = true;
    const m = new TestMachine();
    const top = CODE + 6;
    m.runCode(loop(body, 1000), 50);
    for (const arm of ["sw", "hw"] as const) {
      if (arm === "sw") m.sw.add({ id: 9, kind: "gva", lo: top, hi: 0, vp: -1, gpa: 0, oneShot: false });
      else m.vp.setDebug({ singleStep: false, slots: [{ addressLo: top, addressHi: 0, type: 0, length: 1 }, null, null, null] });
      const hits: bigint[] = [];
      for (let i = 0; i < 4; i++) {
        const x = m.vp.run(10_000);
        expect(x.kind).toBe(arm === "sw" ? "swBreakpoint" : "hwBreakpoint");
        expect(m.rip).toBe(BigInt(top));
        hits.push(m.reg("rax"));
      }
      expect(hits.slice(1).map((h, i) => h - hits[i])).toEqual([1n, 1n, 1n]);
      m.sw.clear();
      m.vp.setDebug({ singleStep: false, slots: [null, null, null, null] });
    }
  });

  it("an execute slot stops before its instruction without leaving the fast loop for the others", () => {
    jitOptions.enabled = true;
    const m = new TestMachine();
    m.runCode(loop(body, 1000), 50);
    m.vp.setDebug({ singleStep: false, slots: [null, { addressLo: mid, addressHi: 0, type: 0, length: 1 }, null, null] });
    expect(m.vp.run(10_000)).toEqual({ kind: "hwBreakpoint", slot: 1 });
    expect(m.rip).toBe(BigInt(mid));
    const retired = m.vp.retired;
    expect(m.vp.run(10_000)).toEqual({ kind: "hwBreakpoint", slot: 1 });
    expect(m.vp.retired - retired).toBe(5);
    // Slots armed elsewhere: the loop runs to its end.
    m.vp.setDebug({ singleStep: false, slots: [0, 1, 2, 3].map((i) => ({ addressLo: 0x7000 + i, addressHi: 0, type: 0 as const, length: 1 as const })) });
    expect(m.vp.run(100_000)).toEqual({ kind: "halted" });
    expect(m.reg("r15")).toBe(0n);
  });

  it("single-step and the guest's TF still go one instruction at a time", () => {
    jitOptions.enabled = true;
    const m = new TestMachine();
    m.runCode(loop(body, 1000), 50);
    m.vp.setDebug({ singleStep: true, slots: [null, null, null, null] });
    const rip = m.rip;
    expect(m.vp.run(10_000)).toEqual({ kind: "singleStep" });
    expect(m.vp.retired).toBe(51);
    expect(m.rip).not.toBe(rip);
    m.vp.setDebug({ singleStep: false, slots: [null, null, null, null] });
    m.installIdt();
    m.setReg("rsp", BigInt(STACK_TOP));
    m.rflags = m.word(RFLAGS) | 0x100;
    const r0 = m.vp.retired;
    m.vp.run(10_000);
    // One instruction, then #DB (its handler reports vector 1 and halts).
    expect(m.vectors()).toEqual([1]);
    expect(m.vp.retired - r0).toBeLessThanOrEqual(4);
  });
});

describe("the C corpus (guests/build) compiled and interpreted", () => {
  const dir = join(__dirname, "..", "..", "..", "..", "guests", "build");
  const programs = ["crc32", "sha256", "qsort", "strings", "bytecode", "recurse", "muldiv", "setjmp", "atomics", "debugregs", "float", "usermode"];
  const variants = ["O2", "v3", "Os"];

  /** Boot a corpus image on one VP and run it to its power-off (the console and the exit it reports). */
  function runImage(manifest: string, jit: boolean) {
    jitOptions.enabled = jit;
    const image = loadGuestImage(manifest);
    const mem = GuestMemory.allocate([{ gpa: 0, size: 32 * 1024 * 1024, name: "ram" }]);
    const regs = new Uint32Array(new SharedArrayBuffer(VP_WORDS * 4));
    bootMachine(mem, regs, image, 1);
    const passes = image.symbols.corpus_passes;
    if (passes !== undefined) new DataView(mem.regions[0].bytes.buffer).setInt32(Number(passes.gpa), 1, true);
    let out = "";
    const bus: GuestBus = {
      regions: mem.regions,
      regionAt: (g: number) => mem.regions.find((r) => g >= r.gpa && g < r.gpa + r.size),
      portOut: (port: number, _size: number, value: number) => {
        if (port === 0xe9) out += String.fromCharCode(value & 0xff);
        return port === 0x604 ? "powerOff" : "none";
      },
      portIn: (_port: number, size: number) => (size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
      noteGuestWrite: () => {},
    } as unknown as GuestBus;
    const vp = new X86Vp(regs, 0, bus);
    let exit = vp.run(200_000_000);
    for (let i = 0; i < 100 && exit.kind === "budget"; i++) exit = vp.run(200_000_000);
    jitOptions.enabled = true;
    return { out, exit, retired: vp.retired, regs: Array.from(regs.subarray(0, 40)) };
  }

  // Each program at one variant in turn (O2, v3, Os, O2, …) keeps this file to a third of the
  // time; JIT_CORPUS_ALL=1 runs every program at every variant.
  const all = process.env.JIT_CORPUS_ALL === "1";
  for (const [i, p] of programs.entries()) {
    for (const v of all ? variants : [variants[i % variants.length]]) {
      const manifest = join(dir, `c-${p}-${v}.json`);
      const exists = existsSync(manifest);
      (exists ? it : it.skip)(`c-${p}-${v}: the same console output, exit, retired count and registers`, () => {
        const interp = runImage(manifest, false);
        const before = jitStats.compiled;
        const compiled = runImage(manifest, true);
        expect(interp.exit).toEqual({ kind: "powerOff" });
        expect(interp.out).toContain("exit 0x");
        expect(jitStats.compiled - before).toBeGreaterThan(0);
        expect(compiled).toEqual(interp);
      });
    }
  }
});
