// Records the host corpus in ../sse-host/corpus.json for ../sse.test.ts: random SSE/SSE2/SSE3/
// SSSE3/SSE4.1/SSE4.2 instructions with random XMM, GPR and MXCSR inputs (a quarter of the FP ones
// with some exceptions unmasked: the runner records the #XM's signal frame), assembled with GNU as
// and run on this host by ./runner.
// Usage: gcc -O1 -o /tmp/sse-runner runner.c run.S && node gen.mjs /tmp/sse-runner > corpus.json
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
const r32 = () => BigInt(rnd(0x10000)) << 16n | BigInt(rnd(0x10000));

// ------------------------------------------------------------------ values
const F64 = [0n, 0x8000000000000000n, 0x3ff0000000000000n, 0xbff0000000000000n, 0x3ff8000000000000n, 0x7ff0000000000000n,
  0xfff0000000000000n, 0x7ff8000000000000n, 0x7ff0000000000001n, 0xfff8000000001234n, 0x7ff4000000005678n, 0x0000000000000001n,
  0x800fffffffffffffn, 0x0010000000000000n, 0x7fefffffffffffffn, 0x4340000000000000n, 0x43e0000000000000n, 0xc3e0000000000000n,
  0x41e0000000000000n, 0xc1e0000000100000n, 0x3fe0000000000000n, 0x4004000000000000n, 0x000fffffffffffffn, 0x0018000000000000n];
const F32 = [0n, 0x80000000n, 0x3f800000n, 0xbf800000n, 0x3fc00000n, 0x7f800000n, 0xff800000n, 0x7fc00000n, 0x7f800001n,
  0xffc01234n, 0x7fa05678n, 1n, 0x807fffffn, 0x00800000n, 0x7f7fffffn, 0x4b800000n, 0x4f000000n, 0xcf000000n, 0x5f000000n,
  0xdf000000n, 0x3f000000n, 0x40200000n, 0x00c00000n];
function f64() {
  switch (rnd(6)) {
    case 0: case 1: return pick(F64);
    case 2: return (BigInt(rnd(2)) << 63n) | (BigInt(1023 - 30 + rnd(60)) << 52n) | ((r32() << 20n) | (r32() & 0xfffffn));
    case 3: return (BigInt(rnd(2)) << 63n) | (BigInt(pick([1, 2, 3, 30, 1000, 1020, 2040, 2046, 1023 + 52, 1023 + 63, 1023 + 31])) << 52n) | ((r32() << 20n) | (r32() & 0xfffffn));
    case 4: return (BigInt(rnd(2)) << 63n) | (BigInt(1023 + rnd(8)) << 52n) | (BigInt(rnd(64)) << 46n);
    default: return (r32() << 32n) | r32();
  }
}
function f32() {
  switch (rnd(6)) {
    case 0: case 1: return pick(F32);
    case 2: return (BigInt(rnd(2)) << 31n) | (BigInt(127 - 20 + rnd(40)) << 23n) | (r32() & 0x7fffffn);
    case 3: return (BigInt(rnd(2)) << 31n) | (BigInt(pick([1, 2, 3, 20, 100, 240, 253, 254, 127 + 23, 127 + 31, 127 + 63])) << 23n) | (r32() & 0x7fffffn);
    case 4: return (BigInt(rnd(2)) << 31n) | (BigInt(127 + rnd(8)) << 23n) | (BigInt(rnd(64)) << 17n);
    default: return r32();
  }
}
function int32() {
  return pick([0n, 1n, 0xffffffffn, 0x80000000n, 0x7fffffffn, 0x00ff00ffn, 0x80008000n, 0x7fff7fffn, 0x80808080n, 0x7f7f7f7fn, r32(), r32(), r32(), r32(), BigInt(rnd(300))]);
}
function xmm(kind) {
  let v = 0n;
  if (kind === "str") {
    for (let i = 0; i < 16; i++) v |= BigInt(rnd(8) === 0 ? 0 : pick([0x61, 0x62, 0x63, 0x80, 0xff, 0x7f, 0x01, 0x61, 0x62])) << BigInt(8 * i);
    return v;
  }
  if (kind === "pd") for (let i = 0; i < 2; i++) v |= f64() << BigInt(64 * i);
  else if (kind === "ps") for (let i = 0; i < 4; i++) v |= f32() << BigInt(32 * i);
  else for (let i = 0; i < 4; i++) v |= int32() << BigInt(32 * i);
  return v;
}
const XR = ["xmm0", "xmm1", "xmm2", "xmm3", "xmm8", "xmm9"];
const X = () => pick(XR);
const m128 = () => `xmmword ptr [rbx+${16 * rnd(15)}]`;
const m64 = () => `qword ptr [rbx+${8 * rnd(30)}]`;
const m32 = () => `dword ptr [rbx+${4 * rnd(60)}]`;
const m16 = () => `word ptr [rbx+${2 * rnd(120)}]`;
const m8 = () => `byte ptr [rbx+${rnd(240)}]`;
const xm = () => (rnd(3) ? X() : m128());
const imm = () => pick([0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 0x55, 0xaa, 0xe4, 0x1b, 0x80, 0xff, rnd(256)]);

