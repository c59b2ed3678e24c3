// WatchConsole on a real 16550 user: kvm-unit-tests' setjmp image (from ../shared, skipped with a
// message without it) prints through the COM1 UART on the embedded machine; the console stream's
// COM1 bytes, split into lines, are exactly the lines the server logs for it, and end at power-off.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { connect, type ConsoleChunk } from "../../src/client";
import { createEmuMachine, loadGuestImage } from "../../src/emu";
import { createVmmDebugServer, silentLogger } from "../../src/server";
import { KUT_EMU_DIR } from "../../tools/kut/runner";

const manifest = join(KUT_EMU_DIR, "kut-setjmp.json");
const present = existsSync(manifest);
if (!present) {
  // eslint-disable-next-line no-console
  console.warn(`kvm-unit-tests images are missing from ${KUT_EMU_DIR}: the COM1 console test is skipped`);
}

(present ? describe : describe.skip)("WatchConsole with kvm-unit-tests' COM1 output", () => {
  it("setjmp's UART bytes are the logged UART lines, from its first byte to the end at power-off", async () => {
    const lines: string[] = [];
    const vm = await createEmuMachine({
      id: "kut",
      image: loadGuestImage(manifest),
      vpCount: 1,
      memory: [{ gpa: 0, size: 256 * 1024 * 1024, name: "ram" }],
      startRunning: false,
      onConsole: (line, source) => source === "uart" && lines.push(line),
    });
    const server = createVmmDebugServer({ vms: [vm], logger: silentLogger });
    const client = connect(`127.0.0.1:${(await server.listen("127.0.0.1:0")).port}`);
    try {
      const chunks: ConsoleChunk[] = [];
      const reading = (async () => {
        for await (const c of client.watchConsole("kut", { fromOffset: 0n, signal: AbortSignal.timeout(120_000) })) chunks.push(c);
      })();
      await vm.resume();
      await reading;
      const com1 = Buffer.concat(chunks.flatMap((c) => (c.kind === "output" && c.source === "com1" ? [c.data] : []))).toString("latin1");
      expect(com1.replace(/\r/g, "").split("\n").filter((l) => l !== "")).toEqual(lines.filter((l) => l !== ""));
      expect(lines).toContain("SUMMARY: 10 tests");
      expect(chunks[chunks.length - 1]).toMatchObject({ kind: "end", reason: "poweredOff" });
    } finally {
      client.close();
      await server.close();
      await vm.close();
    }
  }, 180_000);
});
