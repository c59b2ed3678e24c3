// Records the host corpus in ../bmi.test.ts: random BMI1/BMI2/ABM/MOVBE/ADX instructions, assembled
// with GNU as and run on this host by ./runner (gcc -O1 -o /tmp/bmi-runner runner.c run.S).
// Usage: node gen.mjs /tmp/bmi-runner > cases.txt   (needs a host with bmi1 bmi2 adx movbe abm)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const COUNT = Number(process.env.COUNT ?? 320);
const M64 = (1n << 64n) - 1n;
const WINDOW = 0x180000;
const R64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
const R32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"];
const R16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"];

/** The same generator as bmi.test.ts's `hostInputs`. */
export function inputs(index) {
  let state = (BigInt(index) * 2654435761n + 12345n) & M64;
  const next = () => (state = (state * 6364136223846793005n + 1442695040888963407n) & M64);
  const regs = [];
  for (let i = 0; i < 16; i++) {
    const v = next();
    regs.push([v, 0n, 1n, M64, 1n << 63n, 0x80000000n, v & 0x3f3fn, v & 0x7fn][Number(v & 7n)]);
  }
  regs[4] = 0n;
  regs[3] = BigInt(WINDOW) + (next() % 64n);
  return { regs, flags: 0x202 | Number(next() & 0x8d5n) };
}

let seed = 20261130;
const rnd = (n) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return Math.floor((seed / 2147483648) * n);
};
const pick = (a) => a[rnd(a.length)];
const reg = (w) => {
  let n;
  do n = rnd(16); while (n === 4);
  return (w === 64 ? R64 : w === 32 ? R32 : R16)[n];
};
const mem = (w) => `${w === 64 ? "qword" : w === 32 ? "dword" : "word"} ptr [rbx+${rnd(160)}]`;
const rm = (w) => (rnd(2) ? reg(w) : mem(w));

function instruction() {
  const w = pick([32, 64]);
  switch (rnd(16)) {
    case 0: return `andn ${reg(w)}, ${reg(w)}, ${rm(w)}`;
    case 1: return `bextr ${reg(w)}, ${rm(w)}, ${reg(w)}`;
    case 2: return `${pick(["blsi", "blsmsk", "blsr"])} ${reg(w)}, ${rm(w)}`;
    case 3: return `bzhi ${reg(w)}, ${rm(w)}, ${reg(w)}`;
    case 4: return `${pick(["pdep", "pext"])} ${reg(w)}, ${reg(w)}, ${rm(w)}`;
    case 5: case 6: return `${pick(["shlx", "shrx", "sarx"])} ${reg(w)}, ${rm(w)}, ${reg(w)}`;
    case 7: return `rorx ${reg(w)}, ${rm(w)}, ${pick([0, 1, 7, 31, 32, 33, 63, 64, 100, 255, rnd(256)])}`;
    case 8: case 9: return `mulx ${reg(w)}, ${reg(w)}, ${rm(w)}`;
    case 10: { const v = pick([16, 32, 64]); return `${pick(["tzcnt", "lzcnt"])} ${reg(v)}, ${rm(v)}`; }
    case 11: { const v = pick([16, 32, 64]); return rnd(2) ? `movbe ${reg(v)}, ${mem(v)}` : `movbe ${mem(v)}, ${reg(v)}`; }
    default: return `${pick(["adcx", "adox"])} ${reg(w)}, ${rm(w)}`;
  }
}

const dir = mkdtempSync(join(tmpdir(), "bmi-gen-"));
function assemble(asm) {
  writeFileSync(join(dir, "a.s"), `.intel_syntax noprefix\n${asm}\n`);
  execFileSync("as", ["--64", "-o", join(dir, "a.o"), join(dir, "a.s")]);
  execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, "a.o"), join(dir, "a.bin")]);
  return [...readFileSync(join(dir, "a.bin"))].map((b) => b.toString(16).padStart(2, "0"));
}

const cases = [];
for (let i = 0; i < COUNT; i++) {
  const asm = instruction();
  cases.push({ asm, bytes: assemble(asm) });
}
const input = cases.map((c, i) => {
  const { regs, flags } = inputs(i);
  return [c.bytes.join(""), ...regs.map((r) => r.toString(16)), flags.toString(16)].join(" ");
}).join("\n");
const out = execFileSync(process.argv[2], { input: `${input}\n`, maxBuffer: 1 << 30 }).toString().trim().split("\n");
const lines = cases.map((c, i) => {
  const { regs } = inputs(i);
  const f = out[i].split(" ").map((x) => BigInt(`0x${x}`));
  const changed = [];
  for (let r = 0; r < 16; r++) if (r !== 4 && f[r] !== regs[r]) changed.push(`${R64[r]}: "0x${f[r].toString(16)}"`);
  const win = [];
  for (let b = 0; b < 256; b++) if (Number(f[17 + b]) !== ((b * 37 + 11) & 0xff)) win.push(`${b}: 0x${f[17 + b].toString(16).padStart(2, "0")}`);
  return `  ["${c.asm}", "${c.bytes.join(" ")}", { ${changed.join(", ")} }, 0x${(Number(f[16]) & 0xfff).toString(16)}, { ${win.join(", ")} }],`;
});
console.log(lines.join("\n").replaceAll("{  }", "{}"));