const INT2 = ("paddb paddw paddd paddq psubb psubw psubd psubq paddsb paddsw paddusb paddusw psubsb psubsw psubusb psubusw " +
  "pcmpeqb pcmpeqw pcmpeqd pcmpeqq pcmpgtb pcmpgtw pcmpgtd pcmpgtq pmullw pmulhw pmulhuw pmulhrsw pmulld pmuludq pmuldq " +
  "pmaddwd pmaddubsw pminub pmaxub pminsb pmaxsb pminuw pmaxuw pminsw pmaxsw pminud pmaxud pminsd pmaxsd pavgb pavgw psadbw " +
  "packsswb packuswb packssdw packusdw pabsb pabsw pabsd psignb psignw psignd phaddw phaddsw phsubw phsubsw phaddd phsubd " +
  "phminposuw pand pandn por pxor andps andnps orps xorps andpd andnpd orpd xorpd punpcklbw punpcklwd punpckldq punpcklqdq " +
  "punpckhbw punpckhwd punpckhdq punpckhqdq unpcklps unpckhps unpcklpd unpckhpd pshufb psllw pslld psllq psrlw psrld psrlq " +
  "psraw psrad movdqa movdqu movaps movups movapd movupd movshdup movsldup lddqu ptest").split(" ");
const FP = ["add", "sub", "mul", "div", "sqrt", "min", "max"];

