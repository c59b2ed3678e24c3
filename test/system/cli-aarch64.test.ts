// The built `vmm-debug` binary against an aarch64 guest on QEMU: registers by their aarch64
// names, capstone disassembly, the page walk (the x86-64 side runs on the embedded machine in
// test/integration/cli-debugger.test.ts).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { disasmAarch64 } from "../../src/cli/commands/read";
import { bin, buildCli, root } from "../integration/cli-build";
import { describeWithQemu, guestSymbols, manifestPath, startQemuHarness, type QemuHarness } from "./qemu-harness";

describeWithQemu("aarch64")("vmm-debug on an aarch64 QEMU guest (built binary)", () => {
  let h: QemuHarness;
  let stateDir: string;
  const syms = guestSymbols("aarch64");

  const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [bin, ...args], {
        cwd: root,
        env: { ...process.env, VMM_DEBUG_SERVER: h.address, VMM_DEBUG_SYMBOLS: manifestPath("aarch64"), XDG_RUNTIME_DIR: stateDir, VMM_DEBUG_SESSION: "" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
  const ok = async (args: string[]) => {
    const r = await run(args);
    if (r.code !== 0) throw new Error(`vmm-debug ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "vmm-debug-cli-a64-"));
    await Promise.all([buildCli(), (async () => (h = await startQemuHarness("aarch64")))()]);
  }, 600_000);
  afterAll(async () => {
    await h?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("regs, disasm and translate; the VM is left running with nobody attached", async () => {
    const regs = JSON.parse(await ok(["regs", "--json"]));
    expect(regs.arch).toBe("aarch64");
    expect(Object.keys(regs.registers)).toEqual([...Array.from({ length: 31 }, (_, i) => `x${i}`), "sp", "pc", "cpsr", "sp_el0", "sp_el1", "sctlr_el1", "tcr_el1", "ttbr0_el1", "ttbr1_el1"]);
    const human = await ok(["regs"]);
    expect(human).toMatch(/^cpsr\s+0x[0-9a-f]+\s+\[ .*EL=1 SP=h \]$/m);
    expect(human).toMatch(/^pc\s+0x[0-9a-f]+/m);

    const bytes = await h.client.readMemory("qemu", { gva: syms.tick.gva, vp: 0 }, 12);
    const expected = await disasmAarch64(bytes, syms.tick.gva, 3);
    const d = JSON.parse(await ok(["disasm", "tick", "3", "--json"]));
    expect(d.instructions.map((i: { text: string }) => i.text)).toEqual(expected.map((i) => i.text));
    expect(d.instructions[0]).toMatchObject({ address: "0x" + syms.tick.gva.toString(16), symbol: "tick" });

    const t = JSON.parse(await ok(["translate", "counter", "--json"]));
    expect(BigInt(t.gpa)).toBe(syms.counter.gpa);
    expect(t.levels.length).toBeGreaterThanOrEqual(3);

    const info = await h.client.getVm("qemu");
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
  }, 180_000);
});
