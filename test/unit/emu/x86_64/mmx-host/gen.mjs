// Records the host corpus in ../mmx-host/corpus.json for ../mmx.test.ts: random MMX instructions
// (MMX, the SSE/SSE2/SSSE3 MM forms, EMMS, the conversions with an MM operand, MOVQ2DQ/MOVDQ2Q,
// MASKMOVQ/MASKMOVDQU) and a few MMX/x87 sequences, on random x87 states (TOP, abridged tags,
// register contents with any sign/exponent word, sometimes a pending unmasked exception), random
// GPRs, XMM0-3 and MXCSR, and memory operands that fault (#PF, #GP), assembled with GNU as and run
// on this host by ./runner. The corpus keeps the physical registers R0-R7 (the runner's FXSAVE
// images are in ST order).
// Usage: gcc -O1 -o /tmp/mmx-runner runner.c run.S && node gen.mjs /tmp/mmx-runner > corpus.json
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const COUNT = Number(process.env.COUNT ?? 1200);
let seed = Number(process.env.SEED ?? 20261130) >>> 0;
/** mulberry32: uniform in [0, n). */
const rnd = (n) => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
};
const pick = (a) => a[rnd(a.length)];
const hex = (v, digits) => v.toString(16).padStart(digits, "0");
const r32 = () => (BigInt(rnd(0x10000)) << 16n) | BigInt(rnd(0x10000));
const r64 = () => (r32() << 32n) | r32();

// ------------------------------------------------------------------ values

const LANES = [0n, 1n, 0xffffffffffffffffn, 0x8000000000000000n, 0x7fffffffffffffffn, 0x8000800080008000n, 0x7fff7fff7fff7fffn,
  0x8080808080808080n, 0x7f7f7f7f7f7f7f7fn, 0x00ff00ff00ff00ffn, 0x0102030405060708n, 0x8000000080000000n, 0x7fffffff7fffffffn,
  0x0000000100000001n, 0xfffefffdfffcfffbn];
function mm() {
  switch (rnd(5)) {
    case 0: return pick(LANES);
    case 1: { // small signed bytes/words: saturation edges
      let v = 0n;
      for (let i = 0; i < 8; i++) v |= BigInt(pick([0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x81, rnd(256)])) << BigInt(8 * i);
      return v;
    }
    case 2: { // shuffle controls: some high bits
      let v = 0n;
      for (let i = 0; i < 8; i++) v |= BigInt(rnd(16) | (rnd(4) === 0 ? 0x80 : 0)) << BigInt(8 * i);
      return v;
    }
    default: return r64();
  }
}
const SE = () => pick([0xffff, 0xffff, 0x0000, 0x3fff, 0x7fff, 0x8000, 0xbfff, rnd(0x10000)]);
const F32 = [0n, 0x80000000n, 0x3f800000n, 0xbf800000n, 0x3fc00000n, 0x7f800000n, 0xff800000n, 0x7fc00000n, 0x4f000000n,
  0xcf000000n, 0x4effffffn, 0xcf000001n, 0x3f000000n, 0x40200000n, 0x4b800001n, 0x00000001n];
const F64 = [0n, 0x3ff0000000000000n, 0xbff8000000000000n, 0x41dfffffffc00000n, 0x41e0000000000000n, 0xc1e0000000000000n,
  0xc1e0000000200000n, 0x7ff8000000000000n, 0x3fe0000000000000n, 0x3ff8000000000000n, 0x4004000000000000n, 0x8000000000000000n];
function xmm() {
  switch (rnd(4)) {
    case 0: { let v = 0n; for (let i = 0; i < 4; i++) v |= (rnd(2) ? pick(F32) : (BigInt(127 - 5 + rnd(40)) << 23n) | (r32() & 0x7fffffn) | (BigInt(rnd(2)) << 31n)) << BigInt(32 * i); return v; }
    case 1: { let v = 0n; for (let i = 0; i < 2; i++) v |= (rnd(2) ? pick(F64) : (BigInt(1023 - 5 + rnd(40)) << 52n) | (r64() & 0xfffffffffffffn) | (BigInt(rnd(2)) << 63n)) << BigInt(64 * i); return v; }
    default: return (r64() << 64n) | r64();
  }
}

// ------------------------------------------------------------------ instructions

const MMR = ["mm0", "mm1", "mm2", "mm3", "mm4", "mm5", "mm6", "mm7"];
const MM = () => pick(MMR);
const XR = ["xmm0", "xmm1", "xmm2", "xmm3"];
const X = () => pick(XR);
const m64 = () => `qword ptr [rbx+${rnd(249)}]`;
const m32 = () => `dword ptr [rbx+${rnd(253)}]`;
const m16 = () => `word ptr [rbx+${rnd(255)}]`;
const m128a = () => `xmmword ptr [rbx+${16 * rnd(16)}]`;
const mmm = () => (rnd(3) ? MM() : m64());
const R32 = () => pick(["eax", "ecx", "edx", "esi"]);
const R64 = () => pick(["rax", "rcx", "rdx", "rsi"]);
const imm = () => pick([0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 0x1b, 0xe4, 0x4e, 0xb1, 0x80, 0xff, rnd(256)]);

