// The gdb bridge driven by Debian's lldb (`lldb --batch`, `gdb-remote`): registers and memory
// checked against the SDK, software, one-shot and hardware breakpoints, a write watchpoint,
// instruction steps, a register write seen through gRPC, qRcmd, threads, and detach.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GdbBridge, createGdbBridge } from "../../src/gdb";
import { type Harness, decodeAt, startHarness, sym, u64, waitFor } from "../integration/harness";

const LLDB = "lldb";
const haveLldb = spawnSync(LLDB, ["--version"], { stdio: "ignore" }).status === 0;
if (!haveLldb) {
  // eslint-disable-next-line no-console
  console.warn("lldb-bridge tests skipped: lldb is not installed (install the Debian package `lldb`)");
}
const describeLldb = haveLldb ? describe : describe.skip;

const hex = (v: bigint) => "0x" + v.toString(16);
/** lldb prints addresses and 64-bit registers as 0x followed by 16 digits. */
const hex16 = (v: bigint) => "0x" + v.toString(16).padStart(16, "0");

interface LldbRun {
  code: number | null;
  output: string;
  /** What each `-o` command printed, in order (lldb echoes every command as `(lldb) <command>`). */
  sections: { command: string; text: string }[];
  /** The RSP packets of the run from lldb's `gdb-remote packets` log (payloads, no framing). */
  packets: { dir: "send" | "read"; payload: string }[];
}

/**
 * Runs `lldb --batch` with these commands after `gdb-remote` to the bridge, logging the packets.
 * (Without python3-lldb lldb prints a harmless ModuleNotFoundError traceback first.)
 */
async function runLldb(port: number, commands: string[], timeoutMs = 60_000): Promise<LldbRun> {
  const dir = mkdtempSync(join(tmpdir(), "lldb-bridge-"));
  const logFile = join(dir, "packets.log");
  const args = ["--batch", "--no-lldbinit", "-o", `log enable -f ${logFile} gdb-remote packets`, "-o", `gdb-remote 127.0.0.1:${port}`];
  for (const c of commands) args.push("-o", c);
  try {
    const child = spawn(LLDB, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const code = await new Promise<number | null>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`lldb did not finish within ${timeoutMs} ms; output so far:\n${output}`));
      }, timeoutMs);
      child.on("error", reject);
      child.on("close", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    let log = "";
    try {
      log = readFileSync(logFile, "latin1");
    } catch {
      // no log: lldb failed before it wrote one; the assertions on packets say so
    }
    const packets = [...log.matchAll(/(send|read) packet: \$([\s\S]*?)#[0-9a-f]{2}\r?\n/g)].map((m) => ({
      dir: m[1] as "send" | "read",
      payload: m[2],
    }));
    const sections = output
      .split(/^\(lldb\) /m)
      .slice(1)
      .map((s) => {
        const nl = s.indexOf("\n");
        return nl < 0 ? { command: s, text: "" } : { command: s.slice(0, nl), text: s.slice(nl + 1) };
      });
    return { code, output, sections, packets };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The text every run of `command` printed, in order. */
function outputsOf(run: LldbRun, command: string): string[] {
  return run.sections.filter((s) => s.command === command).map((s) => s.text);
}

/** The only output of `command` (fails when it ran zero or several times). */
function outputOf(run: LldbRun, command: string): string {
  const all = outputsOf(run, command);
  if (all.length !== 1) throw new Error(`lldb ran \`${command}\` ${all.length} times; output:\n${run.output}`);
  return all[0];
}

/** `name = 0x…` from `register read`. */
function registerValue(text: string, name: string): bigint {
  const m = new RegExp(`^\\s*${name} = (0x[0-9a-f]+)`, "m").exec(text);
  if (!m) throw new Error(`no ${name} in:\n${text}`);
  return BigInt(m[1]);
}

/**
 * The stop lldb reported in `text` with this reason (a regex source): its thread and the PC of
 * its frame #0. Anchored on the stop line, since lldb prints some frame displays (`thread
 * select`) late, into the next command's output, when it does not write to a terminal.
 */
