// DumpMemory on the embedded x86-64 demo (2 VPs): the SDK writes an ELF core file that readelf
// and gdb read back (registers equal GetVpState, the x87/SSE state set through SetVpState,
// memory equals ReadMemory, one thread per VP);
// a running VM is refused; a cancelled dump ends at once and leaves the VM stopped and usable;
// a Resume sent during a dump waits until the dump ends.
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "nice-grpc";
import { type Session, VmmDebugError, type X86VpState, writeCoreFile, x87FromNumber, xmmFromBigint } from "../../src/client";
import { type Harness, expectRpcError, startHarness, sym, u64, waitFor, x86 } from "../integration/harness";
import { between, gdbCore, haveTool, quadwords, readelfCore, register } from "./core-file";

const missing = [haveTool("readelf") ? "" : "binutils (readelf)", haveTool("gdb") ? "" : "gdb"].filter(Boolean);
if (missing.length > 0) {
  // eslint-disable-next-line no-console
  console.warn(`dump-core tests skipped: install the Debian package(s) ${missing.join(", ")}`);
}
/** More than the bytes that can be between the server's dump and the client's reading. */
const IN_FLIGHT = 64n * 1024n * 1024n;
const describeTools = missing.length === 0 ? describe : describe.skip;

describeTools("DumpMemory (embedded x86-64 demo, 2 VPs)", () => {
  let h: Harness;
  let dir: string;
  let session: Session | undefined;

  beforeAll(async () => {
    h = await startHarness();
    dir = mkdtempSync(join(tmpdir(), "vmm-debug-dump-"));
  });

  afterAll(async () => {
    await session?.close().catch(() => undefined);
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const leftovers = () => readdirSync(dir).filter((f) => f.endsWith(".partial"));

  it("refuses a running VM with FAILED_PRECONDITION / VM_RUNNING, writing no file", async () => {
    expect((await h.client.getVm("demo")).runState).toBe("running");
    await expectRpcError(
      (async () => {
        for await (const _ of h.client.dumpMemory("demo")) void _;
      })(),
      Status.FAILED_PRECONDITION,
      "VM_RUNNING",
    );
    const path = join(dir, "running.core");
    await expectRpcError(writeCoreFile(h.client, "demo", path), Status.FAILED_PRECONDITION, "VM_RUNNING");
    expect(() => statSync(path)).toThrow();
    expect(leftovers()).toEqual([]);
  });

  it("dumps a stopped VM to a core file that readelf and gdb read: registers, memory, one thread per VP", async () => {
    session = await h.client.attach("demo");
    const running = session.resume(); // the break's stop is reported here, not left pending
    await session.break();
    expect(await running).toEqual({ kind: "break" });
    const info = await h.client.getVm("demo");
    expect(info.runState).toBe("stopped");
    // VP 0's FP state: XMM2 (doubles 1.5 and 2), a two-value x87 stack (TOP = 6), MXCSR.
    const state = (await session.getVpState(0)).state as X86VpState;
    const fp = { ...state.fp!, xmm: [...state.fp!.xmm], st: [...state.fp!.st] };
    fp.xmm[2] = xmmFromBigint((0x4000_0000_0000_0000n << 64n) | 0x3ff8_0000_0000_0000n);
    fp.fsw = 6 << 11;
    fp.st = [0.5, -3, 0, 0, 0, 0, 0, 0].map(x87FromNumber);
    fp.ftw = 0x0fff;
    fp.mxcsr = 0x9fa0;
    await session.setVpState(0, { arch: "x86_64", state: { ...state, fp } });

    const path = join(dir, "demo.core");
    const progress: [bigint, bigint][] = [];
    const size = await writeCoreFile(h.client, "demo", path, { onProgress: (done, total) => progress.push([done, total]) });
    expect(statSync(path).size).toBe(Number(size));
    expect(progress.length).toBeGreaterThan(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i][0]).toBeGreaterThan(progress[i - 1][0]);
    expect(progress.every(([, total]) => total === size)).toBe(true);
    expect(progress[progress.length - 1][0]).toBe(size);
    expect(leftovers()).toEqual([]);

    const elf = await readelfCore(path);
    expect(elf.type).toMatch(/^CORE/);
    expect(elf.machine).toMatch(/X86-64/);
    expect(elf.loads.map((l) => ({ vaddr: l.vaddr, paddr: l.paddr, filesz: l.filesz, memsz: l.memsz }))).toEqual(
      info.memoryRegions.map((r) => ({ vaddr: r.gpa, paddr: r.gpa, filesz: r.size, memsz: r.size })),
    );
    for (const l of elf.loads) expect(l.offset % 4096n).toBe(0n);
    expect(elf.notes.filter((n) => n === "NT_PRSTATUS")).toHaveLength(info.vpCount);
    expect(elf.notes.filter((n) => n === "NT_FPREGSET")).toHaveLength(info.vpCount);
    expect(elf.notes).toContain("NT_PRPSINFO");

    const counter = sym("counter").gpa;
    const out = await gdbCore(
      "gdb",
      path,
      [
        "echo <threads>\\n",
        "info threads",
        "echo </threads>\\n",
        "echo <regs>\\n",
        "info registers",
        "echo </regs>\\n",
        "echo <fp>\\n",
        "p $st0",
        "p $st1",
        "p $xmm2.v2_double",
        "p/x $mxcsr",
        "p/x $fstat",
        "echo </fp>\\n",
        "echo <mem>\\n",
        `x/2gx 0x${counter.toString(16)}`,
        "echo </mem>\\n",
        "thread 2",
        "echo <regs2>\\n",
        "info registers rip rsp rax",
        "echo </regs2>\\n",
      ],
      ["set architecture i386:x86-64"],
    );
    const vp0 = await x86(h.client, "demo", 0);
    const vp1 = await x86(h.client, "demo", 1);
    const threads = between(out, "<threads>", "</threads>");
    expect(threads).toMatch(/^\*\s+1\s+LWP 1\b/m);
    expect(threads).toMatch(/^\s+2\s+LWP 2\b/m);
    const regs = between(out, "<regs>", "</regs>");
    expect(register(regs, "rip")).toBe(vp0.rip);
    expect(register(regs, "rsp")).toBe(vp0.gp[4]);
    expect(register(regs, "rax")).toBe(vp0.gp[0]);
    expect(register(regs, "rdi")).toBe(vp0.gp[7]);
    expect(register(regs, "r15")).toBe(vp0.gp[15]);
    expect(register(regs, "eflags")).toBe(vp0.rflags);
    expect(register(regs, "cs")).toBe(BigInt(vp0.cs.selector));
    const fpOut = between(out, "<fp>", "</fp>");
    expect(fpOut).toMatch(/^\$1 = 0\.5$/m);
    expect(fpOut).toMatch(/^\$2 = -3$/m);
    expect(fpOut).toMatch(/^\$3 = \{1\.5, 2\}$/m);
    expect(fpOut).toMatch(/^\$4 = 0x9fa0$/m);
    expect(fpOut).toMatch(/^\$5 = 0x3000$/m);
    const regs2 = between(out, "<regs2>", "</regs2>");
    expect(register(regs2, "rip")).toBe(vp1.rip);
    expect(register(regs2, "rsp")).toBe(vp1.gp[4]);
    expect(register(regs2, "rax")).toBe(vp1.gp[0]);
    const mem = await h.client.readMemory("demo", { gpa: counter }, 16);
    expect(quadwords(between(out, "<mem>", "</mem>"), counter)).toEqual([u64(mem, 0), u64(mem, 8)]);
    expect(u64(mem, 0)).toBeGreaterThan(0n); // the guest counted: the dump holds real RAM, not zeros
  });

  it("a cancelled dump ends at once; the VM stays stopped and usable, and no file is left", async () => {
    expect((await h.client.getVm("demo")).runState).toBe("stopped");
    const controller = new AbortController();
    let pieces = 0;
    const err = await (async () => {
      for await (const piece of h.client.dumpMemory("demo", { signal: controller.signal })) {
        pieces++;
        expect(piece.bytesDone).toBeLessThan(piece.bytesTotal);
        if (pieces === 2) controller.abort();
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VmmDebugError);
    expect((err as VmmDebugError).codeName).toBe("CANCELLED");
    expect(pieces).toBe(2);

    // writeCoreFile cancelled part-way removes its temporary file and writes nothing at `path`.
    const path = join(dir, "cancelled.core");
    const c2 = new AbortController();
    const e2 = await writeCoreFile(h.client, "demo", path, { signal: c2.signal, onProgress: () => c2.abort() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((e2 as VmmDebugError).codeName).toBe("CANCELLED");
    expect(() => statSync(path)).toThrow();
    expect(leftovers()).toEqual([]);

    // The dump let go of the VM: it is still stopped, and control operations run (bounded).
    expect((await h.client.getVm("demo")).runState).toBe("stopped");
    const before = await x86(h.client, "demo", 0);
    expect(await session!.step(0, { deadlineMs: 20_000 })).toEqual({ kind: "singleStep", vp: 0 });
    expect((await x86(h.client, "demo", 0)).rip).not.toBe(before.rip);
    expect((await h.client.getVm("demo")).runState).toBe("stopped");
  });

  it("keeps the VM stopped for the whole dump: a Resume sent during it runs the VM only after the last byte", async () => {
    const it = h.client.dumpMemory("demo")[Symbol.asyncIterator]();
    const first = await it.next(); // the server holds the VM from here
    expect(first.done).toBe(false);
    let resumed = false;
    const resume = session!.resume().then((stop) => {
      resumed = true;
      return stop;
    });
    let pieces = 1;
    let checked = 0;
    let last = first.value!;
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      last = next.value;
      pieces++;
      // Pieces arrive behind the server by what the transport buffers (the call's send budget,
      // HTTP/2 windows, the client's queue): well under IN_FLIGHT. Until then the server is
      // provably still dumping, and the Resume must not have run the VM.
      if (pieces % 4 === 0 && last.bytesDone + IN_FLIGHT < last.bytesTotal) {
        checked++;
        expect((await h.client.getVm("demo")).runState).toBe("stopped");
        expect(resumed).toBe(false);
      }
    }
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(checked).toBeGreaterThan(10);
    // Now the Resume goes through and the guest runs.
    await waitFor(async () => (await h.client.getVm("demo")).runState === "running", 20_000, "the VM running after the dump");
    await session!.break();
    expect(await resume).toEqual({ kind: "break" });
  });
});
