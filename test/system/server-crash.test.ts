// Nothing survives the server: a vmm-debug server process killed with SIGKILL (its whole process
// group) leaves no guest-RAM file, no socket directory and no QEMU behind; and an attached QEMU it
// left stopped with its breakpoints armed runs again under the next server once that one is done.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, readlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { connect, type VmmDebugClient } from "../../src/client";
import { launchQemu, qemuArgsForGuest, type LaunchedQemu } from "../../src/qemu";
import { type QmpClient, createQmpClient } from "../../src/qemu/qmp-client";
import { describeWithQemu, guestSymbols, manifestPath } from "./qemu-harness";

const UNARY = { transport: "unary" } as const;
const ROOT = join(__dirname, "../..");
const sym = guestSymbols("x86_64");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

/**
 * Live processes whose process group is `pgid` (from /proc/<pid>/stat), with their command names.
 * Zombies are left out: they hold nothing, and whether one is reaped depends on this machine's
 * init (a container's PID 1 may never reap the server's orphaned esbuild).
 */
function groupMembers(pgid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // state ppid pgrp …
      if (Number(fields[2]) === pgid && fields[0] !== "Z") out.push({ pid: Number(name), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) });
    } catch {
      // it went away meanwhile
    }
  }
  return out;
}

function fdLinks(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).flatMap((n) => {
    try {
      return [readlinkSync(`/proc/${pid}/fd/${n}`)];
    } catch {
      return [];
    }
  });
}

interface ServerProcess {
  proc: ChildProcess;
  /** The server's PID, which is also its process group's id (spawned detached). */
  pid: number;
  address: string;
  exited: Promise<void>;
  output(): string;
}

const servers = new Set<ServerProcess>();

/** Runs `vmm-debug serve … --listen 127.0.0.1:0` in its own process group and waits until it serves. */
async function startServer(args: string[]): Promise<ServerProcess> {
  const proc = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), join(ROOT, "src/cli/main.ts"), "serve", "--listen", "127.0.0.1:0", ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const server: ServerProcess = { proc, pid: proc.pid!, address: "", exited, output: () => out };
  servers.add(server);
  let gone = false;
  void exited.then(() => (gone = true));
  const served = await waitUntil(() => gone || /serving .* on 127\.0\.0\.1:\d+/.test(out), 60_000);
  const m = /serving .* on (127\.0\.0\.1:\d+)/.exec(out);
  if (!served || !m) throw new Error(`the server did not start serving:\n${out}`);
  server.address = m[1];
  return server;
}

