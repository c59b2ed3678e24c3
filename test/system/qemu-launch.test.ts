// Launching QEMU: private sockets, guest RAM in a memfd, argument refusals, and no orphaned QEMU.
import { spawn } from "node:child_process";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { launchQemuVm, qemuArgsForGuest } from "../../src/qemu";
import { checkUserArguments, hasExecutable, launchQemu, ramSizeFromArgs } from "../../src/qemu/launch";

const hasQemu = hasExecutable("qemu-system-x86_64");
if (!hasQemu) console.warn("skipping QEMU launch tests: qemu-system-x86_64 not found (Debian package qemu-system-x86)");
const describeIfQemu = hasQemu ? describe : describe.skip;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe("QEMU arguments", () => {
  it.each([
    [["-gdb", "tcp::1234"]],
    [["-s"]],
    [["-qmp", "tcp:0.0.0.0:4444,server"]],
    [["-monitor", "stdio"]],
    [["-daemonize"]],
    [["-vnc", ":0"]],
    [["-serial", "tcp:0.0.0.0:5555,server"]],
    [["-chardev", "socket,id=c,host=0.0.0.0,port=5000,server=on"]],
    [["-netdev", "user,id=n,hostfwd=tcp::2222-:22"]],
  ])("refuses %j", (args) => {
    expect(() => checkUserArguments(args)).toThrow(/not allowed|network|non-loopback|-display none/);
  });

  it.each([
    [["-machine", "q35", "-m", "64", "-display", "none"]],
    [["-serial", "tcp:127.0.0.1:5555,server=on,wait=off"]],
    [["-chardev", "socket,id=c,path=/tmp/x.sock,server=on"]],
    [["-netdev", "user,id=n,hostfwd=tcp:127.0.0.1:2222-:22"]],
    [["-vnc", "none"]],
  ])("accepts %j", (args) => {
    expect(() => checkUserArguments(args)).not.toThrow();
  });

  it("reads the RAM size from -m", () => {
    expect(ramSizeFromArgs([])).toBe(128 << 20);
    expect(ramSizeFromArgs(["-m", "64"])).toBe(64 << 20);
    expect(ramSizeFromArgs(["-m", "1G"])).toBe(1 << 30);
    expect(ramSizeFromArgs(["-m", "size=256M,slots=2,maxmem=1G"])).toBe(256 << 20);
  });
});

/** Where QEMU's open files lead (`/proc/<pid>/fd/*` links): a named RAM file would show here. */
function fdLinks(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).flatMap((n) => {
    try {
      return [readlinkSync(`/proc/${pid}/fd/${n}`)];
    } catch {
      return [];
    }
  });
}

