// The gdb bridge driven by the real gdb binary: registers, memory, breakpoints, stepping, writes, detach.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { type AddressInfo, createServer } from "node:net";
import { type GdbBridge, createGdbBridge } from "../../src/gdb";
import type { VpStateEntry } from "../../src/client";
import { type Harness, startHarness, sym, waitFor } from "../integration/harness";

const GDB = "gdb";
const haveGdb = spawnSync(GDB, ["--version"], { stdio: "ignore" }).status === 0;
if (!haveGdb) {
  // eslint-disable-next-line no-console
  console.warn("gdb-bridge tests skipped: gdb is not installed (install the Debian package `gdb`)");
}
const describeGdb = haveGdb ? describe : describe.skip;

const hex = (v: bigint) => "0x" + v.toString(16);

/** Starts `gdb -batch -nx` with these commands against the bridge; `result` is its output (stdout and stderr). */
function startGdb(
  port: number,
  commands: string[],
  timeoutMs = 45_000,
): { child: ChildProcess; sofar: () => string; result: Promise<{ code: number | null; output: string }> } {
  const args = ["-batch", "-nx", "-ex", "set pagination off", "-ex", `target remote 127.0.0.1:${port}`];
  for (const c of commands) args.push("-ex", c);
  const child = spawn(GDB, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const result = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`gdb did not finish within ${timeoutMs} ms; output so far:\n${output}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  return { child, sofar: () => output, result };
}

function runGdb(port: number, commands: string[]): Promise<{ code: number | null; output: string }> {
  return startGdb(port, commands).result;
}

/** The text gdb printed between two `echo` markers. */
function between(output: string, from: string, to: string): string {
  const a = output.indexOf(from);
  const b = output.indexOf(to, a);
  if (a < 0 || b < 0) throw new Error(`markers ${from}/${to} not in gdb output:\n${output}`);
  return output.slice(a + from.length, b);
}

describeGdb("gdb through the bridge (embedded x86-64 demo guest, 2 VPs)", () => {
  let h: Harness;
  let bridge: GdbBridge;
  let port: number;
  const log: string[] = [];

  beforeAll(async () => {
    h = await startHarness();
    bridge = createGdbBridge({ client: h.client, vm: "demo", log: (l) => log.push(l) });
    ({ port } = await bridge.listen("127.0.0.1", 0));
  });

  afterAll(async () => {
    await bridge?.close();
    await h?.close();
  });

  it("reads registers and memory, hits a breakpoint twice, steps, writes rax (seen through gRPC) and detaches leaving the VM running", async () => {
    const counter = sym("counter").gva;
    const tick = sym("tick").gva;

    // gdb's `shell` runs this and waits for it: the test reads the VPs through gRPC while gdb
    // holds the VM stopped right after `set $rax`, then lets gdb go on.
    let seen: VpStateEntry[] | undefined;
    const hook = createServer((socket) => {
      void h.client.getVpStates("demo").then(
        (states) => {
          seen = states;
          socket.end("go");
        },
        () => socket.end("failed"),
      );
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const hookPort = (hook.address() as AddressInfo).port;
    const waitForTest = `shell '${process.execPath}' -e 'const s=require("net").connect(${hookPort},"127.0.0.1");s.on("data",()=>process.exit(0));setTimeout(()=>process.exit(1),20000)'`;

    const steps: string[] = [];
    for (let i = 0; i < 10; i++) steps.push("stepi", "echo PC=", "output/x $pc", 'echo \\n');
    try {
      const { code, output } = await runGdb(port, [
        "echo <rip>\\n",
        "info registers rip",
        "echo </rip>\\n",
        "echo <mem>\\n",
        `x/2gx ${hex(counter)}`,
        "echo </mem>\\n",
        `break *${hex(tick)}`,
        "continue",
        "continue",
        "echo <steps>\\n",
        ...steps,
        "echo </steps>\\n",
        "set $rax = 0x1234",
        "echo <thread>",
        "output $_thread",
        "echo </thread>\\n",
        waitForTest,
        "detach",
      ]);
      expect({ code, output }).toMatchObject({ code: 0 });

      const rip = /rip\s+0x([0-9a-f]+)/.exec(between(output, "<rip>", "</rip>"));
      expect(rip).not.toBeNull();
      const ripValue = BigInt("0x" + rip![1]);
      expect(ripValue >= sym("text_start").gva && ripValue < sym("text_end").gva).toBe(true);

      const mem = new RegExp(`${hex(counter)}:\\s+0x([0-9a-f]{16})\\s+0x([0-9a-f]{16})`).exec(between(output, "<mem>", "</mem>"));
      expect(mem).not.toBeNull();
      expect(BigInt("0x" + mem![1])).toBeGreaterThan(0n); // the guest has been counting

      const hits = between(output, "</mem>", "<steps>").match(new RegExp(`hit Breakpoint 1, ${hex(tick)}`, "g")) ?? [];
      expect(hits).toHaveLength(2);

      const pcs = between(output, "<steps>", "</steps>")
        .split("\n")
        .map((l) => /^PC=(0x[0-9a-f]+)$/.exec(l.trim())?.[1])
        .filter((p): p is string => p !== undefined);
      expect(pcs).toHaveLength(10);
      expect(pcs[0]).not.toBe(hex(tick)); // the first step left the breakpoint
      expect(new Set(pcs).size).toBeGreaterThan(2);

      const thread = Number(between(output, "<thread>", "</thread>").trim());
      expect(thread === 1 || thread === 2).toBe(true);
      expect(seen).toBeDefined();
      const written = seen!.find((e) => e.vp === thread - 1)!.state;
      expect(written.arch).toBe("x86_64");
      if (written.arch === "x86_64") expect(written.state.gp[0]).toBe(0x1234n);

      expect(output).toContain("detached");
    } finally {
      hook.close();
    }
    await waitFor(async () => {
      const vm = await h.client.getVm("demo");
      return vm.runState === "running" && vm.attached === undefined;
    }, 10_000, "the VM running with no debugger attached");
  });

  const detachedAndRunning = () =>
    waitFor(async () => {
      const vm = await h.client.getVm("demo");
      return vm.runState === "running" && vm.attached === undefined;
    }, 10_000, "the VM running with no debugger attached");

  it("stops at a hardware breakpoint (hbreak) and at write, read and access watchpoints with the values gdb expects", async () => {
    const counter = sym("counter").gva;
    const counterVp1 = sym("counter_vp1").gva;
    const { code, output } = await runGdb(port, [
      `hbreak *${hex(sym("tick").gva)}`,
      "continue",
      "delete",
      `watch *(long *)${hex(counter)}`,
      "continue",
      "delete",
      `rwatch *(long *)${hex(counterVp1)}`,
      "continue",
      "delete",
      `awatch *(long *)${hex(counterVp1)}`,
      "continue",
      "delete",
      "detach",
    ]);
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toMatch(new RegExp(`hit Breakpoint 1, ${hex(sym("tick").gva)}`));
    const write = /hit Hardware watchpoint 2: .*\n\nOld value = (\d+)\nNew value = (\d+)/.exec(output);
    expect(write).not.toBeNull();
    expect(BigInt(write![2])).toBe(BigInt(write![1]) + 1n); // tick counts by one
    expect(output).toMatch(/Thread 2 hit Hardware read watchpoint 3: /); // counter_vp1 is VP 1's
    expect(output).toMatch(/Thread 2 hit Hardware access \(read\/write\) watchpoint 4: /);
    await detachedAndRunning();
  });

  it("stops once at a temporary breakpoint (tbreak), which is gone afterwards", async () => {
    const mainLoop = sym("main_loop").gva;
    const tick = sym("tick").gva;
    const { code, output } = await runGdb(port, [
      `tbreak *${hex(mainLoop)}`,
      "continue",
      "echo <after>\\n",
      "info breakpoints",
      // main_loop runs before every tick: were the temporary breakpoint still in, these would stop there.
      `break *${hex(tick)}`,
      "continue",
      "continue",
      "echo </after>\\n",
      "detach",
    ]);
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toMatch(new RegExp(`hit Temporary breakpoint 1, ${hex(mainLoop)}`));
    const after = between(output, "<after>", "</after>");
    expect(after).toContain("No breakpoints or watchpoints.");
    expect(after.match(new RegExp(`hit Breakpoint 2, ${hex(tick)}`, "g")) ?? []).toHaveLength(2);
    expect(after).not.toContain(hex(mainLoop));
    await detachedAndRunning();
  });

  it("lists VPs as threads, answers `monitor vps`, and interrupts a running VM on Ctrl-C (SIGINT)", async () => {
    const gdb = startGdb(port, ["info threads", "monitor vps", "continue", "echo <after>\\n", "info threads", "detach"]);
    // gdb is in `continue` once it has printed the monitor's answer and the VM runs again; then
    // interrupt it as a terminal would.
    await waitFor(() => gdb.sofar().includes("VP 1 (thread 2)"), 20_000, "gdb past `monitor vps`");
    await waitFor(async () => {
      const vm = await h.client.getVm("demo");
      return vm.runState === "running" && vm.attached !== undefined;
    }, 20_000, "gdb continuing");
    gdb.child.kill("SIGINT");
    const { code, output } = await gdb.result;
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toMatch(/\* 1\s+Thread 1 \(VP 0\)/);
    expect(output).toMatch(/ 2\s+Thread 2 \(VP 1\)/);
    expect(output).toMatch(/VP 0 \(thread 1\): rip 0x[0-9a-f]+ rsp 0x[0-9a-f]+/);
    expect(output).toMatch(/VP 1 \(thread 2\): rip 0x[0-9a-f]+/);
    expect(output).toMatch(/Thread 1 received signal SIGINT, Interrupt\.[\s\S]*<after>/);
    await detachedAndRunning();
  });
});
