// The built `vmm-debug` binary (dist/src/cli/main.js) against a real server: every debugger
// command, human and --json output checked against what the SDK reads, and the exit codes.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Decoder, DecoderOptions, Formatter, FormatterSyntax } from "iced-x86";
import { bin, buildCli, root } from "./cli-build";
import { startHarness, sym, type Harness } from "./harness";

const manifest = join(root, "guests/build/demo-x86_64.json");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("vmm-debug debugger commands (built binary)", () => {
  let h: Harness;
  let stateDir: string;
  let work: string;

  const run = (args: string[], env: Record<string, string> = {}): Promise<Result> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [bin, ...args], {
        cwd: root,
        env: { ...process.env, VMM_DEBUG_SERVER: h.address, VMM_DEBUG_SYMBOLS: manifest, XDG_RUNTIME_DIR: stateDir, VMM_DEBUG_SESSION: "", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
  const ok = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
    const r = await run(args, env);
    if (r.code !== 0) throw new Error(`vmm-debug ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const json = async (args: string[], env: Record<string, string> = {}) => JSON.parse(await ok([...args, "--json"], env));

  /** Attaches through the CLI; returns the env that carries the session. */
  async function attach(): Promise<Record<string, string>> {
    const out = await ok(["attach"]);
    const m = /^export VMM_DEBUG_SESSION=([0-9a-f]+)$/m.exec(out);
    expect(m).not.toBeNull();
    return { VMM_DEBUG_SESSION: m![1] };
  }

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "vmm-debug-cli-state-"));
    work = mkdtempSync(join(tmpdir(), "vmm-debug-cli-"));
    await Promise.all([buildCli(), (async () => (h = await startHarness({ vpCount: 2 })))()]);
  }, 300_000);
  afterEach(async () => {
    // A test that failed mid-session must not leave the VM held for the next one.
    if ((await h.client.getVm("demo")).attached) await h.client.forceDetach("demo");
  });
  afterAll(async () => {
    await h?.close();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("vms and vm: a table, details, and --json as ListVms/GetVm answer", async () => {
    const table = await ok(["vms"]);
    expect(table).toMatch(/^ID\s+ARCH\s+VPS\s+STATE\s+BACKEND\s+ATTACHED$/m);
    expect(table).toMatch(/^demo\s+x86_64\s+2\s+running\s+emu\s+-$/m);
    const [vm] = await json(["vms"]);
    const sdk = (await h.client.listVms())[0];
    expect({ id: vm.id, arch: vm.arch, vpCount: vm.vpCount, backend: vm.backend }).toEqual({ id: sdk.id, arch: sdk.arch, vpCount: sdk.vpCount, backend: sdk.backend });
    const details = await ok(["vm", "demo"]);
    expect(details).toContain("256 MiB");
    expect(details).toContain("hardware slots per VP:       4");
    const one = await json(["vm"]);
    expect(one.memoryRegions).toEqual([{ gpa: "0x0", size: "0x10000000", name: "ram" }]);
  });

  it("regs on a running VM without a session leaves it running with nobody attached", async () => {
    const r = await json(["regs", "--vp", "1"]);
    expect(r).toMatchObject({ vm: "demo", vp: 1, arch: "x86_64" });
    expect(BigInt(r.registers.rip)).toBeGreaterThan(0xffffffff80000000n);
    const human = await ok(["regs"]);
    expect(human).toMatch(/^rip\s+0xffffffff8010[0-9a-f]{4}\s+0x[0-9a-f]+ <[a-z_]+(\+0x[0-9a-f]+)?>$/m);
    expect(human).toMatch(/^eflags\s+0x[0-9a-f]+\s+\[.*\]$/m);
    const info = await h.client.getVm("demo");
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
  });

  it("a session: attach, regs/mem equal the SDK's reads, break + continue stop at tick, step, watch, translate, disasm, detach", async () => {
    const env = await attach();
    expect((await h.client.getVm("demo")).runState).toBe("stopped");

    // regs (human and JSON) against GetVpState.
    const sdk = await h.client.getVpState("demo", 0);
    if (sdk.arch !== "x86_64") throw new Error("x86_64 expected");
    const regs = await json(["regs"], env);
    expect(BigInt(regs.registers.rip)).toBe(sdk.state.rip);
    expect(BigInt(regs.state.rip)).toBe(sdk.state.rip);
    expect(BigInt(regs.registers.rax)).toBe(sdk.state.gp[0]);
    expect(await ok(["regs"], env)).toContain(`rip            0x${sdk.state.rip.toString(16)}`);

    // mem read: hexdump, JSON and --out against ReadMemory, by GVA symbol and by GPA.
    const bytes = await h.client.readMemory("demo", { gva: sym("counter").gva, vp: 0 }, 32);
    const m = await json(["mem", "read", "counter", "32"], env);
    expect(m.data).toBe(Buffer.from(bytes).toString("hex"));
    expect(await json(["mem", "read", "counter", "32", "--gpa"], env)).toMatchObject({ data: Buffer.from(bytes).toString("hex"), space: "gpa" });
    const dump = await ok(["mem", "read", "counter+16", "16"], env);
    const hexPairs = Buffer.from(bytes.subarray(16)).toString("hex").match(/..../g)!.join(" ");
    expect(dump).toBe(`${(sym("counter").gva + 16n).toString(16)}: ${hexPairs}  ................\n`);
    const out = join(work, "counter.bin");
    await ok(["mem", "read", "0x" + sym("counter").gpa.toString(16), "32", "--gpa", "--out", out], env);
    expect(readFileSync(out)).toEqual(Buffer.from(bytes));

    // mem write, read back through the SDK, then restored.
    await ok(["mem", "write", "counter_vp1+8", "2a00000000000000"], env);
    expect(await h.client.readMemory("demo", { gpa: sym("counter_vp1").gpa + 8n }, 8)).toEqual(Uint8Array.from([42, 0, 0, 0, 0, 0, 0, 0]));
    await ok(["mem", "write", "counter_vp1+8", "00 00 00 00 00 00 00 00"], env);

    // break + continue: a software breakpoint on tick.
    const bp = await json(["break", "tick"], env);
    expect(bp).toMatchObject({ kind: "software", address: "0x" + sym("tick").gva.toString(16) });
    const stop = await json(["continue", "--timeout", "30s"], env);
    expect(stop.reason.kind).toBe("softwareBreakpoint");
    expect(BigInt(stop.pc)).toBe(sym("tick").gva);
    expect(stop.symbol).toBe("tick");
    const vpOfStop = stop.vp as number;
    expect((await h.client.getVpState("demo", vpOfStop)).state).toMatchObject({ rip: sym("tick").gva });
    const list = await ok(["break", "list"], env);
    expect(list).toMatch(new RegExp(`^${bp.id}\\s+software\\s+0x${sym("tick").gva.toString(16)} <tick>\\s+all\\s+1$`, "m"));
    // continue in words.
    expect(await ok(["continue", "--timeout", "30s"], env)).toMatch(/^stopped: software breakpoint \d+ on VP \d; VP \d pc 0xffffffff801010af <tick>$/m);
    await ok(["break", "delete", String(bp.id)], env);
    expect(await ok(["break", "list"], env)).toBe("no breakpoints or watchpoints\n");

    // step: --count 5 prints 5 pcs, the last one the VP's rip.
    const step = await json(["step", "--vp", "0", "--count", "5"], env);
    expect(step.executed).toBe(5);
    expect(step.pcs).toHaveLength(5);
    const rip = (await h.client.getVpState("demo", 0)).state as { rip: bigint };
    expect(BigInt(step.pc)).toBe(rip.rip);
    expect(BigInt(step.pcs[4])).toBe(rip.rip);
    const stepped = await ok(["step"], env);
    expect(stepped.trim().split("\n")).toHaveLength(2);
    expect(stepped).toMatch(/^VP 0: 1 instruction executed; pc 0x[0-9a-f]+/m);

    // watch: an unaligned 2-byte range is covered by the aligned 8 bytes around it, and fires.
    const watchText = await ok(["watch", "counter+3", "--size", "2", "--vp", "0"], env);
    const c = sym("counter").gva;
    expect(watchText).toContain(`covers the aligned range 0x${c.toString(16)}..0x${(c + 8n).toString(16)} (8 bytes), more than the 0x${(c + 3n).toString(16)}..0x${(c + 5n).toString(16)} (2 bytes) asked`);
    const hit = await json(["continue", "--timeout", "30s"], env);
    expect(hit.reason).toMatchObject({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: "0x" + c.toString(16), type: "write", size: 8 } });
    // A range no single slot covers takes several; JSON says which.
    const wide = await json(["watch", "counter+6", "--size", "4", "--vp", "1", "--type", "rw"], env);
    expect(wide.covered).toEqual({ from: "0x" + (c + 6n).toString(16), to: "0x" + (c + 10n).toString(16) });
    expect(wide.slots).toHaveLength(2);
    expect(await ok(["break", "list"], env)).toMatch(/^hw0\s+hw write 8\s+0xffffffff80107000 <counter>\s+0\s+-$/m);
    expect(wide.ids).toEqual(["hw0", "hw1"]);
    expect(await ok(["break", "delete", "hw0"], env)).toBe("deleted hw0 (on 2 VPs)\n");
    expect(await ok(["break", "delete", "hw1"], env)).toBe("deleted hw1 (on 1 VP)\n");
    expect((await run(["break", "delete", "hw1"], env)).code).toBe(4);

    // translate: the walk ends at the manifest's GPA.
    const t = await json(["translate", "counter", "--vp", "0"], env);
    expect(BigInt(t.gpa)).toBe(sym("counter").gpa);
    expect(t.levels.map((l: { name: string }) => l.name)).toEqual(["PML4E", "PDPTE", "PDE", "PTE"]);
    const tText = await ok(["translate", "counter"], env);
    expect(tText).toMatch(/^1\s+PTE\s+0x[0-9a-f]+\s+0x[0-9a-f]{16}\s+page$/m);
    expect(tText).toContain(`-> GPA 0x${sym("counter").gpa.toString(16)}  page 4 KiB`);

    // disasm at tick: iced-x86's own formatting of the bytes there.
    const code = await h.client.readMemory("demo", { gva: sym("tick").gva, vp: 0 }, 15);
    const decoder = new Decoder(64, code, DecoderOptions.None);
    decoder.ip = sym("tick").gva;
    const insn = decoder.decode();
    const formatter = new Formatter(FormatterSyntax.Intel);
    const expected = formatter.format(insn);
    insn.free();
    decoder.free();
    formatter.free();
    const d = await json(["disasm", "tick", "3"], env);
    expect(d.instructions).toHaveLength(3);
    expect(d.instructions[0]).toMatchObject({ address: "0x" + sym("tick").gva.toString(16), text: expected, symbol: "tick" });
    const dText = await ok(["disasm", "pc", "2"], env);
    expect(dText).toMatch(/^=> 0x[0-9a-f]+/m);

    // detach: the VM runs again, nobody attached.
    expect(await ok(["detach"], env)).toMatch(/^detached from VM "demo" \(session [0-9a-f]{8}…\); it is running$/m);
    const after = await h.client.getVm("demo");
    expect(after.runState).toBe("running");
    expect(after.attached).toBeUndefined();
  }, 120_000);

  it("mem read --partial marks unreadable bytes ?? and lists them", async () => {
    const r = await run(["mem", "read", "0xffffff8", "16", "--gpa", "--partial"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^0ffffff8: [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} \?\?\?\? \?\?\?\? \?\?\?\? \?\?\?\? {2}.{8}\?{8}$/m);
    expect(r.stderr).toContain("0x10000000..0x10000008 (8 bytes) unreadable: GPA_UNMAPPED");
    const j = await json(["mem", "read", "0xffffff8", "16", "--gpa", "--partial"]);
    expect(j.unreadable).toEqual([expect.objectContaining({ offset: 8, length: 8, reason: "GPA_UNMAPPED" })]);
  });

  it("step without a session on a running VM attaches, steps, detaches: the VM runs on", async () => {
    const s = await json(["step", "--count", "3", "--vp", "1"]);
    expect(s).toMatchObject({ vp: 1, executed: 3 });
    const info = await h.client.getVm("demo");
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
  });

  it("dump writes an ELF core file as large as the server said", async () => {
    const file = join(work, "demo.core");
    const r = await json(["dump", file, "--quiet"]);
    const head = readFileSync(file).subarray(0, 4);
    expect(head).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(BigInt(statSync(file).size)).toBe(BigInt(r.bytes));
    const info = await h.client.getVm("demo");
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
  }, 120_000);

  it("attach --no-stop, interrupt, a hardware breakpoint, continue --timeout (exit 8, the VM stays stopped in the session)", async () => {
    const out = await ok(["attach", "--no-stop"]);
    const env = { VMM_DEBUG_SESSION: /^export VMM_DEBUG_SESSION=([0-9a-f]+)$/m.exec(out)![1] };
    try {
      expect((await h.client.getVm("demo")).runState).toBe("running");
      expect((await run(["regs"], env)).code).toBe(5); // the session's VM runs: refused, not stopped behind its back
      expect(await ok(["interrupt"], env)).toMatch(/^stopped: break \(the VM was stopped on request\); VP 0 pc 0x[0-9a-f]+/m);
      const hw = await json(["break", "tick", "--hw", "--vp", "0"], env);
      expect(hw).toMatchObject({ id: "hw0", kind: "hardware", vps: [0] });
      const hit = await json(["continue", "--timeout", "30s"], env);
      expect(hit.reason).toMatchObject({ kind: "hwBreakpoint", vp: 0, breakpoint: { type: "execute", address: "0x" + sym("tick").gva.toString(16) } });
      expect(hit.symbol).toBe("tick");
      await ok(["break", "delete", "hw0"], env);
      const r = await run(["continue", "--timeout", "300ms"], env);
      expect(r.code).toBe(8);
      expect(r.stdout).toMatch(/^stopped: break \(the VM was stopped on request\); VP 0 pc 0x[0-9a-f]+/m);
      expect(r.stderr).toMatch(/^vmm-debug: no stop within 300ms: stopped the VM/m);
      expect((await h.client.getVm("demo")).runState).toBe("stopped");
    } finally {
      await ok(["detach"], env);
    }
    expect((await h.client.getVm("demo")).runState).toBe("running");
  });

  it("Ctrl-C during dump: exit 130, no file left, the VM running and free again", async () => {
    const file = join(work, "interrupted.core");
    const child = spawn(process.execPath, [bin, "dump", file], {
      cwd: root,
      env: { ...process.env, VMM_DEBUG_SERVER: h.address, XDG_RUNTIME_DIR: stateDir, VMM_DEBUG_SESSION: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await new Promise<void>((resolve) =>
      child.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (/dump \d+%/.test(stderr)) resolve();
      }),
    );
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toContain("vmm-debug: dump interrupted");
    expect(readdirSync(work).filter((f) => f.includes("interrupted"))).toEqual([]);
    const info = await h.client.getVm("demo");
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
  }, 120_000);

  it("exit codes tell the failures apart, with one readable line", async () => {
    const cases: [string[], number, RegExp, Record<string, string>?][] = [
      [["regs", "--vm", "nope"], 4, /^vmm-debug: no VM "nope".*\(reason VM_NOT_FOUND\)\n$/],
      [["vms"], 3, /^vmm-debug: cannot reach the vmm-debug server at 127\.0\.0\.1:1 .*ECONNREFUSED/, { VMM_DEBUG_SERVER: "127.0.0.1:1" }],
      [["mem", "read", "0xzz", "8"], 2, /^vmm-debug: ADDR: "0xzz" is not an address/],
      [["mem", "read", "nosuch+8", "8"], 2, /^vmm-debug: ADDR: no symbol "nosuch"/],
      [["mem", "read", "0x7000000000", "8"], 7, /\(reason GVA_NOT_MAPPED\)\n$/],
      [["mem", "read", "0x7000000000", "8", "--gpa"], 7, /\(reason GPA_UNMAPPED\)\n$/],
      [["regs", "--vp", "9"], 4, /has no VP 9 .*\(reason VP_OUT_OF_RANGE\)/],
      [["break", "tick"], 5, /needs a session/],
      [["regs", "--frobnicate"], 2, /^vmm-debug: unknown option '--frobnicate'/],
      [["frobnicate"], 2, /^vmm-debug: unknown command 'frobnicate'/],
    ];
    const results = await Promise.all(cases.map(([args, , , env]) => run(args, env)));
    cases.forEach(([args, code, stderr], i) => {
      expect([args, results[i].code, results[i].stderr]).toEqual([args, code, expect.stringMatching(stderr)]);
      expect(results[i].stderr).not.toMatch(/\n\s+at /); // never a stack
    });
  });

  it("help at every level, and completion scripts from the command tree", async () => {
    const [top, memRead, memReadHelp, mem, brk, regs, serveHelp, serveOwn, gdb, tokenAdd, bash, zsh, fish, tcsh] = await Promise.all([
      ok(["--help"]),
      ok(["help", "mem", "read"]),
      ok(["mem", "read", "--help"]),
      ok(["mem", "--help"]),
      ok(["help", "break"]),
      ok(["help", "regs"]),
      ok(["help", "serve"]),
      ok(["serve", "--help"]),
      ok(["help", "gdb"]),
      ok(["help", "token", "add"]),
      ok(["completion", "bash"]),
      ok(["completion", "zsh"]),
      ok(["completion", "fish"]),
      run(["completion", "tcsh"]),
    ]);
    for (const c of ["vms", "vm", "regs", "mem", "translate", "disasm", "dump", "attach", "detach", "break", "continue", "step", "watch", "completion", "serve", "gdb", "token"]) {
      expect(top).toMatch(new RegExp(`^  ${c} `, "m"));
    }
    expect(top).toMatch(/Exit codes:\n\s+0  success/);
    expect(top).toMatch(/^\s+7  unmapped or unreadable memory$/m);
    expect(memRead).toContain("--partial");
    expect(memReadHelp).toContain("--partial");
    expect(mem).toMatch(/read \[options\] <addr> <len>/);
    expect(brk).toMatch(/list \[options\]\s+the session's breakpoints/);
    expect(regs).toContain("--tls-ca");
    expect(serveHelp).toContain("--tls-cert");
    expect(serveOwn).toContain("--listen");
    expect(gdb).toContain("--listen");
    expect(tokenAdd).toContain("--role");
    for (const c of ["vms", "vm", "regs", "mem", "read", "write", "translate", "disasm", "dump", "attach", "detach", "interrupt", "break", "list", "delete", "continue", "step", "watch", "serve", "gdb", "token", "completion", "help"]) {
      expect(bash).toMatch(new RegExp(`\\b${c}\\b`));
    }
    expect(bash).toContain("--partial");
    expect(bash).toContain("complete -o default -F _vmm_debug vmm-debug");
    // The script is valid bash and completes subcommands.
    const { stdout } = await promisify(execFile)("bash", ["-c", `${bash}\nCOMP_WORDS=(vmm-debug mem r); COMP_CWORD=2; _vmm_debug; echo "\${COMPREPLY[@]}"; COMP_WORDS=(vmm-debug mem read --pa); COMP_CWORD=3; _vmm_debug; echo "\${COMPREPLY[@]}"`]);
    expect(stdout).toBe("read\n--partial\n");
    expect(zsh).toContain("compdef _vmm_debug vmm-debug");
    expect(zsh).toContain("'--partial:read what can be read");
    expect(fish).toContain("complete -c vmm-debug -n '__vmm_debug_at \\'mem read\\'' -l 'partial'");
    expect(tcsh.code).toBe(2);
    // Output piped into a reader that stops early (a 1 MiB hexdump into `head`) ends quietly: no
    // EPIPE stack, exit 0.
    const piped = await promisify(execFile)("bash", [
      "-o",
      "pipefail",
      "-c",
      `"${process.execPath}" "${bin}" mem read 0 0x100000 --gpa --server ${h.address} | head -n 1 >/dev/null`,
    ]);
    expect(piped.stderr).toBe("");
  });
});
