// examples/python/scenario.py, the README walkthrough as unary grpcio calls (stubs generated from
// the proto by protoc), against a real server on an ephemeral port. Its output is checked against
// what the SDK sees: the stops in the VM's event feed while it runs, and the same scenario replayed
// through the SDK afterwards (the demo guest's loop is deterministic: the watchpoint fires at the
// same instruction, and the step lands at the same RIP). Its failures print the ErrorInfo reason.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { VmEvent } from "../../src/client";
import { type Harness, startHarness, waitFor, x86 } from "../integration/harness";
import { describeWithPythonGrpc, expectReleasedAndRunning, generateStubs, PythonRunner, ROOT } from "./python-grpc";

const manifest = JSON.parse(readFileSync(join(ROOT, "guests/build/demo-x86_64.json"), "utf8")) as {
  symbols: Record<string, { gva: string; gpa: string }>;
};
const counterGva = BigInt(manifest.symbols.counter.gva);
const counterGpa = BigInt(manifest.symbols.counter.gpa);
const hex = (v: bigint): string => `0x${v.toString(16)}`;

const describePython = describeWithPythonGrpc("Python scenario tests");

/** The one line of scenario.py's output that starts with `prefix` and matches `re`; its groups. */
function line(stdout: string, prefix: string, re: RegExp): RegExpMatchArray {
  const lines = stdout.split("\n").filter((l) => l.startsWith(prefix) && re.test(l));
  if (lines.length !== 1) throw new Error(`expected one "${prefix}" line matching ${re}, got ${lines.length} in:\n${stdout}`);
  return lines[0].match(re) as RegExpMatchArray;
}

