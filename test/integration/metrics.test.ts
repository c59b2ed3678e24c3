// `vmm-debug serve --metrics 127.0.0.1:PORT`: the Prometheus endpoint after real calls (per-RPC
// counts and latency by status, sessions, VMs by run state, stops by reason, bytes read and
// written), and `--log-level` deciding which log lines reach stderr.
import { type ChildProcess, spawn } from "node:child_process";
import { get } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { join } from "node:path";
import { VmmDebugError, connect } from "../../src/client";
import { createVmmDebugServer, silentLogger } from "../../src/server";

const root = join(__dirname, "../..");

interface Served {
  child: ChildProcess;
  address: string;
  metrics?: string;
  stderr(): string;
  exit: Promise<number | null>;
}

/** `vmm-debug serve ARGS` (as `npm start` runs it) in its own process group; resolves once it serves. */
function serve(args: string[], env: Record<string, string> = {}): Promise<Served> & { exit: Promise<number | null>; stderr(): string } {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), "src/main.ts", "--listen", "127.0.0.1:0", ...args], {
    cwd: root,
    env: { ...process.env, VMM_DEBUG_LOG_LEVEL: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const served = new Promise<Served>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "serving" line within 60 s: ${stderr}`)), 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = /serving .* on (\S+:\d+)\n(?:  metrics: (http:\S+)\n)?  /.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ child, address: m[1], metrics: m[2], stderr: () => stderr, exit });
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}: ${stderr.trim()}`));
    });
  });
  return Object.assign(served, { exit, stderr: () => stderr });
}

async function stop(s: { child: ChildProcess; exit: Promise<number | null> }): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  try {
    process.kill(-s.child.pid!, "SIGTERM");
  } catch {
    return; // already gone
  }
  await s.exit;
}

function fetchText(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    }).on("error", reject);
  });
}

