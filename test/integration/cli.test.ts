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

  it("refuses a non-loopback address without --allow-non-loopback", async () => {
    const s = serve(["--listen", "0.0.0.0:0"]);
    await expect(s.address).rejects.toThrow(/exited with 1: .*(loopback|TLS)/s);
  });

  it("refuses an unknown option with a usage error", async () => {
    const s = serve(["--lisen", "127.0.0.1:0"]);
    await expect(s.address).rejects.toThrow(/exited with 2: .*unknown option --lisen/s);
  });
});