function stopIn(text: string, reason: string): { thread: number; pc: bigint } {
  const m = new RegExp(`\\* thread #(\\d+), stop reason = ${reason}\\n\\s+frame #0: (0x[0-9a-f]+)`).exec(text);
  if (!m) throw new Error(`no stop "${reason}" in:\n${text}`);
  return { thread: Number(m[1]), pc: BigInt(m[2]) };
}

/**
 * An lldb command (`platform shell`, run on this host) that blocks until the test has run
 * `probe` against the server, so the test looks at the VM while lldb holds it stopped. `results`
 * has one entry per time lldb ran it, in order.
 */
async function startHook<T>(probe: () => Promise<T>): Promise<{ command: string; results: () => T[]; close: () => void }> {
  const results: ({ ok: true; value: T } | { ok: false; error: unknown })[] = [];
  const hook = createServer((socket) => {
    const slot = results.length;
    results.push({ ok: false, error: new Error("the probe did not finish") });
    void probe().then(
      (value) => {
        results[slot] = { ok: true, value };
        socket.end("go");
      },
      (error: unknown) => {
        results[slot] = { ok: false, error };
        socket.end("failed");
      },
    );
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  const port = (hook.address() as AddressInfo).port;
  const script = `const s=require("net").connect(${port},"127.0.0.1");s.on("data",()=>process.exit(0));setTimeout(()=>process.exit(1),20000)`;
  return {
    command: `platform shell -t 30 -- '${process.execPath}' -e '${script}'`,
    results: () =>
      results.map((r) => {
        if (!r.ok) throw r.error;
        return r.value;
      }),
    close: () => hook.close(),
  };
}

describeLldb("lldb through the bridge (embedded x86-64 demo guest, 2 VPs)", () => {
  let h: Harness;
  let bridge: GdbBridge;
  let port: number;
  const counter = sym("counter").gva;
  const tick = sym("tick").gva;
  const inText = (pc: bigint) => pc >= sym("text_start").gva && pc < sym("text_end").gva;

  beforeAll(async () => {
    h = await startHarness();
    bridge = createGdbBridge({ client: h.client, vm: "demo" });
    ({ port } = await bridge.listen("127.0.0.1", 0));
  });

  afterAll(async () => {
    await bridge?.close();
    await h?.close();
  });

  const readCounter = async () => u64(await h.client.readMemory("demo", { gva: counter, vp: 0 }, 8));

  /** After `detach`: no debugger attached, the VM running, and the guest counting on. */
  async function detachedAndRunning(): Promise<void> {
    await waitFor(async () => {
      const vm = await h.client.getVm("demo");
      return vm.runState === "running" && vm.attached === undefined;
    }, 10_000, "the VM running with no debugger attached");
    const before = await readCounter();
    await waitFor(async () => (await readCounter()) > before, 10_000, "the guest's counter advancing after detach");
  }

  /** Every run ends with `detach`: lldb printed it, exited 0, and sent `D` (not `k`). */
  function expectDetached(run: LldbRun): void {
    expect({ code: run.code, output: run.output }).toMatchObject({ code: 0 });
    expect(outputOf(run, "detach")).toContain("Process 1 detached");
    expect(run.packets.some((p) => p.dir === "send" && p.payload === "D")).toBe(true);
    expect(run.packets.some((p) => p.dir === "send" && p.payload === "k")).toBe(false);
  }

  it("connects; register read, memory read, thread list and `monitor vps` agree with the SDK; detach leaves the VM running", async () => {
    const hook = await startHook(async () => ({
      vm: await h.client.getVm("demo"),
      states: await h.client.getVpStates("demo"),
      counter: await h.client.readMemory("demo", { gva: counter, vp: 0 }, 16),
    }));
    let run: LldbRun;
    try {
      run = await runLldb(port, [
        "register read rip rsp",
        hook.command,
        "thread select 2",
        "register read rip rsp",
        `memory read --format x --size 8 --count 2 ${hex(counter)}`,
        "thread list",
        "process plugin packet monitor vps",
        "detach",
      ]);
    } finally {
      hook.close();
    }
    expectDetached(run);
    const [seen, ...more] = hook.results();
    expect(more).toHaveLength(0);
    expect(seen.vm.runState).toBe("stopped"); // lldb held the VM while the test looked
    expect(seen.vm.attached).toBeDefined();
    const vp = (n: number) => {
      const s = seen.states.find((e) => e.vp === n)!.state;
      if (s.arch !== "x86_64") throw new Error("not x86_64");
      return s.state;
    };

    const connect = outputOf(run, `gdb-remote 127.0.0.1:${port}`);
    expect(connect).toContain("Process 1 stopped");
    expect(stopIn(connect, "signal SIGTRAP")).toEqual({ thread: 1, pc: vp(0).rip });

    const [regs0, regs1] = outputsOf(run, "register read rip rsp");
    expect(registerValue(regs0, "rip")).toBe(vp(0).rip);
    expect(registerValue(regs0, "rsp")).toBe(vp(0).gp[4]);
    expect(registerValue(regs1, "rip")).toBe(vp(1).rip);
    expect(registerValue(regs1, "rsp")).toBe(vp(1).gp[4]);
    expect(inText(vp(0).rip) && inText(vp(1).rip)).toBe(true);

    const mem = new RegExp(`^${hex16(counter)}: (0x[0-9a-f]{16}) (0x[0-9a-f]{16})$`, "m").exec(
      outputOf(run, `memory read --format x --size 8 --count 2 ${hex(counter)}`),
    );
    expect(mem).not.toBeNull();
    expect(BigInt(mem![1])).toBe(u64(seen.counter, 0));
    expect(BigInt(mem![2])).toBe(u64(seen.counter, 8));
    expect(BigInt(mem![1])).toBeGreaterThan(0n); // the guest has been counting

    const threads = outputOf(run, "thread list");
    expect(threads.match(/thread #\d+: tid = /g)).toHaveLength(2);
    expect(threads).toContain(`  thread #1: tid = 0x0001, ${hex16(vp(0).rip)}`);
    expect(threads).toContain(`* thread #2: tid = 0x0002, ${hex16(vp(1).rip)}`); // selected above

    const monitor = outputOf(run, "process plugin packet monitor vps");
    expect(monitor).toContain(`VP 0 (thread 1): rip ${hex(vp(0).rip)} rsp ${hex(vp(0).gp[4])} `);
    expect(monitor).toContain(`VP 1 (thread 2): rip ${hex(vp(1).rip)} rsp ${hex(vp(1).gp[4])} `);
    expect(monitor).toMatch(/packet: qRcmd,767073\nresponse: OK/);

    await detachedAndRunning();
  });

  it("hits a software breakpoint at `tick` twice, then a one-shot breakpoint that is gone after its hit", async () => {
    // What the embedded machine has armed, looked at while lldb holds the VM stopped.
    const armed = () => h.vms[0].softwareBreakpoints.list().map((b) => (b.address.kind === "gva" ? b.address.gva : b.address.gpa));
    const hook = await startHook(async () => armed());
    let run: LldbRun;
    try {
      run = await runLldb(port, [
        `breakpoint set -a ${hex(tick)}`,
        "continue",
        hook.command,
        "continue",
        "breakpoint delete 1",
        `breakpoint set -o true -a ${hex(tick)}`,
        "continue",
        "breakpoint list",
        hook.command,
        "thread step-inst",
        "detach",
      ]);
    } finally {
      hook.close();
    }
    expectDetached(run);
    // Armed on the server while lldb's breakpoint lives; nothing left once the one-shot fired.
    expect(hook.results()).toEqual([[tick], []]);
    expect(outputOf(run, `breakpoint set -a ${hex(tick)}`)).toContain(`Breakpoint 1: address = ${hex(tick)}`);
    const [first, second, third] = outputsOf(run, "continue");
    for (const hit of [first, second]) {
      expect(stopIn(hit, "breakpoint 1\\.1").pc).toBe(tick);
    }
    expect(stopIn(third, "one-shot breakpoint 2").pc).toBe(tick);
    expect(outputOf(run, "breakpoint list")).toContain("No breakpoints currently set.");

    // On the wire: Z0 answered OK, three swbreak stops; lldb takes its breakpoints out at every
    // stop and puts them back before the next resume, so after the one-shot's stop (and the step
    // that follows it) no Z0 may come again.
    const sendsAt = (i: number) => run.packets[i].dir === "send";
    const z0 = `Z0,${tick.toString(16)},1`;
    const z0Sends = run.packets.flatMap((p, i) => (p.dir === "send" && p.payload === z0 ? [i] : []));
    expect(z0Sends.length).toBeGreaterThanOrEqual(3);
    for (const i of z0Sends) expect(run.packets[i + 1]).toEqual({ dir: "read", payload: "OK" });
    const swStops = run.packets.flatMap((p, i) => (p.dir === "read" && /^T05thread:[0-9a-f]+;swbreak:;$/.test(p.payload) ? [i] : []));
    expect(swStops).toHaveLength(3);
    expect(z0Sends.some((i) => i > swStops[0] && i < swStops[1])).toBe(true); // put back after the first hit
    expect(z0Sends.some((i) => i > swStops[2])).toBe(false); // the one-shot is not
    const step = run.packets.findIndex((p, i) => i > swStops[2] && sendsAt(i) && /^vCont;s:/.test(p.payload));
    expect(step).toBeGreaterThan(swStops[2]);
    expect(stopIn(outputOf(run, "thread step-inst"), "instruction step into").pc).not.toBe(tick);

    await detachedAndRunning();
  });

  it("stops at a hardware breakpoint (Z1), at a write watchpoint on `counter` with old and new values, and at a read watchpoint (Z3)", async () => {
    const counterVp1 = sym("counter_vp1").gva;
    const run = await runLldb(port, [
      `breakpoint set -H -a ${hex(tick)}`,
      "continue",
      "breakpoint delete 1",
      `watchpoint set expression -w write -s 8 -- ${hex(counter)}`,
      "continue",
      "watchpoint delete 1",
      `watchpoint set expression -w read -s 8 -- ${hex(counterVp1)}`,
      "continue",
      "watchpoint delete 2",
      "detach",
    ]);
    expectDetached(run);
    const [hw, watch, read] = outputsOf(run, "continue");

    expect(stopIn(hw, "breakpoint 1\\.1").pc).toBe(tick);
    const z1 = `Z1,${tick.toString(16)},1`;
    const z1Send = run.packets.findIndex((p) => p.dir === "send" && p.payload === z1);
    expect(z1Send).toBeGreaterThanOrEqual(0);
    expect(run.packets[z1Send + 1]).toEqual({ dir: "read", payload: "OK" });
    expect(run.packets.some((p) => p.dir === "send" && p.payload.startsWith(`Z0,${tick.toString(16)}`))).toBe(false);
    expect(run.packets.some((p) => p.dir === "read" && /^T05thread:[0-9a-f]+;hwbreak:;$/.test(p.payload))).toBe(true);

    const z2 = `Z2,${counter.toString(16)},8`;
    const z2Send = run.packets.findIndex((p) => p.dir === "send" && p.payload === z2);
    expect(z2Send).toBeGreaterThanOrEqual(0);
    expect(run.packets[z2Send + 1]).toEqual({ dir: "read", payload: "OK" });
    // counter is VP 0's: thread 1 stops, just after its store.
    expect(run.packets.some((p) => p.dir === "read" && p.payload === `T05thread:1;watch:${counter.toString(16)};`)).toBe(true);
    const values = /Watchpoint 1 hit:\nold value: (\d+)\nnew value: (\d+)\n/.exec(watch);
    expect(values).not.toBeNull();
    expect(BigInt(values![2])).toBe(BigInt(values![1]) + 1n); // tick counts by one
    // the `ret` after `mov %rax,(%rdi)`, on thread 1
    expect(stopIn(watch, "watchpoint 1")).toEqual({ thread: 1, pc: tick + 10n });

    // x86 has no read-only watchpoint: the bridge arms read-or-write and reports `awatch`.
    // counter_vp1 is VP 1's: thread 2 stops after its load (tick+3) or its store (tick+10).
    const z3 = `Z3,${counterVp1.toString(16)},8`;
    const z3Send = run.packets.findIndex((p) => p.dir === "send" && p.payload === z3);
    expect(z3Send).toBeGreaterThanOrEqual(0);
    expect(run.packets[z3Send + 1]).toEqual({ dir: "read", payload: "OK" });
    expect(run.packets.some((p) => p.dir === "read" && p.payload === `T05thread:2;awatch:${counterVp1.toString(16)};`)).toBe(true);
    expect(read).toMatch(/Watchpoint 2 hit:\nold value: \d+\nnew value: \d+\n/);
    const readStop = stopIn(read, "watchpoint 2");
    expect(readStop.thread).toBe(2);
    expect([tick + 3n, tick + 10n]).toContain(readStop.pc);

    await detachedAndRunning();
  });

  it("steps 20 instructions with the PC following the code, and writes rax (seen through gRPC)", async () => {
    const rax = 0x5a5a_1234_abcd_0042n;
    const hook = await startHook(async () => ({ vm: await h.client.getVm("demo"), states: await h.client.getVpStates("demo") }));
    const steps = Array.from({ length: 20 }, () => "thread step-inst");
    let run: LldbRun;
    try {
      run = await runLldb(port, [
        ...steps,
        // rax is dead at `tick` (its first instruction loads it), so the write leaves the guest intact.
        `breakpoint set -o true -a ${hex(tick)}`,
        "continue",
        `register write rax ${hex(rax)}`,
        "register read rax",
        hook.command,
        "detach",
      ]);
    } finally {
      hook.close();
    }
    expectDetached(run);

    const start = stopIn(outputOf(run, `gdb-remote 127.0.0.1:${port}`), "signal SIGTRAP");
    expect(start.thread).toBe(1);
    const stepOutputs = outputsOf(run, "thread step-inst");
    expect(stepOutputs).toHaveLength(20);
    const stops = stepOutputs.map((text) => stopIn(text, "instruction step into"));
    expect(stops.every((s) => s.thread === 1)).toBe(true);
    const pcs = stops.map((s) => s.pc);
    let previous = start.pc;
    for (const pc of pcs) {
      expect(inText(pc)).toBe(true);
      const insn = await decodeAt(h.client, "demo", 0, previous);
      if (insn.next) expect(pc).toBe(previous + BigInt(insn.length)); // a plain instruction: the next one
      else expect(pc).not.toBe(previous);
      previous = pc;
    }
    expect(new Set(pcs).size).toBeGreaterThan(2);
    expect(run.packets.filter((p) => p.dir === "send" && /^vCont;s:0*1$/.test(p.payload))).toHaveLength(20);

    // Either VP may reach `tick` first; lldb writes the stopped thread's rax (thread = VP + 1).
    const oneShot = outputOf(run, "continue");
    const hit = stopIn(oneShot, "one-shot breakpoint 1");
    expect(hit.pc).toBe(tick);
    expect(registerValue(outputOf(run, "register read rax"), "rax")).toBe(rax);
    const seen = hook.results()[0];
    expect(seen).toBeDefined();
    expect(seen.vm.runState).toBe("stopped");
    const written = seen.states.find((e) => e.vp === hit.thread - 1)?.state;
    expect(written?.arch).toBe("x86_64");
    if (written?.arch === "x86_64") {
      expect(written.state.gp[0]).toBe(rax);
      expect(written.state.rip).toBe(tick);
    }
    const other = seen.states.find((e) => e.vp !== hit.thread - 1)?.state;
    if (other?.arch === "x86_64") expect(other.state.gp[0]).not.toBe(rax); // only that thread's rax

    await detachedAndRunning();
  });
});
