// Shared by the Python grpcio tests (python-session.test.ts, python-scenario.test.ts): what the
// system must have, the stubs generated from the proto by protoc + grpc_python_plugin, and running
// a Python script to its end.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Harness, readU64, waitFor } from "../integration/harness";

export const ROOT = join(__dirname, "../..");
/** Debian's python3-grpcio is visible to the system python only (not to a pyenv or venv one). */
export const PYTHON = "/usr/bin/python3";
/** The Debian packages the Python tests need (.ci/run installs them when missing). */
export const PYTHON_PACKAGES = "python3-grpcio protobuf-compiler protobuf-compiler-grpc libprotobuf-dev";
const CHILD_TIMEOUT_MS = 45_000;

/** What is missing to generate and run the Python stubs, or undefined when nothing is. */
export function missingPythonGrpc(): string | undefined {
  const py = spawnSync(PYTHON, ["-c", "import grpc, google.protobuf"], { stdio: "ignore", timeout: 20_000 });
  if (py.status !== 0) return `${PYTHON} cannot import grpc`;
  if (spawnSync("protoc", ["--version"], { stdio: "ignore", timeout: 20_000 }).status !== 0) return "protoc not found";
  const wkt = spawnSync("protoc", ["--descriptor_set_out=/dev/null", "google/protobuf/timestamp.proto"], { cwd: tmpdir(), stdio: "ignore", timeout: 20_000 });
  if (wkt.status !== 0) return "protoc finds no google/protobuf/*.proto";
  if (spawnSync("sh", ["-c", "command -v grpc_python_plugin"], { stdio: "ignore" }).status !== 0) return "grpc_python_plugin not found";
  return undefined;
}

/**
 * `describe`, or `describe.skip` with a warning naming the Debian packages when something the
 * Python tests need is missing.
 */
export function describeWithPythonGrpc(what: string): jest.Describe {
  const missing = missingPythonGrpc();
  if (missing) console.warn(`skipping the ${what}: ${missing} (install the Debian packages ${PYTHON_PACKAGES})`);
  return missing ? describe.skip : describe;
}

/** protoc + grpc_python_plugin: the Debian python3-grpc-tools bundles protoc 3.5, which refuses proto3 `optional`. */
export function generateStubs(dir: string): void {
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

export interface PythonRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs Python scripts from the repository root; `killAll` ends any still running (afterAll). */
export class PythonRunner {
  private readonly children = new Set<ChildProcess>();

  /** Runs a Python script to its end (killed after 45 s); its exit code and output. */
  run(args: string[]): Promise<PythonRun> {
    return new Promise((resolve, reject) => {
      const child = spawn(PYTHON, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
      this.children.add(child);
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
      child.on("error", (e) => {
        clearTimeout(timer);
        this.children.delete(child);
        reject(e);
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        this.children.delete(child);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  killAll(): void {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

/** After a script ends: nobody is attached to `h`'s first VM, it runs, and its counter at `counterGpa` moves. */
export async function expectReleasedAndRunning(h: Harness, counterGpa: bigint): Promise<void> {
  await waitFor(
    async () => {
      const info = await h.client.getVm("demo");
      return info.attached === undefined && info.runState === "running";
    },
    20_000,
    "the VM detached and running",
  );
  const before = await readU64(h.vms[0], counterGpa);
  await waitFor(async () => (await readU64(h.vms[0], counterGpa)) > before, 20_000, "the counter moving");
}
