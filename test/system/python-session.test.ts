// A Python grpcio client, with stubs generated from the proto by protoc, drives the Session stream
// against a real server: attach, pipelined operations, pushed stops, a traced step, and a detach
// by closing the stream. Also runs examples/python/session.py, which the README points to.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Harness, startHarness } from "../integration/harness";
import { describeWithPythonGrpc, expectReleasedAndRunning, generateStubs, PythonRunner, ROOT } from "./python-grpc";

const manifest = JSON.parse(readFileSync(join(ROOT, "guests/build/demo-x86_64.json"), "utf8")) as {
  symbols: Record<string, { gva: string; gpa: string }>;
};
const tick = BigInt(manifest.symbols.tick.gva);
const counter = BigInt(manifest.symbols.counter.gpa);

const describePython = describeWithPythonGrpc("Python Session client tests");

describePython("Python grpcio client on the Session stream", () => {
  let h: Harness;
  let stubs: string;
  const python = new PythonRunner();
  const runPython = (args: string[]) => python.run(args);


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

  it("opens the stream, pipelines operations, receives pushed stops, steps with a PC trace and detaches by closing it", async () => {
    const run = await runPython([
      "test/system/python/session_client.py",
      "--stubs", stubs,
      "--address", h.address,
      "--vm", "demo",
      "--tick", `0x${tick.toString(16)}`,
      "--counter", `0x${counter.toString(16)}`,
    ]);
    if (run.code !== 0) throw new Error(`session_client.py exited ${run.code ?? run.signal}:\n${run.stderr}\n${run.stdout}`);
    const lines = run.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const seen = JSON.parse(lines[0]) as {
      sessionId: string;
      vm: string;
      stops: { reason: string; sequence: number; vp: number | null; address?: string }[];
      rip: string;
      executed: number;
      traceBytes: number;
      unexpected: Record<string, number>;
      end: { code: string };
    };
    expect(seen.sessionId).toMatch(/^[0-9a-f]+$/);
    expect(seen.vm).toBe("demo");
    // The break's stop (VM-wide: no vp), then the breakpoint's at `tick` on VP 0, in feed order.
    expect(seen.stops.map((s) => s.reason)).toEqual(["break", "hw_breakpoint"]);
    expect(seen.stops[0].vp).toBeNull();
    expect(seen.stops[1]).toMatchObject({ vp: 0, address: `0x${tick.toString(16)}` });
    expect(seen.stops[1].sequence).toBeGreaterThan(seen.stops[0].sequence);
    expect(BigInt(seen.rip)).toBe(tick);
    expect(seen.executed).toBeGreaterThan(0);
    expect(seen.traceBytes).toBe(8 * seen.executed);
    expect(seen.unexpected).toEqual({});
    expect(seen.end.code).toBe("OK");
    // No detach was sent: closing the stream ended the session.
    await expectReleasedAndRunning(h, counter);
  });

  it("runs examples/python/session.py to its end", async () => {
    const run = await runPython(["examples/python/session.py", h.address, "demo", "--stubs", stubs]);
    if (run.code !== 0) throw new Error(`session.py exited ${run.code ?? run.signal}:\n${run.stderr}\n${run.stdout}`);
    expect(run.stdout).toContain("attached to 'demo'");
    expect(run.stdout).toMatch(/stop: break/);
    expect(run.stdout).toMatch(/stop: hw_breakpoint on vp 0/);
    expect(run.stdout).toContain("VP_OUT_OF_RANGE");
    expect(run.stdout).toContain("after close: detached, RUN_STATE_RUNNING");
    await expectReleasedAndRunning(h, counter);
  });
});