/** The samples of a Prometheus text exposition: name plus sorted labels → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = m[2] ? [...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}=${l[2]}`).sort() : [];
    out.set(`${m[1]}{${labels.join(",")}}`, Number(m[3]));
  }
  return out;
}

/** One sample's value: `metric{label=value,…}` with the labels in any order. */
function sample(all: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort().join(",")}}`;
  return all.get(key);
}

async function scrape(url: string): Promise<Map<string, number>> {
  const r = await fetchText(url);
  expect(r.status).toBe(200);
  expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
  return samples(r.body);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const DEBUG = "vmm.debug.v1.DebugService";
const N = 12_345;

describe("vmm-debug serve --metrics", () => {
  it("counts and times each RPC by status, and shows sessions, VMs by run state, stops by reason and bytes moved; --log-level warn hides info lines", async () => {
    const s = await serve(["--metrics", "127.0.0.1:0", "--log-level", "warn"]);
    const client = connect(s.address);
    try {
      expect(s.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const url = s.metrics!;
      const before = await scrape(url);
      expect(sample(before, "vmm_debug_sessions_open")).toBe(0);
      expect(sample(before, "vmm_debug_vms", { state: "running" })).toBe(1);
      expect(sample(before, "vmm_debug_vms", { state: "stopped" })).toBe(0);
      // The process's default metrics, in this server's registry.
      expect(sample(before, "vmm_debug_process_cpu_user_seconds_total")).toBeGreaterThan(0);

      const session = await client.attach("", { transport: "unary" });
      const attached = await scrape(url);
      expect(sample(attached, "vmm_debug_sessions_open")).toBe(1);

      await session.break();
      const data = await session.readMemory({ gpa: 0x1000n }, N);
      expect(data.length).toBe(N);
      await session.writeMemory({ gpa: 0x0f_0000n }, new Uint8Array(7));
      const refused = await client.readMemory("no-such-vm", { gpa: 0x1000n }, 16).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(VmmDebugError);
      const stopped = await scrape(url);
      expect(sample(stopped, "vmm_debug_vms", { state: "stopped" })).toBe(1);
      expect(sample(stopped, "vmm_debug_vms", { state: "running" })).toBe(0);
      await session.detach();

      // Stops reach the counter through the VM's event feed: wait for it (bounded).
      const after = await waitFor("the break in vmm_debug_stops_total", async () => {
        const m = await scrape(url);
        return sample(m, "vmm_debug_stops_total", { vm: "demo", reason: "break" }) === 1 ? m : undefined;
      });
      const calls = (method: string, code: string) => sample(after, "vmm_debug_rpcs_total", { method: `${DEBUG}/${method}`, code });
      expect([calls("Attach", "OK"), calls("Break", "OK"), calls("ReadMemory", "OK"), calls("WriteMemory", "OK"), calls("ReadMemory", "NOT_FOUND"), calls("Detach", "OK")]).toEqual([
        1, 1, 1, 1, 1, 1,
      ]);
      expect(sample(after, "vmm_debug_rpcs_total", { method: "vmm.debug.v1.VmService/GetVm", code: "OK" })).toBe(1);
      // The histogram: a count and a sum per method and code, and cumulative buckets ending at +Inf.
      for (const [method, code] of [["ReadMemory", "OK"], ["ReadMemory", "NOT_FOUND"], ["Attach", "OK"], ["Detach", "OK"]]) {
        const labels = { method: `${DEBUG}/${method}`, code };
        expect([method, code, sample(after, "vmm_debug_rpc_duration_seconds_count", labels)]).toEqual([method, code, 1]);
        expect(sample(after, "vmm_debug_rpc_duration_seconds_sum", labels)).toBeGreaterThan(0);
        expect(sample(after, "vmm_debug_rpc_duration_seconds_bucket", { ...labels, le: "+Inf" })).toBe(1);
        expect(sample(after, "vmm_debug_rpc_duration_seconds_bucket", { ...labels, le: "300" })).toBe(1);
      }
      expect(sample(after, "vmm_debug_sessions_open")).toBe(0);
      expect(sample(after, "vmm_debug_vms", { state: "running" })).toBe(1);
      expect(sample(after, "vmm_debug_guest_memory_read_bytes_total", { vm: "demo" })).toBeGreaterThanOrEqual(N);
      expect(sample(after, "vmm_debug_guest_memory_written_bytes_total", { vm: "demo" })).toBe(7);

      // Streams are counted when they end: a Session stream's reads, and a ReadMemoryStream.
      const streamed = await client.attach("");
      expect((await streamed.readMemory({ gpa: 0x2000n }, 100)).length).toBe(100);
      await streamed.detach();
      expect((await client.readMemoryStream("demo", { gpa: 0x3000n }, 5000)).length).toBe(5000);
      const streams = await waitFor("the Session stream's end in vmm_debug_rpcs_total", async () => {
        const m = await scrape(url);
        return [...m.keys()].some((k) => k.startsWith("vmm_debug_rpcs_total{") && k.includes(`method=${DEBUG}/Session`)) ? m : undefined;
      });
      const sessionCodes = [...streams].filter(([k]) => k.startsWith("vmm_debug_rpcs_total{") && k.includes(`method=${DEBUG}/Session`));
      expect(sessionCodes).toEqual([[`vmm_debug_rpcs_total{code=OK,method=${DEBUG}/Session}`, 1]]);
      expect(sample(streams, "vmm_debug_rpcs_total", { method: `${DEBUG}/ReadMemoryStream`, code: "OK" })).toBe(1);
      expect(sample(streams, "vmm_debug_rpc_duration_seconds_count", { method: `${DEBUG}/ReadMemoryStream`, code: "OK" })).toBe(1);
      expect(sample(streams, "vmm_debug_guest_memory_read_bytes_total", { vm: "demo" })).toBe(sample(after, "vmm_debug_guest_memory_read_bytes_total", { vm: "demo" })! + 5100);
      expect(sample(streams, "vmm_debug_sessions_open")).toBe(0);

      // Only /metrics is served.
      expect((await fetchText(url.replace(/\/metrics$/, "/"))).status).toBe(404);

      // --log-level warn: no audit lines (info), no guest console lines (info), nothing else either.
      expect(s.stderr()).not.toMatch(/"level":"info"|"message":"audit"|guest console/);
    } finally {
      client.close();
      await stop(s);
    }
    // The shutdown line is info too.
    expect(s.stderr()).toBe("");
  }, 120_000);

  it("writes audit and guest console lines as JSON at the default level, --log-level over $VMM_DEBUG_LOG_LEVEL", async () => {
    const s = await serve(["--log-level", "info"], { VMM_DEBUG_LOG_LEVEL: "error" });
    const client = connect(s.address);
    try {
      const session = await client.attach("", { transport: "unary" });
      await session.detach();
      const lines = await waitFor("the Detach audit line", async () => {
        const parsed = s
          .stderr()
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        return parsed.some((l) => l.message === "audit" && l.rpc === "Detach") && parsed.some((l) => l.message === "guest console") ? parsed : undefined;
      });
      const attach = lines.find((l) => l.message === "audit" && l.rpc === "Attach")!;
      expect(attach).toMatchObject({ level: "info", vm: "demo", principal: "local", auth: "local", outcome: "ok", via: "unary" });
      expect(attach.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(lines.find((l) => l.message === "guest console")).toMatchObject({ level: "info", vm: "demo", line: expect.stringContaining("demo guest") });
    } finally {
      client.close();
      await stop(s);
    }
  }, 120_000);

  it("refuses a non-loopback --metrics address, and an unknown log level, naming what to change", async () => {
    const open = serve(["--metrics", "0.0.0.0:9464"]);
    await expect(open).rejects.toThrow(/exited with 2: vmm-debug: --metrics 0\.0\.0\.0:9464: .*loopback only; give --metrics 127\.0\.0\.1:PORT/);
    const level = serve([], { VMM_DEBUG_LOG_LEVEL: "chatty" });
    await expect(level).rejects.toThrow(/exited with 2: vmm-debug: VMM_DEBUG_LOG_LEVEL must be one of trace, debug, info, warn, error, silent, got "chatty"/);
  }, 60_000);

  it("says in one line that the --metrics port is in use, and exits 1", async () => {
    const holder = createTcpServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const busy = serve(["--metrics", `127.0.0.1:${port}`, "--log-level", "warn"]);
      await expect(busy).rejects.toThrow(/exited with 1/);
      expect(busy.stderr()).toBe(`vmm-debug: cannot serve metrics on 127.0.0.1:${port}: the address is already in use; choose another port with --metrics 127.0.0.1:PORT\n`);
    } finally {
      holder.close();
    }
  }, 60_000);
});

describe("createVmmDebugServer({ metrics })", () => {
  it("gives each server its own registry (two in one process do not collide) and stops the endpoint at close()", async () => {
    const a = createVmmDebugServer({ vms: [], logger: silentLogger, metrics: { listen: "127.0.0.1:0" } });
    const b = createVmmDebugServer({ vms: [], logger: silentLogger, metrics: { listen: "[::1]:0" } });
    const plain = createVmmDebugServer({ vms: [], logger: silentLogger });
    try {
      const [boundA, boundB, boundPlain] = await Promise.all([a.listen("127.0.0.1:0"), b.listen("127.0.0.1:0"), plain.listen("127.0.0.1:0")]);
      expect(boundPlain.metrics).toBeUndefined();
      expect(plain.metrics).toBeUndefined();
      expect(a.metrics!.registry).not.toBe(b.metrics!.registry);
      const urlA = `http://127.0.0.1:${boundA.metrics!.port}/metrics`;
      const urlB = `http://[::1]:${boundB.metrics!.port}/metrics`;
      const clientA = connect(`127.0.0.1:${boundA.port}`);
      await clientA.listVms();
      await clientA.listVms();
      clientA.close();
      const listVms = { method: "vmm.debug.v1.VmService/ListVms", code: "OK" };
      expect(sample(await scrape(urlA), "vmm_debug_rpcs_total", listVms)).toBe(2);
      expect(sample(await scrape(urlB), "vmm_debug_rpcs_total", listVms)).toBeUndefined();
      expect(sample(await scrape(urlB), "vmm_debug_sessions_open")).toBe(0);
      await a.close();
      await expect(fetchText(urlA)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await Promise.all([a.close(), b.close(), plain.close()]);
    }
  });

  it("refuses a metrics address beyond loopback when the server is made", () => {
    expect(() => createVmmDebugServer({ vms: [], logger: silentLogger, metrics: { listen: "192.0.2.1:9464" } })).toThrow(
      /--metrics 192\.0\.2\.1:9464: the metrics endpoint has no authentication, so it listens on loopback only/,
    );
  });
});
