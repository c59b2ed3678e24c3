// `vmm-debug regs --fp`: the x87 and SSE registers of an embedded-machine VP, human and --json,
// against what the SDK reads (the CLI runs from source through tsx, so the test does not depend on
// a dist/ build of the whole tree).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x87FromNumber, xmmFromBigint, type X86VpState } from "../../src/client";
import { startHarness, type Harness } from "./harness";

const root = join(__dirname, "../..");
const main = join(root, "src/cli/main.ts");

describe("vmm-debug regs --fp (embedded machine)", () => {
  let h: Harness;
  let stateDir: string;

  const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", main, ...args], {
        cwd: root,
        env: { ...process.env, VMM_DEBUG_SERVER: h.address, XDG_RUNTIME_DIR: stateDir, VMM_DEBUG_SESSION: "" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "vmm-debug-fp-cli-"));
    h = await startHarness({ vpCount: 2 });
    // VP 1: XMM2 and a two-value x87 stack (TOP = 6), set through the SDK.
    const s = await h.client.attach("demo");
    await s.break();
    const state = await s.getVpState(1);
    const x = { ...(state.state as X86VpState) };
    const fp = { ...x.fp!, xmm: [...x.fp!.xmm], st: [...x.fp!.st] };
    fp.xmm[2] = xmmFromBigint((0x4000_0000_0000_0000n << 64n) | 0x3ff8_0000_0000_0000n); // doubles 1.5 and 2
    fp.fsw = 6 << 11;
    fp.st = [0.5, -3, 0, 0, 0, 0, 0, 0].map(x87FromNumber);
    fp.ftw = 0x0fff;
    fp.mxcsr = 0x9fa0; // FZ, PE, all masks
    x.fp = fp;
    await s.setVpState(1, { arch: "x86_64", state: x });
    await s.detach();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("shows st0-st7 (values, empties), the x87 words, xmm0-15 and mxcsr's flags after the general registers", async () => {
    const r = await run(["regs", "--vp", "1", "--fp"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rip\s+0x/m);
    expect(r.stdout).toMatch(/^st0\s+0\.5\s+\(raw 0x3ffe8000000000000000\)$/m);
    expect(r.stdout).toMatch(/^st1\s+-3\s+\(raw 0xc000c000000000000000\)$/m);
    expect(r.stdout).toMatch(/^st2\s+<empty>\s+\(raw 0x0{20}\)$/m);
    expect(r.stdout).toMatch(/^fctrl\s+0x37f\s+895$/m);
    expect(r.stdout).toMatch(/^fstat\s+0x3000\s+TOP=6$/m);
    expect(r.stdout).toMatch(/^ftag\s+0xfff\s+4095$/m);
    expect(r.stdout).toMatch(/^xmm2\s+0x40000000000000003ff8000000000000  v2_double \{1\.5, 2\}$/m);
    expect(r.stdout).toMatch(/^xmm15\s+0x0{32}/m);
    expect(r.stdout).toMatch(/^mxcsr\s+0x9fa0\s+\[ PE IM DM ZM OM UM PM FZ \]$/m);
    expect(r.stdout).toMatch(/^xcr0\s+0x1\s+1$/m);
    // Without --fp: the general registers only.
    const plain = await run(["regs", "--vp", "1"]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toMatch(/^(st0|xmm0|mxcsr)\s/m);
    // The VM runs on, nobody attached.
    expect((await h.client.getVm("demo")).runState).toBe("running");
  }, 60_000);

  it("--json adds them to `registers` by gdb's names, equal to GetVpState", async () => {
    const r = await run(["regs", "--vp", "1", "--fp", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.registers).toMatchObject({
      st0: "0x3ffe8000000000000000",
      fstat: "0x3000",
      ftag: "0xfff",
      xmm2: "0x40000000000000003ff8000000000000",
      mxcsr: "0x9fa0",
    });
    // The raw state carries fp with the byte arrays as hex (little-endian bytes).
    expect(out.state.fp.xmm[2]).toBe("000000000000f83f0000000000000040");
    expect(out.state.fp.st).toHaveLength(8);
    const plain = JSON.parse((await run(["regs", "--vp", "1", "--json"])).stdout);
    expect(plain.registers.xmm2).toBeUndefined();
  }, 60_000);
});
