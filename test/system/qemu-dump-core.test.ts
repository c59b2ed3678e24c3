// DumpMemory of the demo guests on QEMU: the SDK writes the core file, readelf shows one PT_LOAD
// per RAM region and one NT_PRSTATUS per VP, and gdb (gdb-multiarch for aarch64) shows VP 0's
// registers as GetVpState answers them and the guest's counter as ReadMemory does.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DebuggerVpState, type Session, writeCoreFile } from "../../src/client";
import { between, gdbCore, haveTool, quadwords, readelfCore, register } from "./core-file";
import { breakInKernel, describeWithQemu, guestSymbols, startQemuHarness, type QemuHarness } from "./qemu-harness";

const u64 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(o, true);

interface Profile {
  arch: "x86_64" | "aarch64";
  gdb: string;
  /** Debian package of `gdb`. */
  gdbPackage: string;
  machine: RegExp;
  preamble: string[];
  /** [gdb register, value in the SDK's state] for pc, sp and the first argument register. */
  registers(s: DebuggerVpState): [string, bigint][];
}

const PROFILES: Profile[] = [
  {
    arch: "aarch64",
    gdb: "gdb-multiarch",
    gdbPackage: "gdb-multiarch",
    machine: /AArch64/,
    preamble: ["set architecture aarch64"],
    registers(s) {
      if (s.arch !== "aarch64") throw new Error("not aarch64");
      // The demo runs at EL1h: gdb's sp is SP_EL1.
      expect(s.state.cpsr & 0xfn).toBe(0x5n);
      return [
        ["pc", s.state.pc],
        ["sp", s.state.spEl1],
        ["x0", s.state.x[0]],
        ["x30", s.state.x[30]],
      ];
    },
  },
  {
    arch: "x86_64",
    gdb: "gdb",
    gdbPackage: "gdb",
    machine: /X86-64/,
    preamble: ["set architecture i386:x86-64"],
    registers(s) {
      if (s.arch !== "x86_64") throw new Error("not x86_64");
      return [
        ["rip", s.state.rip],
        ["rsp", s.state.gp[4]],
        ["rax", s.state.gp[0]],
        ["rdi", s.state.gp[7]],
      ];
    },
  },
];

for (const p of PROFILES) {
  const tools = [haveTool("readelf") ? "" : "binutils (readelf)", haveTool(p.gdb) ? "" : `${p.gdbPackage} (${p.gdb})`].filter(Boolean);
  if (tools.length > 0) console.warn(`QEMU ${p.arch} dump-core test skipped: install the Debian package(s) ${tools.join(", ")}`);
  const describeQemu = tools.length === 0 ? describeWithQemu(p.arch) : describe.skip;

  describeQemu(`DumpMemory of the QEMU ${p.arch} demo`, () => {
    let h: QemuHarness;
    let session: Session | undefined;
    let dir: string;

    beforeAll(async () => {
      h = await startQemuHarness(p.arch);
      dir = mkdtempSync(join(tmpdir(), "vmm-debug-qemu-dump-"));
    }, 60_000);

    afterAll(async () => {
      await session?.close().catch(() => undefined);
      await h?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("writes a core file that readelf and gdb read as the server shows the VM", async () => {
      const sym = guestSymbols(p.arch);
      session = await h.client.attach("qemu", { transport: "unary" });
      await breakInKernel(h.client, session, sym.kernel_main.gva);
      const info = await h.client.getVm("qemu");
      expect(info.runState).toBe("stopped");

      const path = join(dir, `${p.arch}.core`);
      let last: [bigint, bigint] = [0n, 0n];
      const size = await writeCoreFile(h.client, "qemu", path, { onProgress: (done, total) => (last = [done, total]) });
      expect(last).toEqual([size, size]);

      const elf = await readelfCore(path);
      expect(elf.type).toMatch(/^CORE/);
      expect(elf.machine).toMatch(p.machine);
      expect(elf.loads.map((l) => ({ vaddr: l.vaddr, paddr: l.paddr, filesz: l.filesz }))).toEqual(
        info.memoryRegions.map((r) => ({ vaddr: r.gpa, paddr: r.gpa, filesz: r.size })),
      );
      expect(elf.notes.filter((n) => n === "NT_PRSTATUS")).toHaveLength(info.vpCount);

      const counter = sym.counter.gpa;
      const out = await gdbCore(
        p.gdb,
        path,
        ["echo <regs>\\n", "info registers", "echo </regs>\\n", "echo <mem>\\n", `x/2gx 0x${counter.toString(16)}`, "echo </mem>\\n"],
        p.preamble,
      );
      const regs = between(out, "<regs>", "</regs>");
      const state = await h.client.getVpState("qemu", 0);
      for (const [name, value] of p.registers(state)) expect([name, register(regs, name)]).toEqual([name, value]);
      const mem = await h.client.readMemory("qemu", { gpa: counter }, 16);
      expect(quadwords(between(out, "<mem>", "</mem>"), counter)).toEqual([u64(mem, 0), u64(mem, 8)]);
      expect(u64(mem, 0)).toBeGreaterThan(0n);
    });
  });
}
