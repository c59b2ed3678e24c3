// The committed demo guests boot on a real QEMU with the arguments their manifests give: the console
// shows the start line and the counter (read by GPA through QMP) advances while the VM runs.
// Needs qemu-system-x86_64 (Debian: qemu-system-x86) and qemu-system-aarch64 (qemu-system-arm);
// a guest whose QEMU is missing is skipped with a message saying which package to install.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type Socket, createConnection } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

const BUILD = join(__dirname, "../../guests/build");
const BOOT_MS = 20000; // TCG: the start line normally appears well within a second
const QMP_MS = 10000;
const EXIT_MS = 5000;

interface Manifest {
  name: string;
  arch: string;
  symbols: Record<string, { gva: string; gpa: string }>;
  qemu: {
    binary: string;
    debian_package: string;
    kernel: string;
    args: string[];
    console: { chardev: string; args: string[] };
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The binary's path on PATH, or undefined. */
function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A minimal QMP exchange over a unix socket: greeting, qmp_capabilities, then commands by id. */
interface Qmp {
  execute(command: string, args?: Record<string, unknown>): Promise<unknown>;
  hmp(line: string): Promise<string>;
  close(): void;
}

function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

async function openQmp(path: string, alive: () => void): Promise<Qmp> {
  const deadline = Date.now() + QMP_MS;
  let sock: Socket | undefined;
  while (!sock) {
    alive();
    try {
      sock = await connectUnix(path);
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`QMP socket ${path} not accepting within ${QMP_MS} ms: ${String(e)}`);
      await sleep(50);
    }
  }
  const socket = sock;
  type Msg = Record<string, any>;
  const backlog: Msg[] = [];
  const waiting: { match: (m: Msg) => boolean; resolve: (m: Msg) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  let buffered = "";
  let closed = false;
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as Msg;
      const i = waiting.findIndex((w) => w.match(msg));
      if (i >= 0) {
        const [w] = waiting.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(msg);
      } else if (!("event" in msg)) {
        backlog.push(msg);
      }
    }
  });
  const fail = (why: string) => {
    closed = true;
    for (const w of waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(why));
    }
  };
  socket.on("close", () => fail("QMP connection closed"));
  socket.on("error", (e) => fail(`QMP connection failed: ${e.message}`));

  const expect = (match: (m: Msg) => boolean, what: string) =>
    new Promise<Msg>((resolve, reject) => {
      const i = backlog.findIndex(match);
      if (i >= 0) return resolve(backlog.splice(i, 1)[0]);
      if (closed) return reject(new Error(`QMP connection closed before ${what}`));
      const timer = setTimeout(() => {
        const at = waiting.findIndex((w) => w.timer === timer);
        if (at >= 0) waiting.splice(at, 1);
        reject(new Error(`QMP: no ${what} within ${QMP_MS} ms`));
      }, QMP_MS);
      waiting.push({ match, resolve, reject, timer });
    });

  let nextId = 0;
  const execute = async (command: string, args?: Record<string, unknown>) => {
    const id = ++nextId;
    socket.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + "\n");
    const reply = await expect((m) => m.id === id, `reply to ${command}`);
    if (reply.error) throw new Error(`QMP ${command}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return;
  };
  await expect((m) => "QMP" in m, "greeting");
  await execute("qmp_capabilities");
  return {
    execute,
    hmp: async (line) => String(await execute("human-monitor-command", { "command-line": line })),
    close: () => socket.destroy(),
  };
}

for (const file of ["demo-x86_64.json", "demo-aarch64.json"]) {
  const manifest = JSON.parse(readFileSync(join(BUILD, file), "utf8")) as Manifest;
  const { qemu } = manifest;
  const binary = which(qemu.binary);
  const title = binary
    ? `${manifest.name} on ${qemu.binary}`
    : `${manifest.name} on QEMU — skipped: ${qemu.binary} not found on PATH (install the Debian package ${qemu.debian_package})`;
  if (!binary) console.warn(title);

  (binary ? describe : describe.skip)(title, () => {
    const counterGpa = BigInt(manifest.symbols.counter.gpa);
    const counterGva = BigInt(manifest.symbols.counter.gva);
    let dir = "";
    let child: ChildProcess | undefined;
    let stderr = "";
    let qmp: Qmp | undefined;

    const consoleText = () => {
      const path = join(dir, "console.txt");
      return existsSync(path) ? readFileSync(path, "latin1") : "";
    };
    /** Throws if QEMU is gone (with its stderr), so waits fail fast instead of timing out. */
    const alive = () => {
      if (child && child.exitCode !== null) throw new Error(`QEMU exited with ${child.exitCode}: ${stderr.trim()}`);
      if (child && child.signalCode !== null) throw new Error(`QEMU killed by ${child.signalCode}: ${stderr.trim()}`);
    };
    async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = BOOT_MS): Promise<void> {
      const end = Date.now() + ms;
      for (;;) {
        alive();
        if (await cond()) return;
        if (Date.now() > end) throw new Error(`${what} not seen within ${ms} ms; console so far:\n${consoleText()}`);
        await sleep(20);
      }
    }
    async function readCounter(): Promise<bigint> {
      const out = await qmp!.hmp(`xp /1gx 0x${counterGpa.toString(16)}`);
      const m = /:\s*0x([0-9a-f]+)/i.exec(out);
      if (!m) throw new Error(`unexpected xp output: ${JSON.stringify(out)}`);
      return BigInt("0x" + m[1]);
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `vmm-debug-${manifest.name}-`));
      const args = [
        ...qemu.args,
        "-kernel", join(BUILD, qemu.kernel),
        "-S", "-nographic", "-nodefaults",
        "-qmp", `unix:${join(dir, "qmp.sock")},server=on,wait=off`,
        "-chardev", `file,id=${qemu.console.chardev},path=${join(dir, "console.txt")}`,
        ...qemu.console.args,
      ];
      child = spawn(binary!, args, { stdio: ["ignore", "ignore", "pipe"] });
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (d: string) => {
        stderr += d;
      });
      child.on("error", (e) => {
        stderr += `spawn failed: ${e.message}\n`;
      });
      qmp = await openQmp(join(dir, "qmp.sock"), alive);
    });

    afterAll(async () => {
      qmp?.close();
      const c = child;
      if (c && c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        let timer: NodeJS.Timeout | undefined;
        const exited = new Promise<void>((r) => {
          c.once("exit", () => r());
          timer = setTimeout(r, EXIT_MS);
        });
        process.kill(c.pid, "SIGKILL"); // this QEMU only, by its PID
        await exited;
        clearTimeout(timer);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("waits paused under -S, then prints its start line and counter lines after cont", async () => {
      expect(await qmp!.execute("query-status")).toMatchObject({ running: false, status: "prelaunch" });
      expect(await readCounter()).toBe(0n);
      await qmp!.execute("cont");
      await waitFor("the start line", () => consoleText().includes("vmm-debug demo guest: running on vp 0x0000000000000000"));
      await waitFor("a counter line", () => /vp 0x0000000000000000 counter=0x[0-9a-f]{16}/.test(consoleText()));
      expect(consoleText()).not.toMatch(/exception|needs|must start/);
    });

    it("advances the counter at its GPA while running", async () => {
      const first = await readCounter();
      await waitFor("the counter advancing", async () => (await readCounter()) > first, 5000);
    });

    it("holds the counter while stopped and maps its GVA to its GPA", async () => {
      await qmp!.execute("stop");
      const a = await readCounter();
      await sleep(100);
      expect(await readCounter()).toBe(a);
      const translated = await qmp!.hmp(`gva2gpa 0x${counterGva.toString(16)}`);
      expect(translated.trim()).toBe(`gpa: 0x${counterGpa.toString(16)}`);
      await qmp!.execute("cont");
      await waitFor("the counter advancing again", async () => (await readCounter()) > a, 5000);
    });
  });
}
