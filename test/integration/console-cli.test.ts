// `vmm-debug console` (run from source) and WatchConsole through server reflection with buf curl,
// against a real server and the console guest on the embedded machine.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createEmuMachine, type EmuMachine } from "../../src/emu";
import { createVmmDebugServer, type Logger, type VmmDebugServer } from "../../src/server";
import { COM1_TEXT, DEBUGCON_TEXT, consoleGuest, consoleGuestOutput } from "../shared/console-guest";
import { SMALL_RAM, waitFor } from "./harness";

const root = join(__dirname, "../..");
const quiet: Logger = { info: () => undefined, warn: () => undefined };
const COUNT = 5000;

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, VMM_DEBUG_SESSION: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

describe("vmm-debug console and buf curl", () => {
  let vm: EmuMachine;
  let server: VmmDebugServer;
  let address: string;
  const cli = (args: string[]) => run(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/cli/main.ts", ...args], { VMM_DEBUG_SERVER: address });

  beforeAll(async () => {
    vm = await createEmuMachine({ id: "con", image: consoleGuest(COUNT, "powerOff"), vpCount: 1, memory: SMALL_RAM, startRunning: false });
    server = createVmmDebugServer({ vms: [vm], logger: quiet });
    address = `127.0.0.1:${(await server.listen("127.0.0.1:0")).port}`;
  });
  afterAll(async () => {
    await server?.close();
    await vm?.close();
  });

  it("--follow prints every byte raw as the guest writes it and exits 0 when it powers off", async () => {
    const following = cli(["console", "--follow"]);
    await waitFor(() => vm.console.watcherCount === 1, 60_000, "the CLI watching");
    await vm.resume();
    const r = await following;
    expect(r.stderr).toContain('VM "con" powered off');
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.from(consoleGuestOutput(COUNT)))).toBe(true);
  }, 90_000);

  it("without --follow prints what the server holds and exits; --from, --source and --json", async () => {
    expect(vm.runState()).toBe("poweredOff");
    const expected = Buffer.from(consoleGuestOutput(COUNT));
    const all = await cli(["console"]);
    expect(all.code).toBe(0);
    expect(all.stdout.equals(expected)).toBe(true);
    const from = await cli(["console", "--from", "1000"]);
    expect(from.stdout.equals(expected.subarray(1000))).toBe(true);
    const com1 = await cli(["console", "--source", "com1"]);
    expect(com1.stdout.toString("latin1")).toBe(COM1_TEXT);
    const json = await cli(["console", "--json", "--from", "0"]);
    const lines = json.stdout.toString().trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ offset: "0", source: "debugcon", data: Buffer.from(DEBUGCON_TEXT).toString("base64") });
    expect(lines[1]).toEqual({ offset: String(DEBUGCON_TEXT.length), source: "com1", data: Buffer.from(COM1_TEXT).toString("base64") });
    expect(lines[lines.length - 1]).toEqual({ end: { endOffset: String(expected.length), reason: "poweredOff" } });
  }, 90_000);

  it("exit codes: a bad offset is a usage error (2), an unknown VM is not found (4)", async () => {
    const past = await cli(["console", "--from", "999999"]);
    expect(past.code).toBe(2);
    expect(past.stderr).toContain("past the end");
    const bad = await cli(["console", "--from", "ten"]);
    expect(bad.code).toBe(2);
    const nope = await cli(["console", "--vm", "nope"]);
    expect(nope.code).toBe(4);
  }, 90_000);

  it("buf curl finds WatchConsole through reflection and streams the bytes as base64 JSON", async () => {
    const base = ["--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge"];
    const list = await run("npx", [...base, "--list-methods", `http://${address}`]);
    expect(list.code).toBe(0);
    expect(list.stdout.toString()).toContain("vmm.debug.v1.VmService/WatchConsole");
    const r = await run("npx", [...base, "-d", JSON.stringify({ vm: "con", fromOffset: "0", stopAtEnd: true }), `http://${address}/vmm.debug.v1.VmService/WatchConsole`]);
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toContain(`"source": "CONSOLE_SOURCE_DEBUGCON"`);
    expect(text).toContain(`"data": "${Buffer.from(DEBUGCON_TEXT).toString("base64")}"`);
    expect(text).toContain(`"reason": "CONSOLE_END_REASON_POWERED_OFF"`);
  }, 90_000);
});