/** SIGKILL to the server's whole process group (the server, and a launched QEMU's guard and QEMU). */
async function killGroup(server: ServerProcess): Promise<void> {
  try {
    process.kill(-server.pid, "SIGKILL");
  } catch {
    // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([server.exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
  clearTimeout(timer);
  servers.delete(server);
}

afterEach(async () => {
  for (const s of [...servers]) await killGroup(s);
});

describeWithQemu("x86_64")("a server killed with SIGKILL", () => {
  let client: VmmDebugClient | undefined;
  afterEach(() => {
    client?.close();
    client = undefined;
  });

  it("leaves no guest-RAM file, no socket directory and no QEMU behind when its process group is killed", async () => {
    const server = await startServer(["--qemu-guest", "x86_64"]);
    const qemu = groupMembers(server.pid).find((p) => p.comm.startsWith("qemu-system"));
    expect(qemu).toBeDefined();
    const qemuPid = qemu!.pid;
    // QEMU's private socket directory, from its command line.
    const cmdline = readFileSync(`/proc/${qemuPid}/cmdline`, "utf8").split("\0");
    const socketDir = dirname(/^unix:([^,]+)/.exec(cmdline[cmdline.indexOf("-qmp") + 1])![1]);
    const ramLinks = () => fdLinks(qemuPid).filter((l) => l.startsWith("/dev/shm/"));
    const shmNames = () => readdirSync("/dev/shm").filter((f) => f.startsWith(`vmm-debug-${server.pid}-`));
    const namedRam = ramLinks();

    // A debugger is at work: a watchpoint and a hardware breakpoint armed, the VM stopped at a hit.
    client = connect(server.address);
    const session = await client.attach("qemu", UNARY);
    await session.break();
    expect(await session.resume()).toEqual({ kind: "break" });
    await session.setWatchpoint(0, { address: sym.counter.gva, type: "write", size: 8 });
    await session.setBreakpoint(0, sym.tick.gva);
    expect(await session.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0 });

    await killGroup(server);
    expect(await waitUntil(() => !alive(qemuPid), 10_000)).toBe(true);
    expect({ namedRam, leftInDevShm: shmNames(), socketDirLeft: existsSync(socketDir) }).toEqual({
      namedRam: [],
      leftInDevShm: [],
      socketDirLeft: false,
    });
    // Every process of the group goes (each exits as the kernel delivers the signal).
    await waitUntil(() => groupMembers(server.pid).length === 0, 10_000);
    expect(groupMembers(server.pid)).toEqual([]);
  }, 90_000);

  describe("attached to a QEMU it did not launch", () => {
    let launched: LaunchedQemu | undefined;
    let qmp: QmpClient | undefined;
    let ramFd: number | undefined;

    beforeEach(async () => {
      launched = await launchQemu({ arch: "x86_64", args: qemuArgsForGuest(manifestPath("x86_64")).args, paused: false });
      ramFd = openSync(launched.ramFile!, "r");
    }, 30_000);
    afterEach(async () => {
      client?.close();
      client = undefined;
      for (const s of [...servers]) await killGroup(s);
      await qmp?.close().catch(() => undefined);
      qmp = undefined;
      if (ramFd !== undefined) closeSync(ramFd);
      ramFd = undefined;
      await launched?.kill();
      launched = undefined;
    });

    const attachArgs = () => [
      "--qemu-gdb",
      `unix:${"path" in launched!.gdb ? launched!.gdb.path : ""}`,
      "--qemu-qmp",
      `unix:${launched!.qmpSocket}`,
      "--qemu-ram-file",
      launched!.ramFile!,
    ];
    /** VP 0's counter, read straight from guest RAM (QEMU's memfd), not through any server. */
    const counter = (): bigint => {
      const b = Buffer.alloc(8);
      readSync(ramFd!, b, 0, 8, Number(sym.counter.gpa));
      return b.readBigUInt64LE();
    };
    /** Whether the guest's counter moves within `ms`. */
    const progresses = async (ms: number): Promise<boolean> => {
      const c0 = counter();
      return waitUntil(() => counter() > c0 + 1000n, ms);
    };
    const qmpStatus = async (): Promise<string> => {
      qmp ??= await createQmpClient({ path: launched!.qmpSocket });
      return (await qmp.execute<{ status: string }>("query-status")).status;
    };

    /** A fresh server attaches; Attach → Break → Detach through it. */
    async function attachBreakDetach(): Promise<ServerProcess> {
      const server = await startServer(attachArgs());
      client = connect(server.address);
      const session = await client.attach("qemu-attached", UNARY);
      await session.break();
      await session.detach();
      return server;
    }

    /** The VM runs for QEMU itself: checked with no server connected at all (QEMU serves one QMP client). */
    async function expectRunningWithoutServers(server2: ServerProcess): Promise<void> {
      expect(await progresses(5_000)).toBe(true);
      client?.close();
      client = undefined;
      // SIGKILL, not a clean shutdown: a clean close would detach (D;1) and resume the VM itself.
      await killGroup(server2);
      expect(await waitUntil(async () => (await qmpStatus()) === "running", 5_000)).toBe(true);
      expect(await qmpStatus()).toBe("running");
      expect(await progresses(5_000)).toBe(true);
    }

    it("removes the dead server's watchpoint and breakpoint, and Detach leaves the VM running", async () => {
      expect(await progresses(10_000)).toBe(true);
      const server1 = await startServer(attachArgs());
      client = connect(server1.address);
      const session = await client.attach("qemu-attached", UNARY);
      await session.break();
      expect(await session.resume()).toEqual({ kind: "break" });
      // The demo guest writes its counter and calls tick() constantly.
      await session.setWatchpoint(0, { address: sym.counter.gva, type: "write", size: 8 });
      await session.setBreakpoint(0, sym.tick.gva);
      expect(await session.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0 });
      client.close();
      client = undefined;
      await killGroup(server1);
      // The premise: QEMU stays stopped at the dead server's hit.
      expect(await progresses(500)).toBe(false);

      await expectRunningWithoutServers(await attachBreakDetach());
    }, 120_000);

    it("lets run a VM that a dead server had paused with Break", async () => {
      expect(await progresses(10_000)).toBe(true);
      const server1 = await startServer(attachArgs());
      client = connect(server1.address);
      const session = await client.attach("qemu-attached", UNARY);
      await session.break();
      client.close();
      client = undefined;
      await killGroup(server1);
      expect(await progresses(500)).toBe(false); // paused (QMP status "paused", as a QMP stop would)

      await expectRunningWithoutServers(await attachBreakDetach());
    }, 120_000);

    it("leaves paused a VM somebody paused with a QMP stop", async () => {
      expect(await progresses(10_000)).toBe(true);
      qmp = await createQmpClient({ path: launched!.qmpSocket });
      await qmp.execute("stop");
      await qmp.close(); // QEMU serves one QMP client: make room for the server
      qmp = undefined;
      const server = await attachBreakDetach();
      expect(await progresses(500)).toBe(false);
      client?.close();
      client = undefined;
      await killGroup(server);
      expect(await qmpStatus()).toBe("paused");
    }, 120_000);
  });
});