describeIfQemu("launchQemu", () => {
  it("starts QEMU with private sockets and guest RAM in a memfd with no name, and removes the sockets when killed", async () => {
    const q = await launchQemu({ arch: "x86_64", args: ["-machine", "q35", "-m", "32", "-display", "none", "-nodefaults"] });
    try {
      expect(alive(q.pid)).toBe(true);
      expect("path" in q.gdb && existsSync(q.gdb.path)).toBe(true);
      expect(existsSync(q.qmpSocket)).toBe(true);
      expect(q.ramBytes).toBe(32 << 20);
      // Guest RAM is QEMU's memfd, reached through /proc: nothing under /dev/shm or anywhere else.
      expect(q.ramFile).toMatch(new RegExp(`^/proc/${q.pid}/fd/\\d+$`));
      expect(readlinkSync(q.ramFile!)).toMatch(/^\/memfd:memory-backend-memfd/);
      const fd = openSync(q.ramFile!, "r");
      expect(fstatSync(fd).size).toBe(32 << 20);
      closeSync(fd);
      expect(fdLinks(q.pid).filter((l) => l.startsWith("/dev/shm/"))).toEqual([]);
      // The pid file has served its purpose.
      expect(existsSync(join(dirname(q.qmpSocket), "qemu.pid"))).toBe(false);
    } finally {
      await q.kill();
    }
    expect(alive(q.pid)).toBe(false);
    expect(existsSync(dirname(q.qmpSocket))).toBe(false);
  });

  it("starts QEMU with no display (no window, no VNC server) unless the arguments ask for one", async () => {
    const q = await launchQemu({ arch: "x86_64", args: ["-machine", "q35", "-m", "32"] });
    try {
      const cmdline = readFileSync(`/proc/${q.pid}/cmdline`, "utf8").split("\0");
      const i = cmdline.indexOf("-display");
      expect(i).toBeGreaterThan(0);
      expect(cmdline[i + 1]).toBe("none");
      // QEMU 7.2 without a display option and without a window system listens for VNC on 5900+.
      const listening = readFileSync("/proc/net/tcp", "utf8") + readFileSync("/proc/net/tcp6", "utf8");
      const inodes = new Set(
        readdirSync(`/proc/${q.pid}/fd`)
          .map((fd) => /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${q.pid}/fd/${fd}`))?.[1])
          .filter((x): x is string => x !== undefined),
      );
      const tcpListeners = listening
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[3] === "0A" && inodes.has(f[9]));
      expect(tcpListeners).toEqual([]);
    } finally {
      await q.kill();
    }
  });

  it("launchQemuVm removes the socket directory once connected, and the VM still answers", async () => {
    const { args } = qemuArgsForGuest(join(__dirname, "../../guests/build/demo-x86_64.json"));
    const vm = await launchQemuVm({ id: "q", arch: "x86_64", args, startRunning: false });
    try {
      const qemuPid = vm.pid!;
      const cmdline = readFileSync(`/proc/${qemuPid}/cmdline`, "utf8").split("\0");
      const qmpArg = cmdline[cmdline.indexOf("-qmp") + 1];
      const dir = dirname(/^unix:([^,]+)/.exec(qmpArg)![1]);
      expect(existsSync(dir)).toBe(false);
      // Its connections were made before: registers through the gdbstub, RAM through the memfd.
      expect((await vm.getVpState(0)).arch).toBe("x86_64");
      expect((await vm.readMemory({ kind: "gpa", gpa: 0x100000n }, 16)).length).toBe(16);
      expect(await vm.humanMonitorCommand("info status")).toMatch(/paused|prelaunch/);
    } finally {
      await vm.close();
    }
  }, 30_000);

  it("does not let QEMU outlive a server killed with SIGKILL", async () => {
    // A child node process launches QEMU, prints its PID, and is then killed hard.
    const script = `
      require("tsx/cjs");
      const { launchQemu } = require(${JSON.stringify(require.resolve("../../src/qemu/launch"))});
      launchQemu({ arch: "x86_64", args: ["-machine", "q35", "-m", "32", "-display", "none", "-nodefaults"] })
        .then((q) => console.log(q.pid));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let pid: number;
    let links: string[];
    let shmNames: string[];
    try {
      pid = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no pid within 20 s")), 20_000);
        child.stdout!.once("data", (d: Buffer) => {
          clearTimeout(timer);
          resolve(Number(d.toString().trim()));
        });
      });
      expect(alive(pid)).toBe(true);
      links = fdLinks(pid);
      shmNames = readdirSync("/dev/shm").filter((f) => f.startsWith(`vmm-debug-${child.pid}-`));
    } finally {
      child.kill("SIGKILL");
    }
    expect(await waitUntil(() => !alive(pid), 10_000)).toBe(true);
    // Guest RAM had no name that could outlive anyone: QEMU held it as a memfd.
    expect(links.some((l) => l.startsWith("/memfd:memory-backend-memfd"))).toBe(true);
    expect({ namedRam: links.filter((l) => l.startsWith("/dev/shm/")), shmNames }).toEqual({ namedRam: [], shmNames: [] });
  });
});
