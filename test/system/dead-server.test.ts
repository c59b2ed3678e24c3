// Chaos on the server side, seen from the SDK: a server process frozen (SIGSTOP) while a Resume
// waits or a Session stream is open. The SDK's keepalive fails those calls with UNAVAILABLE
// instead of leaving them waiting for ever. (Shorter keepalive here than the SDK's 30 s/10 s.)
import { Status } from "nice-grpc";
import { connect, VmmDebugError } from "../../src/client";
import { startServerChild, type ServerChild } from "../shared/load";

const KEEPALIVE = { "grpc.keepalive_time_ms": 500, "grpc.keepalive_timeout_ms": 500 };

let server: ServerChild | undefined;
afterEach(async () => {
  if (server) {
    process.kill(server.pid, "SIGCONT"); // our child, by its PID: let it stop normally
    await server.stop();
    server = undefined;
  }
});

describe("a server that freezes under the SDK", () => {
  it.each(["unary", "stream"] as const)("fails a waiting Resume (%s) with UNAVAILABLE once keepalive finds it gone", async (transport) => {
    server = await startServerChild();
    const client = connect(server.address, { channelOptions: KEEPALIVE });
    try {
      const session = await client.attach("demo", { transport });
      await session.break();
      expect((await session.resume()).kind).toBe("break");
      const waiting = session.resume(); // the demo guest never stops on its own
      // The Resume has reached the server once the VM runs again.
      for (let i = 0; i < 400 && (await client.getVm("demo")).runState !== "running"; i++) await new Promise((r) => setImmediate(r));
      expect((await client.getVm("demo")).runState).toBe("running");
      process.kill(server.pid, "SIGSTOP");
      const err = await waiting.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(VmmDebugError);
      expect((err as VmmDebugError).code).toBe(Status.UNAVAILABLE);
    } finally {
      client.close();
    }
  }, 60_000);
});
