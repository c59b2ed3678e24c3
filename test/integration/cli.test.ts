// `vmm-debug serve` as `npm start` runs it: listen address from --listen or VMM_DEBUG_LISTEN, refusals.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { connect } from "../../src/client";

const root = join(__dirname, "../..");

/** Starts the CLI; resolves with the "serving … on HOST:PORT" address, or rejects with its stderr. */
function serve(
  args: string[],
  env: Record<string, string | undefined> = {},
): { child: ChildProcess; address: Promise<string>; exit: Promise<number | null>; stderr(): string } {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/main.ts", ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: stop() ends a launched QEMU with it.
    detached: true,
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const address = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "serving" line within 30 s: ${stderr}`)), 30_000);
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = / on (\S+:\d+)\n/.exec(out);
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
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid!, "SIGTERM");
  } catch {
    return; // gone already
  }
  await exited;
}

describe("vmm-debug serve", () => {
  it("listens where --listen says and serves the demo VM on 2 VPs", async () => {
    const s = serve(["--listen", "127.0.0.1:0"]);
    try {
      const address = await s.address;
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
      const client = connect(address);
      const [vm] = await client.listVms();
      expect({ id: vm.id, arch: vm.arch, vpCount: vm.vpCount, backend: vm.backend }).toEqual({ id: "demo", arch: "x86_64", vpCount: 2, backend: "emu" });
      client.close();
    } finally {
      await stop(s.child);
    }
  });

  it("takes the address from VMM_DEBUG_LISTEN, IPv6 loopback included", async () => {
    const s = serve([], { VMM_DEBUG_LISTEN: "[::1]:0" });
    try {
      expect(await s.address).toMatch(/^\[::1\]:\d+$/);
    } finally {
      await stop(s.child);
    }
  });

  it("refuses a non-loopback address without TLS client authentication, naming --insecure-non-loopback", async () => {
    const s = serve(["--listen", "0.0.0.0:0"]);
    await expect(s.address).rejects.toThrow(/exited with 1: .*not a loopback address.*--insecure-non-loopback/s);
  });

  it("says in one line that an address is in use, naming the port and --listen, and exits 1", async () => {
    const first = serve(["--listen", "127.0.0.1:0"]);
    try {
      const taken = await first.address;
      const second = serve(["--listen", taken]);
      await expect(second.address).rejects.toThrow(/exited with 1/);
      // Exactly one line: grpc-js's own "E No address added out of total 1 resolved" is not printed.
      expect(second.stderr()).toBe(
        `vmm-debug: cannot listen on ${taken}: the address is already in use (another vmm-debug server?); choose another with --listen HOST:PORT or VMM_DEBUG_LISTEN\n`,
      );
    } finally {
      await stop(first.child);
    }
  });

  const qemu = spawnSync("qemu-system-x86_64", ["--version"], { stdio: "ignore" }).status === 0;
  (qemu ? it : it.skip)("runs the README's `--qemu -- -machine q35 …` example on a machine without a display (-display none added)", async () => {
    const kernel = join(root, "guests/build/demo-x86_64.bin");
    const s = serve(["--listen", "127.0.0.1:0", "--qemu", "--", "-machine", "q35", "-cpu", "max", "-m", "256M", "-kernel", kernel], {
      DISPLAY: undefined,
      WAYLAND_DISPLAY: undefined,
    });
    try {
      const client = connect(await s.address);
      const [vm] = await client.listVms();
      expect({ id: vm.id, arch: vm.arch, backend: vm.backend }).toEqual({ id: "qemu", arch: "x86_64", backend: "qemu" });
      client.close();
      expect(s.stderr()).not.toMatch(/gtk initialization failed|could not initialize|cannot open display/i);
    } finally {
      await stop(s.child);
    }
  }, 120_000);
  if (!qemu) it.todo("the --qemu headless example needs qemu-system-x86_64: install the Debian package qemu-system-x86");

  it("refuses an unknown option with a usage error", async () => {
    const s = serve(["--lisen", "127.0.0.1:0"]);
    await expect(s.address).rejects.toThrow(/exited with 2: .*unknown option --lisen/s);
  });
});

describe("vmm-debug help", () => {
  const cli = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/cli/main.ts", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });

  it("lists the commands for --help, -h and help, and a command's options for help COMMAND [SUB]", async () => {
    for (const args of [["--help"], ["-h"], ["help"]]) {
      const r = await cli(args);
      expect([args, r.code]).toEqual([args, 0]);
      expect(r.stdout).toMatch(/^usage: vmm-debug COMMAND/i);
      for (const c of ["serve", "gdb", "token"]) expect(r.stdout).toMatch(new RegExp(`^  ${c}( \\[args\\.\\.\\.\\])? +\\S`, "m"));
    }
    const serveHelp = await cli(["help", "serve"]);
    expect(serveHelp).toMatchObject({ code: 0, stdout: expect.stringContaining("--tls-cert") });
    const gdbHelp = await cli(["help", "gdb"]);
    expect(gdbHelp).toMatchObject({ code: 0, stdout: expect.stringContaining("--listen") });
    const tokenAdd = await cli(["help", "token", "add"]);
    expect(tokenAdd).toMatchObject({ code: 0, stdout: expect.stringContaining("--role") });
    const unknown = await cli(["help", "frobnicate"]);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "frobnicate"') });
  }, 120_000);
});
