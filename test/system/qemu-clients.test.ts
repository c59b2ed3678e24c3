// RspClient and QmpClient against real QEMU (x86-64 q35 and aarch64 virt, firmware only, no guest).
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { JsonObjectSplitter, type QmpClient, QmpError, createQmpClient } from "../../src/qemu/qmp-client";
import { type RspClient, createRspClient } from "../../src/qemu/rsp-client";
import { RspConnectionClosed, RspTargetRunning, RspTimeout } from "../../src/qemu/rsp-errors";
import { parseSocketAddress } from "../../src/qemu/rsp-socket";
import { programCounterOf, qemuArchOf } from "../../src/qemu/target-xml";

function onPath(binary: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

const X86 = { binary: "qemu-system-x86_64", pkg: "qemu-system-x86" };
const ARM = { binary: "qemu-system-aarch64", pkg: "qemu-system-arm" };
const hasX86 = onPath(X86.binary);
const hasArm = onPath(ARM.binary);
function skipNote(q: { binary: string; pkg: string }, present: boolean): string {
  if (present) return "";
  const note = `${q.binary} not found: install the Debian package ${q.pkg} to run these tests`;
  console.warn(`skipping QEMU client tests: ${note}`);
  return ` (skipped: ${note})`;
}
const describeX86 = hasX86 ? describe : describe.skip;
const describeArm = hasArm ? describe : describe.skip;

interface Qemu {
  proc: ChildProcess;
  dir: string;
  gdb: string;
  qmp: string;
  stderr: () => string;
}

/** Starts QEMU paused (-S) with the gdbstub and QMP on unix sockets in a fresh temp dir. */
async function launchQemu(binary: string, machine: string[]): Promise<Qemu> {
  const dir = mkdtempSync(join(tmpdir(), "vmm-debug-qemu-"));
  const gdb = join(dir, "gdb.sock");
  const qmp = join(dir, "qmp.sock");
  const args = [
    ...machine,
    ...["-S", "-nographic", "-nodefaults", "-m", "64"],
    ...["-chardev", `socket,path=${gdb},server=on,wait=off,id=g`, "-gdb", "chardev:g"],
    ...["-qmp", `unix:${qmp},server=on,wait=off`],
  ];
  const proc = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 15000;
  while (!(existsSync(gdb) && existsSync(qmp))) {
    if (proc.exitCode !== null) throw new Error(`${binary} exited with ${proc.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`${binary} did not create its sockets: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, dir, gdb, qmp, stderr: () => stderr };
}

/** Kills the QEMU this test started (by its PID) and removes its temp dir. */
async function stopQemu(q: Qemu | undefined): Promise<void> {
  if (!q) return;
  if (q.proc.exitCode === null && q.proc.signalCode === null && q.proc.pid !== undefined) {
    const exited = new Promise((r) => q.proc.once("exit", r));
    process.kill(q.proc.pid, "SIGKILL");
    await exited;
  }
  rmSync(q.dir, { recursive: true, force: true });
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("QMP stream splitting", () => {
  it("cuts JSON objects out of any chunking, pretty-printed or not, with braces inside strings", () => {
    const stream = '{"return": {}}\r\n{\n  "event": "STOP",\n  "data": {"x": "}{\\"}"}\n}\r\n{"id": 3, "return": "a"}\r\n';
    const whole = new JsonObjectSplitter().push(stream);
    expect(whole.map((t) => JSON.parse(t))).toEqual([{ return: {} }, { event: "STOP", data: { x: '}{"}' } }, { id: 3, return: "a" }]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const s = new JsonObjectSplitter();
      expect([...s.push(stream.slice(0, cut)), ...s.push(stream.slice(cut))]).toEqual(whole);
    }
    expect(() => new JsonObjectSplitter().push("}")).toThrow(SyntaxError);
  });

  it("parses gdbstub/QMP socket addresses", () => {
    expect(parseSocketAddress("unix:/tmp/g.sock")).toEqual({ path: "/tmp/g.sock" });
    expect(parseSocketAddress("127.0.0.1:1234")).toEqual({ host: "127.0.0.1", port: 1234 });
    expect(parseSocketAddress("tcp:[::1]:1")).toEqual({ host: "::1", port: 1 });
    expect(() => parseSocketAddress("1234")).toThrow(TypeError);
  });
});

describeX86(`RspClient and QmpClient against ${X86.binary}${skipNote(X86, hasX86)}`, () => {
  let qemu: Qemu | undefined;
  let qmp: QmpClient;
  let rsp: RspClient;

  beforeAll(async () => {
    qemu = await launchQemu(X86.binary, ["-machine", "q35"]);
    qmp = await createQmpClient({ path: qemu.qmp });
  });

  afterAll(async () => {
    if (rsp && !rsp.isClosed) await rsp.close();
    if (qmp && !qmp.isClosed) await qmp.close();
    await stopQemu(qemu);
  });

  it("drains the unprompted T02 QEMU sends when a client attaches to a running VM", async () => {
    expect(qmp.greeting?.version.qemu.major).toBeGreaterThanOrEqual(7);
    const resumed = qmp.lastEventSeq;
    await qmp.execute("cont");
    await qmp.waitForEvent("RESUME", { after: resumed, timeoutMs: 5000 });
    const before = qmp.lastEventSeq;
    rsp = await createRspClient({ path: qemu!.gdb });
    expect(rsp.connectStop).toMatchObject({ kind: "signal", signal: 2, thread: { tid: 1 } });
    await qmp.waitForEvent("STOP", { after: before, timeoutMs: 5000 });
    expect(rsp.packetSize).toBe(4096);
    expect(rsp.multiprocess).toBe(true);
    expect([...rsp.vContActions]).toEqual(expect.arrayContaining(["c", "s"]));
    // The next answer is the answer to the next request, not the stale T02.
    expect(await rsp.stopReason()).toMatchObject({ kind: "signal", signal: 5, thread: { pid: 1, tid: 1 } });
    expect(await qmp.execute("query-status")).toMatchObject({ running: false, status: "paused" });
  });

  it("reads the x86-64 target description: 66+ registers numbered across includes", () => {
    const desc = rsp.targetDescription!;
    expect(qemuArchOf(desc)).toBe("x86_64");
    expect(desc.registers.length).toBeGreaterThanOrEqual(66);
    const at = (name: string): [number, number] => [desc.byName.get(name)!.regnum, desc.byName.get(name)!.bitsize];
    expect(at("rax")).toEqual([0, 64]);
    expect(at("rsp")).toEqual([7, 64]);
    expect(at("rip")).toEqual([16, 64]);
    expect(at("eflags")).toEqual([17, 32]);
    expect(at("fs_base")).toEqual([24, 64]);
    expect(at("cr0")).toEqual([27, 64]);
    expect(at("cr8")).toEqual([31, 64]);
    expect(at("efer")).toEqual([32, 64]);
    expect(desc.byName.has("xmm15")).toBe(true);
    expect(desc.byName.has("mxcsr")).toBe(true);
    expect(programCounterOf(desc)?.name).toBe("rip");
    expect(desc.features.map((f) => f.name)).toContain("org.gnu.gdb.i386.core");
  });

  it("round-trips registers through g, p and P", async () => {
    const all = await rsp.readRegisters();
    expect(all.size).toBeGreaterThanOrEqual(66);
    expect(await rsp.readRegister("rip")).toBe(all.get("rip"));
    expect(await rsp.readRegister(17)).toBe(all.get("eflags"));
    await rsp.writeRegister("rax", 0x11223344n);
    await rsp.writeRegister("rsi", 0xfedcba98n);
    expect(await rsp.readRegister("rax")).toBe(0x11223344n);
    expect((await rsp.readRegisters()).get("rsi")).toBe(0xfedcba98n);
    expect(await rsp.writeRegisterVerified("rbx", 0xdeadbeefn)).toEqual({ written: 0xdeadbeefn, readBack: 0xdeadbeefn, applied: true });
    const cr8 = await rsp.writeRegisterVerified("cr8", 0xffn);
    expect(cr8.readBack).toBe(0xfn); // cr8 keeps 4 bits: the check tells
    expect(cr8.applied).toBe(false);
    expect((await rsp.writeRegisterVerified("cr8", 0xffn, 0xfn)).applied).toBe(true);
  });

  it("shows QEMU truncating general registers to 32 bits while the firmware is not in long mode", async () => {
    const rax = await rsp.writeRegisterVerified("rax", 0x1122334455667788n);
    expect(rax).toMatchObject({ readBack: 0x55667788n, applied: false });
    const r15 = await rsp.writeRegisterVerified("r15", 0x1234n);
    expect(r15).toMatchObject({ readBack: 0n, applied: false });
  });

  it("round-trips physical memory larger than 2048 bytes and than PacketSize", async () => {
    await rsp.setPhysicalMemoryMode(true);
    expect(await rsp.getPhysicalMemoryMode()).toBe(true);
    const data = pattern(3 * rsp.packetSize + 123, 1);
    await rsp.writeMemory(0x200000n, data);
    expect(await rsp.readMemory(0x200000n, data.length)).toEqual(data);
    expect(await rsp.readMemory(0x200000n + 5000n, 3)).toEqual(data.subarray(5000, 5003));
    // Physical reads past RAM are not errors in QEMU: they read as zeros.
    expect(await rsp.readMemory(0x10_0000_0000n, 16)).toEqual(new Uint8Array(16));
    await rsp.setPhysicalMemoryMode(false);
    expect(await rsp.getPhysicalMemoryMode()).toBe(false);
  });

  it("accepts hardware breakpoints (Z1/z1) and write watchpoints (Z2), refusing length 0", async () => {
    await rsp.insertBreakpoint(1, 0xfff0n, 1);
    await rsp.removeBreakpoint(1, 0xfff0n, 1);
    await rsp.insertBreakpoint(2, 0x7000n, 4);
    await rsp.removeBreakpoint(2, 0x7000n, 4);
    await expect(rsp.insertBreakpoint(2, 0x7000n, 0)).rejects.toMatchObject({ errno: 0x22 });
  });

  it("lists threads and selects one", async () => {
    const threads = await rsp.listThreads();
    expect(threads).toEqual([{ pid: 1, tid: 1 }]);
    await rsp.setThread("g", threads[0]);
    expect(await rsp.currentThread()).toEqual({ pid: 1, tid: 1 });
    expect(await rsp.threadExtraInfo(threads[0])).toMatch(/CPU#0/);
  });

  it("single-steps a thread from the reset vector, reporting the PC before and after", async () => {
    // From a QMP system_reset the first instructions are fixed and none is a rep-string loop
    // (a rep iteration is a step that leaves RIP in place), so every step must move RIP.
    const seq = qmp.lastEventSeq;
    await qmp.execute("system_reset");
    await qmp.waitForEvent("RESET", { after: seq, timeoutMs: 5000 });
    expect(await rsp.readRegister("rip")).toBe(0xfff0n);
    let pc = 0xfff0n;
    for (let i = 0; i < 5; i++) {
      const r = await rsp.step({ pid: 1, tid: 1 }, { checkPc: true });
      expect(r.stop).toMatchObject({ kind: "signal", signal: 5, thread: { pid: 1, tid: 1 } });
      expect(r.interrupted).toBe(false);
      expect(r.pcBefore).toBe(pc);
      expect(r.pcMoved).toBe(true);
      pc = r.pcAfter!;
    }
  });

  it("continues, refuses other requests while running, and stops with T02 on interrupt", async () => {
    const seq = qmp.lastEventSeq;
    const stopped = rsp.continue();
    expect(rsp.running).toBe(true);
    await expect(rsp.readRegister("rip")).rejects.toBeInstanceOf(RspTargetRunning);
    await qmp.waitForEvent("RESUME", { after: seq, timeoutMs: 5000 });
    expect(await qmp.execute("query-status")).toMatchObject({ running: true });
    const reply = await rsp.interrupt();
    expect(reply).toMatchObject({ kind: "signal", signal: 2, thread: { pid: 1, tid: 1 } });
    expect(await stopped).toBe(reply);
    expect(rsp.running).toBe(false);
    await qmp.waitForEvent("STOP", { after: seq, timeoutMs: 5000 });
    expect(await rsp.interrupt()).toBeUndefined(); // nothing runs
  });

  it("runs monitor commands through qRcmd and decodes the text", async () => {
    const text = await rsp.monitor("info registers");
    expect(text).toMatch(/CS =[0-9a-f]{4} /);
    expect(text).toMatch(/EFL=/);
    expect(text).not.toMatch(/\r/);
    expect(await rsp.monitor("info status")).toMatch(/VM status: paused/);
  });

  it("resends a request QEMU dropped because a QMP cont had resumed the VM", async () => {
    const seq = qmp.lastEventSeq;
    const stops: unknown[] = [];
    rsp.on("stop", (s) => stops.push(s));
    await qmp.execute("cont");
    await qmp.waitForEvent("RESUME", { after: seq, timeoutMs: 5000 });
    const rip = await rsp.readRegister("rip");
    expect(typeof rip).toBe("bigint");
    expect(stops).toEqual([expect.objectContaining({ kind: "signal", signal: 2 })]);
    expect(await qmp.execute("query-status")).toMatchObject({ running: false });
    rsp.removeAllListeners("stop");
  });

  it("reports QMP STOP/RESUME events, human-monitor-command output and typed errors", async () => {
    const seq = qmp.lastEventSeq;
    const names: string[] = [];
    const off = qmp.onEvent("*", (e) => names.push(e.event));
    const gdbStop = new Promise((resolve) => rsp.once("stop", resolve));
    await qmp.execute("cont");
    await qmp.waitForEvent("RESUME", { after: seq, timeoutMs: 5000 });
    await qmp.execute("stop");
    const stop = await qmp.waitForEvent("STOP", { after: seq, timeoutMs: 5000 });
    expect(stop.timestamp.seconds).toBeGreaterThan(0);
    expect(await gdbStop).toMatchObject({ kind: "signal", signal: 2 }); // QEMU tells the gdb client too
    off();
    expect(names).toEqual(["RESUME", "STOP"]);
    expect(await qmp.execute("query-status")).toMatchObject({ running: false, status: "paused" });
    expect(await qmp.humanMonitorCommand("info status")).toMatch(/VM status: paused/);
    const err = await qmp.execute("no-such-command").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ errorClass: "CommandNotFound" });
    await expect(qmp.execute("query-status")).resolves.toMatchObject({ running: false });
  });

  it("detaches with D;1, which resumes the VM", async () => {
    const seq = qmp.lastEventSeq;
    await rsp.detach();
    expect(rsp.isClosed).toBe(true);
    await qmp.waitForEvent("RESUME", { after: seq, timeoutMs: 5000 });
    expect(await qmp.execute("query-status")).toMatchObject({ running: true });
  });

  it("times out on a packet beyond PacketSize (QEMU drops it silently) and closes the connection", async () => {
    const client = await createRspClient({ path: qemu!.gdb }, { requestTimeoutMs: 300 });
    const oversize = `M200000,801:${"00".repeat(0x801)}`;
    expect(oversize.length).toBeGreaterThan(client.packetSize);
    const err = await client.request(oversize).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RspTimeout);
    expect(client.isClosed).toBe(true);
    await expect(client.readRegister("rip")).rejects.toBeInstanceOf(RspConnectionClosed);
  });

  it("ends a pending continue and rejects later requests when QEMU goes away", async () => {
    rsp = await createRspClient({ path: qemu!.gdb });
    const closed = new Promise((resolve) => qmp.once("closed", resolve));
    const rspClosed = new Promise((resolve) => rsp.once("close", resolve));
    const outcome = rsp.continue().then(
      (stop) => stop,
      (err: unknown) => err,
    );
    await qmp.execute("quit").catch(() => undefined);
    const end = await outcome;
    // QEMU says W00 on its way out; either that or the socket drop ends the continue.
    if (end instanceof Error) expect(end).toBeInstanceOf(RspConnectionClosed);
    else expect(end).toMatchObject({ kind: "exited" });
    expect(await rspClosed).toBeInstanceOf(RspConnectionClosed);
    await expect(rsp.readMemory(0n, 4)).rejects.toBeInstanceOf(RspConnectionClosed);
    await closed;
    await expect(qmp.execute("query-status")).rejects.toMatchObject({ code: "connection-closed" });
  });
});

describeArm(`RspClient and QmpClient against ${ARM.binary}${skipNote(ARM, hasArm)}`, () => {
  let qemu: Qemu | undefined;
  let qmp: QmpClient;
  let rsp: RspClient;

  beforeAll(async () => {
    qemu = await launchQemu(ARM.binary, ["-M", "virt", "-cpu", "cortex-a57"]);
    qmp = await createQmpClient({ path: qemu.qmp });
    rsp = await createRspClient({ path: qemu.gdb });
  });

  afterAll(async () => {
    if (rsp && !rsp.isClosed) await rsp.close();
    if (qmp && !qmp.isClosed) await qmp.close();
    await stopQemu(qemu);
  });

  it("connects to a paused VM without an unprompted stop", async () => {
    expect(rsp.connectStop).toBeUndefined();
    expect(rsp.packetSize).toBe(4096);
    expect(await qmp.execute("query-status")).toMatchObject({ running: false });
  });

  it("reads the aarch64 target description with system registers parsed by name", () => {
    const desc = rsp.targetDescription!;
    expect(qemuArchOf(desc)).toBe("aarch64");
    for (let i = 0; i <= 30; i++) expect(desc.byName.get(`x${i}`)?.regnum).toBe(i);
    expect(desc.byName.get("sp")?.regnum).toBe(31);
    expect(desc.byName.get("pc")?.regnum).toBe(32);
    expect(desc.byName.get("cpsr")).toMatchObject({ regnum: 33, bitsize: 32 });
    for (const name of ["SCTLR", "TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "SP_EL0", "SP_EL1"]) {
      expect(desc.byName.get(name)).toMatchObject({ bitsize: 64, feature: "org.qemu.gdb.arm.sys.regs" });
      expect(desc.byName.get(name)!.regnum).toBeGreaterThanOrEqual(68);
    }
    expect(programCounterOf(desc)?.name).toBe("pc");
  });

  it("round-trips core registers and shows that system-register writes are ignored", async () => {
    const all = await rsp.readRegisters();
    expect(all.get("pc")).toBe(await rsp.readRegister("pc"));
    await rsp.writeRegister("x7", 0x0123456789abcdefn);
    expect(await rsp.readRegister("x7")).toBe(0x0123456789abcdefn);
    expect((await rsp.readRegisters()).get("x7")).toBe(0x0123456789abcdefn);
    expect(typeof (await rsp.readRegister("SCTLR"))).toBe("bigint");
    const check = await rsp.writeRegisterVerified("TTBR0_EL1", 0x40001000n);
    expect(check.applied).toBe(false); // QEMU 7.2 says OK and changes nothing
  });

  it("round-trips physical memory at the start of RAM", async () => {
    await rsp.setPhysicalMemoryMode(true);
    const data = pattern(10_000, 7);
    await rsp.writeMemory(0x40000000n, data);
    expect(await rsp.readMemory(0x40000000n, data.length)).toEqual(data);
    await rsp.setPhysicalMemoryMode(false);
  });

  it("accepts Z1/z1 and Z2/z2", async () => {
    await rsp.insertBreakpoint(1, 0x40000000n, 4);
    await rsp.removeBreakpoint(1, 0x40000000n, 4);
    await rsp.insertBreakpoint(2, 0x40001000n, 8);
    await rsp.removeBreakpoint(2, 0x40001000n, 8);
  });

  it("steps, then continues and stops with T02 on interrupt", async () => {
    const step = await rsp.step(undefined, { checkPc: true });
    expect(step.stop).toMatchObject({ kind: "signal", signal: 5 });
    expect(step.pcAfter).not.toBe(step.pcBefore);
    const running = rsp.continue();
    await new Promise((r) => setTimeout(r, 100));
    expect(await rsp.interrupt()).toMatchObject({ kind: "signal", signal: 2 });
    await expect(running).resolves.toMatchObject({ signal: 2 });
  });

  it("interrupts a step that cannot finish (WFI halts the vCPU) and says so", async () => {
    await rsp.setPhysicalMemoryMode(true);
    await rsp.writeMemory(0x40002000n, Uint8Array.of(0x7f, 0x20, 0x03, 0xd5)); // wfi
    await rsp.setPhysicalMemoryMode(false);
    await rsp.writeRegister("pc", 0x40002000n);
    const r = await rsp.step(undefined, { timeoutMs: 300 });
    expect(r.interrupted).toBe(true);
    expect(r.stop).toMatchObject({ kind: "signal", signal: 2 });
    expect(await rsp.readRegister("x7")).toBe(0x0123456789abcdefn); // the connection stays in sync
  });

  it("runs info registers through qRcmd and QMP", async () => {
    expect(await rsp.monitor("info registers")).toMatch(/PC=[0-9a-f]{16} X00=/);
    expect(await qmp.humanMonitorCommand("info registers")).toMatch(/PC=[0-9a-f]{16}/);
  });
});
