// `vmm-debug gdb` as a user runs it: beside `vmm-debug serve`, with the real gdb binary.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { connect } from "../../src/client";
import { waitFor } from "../integration/harness";

const root = join(__dirname, "../..");
const haveGdb = spawnSync("gdb", ["--version"], { stdio: "ignore" }).status === 0;
if (!haveGdb) {
  // eslint-disable-next-line no-console
  console.warn("gdb-bridge CLI tests skipped: gdb is not installed (install the Debian package `gdb`)");
}
const describeGdb = haveGdb ? describe : describe.skip;

/** Runs the CLI (src/cli/main.ts through tsx); resolves the first HOST:PORT after `marker` on stdout. */
function cli(args: string[], marker: RegExp): { child: ChildProcess; address: Promise<string>; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/cli/main.ts", ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const address = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address line within 30 s: ${stderr}`)), 30_000);
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = marker.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}: ${stderr.trim()}`));
    });
  });
  return { child, address, exit, stderr: () => stderr };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

describeGdb("vmm-debug gdb", () => {
  it("bridges gdb to the served demo VM: registers, monitor vps, detach leaves it running", async () => {
    const server = cli(["serve", "--listen", "127.0.0.1:0"], / on (\S+:\d+)\n/);
    let bridge: ReturnType<typeof cli> | undefined;
    try {
      const address = await server.address;
      bridge = cli(["gdb", "--listen", "127.0.0.1:0", "--server", address, "--vm", "demo"], /bridging gdb on (\S+:\d+) /);
      const gdbAt = await bridge.address;
      const run = spawnSync(
        "gdb",
        ["-batch", "-nx", "-ex", `target remote ${gdbAt}`, "-ex", "info registers rip", "-ex", "monitor vps", "-ex", "detach"],
        { encoding: "utf8", timeout: 45_000 },
      );
      const output = run.stdout + run.stderr;
      expect({ status: run.status, output }).toMatchObject({ status: 0 });
      expect(output).toMatch(/rip\s+0xffffffff801[0-9a-f]{5}/);
      expect(output).toMatch(/VP 1 \(thread 2\): rip 0x/);
      expect(output).toContain("[Inferior 1 (Remote target) detached]");
      const client = connect(address);
      try {
        await waitFor(async () => {
          const vm = await client.getVm("demo");
          return vm.runState === "running" && vm.attached === undefined;
        }, 10_000, "the VM running with no debugger attached");
      } finally {
        client.close();
      }
      expect(bridge.stderr()).toMatch(/attached to VM "demo" \(x86_64, 2 VP\(s\)\)[\s\S]*detached from VM "demo"; the VM runs on/);
    } finally {
      if (bridge) await stop(bridge.child);
      await stop(server.child);
    }
  });

  it("refuses a non-loopback --listen with a usage error (exit 2)", async () => {
    const bridge = cli(["gdb", "--listen", "0.0.0.0:1234"], /never/);
    bridge.address.catch(() => undefined);
    expect(await bridge.exit).toBe(2);
    expect(bridge.stderr()).toMatch(/--listen must be a loopback address/);
  });
});
