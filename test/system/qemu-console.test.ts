// WatchConsole on the QEMU backend: a C guest launched on QEMU writes to its debug console (on
// QEMU's stdout); the stream carries the same bytes the embedded machine's 0xE9 gives for the same
// guest, and ends when the guest powers off (QEMU exits, its stdout closes).
import { join } from "node:path";
import { type ConsoleChunk, connect } from "../../src/client";
import { createEmuMachine, loadGuestImage } from "../../src/emu";
import { Status } from "nice-grpc";
import { createQemuVm, launchQemu, launchQemuVm, qemuArgsForGuest } from "../../src/qemu";
import { expectRpcError, waitFor } from "../integration/harness";
import { createVmmDebugServer, silentLogger } from "../../src/server";
import { describeWithQemu } from "./qemu-harness";

const manifest = join(__dirname, "../../guests/build/c-recurse-O2.json");

async function collect(feed: AsyncIterable<ConsoleChunk>): Promise<ConsoleChunk[]> {
  const out: ConsoleChunk[] = [];
  for await (const c of feed) out.push(c);
  return out;
}

const bytesOf = (chunks: ConsoleChunk[]) => Buffer.concat(chunks.flatMap((c) => (c.kind === "output" ? [c.data] : [])));

describeWithQemu("x86_64")("WatchConsole on QEMU", () => {
  it("streams a launched QEMU's console (its stdout) from offset 0, the same bytes as the embedded machine, then the end at power-off", async () => {
    const { arch, args } = qemuArgsForGuest(manifest);
    const qemu = await launchQemuVm({ id: "qemu", arch, args, startRunning: false });
    const emu = await createEmuMachine({ id: "emu", image: loadGuestImage(manifest), vpCount: 1, startRunning: false });
    const server = createVmmDebugServer({ vms: [qemu, emu], logger: silentLogger });
    const client = connect(`127.0.0.1:${(await server.listen("127.0.0.1:0")).port}`);
    try {
      const signal = AbortSignal.timeout(120_000);
      const onQemu = collect(client.watchConsole("qemu", { fromOffset: 0n, signal }));
      const onEmu = collect(client.watchConsole("emu", { fromOffset: 0n, signal }));
      await qemu.resume();
      await emu.resume();
      const [q, e] = await Promise.all([onQemu, onEmu]);
      const qBytes = bytesOf(q);
      expect(qBytes.length).toBeGreaterThan(0);
      expect(q.filter((c) => c.kind === "output").every((c) => c.kind === "output" && c.source === "qemuStdio")).toBe(true);
      expect(e.filter((c) => c.kind === "output").every((c) => c.kind === "output" && c.source === "debugcon")).toBe(true);
      expect(qBytes.toString("latin1")).toBe(bytesOf(e).toString("latin1"));
      expect(q[q.length - 1]).toEqual({ kind: "end", endOffset: BigInt(qBytes.length), reason: "poweredOff" });
      expect(e[e.length - 1]).toEqual({ kind: "end", endOffset: BigInt(qBytes.length), reason: "poweredOff" });
    } finally {
      client.close();
      await server.close();
      await Promise.all([qemu.close(), emu.close()]);
    }
  }, 180_000);

  it("a QEMU the server attached to has no captured console: FAILED_PRECONDITION / CONSOLE_UNAVAILABLE", async () => {
    const { arch, args } = qemuArgsForGuest(manifest);
    const launched = await launchQemu({ arch, args });
    const vm = await createQemuVm({ id: "attached", gdb: launched.gdb, qmp: { path: launched.qmpSocket }, ramFile: launched.ramFile });
    const server = createVmmDebugServer({ vms: [vm], logger: silentLogger });
    const client = connect(`127.0.0.1:${(await server.listen("127.0.0.1:0")).port}`);
    try {
      await expectRpcError(collect(client.watchConsole("attached", { fromOffset: 0n })), Status.FAILED_PRECONDITION, "CONSOLE_UNAVAILABLE", {
        vm: "attached",
        backend: "qemu",
      });
    } finally {
      client.close();
      await server.close();
      await vm.close();
      await launched.kill();
    }
  }, 120_000);
});

describeWithQemu("aarch64")("WatchConsole on QEMU aarch64", () => {
  it("streams the aarch64 demo's PL011 output (QEMU's stdout) while it runs", async () => {
    const { arch, args } = qemuArgsForGuest(join(__dirname, "../../guests/build/demo-aarch64.json"));
    const qemu = await launchQemuVm({ id: "arm", arch, args, startRunning: false });
    const server = createVmmDebugServer({ vms: [qemu], logger: silentLogger });
    const client = connect(`127.0.0.1:${(await server.listen("127.0.0.1:0")).port}`);
    try {
      const ac = new AbortController();
      const giveUp = setTimeout(() => ac.abort(), 60_000);
      let text = "";
      const reading = (async () => {
        for await (const c of client.watchConsole("arm", { fromOffset: 0n, signal: ac.signal })) {
          if (c.kind !== "output") continue;
          expect(c.source).toBe("qemuStdio");
          text += Buffer.from(c.data).toString("latin1");
          if (text.includes("vmm-debug demo guest: running on vp 0")) return;
        }
      })();
      await qemu.resume();
      await reading;
      clearTimeout(giveUp);
      expect(text).toContain("vmm-debug demo guest: running on vp 0");
      // Leaving the loop cancelled the call: the server releases its watcher.
      await waitFor(() => qemu.console?.watcherCount === 0, 20_000, "the watcher released");
    } finally {
      client.close();
      await server.close();
      await qemu.close();
    }
  }, 120_000);
});