const BIN = ("paddb paddw paddd paddq psubb psubw psubd psubq paddsb paddsw paddusb paddusw psubsb psubsw psubusb psubusw " +
  "pcmpeqb pcmpeqw pcmpeqd pcmpgtb pcmpgtw pcmpgtd pmullw pmulhw pmulhuw pmulhrsw pmuludq pmaddwd pmaddubsw pminub pmaxub " +
  "pminsw pmaxsw pavgb pavgw psadbw pabsb pabsw pabsd psignb psignw psignd pand pandn por pxor packsswb packuswb packssdw " +
  "punpckhbw punpckhwd punpckhdq phaddw phaddd phaddsw phsubw phsubd phsubsw pshufb").split(" ");
const SHIFTS = "psllw pslld psllq psrlw psrld psrlq psraw psrad".split(" ");

function instruction() {
  switch (rnd(25)) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
      return `${pick(BIN)} ${MM()}, ${mmm()}`;
    case 8: return `${pick(["punpcklbw", "punpcklwd", "punpckldq"])} ${MM()}, ${rnd(3) ? MM() : m32()}`;
    case 9: case 10: {
      const op = pick(SHIFTS);
      return rnd(2) ? `${op} ${MM()}, ${imm()}` : `${op} ${MM()}, ${mmm()}`;
    }
    case 11: return `${pick(["pshufw", "palignr"])} ${MM()}, ${mmm()}, ${imm()}`;
    case 12: case 13: {
      switch (rnd(9)) {
        case 0: return `movd ${MM()}, ${rnd(2) ? R32() : m32()}`;
        case 1: return `movd ${rnd(2) ? R32() : m32()}, ${MM()}`;
        case 2: return `movq ${MM()}, ${rnd(2) ? R64() : m64()}`;
        case 3: return `movq ${rnd(2) ? R64() : m64()}, ${MM()}`;
        case 4: return `movq ${MM()}, ${MM()}`;
        case 5: return `movntq ${m64()}, ${MM()}`;
        case 6: return `movq2dq ${X()}, ${MM()}`;
        case 7: return `movdq2q ${MM()}, ${X()}`;
        default: return `pmovmskb ${pick([R32(), R64()])}, ${MM()}`;
      }
    }
    case 14: return rnd(2) ? `pextrw ${R32()}, ${MM()}, ${imm()}` : `pinsrw ${MM()}, ${rnd(2) ? R32() : m16()}, ${imm()}`;
    case 15: return rnd(2) ? `maskmovq ${MM()}, ${MM()}` : `maskmovdqu ${X()}, ${X()}`;
    case 16: return "emms";
    case 17: case 18: {
      switch (rnd(6)) {
        case 0: return `cvtpi2ps ${X()}, ${mmm()}`;
        case 1: return `cvtpi2pd ${X()}, ${mmm()}`;
        case 2: return `cvtps2pi ${MM()}, ${rnd(2) ? X() : m64()}`;
        case 3: return `cvttps2pi ${MM()}, ${rnd(2) ? X() : m64()}`;
        case 4: return `cvtpd2pi ${MM()}, ${rnd(2) ? X() : m128a()}`;
        default: return `cvttpd2pi ${MM()}, ${rnd(2) ? X() : m128a()}`;
      }
    }
    // Sequences: MMX then x87 (the stack is full of valid tags), EMMS then x87, x87 then MMX.
    case 19: return `movq ${MM()}, ${R64()}; ${pick(["fld1", "fldz", "fstp st(0)", "fadd st(0), st(1)", "fnstsw ax", "fxch st(3)"])}`;
    case 20: return `paddw ${MM()}, ${MM()}; emms; ${pick(["fld1", "fldz", "fild dword ptr [rbx+8]"])}`;
    case 21: return `${pick(["fld1", "fldpi", "fldz", "fincstp", "ffree st(2)"])}; ${pick(["movq rax, mm0", "movq rax, mm7", "pxor mm1, mm1", "emms"])}`;
    case 22: return `fld1; fld1; movq ${R64()}, ${MM()}; fnstenv [rbx+64]`;
    // Faults on the memory operand (RSI unmapped; a misaligned m128): the x87 state as it was,
    // but for MASKMOVQ (the transition comes before the store).
    case 23: return pick([`movq ${MM()}, qword ptr [rsi]`, `paddb ${MM()}, qword ptr [rsi]`, `movq qword ptr [rsi], ${MM()}`,
      `mov rdi, rsi; maskmovq ${MM()}, ${MM()}`, `cvtpd2pi ${MM()}, xmmword ptr [rbx+8]`, `cvtps2pi ${MM()}, qword ptr [rsi]`,
      `pinsrw ${MM()}, word ptr [rsi], 1`, `movd dword ptr [rsi], ${MM()}`]);
    default: return `movq ${MM()}, ${R64()}; fnsave [rbx+16]`;
  }
}

