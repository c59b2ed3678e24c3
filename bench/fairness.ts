// Fairness between principals (issue 9, limits per principal): a well-behaved client's p99 of
// ReadMemory/GetVm (64 B reads and GetVm alternately, 250 calls/s, half its rate), unloaded and
// while another principal floods the same server from a process of its own (256 calls in flight
// over 4 raw HTTP/2 connections, each answer's slot reused at once). The server has tokens and
// the default limits (test/shared/limited-server.ts), so the flooder is held to 64 calls in
// flight and 500 calls/s with bursts of 1,000; what it still costs the server is refusing the
// rest (and auditing each refusal). A control round floods the same server without limits.
// Target: flooded p99 within 2x of unloaded.
//
// Everything runs on one host: the flooder's own CPU is taken from the server and the probe too,
// which a flooder on another host would not take. VMM_DEBUG_BENCH_FLOOD_NICE (0 to 19, default
// 0) lowers the flooder's priority to approximate that.
import { percentile } from "./floor";
import { startFlooder, type FloodCounts } from "../test/shared/flooder";
import { connectAs, holdStopped, probeReads, startTwoPrincipalServer } from "../test/shared/fairness";

type Emit = (name: string, value: number, unit: string, extra?: Record<string, unknown>) => void;

const ROUNDS = 3;
/** Probe calls per phase, one every PROBE_INTERVAL_MS (250/s, half the principal's rate), for at most PROBE_MAX_MS. */
const PROBE_CALLS = 1500;
const PROBE_INTERVAL_MS = 4;
const PROBE_MAX_MS = 30_000;
const FLOOD = { connections: 4, concurrency: 256 };
const NICE = Number(process.env.VMM_DEBUG_BENCH_FLOOD_NICE ?? 0);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `rounds` of (unloaded p99, flooded p99) against a fresh server with `limits` ({} defaults, false none). */
async function measure(limits: {} | false, rounds: number): Promise<{ unloaded: number[]; flooded: number[]; floods: FloodCounts[]; samples: number[] }> {
  const two = await startTwoPrincipalServer(limits);
  const calm = connectAs(two.address, two.tokens.calm);
  let release = async () => undefined as void;
  const result = { unloaded: [] as number[], flooded: [] as number[], floods: [] as FloodCounts[], samples: [] as number[] };
  try {
    release = await holdStopped(calm, "demo");
    await probeReads(calm, "demo", 200, PROBE_INTERVAL_MS); // warm
    for (let round = 0; round < rounds; round++) {
      const before = await probeReads(calm, "demo", PROBE_CALLS, PROBE_INTERVAL_MS, PROBE_MAX_MS);
      result.unloaded.push(percentile(before, 99));
      result.samples.push(before.length);
      const flooder = startFlooder({ address: two.address, token: two.tokens.flood, vm: "demo", ...FLOOD, maxSeconds: 300, nice: NICE });
      try {
        await flooder.ready;
        const during = await probeReads(calm, "demo", PROBE_CALLS, PROBE_INTERVAL_MS, PROBE_MAX_MS);
        result.flooded.push(percentile(during, 99));
        result.samples.push(during.length);
      } finally {
        result.floods.push(await flooder.stop());
      }
    }
  } finally {
    await release();
    calm.close();
    await two.stop();
  }
  return result;
}

export async function benchFairness(emit: Emit): Promise<void> {
  const { unloaded, flooded, floods, samples } = await measure({}, ROUNDS);
  const u = median(unloaded);
  const f = median(flooded);
  // samples: probe calls per phase (unloaded, flooded, ... by round); fewer than PROBE_CALLS when PROBE_MAX_MS ran out.
  const rounds = { unloaded_p99_us: unloaded.map(Math.round), flooded_p99_us: flooded.map(Math.round), samples };
  const flood = {
    flood_connections: FLOOD.connections,
    flood_in_flight: FLOOD.concurrency,
    flood_nice: NICE,
    flood_answers_per_s: floods.map((c) => Math.round(c.perSecond)),
    flood_admitted_per_s: floods.map((c) => Math.round((c.outcomes.OK ?? 0) / c.seconds)),
    flood_outcomes: floods.map((c) => c.outcomes),
  };
  emit("fair_unloaded_p99_us", u, "us", { rounds: ROUNDS, probe_calls: PROBE_CALLS, probe_rate_per_s: 1000 / PROBE_INTERVAL_MS, ...rounds });
  emit("fair_flooded_p99_us", f, "us", { ...flood, ...rounds });
  emit("fair_p99_ratio", f / u, "x", { ratios: flooded.map((x, i) => Number((x / unloaded[i]).toFixed(2))), target_max_ratio: 2 });

  // Control: the same flood against a server without limits.
  const control = await measure(false, 1);
  emit("fair_unlimited_flooded_p99_us", control.flooded[0], "us", {
    unloaded_p99_us: Math.round(control.unloaded[0]),
    ratio: Number((control.flooded[0] / control.unloaded[0]).toFixed(2)),
    flood_answers_per_s: Math.round(control.floods[0].perSecond),
    flood_nice: NICE,
  });
}
