// Launching QEMU: private sockets, shared RAM file, argument refusals, and no orphaned QEMU.
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
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

describeIfQemu("launchQemu", () => {
  it("starts QEMU with private sockets and a shared RAM file, and removes them when killed", async () => {
    const q = await launchQemu({ arch: "x86_64", args: ["-machine", "q35", "-m", "32", "-display", "none", "-nodefaults"] });
    try {
      expect(alive(q.pid)).toBe(true);
      expect("path" in q.gdb && existsSync(q.gdb.path)).toBe(true);
      expect(existsSync(q.qmpSocket)).toBe(true);
      expect(q.ramFile && existsSync(q.ramFile)).toBe(true);
      expect(q.ramBytes).toBe(32 << 20);
    } finally {
      await q.kill();
    }
    expect(alive(q.pid)).toBe(false);
    expect(existsSync(q.qmpSocket)).toBe(false);
    expect(q.ramFile && existsSync(q.ramFile)).toBe(false);
  });

  it("does not let QEMU outlive a server killed with SIGKILL", async () => {
    // A child node process launches QEMU, prints its PID, and is then killed hard.
    const script = `
      require("tsx/cjs");
      const { launchQemu } = require(${JSON.stringify(require.resolve("../../src/qemu/launch"))});
      launchQemu({ arch: "x86_64", args: ["-machine", "q35", "-m", "32", "-display", "none", "-nodefaults"] })
        .then((q) => console.log(q.pid));
      setInterval(() => {}, 1000);
    `;
    const ramFiles = () => new Set(readdirSync("/dev/shm").filter((f) => f.startsWith("vmm-debug-")));
    const before = ramFiles();
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const pid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no pid within 20 s")), 20_000);
      child.stdout!.once("data", (d: Buffer) => {
        clearTimeout(timer);
        resolve(Number(d.toString().trim()));
      });
    });
    expect(alive(pid)).toBe(true);
    const created = [...ramFiles()].filter((f) => !before.has(f));
    expect(created.length).toBeGreaterThan(0);
    child.kill("SIGKILL");
    expect(await waitUntil(() => !alive(pid), 10_000)).toBe(true);
    // …and its shared RAM file goes with it.
    expect(await waitUntil(() => created.every((f) => !ramFiles().has(f)), 5_000)).toBe(true);
  });
});