describe("vmm-debug console on a VM that runs on", () => {
  let vm: EmuMachine;
  let server: VmmDebugServer;
  let address: string;

  beforeAll(async () => {
    vm = await createEmuMachine({ id: "spin", image: consoleGuest(100, "spin"), vpCount: 1, memory: SMALL_RAM });
    server = createVmmDebugServer({ vms: [vm], logger: quiet });
    address = `127.0.0.1:${(await server.listen("127.0.0.1:0")).port}`;
  });
  afterAll(async () => {
    await server?.close();
    await vm?.close();
  });

  it("--follow prints the output and keeps following until Ctrl-C (exit 130), which releases the watcher", async () => {
    const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/cli/main.ts", "console", "--follow"], {
      cwd: root,
      env: { ...process.env, VMM_DEBUG_SERVER: address, VMM_DEBUG_SESSION: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const expected = Buffer.from(consoleGuestOutput(100));
    await waitFor(() => Buffer.concat(out).equals(expected), 60_000, "the output on stdout");
    expect(vm.console.watcherCount).toBe(1);
    child.kill("SIGINT");
    expect(await exit).toBe(130);
    await waitFor(() => vm.console.watcherCount === 0, 20_000, "the watcher released");
    expect(vm.runState()).toBe("running");
  }, 90_000);

  it("--new prints only what comes after it started (nothing here) until Ctrl-C", async () => {
    const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/cli/main.ts", "console", "--new"], {
      cwd: root,
      env: { ...process.env, VMM_DEBUG_SERVER: address, VMM_DEBUG_SESSION: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("latin1")));
    const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await waitFor(() => vm.console.watcherCount === 1, 60_000, "the CLI watching");
    child.kill("SIGINT");
    expect(await exit).toBe(130);
    expect(stdout).toBe("");
  }, 90_000);
});

describe("vmm-debug console into a pipe that closes", () => {
  let vm: EmuMachine;
  let server: VmmDebugServer;
  let address: string;

  beforeAll(async () => {
    vm = await createEmuMachine({ id: "pipe", image: consoleGuest(3_000_000, "halt"), vpCount: 1, memory: SMALL_RAM });
    server = createVmmDebugServer({ vms: [vm], logger: quiet });
    address = `127.0.0.1:${(await server.listen("127.0.0.1:0")).port}`;
  });
  afterAll(async () => {
    await server?.close();
    await vm?.close();
  });

  it("--follow | head -c 100: ends quietly when the reader goes away, and releases its watcher", async () => {
    const tsx = require.resolve("tsx/cjs");
    const r = await run("bash", ["-o", "pipefail", "-c", `"${process.execPath}" --require "${tsx}" src/cli/main.ts console --follow | head -c 100 | wc -c`], {
      VMM_DEBUG_SERVER: address,
    });
    // The guest writes 3 MB as fast as it can: what the reader missed is announced (if it missed
    // anything: a reader that kept up has nothing to say), and nothing else.
    for (const line of r.stderr.split("\n").filter((l) => l.trim() !== "")) {
      expect(line).toMatch(/^vmm-debug: console output before offset \d+ is gone \(the server keeps the last 1 MiB\)$/);
    }
    expect(r.stdout.toString().trim()).toBe("100");
    expect(r.code).toBe(0);
    await waitFor(() => vm.console.watcherCount === 0, 20_000, "the watcher released");
  }, 90_000);
});