describePython("examples/python/scenario.py (the README walkthrough from Python)", () => {
  let h: Harness;
  let stubs: string;
  const python = new PythonRunner();
  const scenario = (...args: string[]) => python.run(["examples/python/scenario.py", h.address, ...args, "--stubs", stubs]);


  beforeAll(async () => {
    stubs = mkdtempSync(join(tmpdir(), "vmm-debug-py-"));
    generateStubs(stubs);
    h = await startHarness();
  }, 60_000);

  afterAll(async () => {
    python.killAll();
    await h?.close();
    if (stubs) rmSync(stubs, { recursive: true, force: true });
  });

  it("runs every step, and prints the stops the event feed shows and the RIPs an SDK replay reads", async () => {
    // The VM's event feed, subscribed before the script starts.
    const ac = new AbortController();
    const events: VmEvent[] = [];
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    const feed = (async () => {
      for await (const e of h.client.watchEvents("demo", { signal: ac.signal, onSubscribed: subscribed })) events.push(e);
    })();
    await ready;

    const run = await scenario("demo");
    if (run.code !== 0) throw new Error(`scenario.py exited ${run.code ?? run.signal}:\n${run.stderr}\n${run.stdout}`);
    expect(run.stderr).toBe("");
    const out = run.stdout;
    expect(out.trimEnd().split("\n").at(-1)).toBe("scenario done");
    line(out, "ListVms: ", /^ListVms: demo arch=ARCHITECTURE_X86_64 vps=2 backend=emu state=RUN_STATE_RUNNING$/);
    const session = line(out, "Attach: ", /^Attach: vm=demo session=([0-9a-f]+) lease=\d+s$/)[1];
    line(out, "Break: ", /^Break: the VM is stopped$/);
    line(out, "GetVpState: ", /^GetVpState: vp=0 rip=0x[0-9a-f]+ rsp=0x[0-9a-f]+ rflags=0x[0-9a-f]+ cr3=0x[0-9a-f]+$/);
    // The counter by GVA and by GPA: the same bytes (the VM is stopped between the two reads).
    const byGva = line(out, "ReadMemory: ", new RegExp(`^ReadMemory: counter gva=${hex(counterGva)} \\(vp 0\\) value=(\\d+)$`))[1];
    const byGpa = line(out, "ReadMemory: ", new RegExp(`^ReadMemory: counter gpa=${hex(counterGpa)} value=(\\d+)$`))[1];
    expect(BigInt(byGva)).toBe(BigInt(byGpa));
    expect(BigInt(byGva)).toBeGreaterThan(0n);
    // The stops, in order: the Break's, the watchpoint's on VP 0 at the counter, the single step's.
    const stops = out.split("\n").filter((l) => l.startsWith("Resume: "));
    expect(stops).toEqual([
      "Resume: break",
      `Resume: hw_breakpoint vp=0 address=${hex(counterGva)} type=BREAKPOINT_TYPE_WRITE size=BREAKPOINT_SIZE_QWORD`,
      "Resume: single_step vp=0",
    ]);
    const ripAtWatch = BigInt(line(out, "GetVpState: ", /^GetVpState: vp=0 rip=(0x[0-9a-f]+) \(at the watchpoint\)$/)[1]);
    const ripAfterStep = BigInt(line(out, "GetVpState: ", /^GetVpState: vp=0 rip=(0x[0-9a-f]+) \(after the step\)$/)[1]);
    line(out, "Detach: ", /^Detach: the VM runs again$/);

    // The event feed saw the same session and the same stops.
    await waitFor(() => events.some((e) => e.event.kind === "detached"), 20_000, "the detached event");
    ac.abort();
    await feed;
    const attachedEvent = events.find((e) => e.event.kind === "attached");
    expect(attachedEvent?.event).toMatchObject({ kind: "attached", stream: false });
    expect(events.filter((e) => e.event.kind === "stopped").map((e) => (e.event.kind === "stopped" ? e.event.reason : undefined))).toEqual([
      { kind: "break" },
      { kind: "hwBreakpoint", vp: 0, breakpoint: { address: counterGva, type: "write", size: 8 } },
      { kind: "singleStep", vp: 0 },
    ]);
    expect(events.at(-1)?.event).toEqual({ kind: "detached", cause: "requested" });
    expect(session).toMatch(/^[0-9a-f]{16,}$/);
    await expectReleasedAndRunning(h, counterGpa);

    // The same walk through the SDK: the same stop, the same RIP at it and after the step.
    const s = await h.client.attach("demo");
    try {
      await s.break();
      expect(await s.resume()).toEqual({ kind: "break" });
      const slot = await s.setWatchpoint(0, { address: counterGva, type: "write", size: 8 });
      expect(await s.resume()).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: counterGva, type: "write", size: 8 } });
      expect((await x86(h.client, "demo", 0)).rip).toBe(ripAtWatch);
      await s.clearBreakpoint(0, slot);
      expect(await s.step(0)).toEqual({ kind: "singleStep", vp: 0 });
      expect((await x86(h.client, "demo", 0)).rip).toBe(ripAfterStep);
      expect(ripAfterStep).not.toBe(ripAtWatch);
    } finally {
      await s.detach();
    }
    await expectReleasedAndRunning(h, counterGpa);
  }, 90_000);

  it("prints the ErrorInfo reason of a failed call and exits non-zero: no such VM", async () => {
    const run = await scenario("nope");
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^ListVms: demo /);
    expect(run.stdout).not.toContain("Attach:");
    expect(run.stderr).toMatch(/^FAILED: Attach failed: NOT_FOUND \/ VM_NOT_FOUND \{"vm": "nope"\}: .*nope/);
    await expectReleasedAndRunning(h, counterGpa);
  }, 60_000);

  it("prints the ErrorInfo reason of a failed call and exits non-zero: the VM is held by another session, which it leaves alone", async () => {
    const other = await h.client.attach("demo");
    try {
      await other.break();
      const run = await scenario("demo");
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^FAILED: Attach failed: FAILED_PRECONDITION \/ SESSION_CONFLICT /);
      expect(run.stdout).not.toContain("Detach:");
      // The other session still holds the VM, stopped.
      const info = await h.client.getVm("demo");
      expect(info.attached).toBeDefined();
      expect(info.runState).toBe("stopped");
      expect(await other.resume()).toEqual({ kind: "break" });
    } finally {
      await other.detach();
    }
    await expectReleasedAndRunning(h, counterGpa);
  }, 60_000);

  it("--help names its defaults: 127.0.0.1:50051 and the VM demo", async () => {
    const run = await python.run(["examples/python/scenario.py", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("default 127.0.0.1:50051");
    expect(run.stdout).toContain("default demo");
  }, 60_000);
});
