// Load and flood figures against a server process (`vmm-debug serve`, embedded machine, 256 MiB
// guest RAM): 64 concurrent clients with mixed requests over three rounds (rate, latency, RSS
// growth), then a flood of 1,000 unread 64 MiB ReadMemoryStreams over 10 connections (RSS, and a
// well-behaved client's p99 unloaded and flooded).
import { connect, type Session, type VmmDebugClient } from "../src/client";
import { percentile } from "./floor";
import { memoryMib, openFlood, probeLatencies, settle, startServerChild } from "../test/shared/load";

type Emit = (name: string, value: number, unit: string, extra?: Record<string, unknown>) => void;

const CLIENTS = 64;
const ROUND_SECONDS = 6;
const ROUNDS = 3;

/** One client's mixed requests for `seconds`; latencies in µs and the error count. */
async function mixedLoad(client: VmmDebugClient, session: Session, seconds: number, latencies: number[]): Promise<number> {
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < end && i < 1_000_000; i++) {
    const t0 = process.hrtime.bigint();
    try {
      switch (i % 4) {
        case 0:
          await client.listVms();
          break;
        case 1:
          await client.getVm("demo");
          break;
        case 2:
          await session.getVpState(i % 2);
          break;
        default:
          await client.readMemory("demo", { gpa: 0x100000n + BigInt((i * 64) % 4096) }, 64);
      }
    } catch {
      errors++;
    }
    latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return errors;
}

export async function benchLoad(emit: Emit): Promise<void> {
  const server = await startServerChild(["--memory-mib", "256"]);
  const control = connect(server.address);
  const session = await control.attach("demo", { transport: "unary" });
  await session.break(); // GetVpState needs the VM stopped
  try {
    const clients = Array.from({ length: CLIENTS }, () => connect(server.address));
    try {
      const rss: number[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const latencies: number[] = [];
        const t0 = process.hrtime.bigint();
        const errors = (await Promise.all(clients.map((c) => mixedLoad(c, session, ROUND_SECONDS, latencies)))).reduce((a, b) => a + b, 0);
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        rss.push(memoryMib(server.pid).rss);
        if (round === ROUNDS) {
          emit("load_64_clients_rps", latencies.length / seconds, "req/s", {
            clients: CLIENTS,
            requests: latencies.length,
            errors,
            mix: "ListVms, GetVm, GetVpState, ReadMemory 64 B",
          });
          emit("load_64_clients_p50_us", percentile(latencies, 50), "us");
          emit("load_64_clients_p99_us", percentile(latencies, 99), "us");
        }
      }
      emit("rss_growth_pct", ((rss[ROUNDS - 1] - rss[0]) / rss[0]) * 100, "%", {
        rounds: ROUNDS,
        rss_mib: rss.map((r) => Math.round(r)),
        target_max: 10,
      });
    } finally {
      for (const c of clients) c.close();
    }

    // The flood: a well-behaved client's p99 before and while 1,000 unread streams hold the server.
    const probe = connect(server.address);
    try {
      await probeLatencies(probe, session, 100); // warm
      const unloaded = percentile(await probeLatencies(probe, session, 1000), 99);
      const idle = memoryMib(server.pid).rss;
      const flood = openFlood(server.address, "demo", 10, 100);
      try {
        await settle(() => memoryMib(server.pid).rss, 3_000, 90_000);
        const flooded = percentile(await probeLatencies(probe, session, 1000), 99);
        const during = memoryMib(server.pid);
        emit("flood_rss_mib", during.peak, "MiB", {
          streams: flood.opened,
          connections: 10,
          stream_bytes_mib: 64,
          idle_rss_mib: Math.round(idle),
          bound_mib: Math.round(idle + 256 + 256),
        });
        emit("flood_probe_p99_us", flooded, "us", { unloaded_p99_us: Math.round(unloaded), ratio: Number((flooded / unloaded).toFixed(2)), target_max_ratio: 2 });
      } finally {
        flood.stop();
      }
    } finally {
      probe.close();
    }
  } finally {
    await session.detach().catch(() => undefined); // the server stops next either way
    control.close();
    await server.stop();
  }
}
