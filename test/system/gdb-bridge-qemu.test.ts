// The real gdb (batch mode; gdb-multiarch for aarch64) through the gdb bridge against each demo
// guest running on QEMU, served by our server: registers (checked against the SDK), memory,
// software breakpoints (Z0 → the server's software breakpoints on QEMU) hit twice, tbreak, hbreak,
// a write watchpoint, 100 single steps, a register write seen through gRPC, `monitor vps`, and
// detach leaving the VM running. One gdb invocation per guest: QEMU stepping is slower than the
// embedded machine's.
import { writeFileSync } from "node:fs";
import type { DebuggerVpState } from "../../src/client";
import { type GdbBridge, createGdbBridge } from "../../src/gdb";
import { waitFor } from "../integration/harness";
import { between, haveBinary, hex, pcLines, startGdb, startTestHook } from "./gdb-session";
import { describeWithQemu, guestSymbols, startQemuHarness, type QemuHarness } from "./qemu-harness";

const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);

/** What differs between the guests: the debugger, the register names and how the SDK shows them. */
interface Profile {
  arch: "x86_64" | "aarch64";
  gdb: string;
  /** The register the test writes with `set $… =`. */
  written: string;
  /** `info registers` against VP 0's state as the SDK reads it. */
  checkRegisters(regs: string, state: DebuggerVpState): void;
  /** The written register's value and the PC in the SDK's state. */
  writtenAndPc(state: DebuggerVpState): [bigint, bigint];
  /** `monitor vps`'s line for VP 0 at `pc`. */
  vps(pc: bigint): RegExp;
}

function register(regs: string, name: string): bigint {
  const m = new RegExp(`^${name}\\s+0x([0-9a-f]+)`, "m").exec(regs);
  if (!m) throw new Error(`no ${name} in info registers:\n${regs}`);
  return BigInt("0x" + m[1]);
}

const PROFILES: Profile[] = [
  {
    arch: "x86_64",
    gdb: "gdb",
    written: "rax",
    checkRegisters(regs, s) {
      if (s.arch !== "x86_64") throw new Error("not x86_64");
      expect(register(regs, "rip")).toBe(s.state.rip);
      expect(register(regs, "rsp")).toBe(s.state.gp[4]);
      expect(regs).toMatch(/^eflags\s+0x[0-9a-f]+/m);
      expect(regs).toMatch(/^cs\s+0x[0-9a-f]+/m);
    },
    writtenAndPc(s) {
      if (s.arch !== "x86_64") throw new Error("not x86_64");
      return [s.state.gp[0], s.state.rip];
    },
    vps: (pc) => new RegExp(`VP 0 \\(thread 1\\): rip ${hex(pc)} rsp 0x[0-9a-f]+ rflags 0x[0-9a-f]+ cr3 0x[0-9a-f]+`),
  },
  {
    arch: "aarch64",
    gdb: "gdb-multiarch",
    written: "x0",
    // x0..x30, sp, pc and cpsr (the guest runs at EL1h: sp is SP_EL1).
    checkRegisters(regs, s) {
      if (s.arch !== "aarch64") throw new Error("not aarch64");
      for (let i = 0; i <= 30; i++) expect([`x${i}`, register(regs, `x${i}`)]).toEqual([`x${i}`, s.state.x[i]]);
      expect(register(regs, "pc")).toBe(s.state.pc);
      expect(register(regs, "sp")).toBe(s.state.spEl1);
      expect(register(regs, "cpsr")).toBe(s.state.cpsr & 0xffff_ffffn);
      expect(s.state.cpsr & 0xfn).toBe(0x5n); // EL1h
    },
    writtenAndPc(s) {
      if (s.arch !== "aarch64") throw new Error("not aarch64");
      return [s.state.x[0], s.state.pc];
    },
    vps: (pc) => new RegExp(`VP 0 \\(thread 1\\): pc ${hex(pc)} sp_el0 0x[0-9a-f]+ sp_el1 0x[0-9a-f]+ cpsr 0x[0-9a-f]+`),
  },
];

