// A Python grpcio client, with stubs generated from the proto by protoc, drives the Session stream
// against a real server: attach, pipelined operations, pushed stops, a traced step, and a detach
// by closing the stream. Also runs examples/python/session.py, which the README points to.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Harness, readU64, startHarness, waitFor } from "../integration/harness";

const ROOT = join(__dirname, "../..");
const PYTHON = "/usr/bin/python3"; // Debian's python3-grpcio is visible to the system python only
const PACKAGES = "python3-grpcio protobuf-compiler protobuf-compiler-grpc libprotobuf-dev";
const CHILD_TIMEOUT_MS = 45_000;

const manifest = JSON.parse(readFileSync(join(ROOT, "guests/build/demo-x86_64.json"), "utf8")) as {
  symbols: Record<string, { gva: string; gpa: string }>;
};
const tick = BigInt(manifest.symbols.tick.gva);
const counter = BigInt(manifest.symbols.counter.gpa);

/** What is missing to generate and run the Python stubs, or undefined when nothing is. */
function missingPythonGrpc(): string | undefined {
  const py = spawnSync(PYTHON, ["-c", "import grpc, google.protobuf"], { stdio: "ignore", timeout: 20_000 });
  if (py.status !== 0) return `${PYTHON} cannot import grpc`;
  if (spawnSync("protoc", ["--version"], { stdio: "ignore", timeout: 20_000 }).status !== 0) return "protoc not found";
  const wkt = spawnSync("protoc", ["--descriptor_set_out=/dev/null", "google/protobuf/timestamp.proto"], { cwd: tmpdir(), stdio: "ignore", timeout: 20_000 });
  if (wkt.status !== 0) return "protoc finds no google/protobuf/*.proto";
  if (spawnSync("sh", ["-c", "command -v grpc_python_plugin"], { stdio: "ignore" }).status !== 0) return "grpc_python_plugin not found";
  return undefined;
}

const missing = missingPythonGrpc();
if (missing) console.warn(`skipping the Python Session client tests: ${missing} (install the Debian packages ${PACKAGES})`);
const describePython: jest.Describe = missing ? describe.skip : describe;

/** protoc + grpc_python_plugin: the Debian python3-grpc-tools bundles protoc 3.5, which refuses proto3 `optional`. */
function generateStubs(dir: string): void {
  const plugin = spawnSync("sh", ["-c", "command -v grpc_python_plugin"], { encoding: "utf8" }).stdout.trim();
  const protos = ["breakpoint", "types", "vm_service", "debug_service"].map((p) => `proto/vmm/debug/v1/${p}.proto`);
  const r = spawnSync(
    "protoc",
    [
      "-I", "proto",
      "-I", "third_party",
      `--plugin=protoc-gen-grpc_python=${plugin}`,
      `--python_out=${dir}`,
      `--grpc_python_out=${dir}`,
      ...protos,
      "third_party/google/rpc/status.proto",
      "third_party/google/rpc/error_details.proto",
    ],
    { cwd: ROOT, encoding: "utf8", timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`protoc failed (${r.status ?? r.signal}): ${r.stderr}`);
  if (!existsSync(join(dir, "vmm/debug/v1/debug_service_pb2_grpc.py"))) throw new Error("protoc wrote no gRPC stubs");
}

describePython("Python grpcio client on the Session stream", () => {
  let h: Harness;
  let stubs: string;
  const children = new Set<ChildProcess>();

  /** Runs a Python script to its end (killed after CHILD_TIMEOUT_MS); its exit code and output. */
  function runPython(args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(PYTHON, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
      children.add(child);
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
      child.on("error", (e) => {
        clearTimeout(timer);
        children.delete(child);
        reject(e);
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        children.delete(child);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  async function expectReleasedAndRunning(): Promise<void> {
    await waitFor(
      async () => {
        const info = await h.client.getVm("demo");
        return info.attached === undefined && info.runState === "running";
      },
      20_000,
      "the VM detached and running",
    );
    // Running for real: VP 0's counter moves.
    const before = await readU64(h.vms[0], counter);
    await waitFor(async () => (await readU64(h.vms[0], counter)) > before, 20_000, "the counter moving");
  }

  beforeAll(async () => {
    stubs = mkdtempSync(join(tmpdir(), "vmm-debug-py-"));
    generateStubs(stubs);
    h = await startHarness();
  }, 60_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
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
    await expectReleasedAndRunning();
  });

  it("runs examples/python/session.py to its end", async () => {
    const run = await runPython(["examples/python/session.py", h.address, "demo", "--stubs", stubs]);
    if (run.code !== 0) throw new Error(`session.py exited ${run.code ?? run.signal}:\n${run.stderr}\n${run.stdout}`);
    expect(run.stdout).toContain("attached to 'demo'");
    expect(run.stdout).toMatch(/stop: break/);
    expect(run.stdout).toMatch(/stop: hw_breakpoint on vp 0/);
    expect(run.stdout).toContain("VP_OUT_OF_RANGE");
    expect(run.stdout).toContain("after close: detached, RUN_STATE_RUNNING");
    await expectReleasedAndRunning();
  });
});
