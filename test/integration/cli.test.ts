// `vmm-debug serve` as `npm start` runs it: listen address from --listen or VMM_DEBUG_LISTEN, refusals.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { connect } from "../../src/client";

const root = join(__dirname, "../..");

/** Starts the CLI; resolves with the "serving … on HOST:PORT" address, or rejects with its stderr. */
function serve(args: string[], env: Record<string, string> = {}): { child: ChildProcess; address: Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/main.ts", ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
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
  return { child, address, exit };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
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

  it("says in words that an address is in use, and exits 1", async () => {
    const first = serve(["--listen", "127.0.0.1:0"]);
    try {
      const taken = await first.address;
      const second = serve(["--listen", taken]);
      await expect(second.address).rejects.toThrow(new RegExp(`exited with 1: .*cannot listen on ${taken.replace(/\./g, "\\.")}: the address is already in use`, "s"));
    } finally {
      await stop(first.child);
    }
  });

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
      expect(r.stdout).toMatch(/^usage: vmm-debug COMMAND/);
      for (const c of ["serve", "gdb", "token"]) expect(r.stdout).toMatch(new RegExp(`^  ${c} +\\S`, "m"));
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