for (const profile of PROFILES) {
  const GDB = profile.gdb;
  const haveGdb = haveBinary(GDB);
  if (!haveGdb) {
    // eslint-disable-next-line no-console
    console.warn(`gdb bridge QEMU ${profile.arch} tests skipped: ${GDB} is not installed (install the Debian package \`${GDB}\`)`);
  }
  const describeBoth = haveGdb ? describeWithQemu(profile.arch) : describe.skip;
  const sym = guestSymbols(profile.arch);

  describeBoth(`${GDB} through the bridge (${profile.arch} demo guest on QEMU)`, () => {
    let h: QemuHarness;
    let bridge: GdbBridge;
    let port: number;
    const log: string[] = [];

    beforeAll(async () => {
      h = await startQemuHarness(profile.arch);
      bridge = createGdbBridge({ client: h.client, vm: "qemu", log: (l) => log.push(l) });
      ({ port } = await bridge.listen("127.0.0.1", 0));
    }, 60_000);

    afterAll(async () => {
      await bridge?.close();
      await h?.close();
    });

    it(`registers, memory, break ×2, tbreak, hbreak, watch, stepi ×100, set $${profile.written} (seen through gRPC), monitor vps, detach`, async () => {
      const counter = sym.counter.gva;
      const tick = sym.tick.gva;
      const mainLoop = sym.main_loop.gva;

      // At each hook gdb holds the VM stopped; the test reads VP 0 and the counter through gRPC.
      const hook = await startTestHook(async () => ({
        vp: await h.client.getVpState("qemu", 0),
        counter: u64(await h.client.readMemory("qemu", { gva: counter, vp: 0 }, 8)),
      }));

      const steps: string[] = [];
      for (let i = 0; i < 100; i++) steps.push("stepi", "echo PC=", "output/x $pc", "echo \\n");
      const written = 0x1234_5678_9abc_def0n;

      let result: { code: number | null; output: string };
      try {
        result = await startGdb(
          GDB,
          port,
          [
            "echo <regs>\\n",
            "info registers",
            "echo </regs>\\n",
            hook.command("regs"),
            "echo <mem>\\n",
            `x/8gx ${hex(counter)}`,
            "echo </mem>\\n",
            hook.command("mem"),
            // Software breakpoint: hit, continue, hit again.
            `break *${hex(tick)}`,
            "echo <break>\\n",
            "continue",
            "continue",
            "info breakpoints",
            "echo </break>\\n",
            "delete",
            // Temporary breakpoint: one hit, then gone (the next stops are tick's, never main_loop's).
            `tbreak *${hex(mainLoop)}`,
            "echo <tbreak>\\n",
            "continue",
            "info breakpoints",
            "echo </tbreak>\\n",
            // Hardware breakpoint, twice: main_loop runs between the two hits of tick.
            `hbreak *${hex(tick)}`,
            "echo <hbreak>\\n",
            "continue",
            "continue",
            "echo </hbreak>\\n",
            "delete",
            // Write watchpoint on the counter.
            `watch *(long *)${hex(counter)}`,
            "echo <watch>\\n",
            "continue",
            "echo </watch>\\n",
            "delete",
            // 100 single steps.
            "echo <steps>\\n",
            "echo PC=",
            "output/x $pc",
            "echo \\n",
            ...steps,
            "echo </steps>\\n",
            `set $${profile.written} = ${hex(written)}`,
            hook.command("written"),
            "echo <vps>\\n",
            "monitor vps",
            "echo </vps>\\n",
            "detach",
          ],
          75_000,
        ).result;
      } finally {
        hook.close();
      }
      const { code, output } = result;
      if (process.env.GDB_OUTPUT) writeFileSync(process.env.GDB_OUTPUT, output); // for a look at the whole session
      if (code !== 0) throw new Error(`gdb exited with ${code}:\n${output}`);
      expect([...hook.errors.keys()]).toEqual([]);

      // info registers: VP 0's registers as the SDK reads them.
      const sdk = (label: string): DebuggerVpState => {
        const r = hook.results.get(label);
        if (!r) throw new Error(`the hook "${label}" was not called; gdb output:\n${output}`);
        return r.vp;
      };
      profile.checkRegisters(between(output, "<regs>", "</regs>"), sdk("regs"));

      // x/8gx: counter is the first quad, the value the SDK reads while gdb holds the VM.
      const mem = between(output, "<mem>", "</mem>");
      const quads = mem
        .split("\n")
        .filter((l) => l.includes(":"))
        .flatMap((l) => [...l.slice(l.indexOf(":") + 1).matchAll(/0x([0-9a-f]{16})/g)].map((m) => BigInt("0x" + m[1])));
      expect(quads).toHaveLength(8);
      expect(mem).toMatch(new RegExp(`^${hex(counter)}:`, "m")); // the dump starts at counter's GVA
      expect(quads[0]).toBe(hook.results.get("mem")!.counter);
      expect(quads[0]).toBeGreaterThan(1000n); // the guest has been counting

      const breaks = between(output, "<break>", "</break>");
      expect(breaks.match(new RegExp(`Breakpoint 1, ${hex(tick)} in `, "g")) ?? []).toHaveLength(2);
      expect(breaks).toMatch(/breakpoint already hit 2 times/);

      const tb = between(output, "<tbreak>", "</tbreak>");
      expect(tb).toMatch(new RegExp(`Temporary breakpoint 2, ${hex(mainLoop)} in `));
      expect(tb).toContain("No breakpoints or watchpoints.");

      const hb = between(output, "<hbreak>", "</hbreak>");
      expect(hb.match(new RegExp(`Breakpoint 3, ${hex(tick)} in `, "g")) ?? []).toHaveLength(2);
      expect(hb).not.toContain(hex(mainLoop)); // the temporary breakpoint is gone

      const w = /Hardware watchpoint 4: \*\(long \*\)0x[0-9a-f]+\s+Old value = (-?\d+)\s+New value = (-?\d+)/.exec(between(output, "<watch>", "</watch>"));
      expect(w).not.toBeNull();
      expect(BigInt(w![2])).toBe(BigInt(w![1]) + 1n); // tick counts by one

      const pcs = pcLines(between(output, "<steps>", "</steps>"));
      expect(pcs).toHaveLength(101);
      expect(pcs[100]).not.toBe(pcs[0]);
      let changes = 0;
      for (let i = 1; i < pcs.length; i++) if (pcs[i] !== pcs[i - 1]) changes++;
      expect(changes).toBeGreaterThanOrEqual(90); // each stepi moved the PC (the loop has no self-jumps or self-branches)
      for (const pc of pcs) expect(pc >= sym.text_start.gva && pc < sym.text_end.gva).toBe(true);

      expect(profile.writtenAndPc(sdk("written"))).toEqual([written, pcs[100]]);

      expect(between(output, "<vps>", "</vps>")).toMatch(profile.vps(pcs[100]));
      expect(output).toMatch(/\[Inferior 1 \(Remote target\) detached\]/);

      // Detached: the VM runs on, nobody attached, the counter moves.
      await waitFor(async () => {
        const vm = await h.client.getVm("qemu");
        return vm.runState === "running" && vm.attached === undefined;
      }, 10_000, "the VM running with no debugger attached");
      const before = u64(await h.client.readMemory("qemu", { gva: counter, vp: 0 }, 8));
      await waitFor(async () => u64(await h.client.readMemory("qemu", { gva: counter, vp: 0 }, 8)) > before, 10_000, "the counter moving after detach");
    }, 90_000);
  });
}