const dir = mkdtempSync(join(tmpdir(), "mmx-gen-"));
function assemble(asm) {
  writeFileSync(join(dir, "a.s"), `.intel_syntax noprefix\n${asm.replaceAll("; ", "\n")}\n`);
  execFileSync("as", ["--64", "-o", join(dir, "a.o"), join(dir, "a.s")]);
  execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, "a.o"), join(dir, "a.bin")]);
  return [...readFileSync(join(dir, "a.bin"))].map((b) => hex(b, 2)).join("");
}

const EXC = [1, 4, 8, 0x10, 0x20];
/** An address mapped neither in this process nor in the test machine (16 TiB). */
const UNMAPPED = 0x100000000000n;
const cases = [];
for (let i = 0; i < COUNT; i++) {
  const asm = instruction();
  const top = rnd(8);
  const tags = rnd(4) === 0 ? pick([0, 0xff]) : rnd(256);
  let fcw = 0x37f;
  let fsw = top << 11;
  if (rnd(10) === 0) {
    // A pending unmasked exception: the flag, ES and B set, the flag unmasked.
    const e = pick(EXC);
    fcw &= ~e;
    fsw |= e | 0x80 | 0x8000;
  } else if (rnd(6) === 0) fsw |= pick([0x4100, 0x0200, 0x0020, 0x0001]); // flags and condition codes, nothing pending
  let mx = 0x1f80;
  if (rnd(4) === 0) mx = (mx & ~0x6000) | (rnd(4) << 13);
  if (rnd(6) === 0) mx &= ~pick([0x1000, 0x80, 0x1f80]);
  const r = Array.from({ length: 8 }, () => ({ se: SE(), m: mm() }));
  const g = Array.from({ length: 5 }, (_, k) => (k === 4 ? BigInt(0x180000 + rnd(240)) : rnd(3) ? r64() : pick(LANES)));
  if (asm.includes("[rsi]") || asm.includes("rdi, rsi")) g[3] = UNMAPPED;
  cases.push({ asm, code: assemble(asm), fcw, fsw, tags, mx, r, g, x: XR.map(() => xmm()) });
}
const st = (regs, top) => Array.from({ length: 8 }, (_, i) => regs[(top + i) & 7]);
const input = cases.map((c) => {
  const top = (c.fsw >> 11) & 7;
  // FXSAVE's abridged tag byte is by physical register, the registers in ST order.
  return [c.code, ...c.g.map((v) => v.toString(16)), hex(c.fcw, 1), hex(c.fsw, 1), hex(c.tags, 1), hex(c.mx, 1),
    ...st(c.r, top).map((v) => hex(v.se, 4) + hex(v.m, 16)), ...c.x.map((v) => hex(v, 32))].join(" ");
}).join("\n");
const out = execFileSync(process.argv[2], { input: `${input}\n`, maxBuffer: 1 << 30 }).toString().trim().split("\n");
const corpus = cases.map((c, i) => {
  const f = out[i].split(" ");
  const fsw = parseInt(f[6], 16);
  const top = (fsw >> 11) & 7;
  const stRegs = f.slice(10, 18);
  const phys = Array.from({ length: 8 }, (_, p) => stRegs[(p - top + 8) & 7]);
  const win = {};
  for (let b = 0; b < 256; b++) if (parseInt(f[22 + b], 16) !== ((b * 37 + 11) & 0xff)) win[b] = parseInt(f[22 + b], 16);
  const o = {
    g: f.slice(0, 5).map((v) => hex(BigInt(`0x${v}`), 16)), fcw: parseInt(f[5], 16), fsw, tags: parseInt(f[7], 16),
    mx: parseInt(f[8], 16), tw: f[9] === "-" ? null : parseInt(f[9], 16), r: phys, x: f.slice(18, 22), w: win,
  };
  if (f[278] === "fault") o.fault = Number(f[279]);
  return {
    asm: c.asm, code: c.code, fcw: c.fcw, fsw: c.fsw, tags: c.tags, mx: c.mx, g: c.g.map((v) => hex(v, 16)),
    r: c.r.map((v) => hex(v.se, 4) + hex(v.m, 16)), x: c.x.map((v) => hex(v, 32)), out: o,
  };
});
console.log(`[\n${corpus.map((c) => JSON.stringify(c)).join(",\n")}\n]`);
