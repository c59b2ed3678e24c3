// The gdb bridge driven by the real gdb binary: registers, memory, breakpoints, stepping, writes, detach.
import { spawn, spawnSync } from "node:child_process";
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

/** Runs `gdb -batch -nx` with these commands against the bridge; answers its output (stdout and stderr). */
function runGdb(port: number, commands: string[], timeoutMs = 45_000): Promise<{ code: number | null; output: string }> {
  const args = ["-batch", "-nx", "-ex", "set pagination off", "-ex", `target remote 127.0.0.1:${port}`];
  for (const c of commands) args.push("-ex", c);
  return new Promise((resolve, reject) => {
    const child = spawn(GDB, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
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
});
