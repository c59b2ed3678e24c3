// Limits per principal against a real server process: one principal floods (a process of its own
// keeping 256 calls in flight, as fast as answers come), another makes ordinary calls. The flood
// is held to its own limits (RESOURCE_EXHAUSTED / CALL_LIMIT or RATE_LIMIT, and no more calls
// admitted than its bucket allows) while every call of the well-behaved principal succeeds.
// Latency is not asserted here: `npm run bench` (fairness section) measures the p99 figures.
import { Code } from "../../src/core";
import { VmmDebugError } from "../../src/client";
import { DEFAULT_PRINCIPAL_LIMITS } from "../../src/server/auth/limits";
import { startFlooder, type Flooder } from "../shared/flooder";
import { connectAs, holdStopped, probeReads, startTwoPrincipalServer, type TwoPrincipals } from "../shared/fairness";

jest.setTimeout(180_000);

describe("limits per principal under a flood", () => {
  let two: TwoPrincipals;
  beforeAll(async () => {
    two = await startTwoPrincipalServer();
  });
  afterAll(async () => {
    await two?.stop();
  });

  test("the flooder is refused at its limits; the well-behaved principal's calls all succeed", async () => {
    const calm = connectAs(two.address, two.tokens.calm);
    let flooder: Flooder | undefined;
    let release = async () => undefined as void;
    try {
      release = await holdStopped(calm, "demo");
      // Within its burst (1,000): the well-behaved client is never over its own rate.
      const before = await probeReads(calm, "demo", 100);
      expect(before).toHaveLength(100);

      flooder = startFlooder({ address: two.address, token: two.tokens.flood, vm: "demo", connections: 4, concurrency: 256, readyAfter: 2000 });
      await flooder.ready;
      const during = await probeReads(calm, "demo", 200); // throws on any refusal
      expect(during).toHaveLength(200);
      const counts = await flooder.stop();
      flooder = undefined;

      // Every answer to the flooder is OK or a refusal at its own limits, and there were refusals.
      const outcomes = Object.keys(counts.outcomes);
      for (const o of outcomes) expect(["OK", "RESOURCE_EXHAUSTED/CALL_LIMIT", "RESOURCE_EXHAUSTED/RATE_LIMIT"]).toContain(o);
      const refused = (counts.outcomes["RESOURCE_EXHAUSTED/CALL_LIMIT"] ?? 0) + (counts.outcomes["RESOURCE_EXHAUSTED/RATE_LIMIT"] ?? 0);
      expect(refused).toBeGreaterThan(0);
      // The bucket bounds what was admitted: its burst plus its rate over the flood's life (the
      // flooder's clock starts before its first call and stops after its last).
      const { burst, ratePerSecond } = DEFAULT_PRINCIPAL_LIMITS;
      expect(counts.outcomes.OK ?? 0).toBeLessThanOrEqual(burst + ratePerSecond * (counts.seconds + 1));
    } finally {
      if (flooder) await flooder.stop().catch(() => undefined);
      await release();
      calm.close();
    }
  });

  test("a refusal names its reason and, for the rate, when to retry", async () => {
    const flood = connectAs(two.address, two.tokens.flood);
    try {
      // Rounds of more calls at once than one principal may have in flight; bounded.
      const wave = DEFAULT_PRINCIPAL_LIMITS.callsPerPrincipal + 36;
      let refusal: VmmDebugError | undefined;
      for (let round = 0; round < 100 && !refusal; round++) {
        const results = await Promise.allSettled(Array.from({ length: wave }, () => flood.getVm("demo")));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed) refusal = failed.reason as VmmDebugError;
      }
      expect(refusal).toBeInstanceOf(VmmDebugError);
      expect(refusal!.code).toBe(Code.ResourceExhausted);
      expect(["RATE_LIMIT", "CALL_LIMIT"]).toContain(refusal!.reason);
      expect(refusal!.metadata.principal).toBe("flood");
      if (refusal!.reason === "RATE_LIMIT") expect(Number(refusal!.metadata.retry_after_ms)).toBeGreaterThan(0);
    } finally {
      flood.close();
    }
  });
});
