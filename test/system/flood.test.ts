// The stream flood against a real server process: clients that open 64 MiB ReadMemoryStreams and
// never read them hold the server at its send budget, not at what they asked for. The guarantee
// (README, "What the server guarantees"): resident memory stays under its idle figure plus the
// guest RAM plus 256 MiB, and a well-behaved client is still answered.
import { connect } from "../../src/client";
import { memoryMib, openFlood, probeLatencies, settle, startServerChild, type ServerChild } from "../shared/load";

const GUEST_RAM_MIB = 256;
const BOUND_OVER_IDLE_MIB = GUEST_RAM_MIB + 256;

let server: ServerChild;
beforeAll(async () => {
  server = await startServerChild(["--memory-mib", String(GUEST_RAM_MIB)]);
}, 90_000);
afterAll(() => server?.stop());

describe("stream flood against a server process", () => {
  it.each([
    { connections: 1, streams: 100 },
    { connections: 10, streams: 100 },
  ])("$connections connection(s) × $streams unread 64 MiB streams: RSS stays under idle + guest RAM + 256 MiB, and ListVms answers", async ({ connections, streams }) => {
    const client = connect(server.address);
    // The well-behaved client debugs the VM (stopped) while the flood reads it.
    const session = await client.attach("demo", { transport: "unary" });
    await session.break();
    try {
      await probeLatencies(client, session, 20); // warm
      const idle = memoryMib(server.pid).rss;
      const flood = openFlood(server.address, "demo", connections, streams);
      try {
        // The server fills its budget and then holds: wait until its memory stops growing.
        await settle(() => memoryMib(server.pid).rss, 2_000, 60_000);
        const during = memoryMib(server.pid);
        // A well-behaved client is answered while the flood holds.
        const vms = await client.listVms({ deadlineMs: 30_000 });
        expect(vms.map((v) => v.id)).toContain("demo");
        expect((await probeLatencies(client, session, 20)).length).toBe(20);
        expect(during.peak - idle).toBeLessThan(BOUND_OVER_IDLE_MIB);
      } finally {
        flood.stop();
      }
      // Cancelled, the flood's buffers go; the server serves on.
      expect((await client.listVms({ deadlineMs: 30_000 })).length).toBeGreaterThan(0);
      expect(memoryMib(server.pid).rss - idle).toBeLessThan(BOUND_OVER_IDLE_MIB);
    } finally {
      await session.detach();
      client.close();
    }
  }, 180_000);
});
