// The Session stream on QEMU (x86-64 and aarch64): every operation, good and bad, gives the same
// outcome over unary calls and over the stream; pushed stops; closing or cancelling the stream
// detaches at once, leaving the VM running with its breakpoints gone.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { BreakpointSize, BreakpointType } from "../../gen/vmm/debug/v1/breakpoint_pb";
import { openRawStream } from "../integration/stream-helpers";
import { PARITY_CASES, outcomeKind, streamOutcome, unaryOutcome, type ParityTarget } from "../shared/parity";
import { describeWithQemu, guestSymbols, startQemuHarness, type QemuHarness } from "./qemu-harness";

const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
const ROOT = join(__dirname, "../..");

/** Until GetVm shows `vm` running with nobody attached (bounded), and the counter moving past `tick`. */
async function expectReleased(h: QemuHarness, counterGpa: bigint): Promise<void> {
  const end = Date.now() + 10_000;
  let vm = await h.client.getVm("qemu");
  while ((vm.attached || vm.runState !== "running") && Date.now() < end) vm = await h.client.getVm("qemu");
  expect(vm.attached).toBeUndefined();
  expect(vm.runState).toBe("running");
  // The breakpoint on tick is gone: the counter keeps counting.
  const c0 = u64(await h.client.readMemory("qemu", { gpa: counterGpa }, 8));
  let c1 = c0;
  while (c1 < c0 + 1000n && Date.now() < end + 10_000) c1 = u64(await h.client.readMemory("qemu", { gpa: counterGpa }, 8));
  expect(c1).toBeGreaterThanOrEqual(c0 + 1000n);
}

for (const arch of ["x86_64", "aarch64"] as const) {
  const sym = guestSymbols(arch);
  const target: ParityTarget = {
    arch,
    data: sym.counter,
    unmappedGpa: 0x4000_0000_0000n,
    unmappedGva: arch === "x86_64" ? 0xffff_8000_1234_0000n : 0xffff_0000_9000_0000n,
    vpCount: 1,
  };

  describeWithQemu(arch)(`Session stream on QEMU ${arch}`, () => {
    let h: QemuHarness;
    beforeAll(async () => {
      h = await startQemuHarness(arch);
    }, 60_000);
    afterAll(async () => {
      await h?.close();
    });

    it("gives the same outcome for every operation over unary calls and over the stream", async () => {
      const unarySession = (await h.client.rpc.debug.attach({ vm: "qemu" })).sessionId;
      await h.client.rpc.debug.break({ sessionId: unarySession });
      const unary: string[] = [];
      for (const c of PARITY_CASES) unary.push(outcomeKind(await unaryOutcome(h.client, "qemu", unarySession, c, target)));
      await h.client.rpc.debug.detach({ sessionId: unarySession });

      const stream = await openRawStream(h.client, "qemu");
      try {
        expect((await stream.call({ case: "break", value: {} })).result.case).toBe("break");
        const streamed: string[] = [];
        for (const c of PARITY_CASES) streamed.push(outcomeKind(await streamOutcome(stream, "qemu", c, target)));
        expect(streamed).toEqual(unary);
        expect(unary).toEqual(PARITY_CASES.map((c) => (c.expect === "ok" ? "ok" : expect.stringContaining(`/${c.expect}`))));
      } finally {
        stream.end();
        await stream.done.catch(() => undefined);
      }
    }, 60_000);

    it("pushes stops as they happen, and detaches when the stream is cancelled: the VM runs on without its breakpoint", async () => {
      const stream = await openRawStream(h.client, "qemu");
      const breakAnswer = stream.call({ case: "break", value: {} });
      expect((await stream.nextStop()).reason?.reason.case).toBe("break");
      expect((await breakAnswer).result.case).toBe("break");
      const state = { breakpoints: [{ breakpoint: { address: sym.tick.gva, type: BreakpointType.EXECUTE, size: BreakpointSize.BYTE } }] };
      expect((await stream.call({ case: "setDebugState", value: { vp: 0, state } })).result.case).toBe("setDebugState");
      for (let i = 0; i < 3; i++) {
        expect((await stream.call({ case: "resume", value: {} })).result.case).toBe("resume");
        const stop = await stream.nextStop();
        expect(stop.reason?.reason.case).toBe("hwBreakpoint");
        expect(stop.vp).toBe(0);
      }
      // Stopped at tick, breakpoint armed: cancel the stream instead of detaching.
      const info = await h.client.rpc.vm.getVm({ vm: "qemu" });
      expect(info.vm?.attached?.stream).toBe(true);
      expect(info.vm?.attached?.leaseExpiresAt).toBeUndefined();
      stream.cancel();
      await stream.done.catch(() => undefined);
      await expectReleased(h, sym.counter.gpa);
    }, 60_000);

    it("lets 16 observers see every stop of a 300-hit breakpoint loop, in order, with no gap", async () => {
      const hits = 300;
      const stopObservers = new AbortController();
      const subscribed: Promise<void>[] = [];
      const observers = Array.from({ length: 16 }, () => {
        let ready!: () => void;
        subscribed.push(new Promise<void>((r) => (ready = r)));
        const seen: { sequence: bigint; kind: string }[] = [];
        const done = (async () => {
          for await (const e of h.client.watchEvents("qemu", { signal: stopObservers.signal, onSubscribed: ready })) {
            seen.push({ sequence: e.sequence, kind: e.event.kind === "stopped" ? `stopped:${e.event.reason.kind}` : e.event.kind });
            if (e.event.kind === "detached") return;
          }
        })();
        return { seen, done };
      });
      await Promise.all(subscribed);
      const session = await h.client.attach("qemu");
      await session.break();
      await session.resume();
      await session.setBreakpoint(0, sym.tick.gva);
      for (let i = 0; i < hits; i++) expect((await session.resume({ deadlineMs: 20_000 })).kind).toBe("hwBreakpoint");
      await session.detach();
      await Promise.all(observers.map((o) => o.done));
      stopObservers.abort();
      for (const o of observers) {
        expect(o.seen.filter((e) => e.kind === "gap")).toEqual([]);
        expect(o.seen.filter((e) => e.kind === "stopped:hwBreakpoint")).toHaveLength(hits);
        o.seen.forEach((e, i) => i > 0 && expect(e.sequence).toBe(o.seen[i - 1].sequence + 1n));
      }
    }, 120_000);

    it("detaches when the process holding the stream is killed: the VM runs on without its breakpoint", async () => {
      const script = `
        const { connect } = require(${JSON.stringify(join(ROOT, "src/client"))});
        (async () => {
          const client = connect(${JSON.stringify(h.address)});
          const s = await client.attach("qemu");
          await s.break();
          await s.setBreakpoint(0, ${sym.tick.gva}n);
          process.stdout.write("ready\\n");
          setInterval(() => {}, 1 << 30);
        })().catch((e) => { console.error(e); process.exit(1); });
      `;
      const child = spawn(process.execPath, ["-r", "tsx/cjs", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      try {
        let out = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        const end = Date.now() + 60_000;
        while (!out.includes("ready") && child.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        if (!out.includes("ready")) throw new Error(`the child did not attach: ${err}`);
        expect((await h.client.getVm("qemu")).runState).toBe("stopped");
        child.kill("SIGKILL");
        await expectReleased(h, sym.counter.gpa);
      } finally {
        child.kill("SIGKILL");
      }
    }, 90_000);
  });
}
