// The request fuzzer's short mode, part of `npm test`: FUZZ_SHORT_COUNT (default 3,000) mutated
// requests at a live server. `npm run test:fuzz` is the long mode (FUZZ_COUNT, default 100,000).
// FUZZ_SEED repeats a run; the seed is printed first either way.
import { randomInt } from "node:crypto";
import { formatSummary, runFuzz } from "./run-fuzz";

const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(0, 2 ** 32);
const count = Number(process.env.FUZZ_SHORT_COUNT ?? 3000);
const print = (line: string) => process.stdout.write(line + "\n");

describe("request fuzzing (short mode)", () => {
  it(`${count} mutated requests: the server stays up, every refusal is proper, none changes a VM, each control request is audited once`, async () => {
    print(`fuzz (short mode): seed ${seed} (repeat with FUZZ_SEED=${seed} FUZZ_SHORT_COUNT=${count})`);
    const s = await runFuzz({ seed, count, log: print });
    print(formatSummary(s));
    expect({ crashes: s.crashes, stateChanges: s.stateChanges, auditMismatches: s.auditMismatches }).toEqual({ crashes: [], stateChanges: [], auditMismatches: [] });
    expect(s.requests).toBe(count);
    // Every refusal was checked against a snapshot, or got through when sent again (it depended
    // on its batch), or could not be sent again as it was (its stream had ended): nothing else.
    expect(s.refusalsChecked + s.refusalsDependent + s.refusalsUnchecked).toBe(s.refused + s.refusedUndecoded);
    expect(s.refusalsUnchecked).toBeLessThanOrEqual(Math.ceil(0.01 * (s.refused + s.refusedUndecoded)));
  }, 600_000);
});