function instruction() {
  switch (rnd(25)) {
    case 24: {
      const op = pick(["pcmpestri", "pcmpestrm", "pcmpistri", "pcmpistrm"]);
      return [`${op} ${X()}, ${rnd(3) ? X() : `xmmword ptr [rbx+${rnd(240)}]`}, ${rnd(128)}`, "str"];
    }
    case 0: case 1: case 2: case 3: {
      const op = pick(INT2);
      if (op === "lddqu") return [`lddqu ${X()}, ${m128()}`, "int"];
      if (/^mov(dq[au]|[au]p[sd])$/.test(op) && rnd(4) === 0) return [`${op} ${m128()}, ${X()}`, "int"];
      if (/^ps[rl]/.test(op)) return [`${op} ${X()}, ${rnd(2) ? X() : m128()}`, "shift"];
      return [`${op} ${X()}, ${xm()}`, "int"];
    }
    case 4: {
      const op = pick(["pshufd", "pshuflw", "pshufhw", "shufps", "shufpd", "palignr", "pblendw", "blendps", "blendpd", "mpsadbw"]);
      return [`${op} ${X()}, ${xm()}, ${imm()}`, "int"];
    }
    case 5: {
      const op = pick(["psllw", "pslld", "psllq", "psrlw", "psrld", "psrlq", "psraw", "psrad", "pslldq", "psrldq"]);
      return [`${op} ${X()}, ${imm()}`, "int"];
    }
    case 6: {
      const op = pick(["pblendvb", "blendvps", "blendvpd"]);
      return [`${op} ${pick(XR.slice(1))}, ${rnd(3) ? pick(XR.slice(1)) : m128()}, xmm0`, "int"];
    }
    case 7: {
      const [op, n] = pick([["pmovzxbw", 8], ["pmovzxbd", 4], ["pmovzxbq", 2], ["pmovzxwd", 8], ["pmovzxwq", 4], ["pmovzxdq", 8],
        ["pmovsxbw", 8], ["pmovsxbd", 4], ["pmovsxbq", 2], ["pmovsxwd", 8], ["pmovsxwq", 4], ["pmovsxdq", 8]]);
      return [`${op} ${X()}, ${rnd(2) ? X() : n === 8 ? m64() : n === 4 ? m32() : m16()}`, "int"];
    }
    case 8: {
      switch (rnd(9)) {
        case 0: return [`pinsrb ${X()}, ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m8()}, ${imm()}`, "int"];
        case 1: return [`pinsrw ${X()}, ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m16()}, ${imm()}`, "int"];
        case 2: return [`pinsrd ${X()}, ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m32()}, ${imm()}`, "int"];
        case 3: return [`pinsrq ${X()}, ${rnd(2) ? pick(["rax", "rcx", "rdx"]) : m64()}, ${imm()}`, "int"];
        case 4: return [`pextrb ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m8()}, ${X()}, ${imm()}`, "int"];
        case 5: return [`pextrw ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m16()}, ${X()}, ${imm()}`, "int"];
        case 6: return [`pextrd ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m32()}, ${X()}, ${imm()}`, "int"];
        case 7: return [`pextrq ${rnd(2) ? pick(["rax", "rcx", "rdx"]) : m64()}, ${X()}, ${imm()}`, "int"];
        default: return [`extractps ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m32()}, ${X()}, ${imm()}`, "ps"];
      }
    }
    case 9: {
      switch (rnd(12)) {
        case 0: return [`movd ${X()}, ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m32()}`, "int"];
        case 1: return [`movd ${rnd(2) ? pick(["eax", "ecx", "edx"]) : m32()}, ${X()}`, "int"];
        case 2: return [`movq ${X()}, ${rnd(2) ? pick(["rax", "rcx", "rdx"]) : m64()}`, "int"];
        case 3: return [`movq ${rnd(2) ? pick(["rax", "rcx", "rdx"]) : m64()}, ${X()}`, "int"];
        case 4: return [`movq ${X()}, ${X()}`, "int"];
        case 5: return [`${pick(["movss", "movsd"])} ${X()}, ${rnd(2) ? X() : m64()}`.replace(/movss (xmm\d), qword/, "movss $1, dword"), "int"];
        case 6: return [`${pick(["movss", "movsd"])} ${m64()}, ${X()}`.replace(/movss qword/, "movss dword"), "int"];
        case 7: return [`${pick(["movhps", "movlps", "movhpd", "movlpd"])} ${X()}, ${m64()}`, "int"];
        case 8: return [`${pick(["movhps", "movlps", "movhpd", "movlpd"])} ${m64()}, ${X()}`, "int"];
        case 9: return [`${pick(["movhlps", "movlhps"])} ${X()}, ${X()}`, "int"];
        case 10: return [`${pick(["pmovmskb", "movmskps", "movmskpd"])} ${pick(["eax", "ecx", "edx"])}, ${X()}`, "int"];
        default: return [`movddup ${X()}, ${rnd(2) ? X() : m64()}`, "pd"];
      }
    }
    case 10: case 11: case 12: {
      const op = pick(FP);
      const pd = rnd(2) === 1;
      const form = pick(["s", "p"]);
      const src = form === "s" ? (rnd(2) ? X() : pd ? m64() : m32()) : xm();
      return [`${op}${form}${pd ? "d" : "s"} ${X()}, ${src}`, pd ? "pd" : "ps"];
    }
    case 13: {
      const pd = rnd(2) === 1;
      return [`${pick(["hadd", "hsub", "addsub"])}p${pd ? "d" : "s"} ${X()}, ${xm()}`, pd ? "pd" : "ps"];
    }
    case 14: case 15: {
      const pd = rnd(2) === 1;
      const form = pick(["s", "p"]);
      const src = form === "s" ? (rnd(2) ? X() : pd ? m64() : m32()) : xm();
      return [`cmp${form}${pd ? "d" : "s"} ${X()}, ${src}, ${rnd(8)}`, pd ? "pd" : "ps"];
    }
    case 16: {
      const pd = rnd(2) === 1;
      return [`${pick(["ucomis", "comis"])}${pd ? "d" : "s"} ${X()}, ${rnd(2) ? X() : pd ? m64() : m32()}`, pd ? "pd" : "ps"];
    }
    case 17: {
      const pd = rnd(2) === 1;
      const w = rnd(2) ? 64 : 32;
      const r = pick(w === 64 ? ["rax", "rcx", "rdx"] : ["eax", "ecx", "edx"]);
      if (rnd(3) === 0) return [`cvtsi2s${pd ? "d" : "s"} ${X()}, ${rnd(2) ? r : (w === 64 ? m64() : m32())}`, "int"];
      return [`${pick(["cvt", "cvtt"])}s${pd ? "d" : "s"}2si ${r}, ${rnd(2) ? X() : pd ? m64() : m32()}`, pd ? "pd" : "ps"];
    }
    case 18: case 19: {
      const [op, kind, src] = pick([["cvtsd2ss", "pd", m64], ["cvtss2sd", "ps", m32], ["cvtpd2ps", "pd", m128], ["cvtps2pd", "ps", m64],
        ["cvtdq2ps", "int", m128], ["cvtdq2pd", "int", m64], ["cvtps2dq", "ps", m128], ["cvttps2dq", "ps", m128],
        ["cvtpd2dq", "pd", m128], ["cvttpd2dq", "pd", m128]]);
      return [`${op} ${X()}, ${rnd(2) ? X() : src()}`, kind];
    }
    case 20: {
      const [op, kind, src] = pick([["roundss", "ps", m32], ["roundsd", "pd", m64], ["roundps", "ps", m128], ["roundpd", "pd", m128]]);
      return [`${op} ${X()}, ${rnd(2) ? X() : src()}, ${rnd(16)}`, kind];
    }
    case 21: {
      if (rnd(2)) return [`insertps ${X()}, ${rnd(2) ? X() : m32()}, ${imm()}`, "ps"];
      const pd = rnd(2) === 1;
      return [`dpp${pd ? "d" : "s"} ${X()}, ${xm()}, ${imm()}`, pd ? "pd" : "ps"];
    }
    case 22: return [rnd(2) ? `stmxcsr ${m32()}` : `movnti ${rnd(2) ? m64() : m32()}, ${rnd(2) ? "rcx" : "ecx"}`.replace(/m.*qword ptr(.*), ecx/, "movnti qword ptr$1, rcx").replace(/dword ptr(.*), rcx/, "dword ptr$1, ecx"), "int"];
    default: return [`${pick(["movntdq", "movntps", "movntpd"])} ${m128()}, ${X()}`, "int"];
  }
}

const dir = mkdtempSync(join(tmpdir(), "sse-gen-"));
function assemble(asm) {
  writeFileSync(join(dir, "a.s"), `.intel_syntax noprefix\n${asm}\n`);
  execFileSync("as", ["--64", "-o", join(dir, "a.o"), join(dir, "a.s")]);
  execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, "a.o"), join(dir, "a.bin")]);
  return [...readFileSync(join(dir, "a.bin"))].map((b) => hex(b, 2)).join("");
}

const cases = [];
for (let i = 0; i < COUNT; i++) {
  const [asm, kind] = instruction();
  const x = XR.map(() => xmm(rnd(4) === 0 ? pick(["int", "ps", "pd"]) : kind === "shift" ? (rnd(2) ? "int" : "small") : kind));
  for (let k = 0; k < x.length; k++) if (kind === "shift" && rnd(2)) x[k] = BigInt(rnd(70));
  let mx = 0x1f80 | (rnd(3) === 0 ? rnd(4) << 13 : 0) | (rnd(5) === 0 ? 0x40 : 0) | (rnd(5) === 0 ? 0x8000 : 0) | (rnd(8) === 0 ? rnd(64) : 0);
  if ((kind === "ps" || kind === "pd") && rnd(4) === 0) mx &= ~(rnd(64) << 7);
  const g = [0, 1, 2].map(() => (rnd(2) ? (r32() << 32n) | r32() : pick([0n, 1n, 0xffffffffffffffffn, 0x8000000000000000n, 0x7fffffffn, 0x80000000n, r32()])));
  if (kind === "str") for (const k of [0, 2]) if (rnd(4)) g[k] = BigInt.asUintN(64, BigInt(rnd(41) - 20)) | (rnd(2) ? 0n : BigInt(rnd(2)) << 32n);
  cases.push({ asm, code: assemble(asm), mx, fl: 0x202 | (rnd(256) & 0xd5), g, x });
}
const XI = [0, 1, 2, 3, 8, 9];
const input = cases.map((c) => {
  const regs = Array.from({ length: 16 }, (_, r) => (r < 3 ? c.g[r] : r === 3 ? 0x180000n : 0n));
  const xs = Array.from({ length: 16 }, (_, r) => (XI.includes(r) ? c.x[XI.indexOf(r)] : 0n));
  return [c.code, ...regs.map((v) => v.toString(16)), c.fl.toString(16), c.mx.toString(16), ...xs.map((v) => hex(v, 32))].join(" ");
}).join("\n");
const out = execFileSync(process.argv[2], { input: `${input}\n`, maxBuffer: 1 << 30 }).toString().trim().split("\n");
const corpus = cases.map((c, i) => {
  const f = out[i].split(" ");
  const win = {};
  for (let b = 0; b < 256; b++) if (parseInt(f[34 + b], 16) !== ((b * 37 + 11) & 0xff)) win[b] = parseInt(f[34 + b], 16);
  const o = { mx: parseInt(f[17], 16), fl: parseInt(f[16], 16) & 0x8d5, g: [0, 1, 2].map((r) => hex(BigInt(`0x${f[r]}`), 16)), x: XI.map((r) => f[18 + r]), w: win };
  if (f[290] === "fault") o.fault = true;
  return { asm: c.asm, code: c.code, mx: c.mx, fl: c.fl, g: c.g.map((v) => hex(v, 16)), x: c.x.map((v) => hex(v, 32)), out: o };
});
console.log(`[\n${corpus.map((c) => JSON.stringify(c)).join(",\n")}\n]`);
