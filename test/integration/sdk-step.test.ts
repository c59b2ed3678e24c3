// The SDK's step(): on unary, one Resume per step in a run of steps and single-step off again
// afterwards; on the stream, one Step message per step.
import { startHarness, sym, type Harness } from "./harness";

describe("Session.step", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterAll(async () => {
    await h.close();
  });

  const audits = () => h.logs.filter((l) => l.message === "audit");
  const rpcs = () => audits().map((l) => String(l.fields.rpc));

  it("costs one Resume per step in a run on unary, and resume() turns single-step off before running", async () => {
    const session = await h.client.attach("demo", { transport: "unary" });
    try {
      await session.break();
      await session.resume();
      const before = rpcs().length;
      for (let i = 0; i < 3; i++) expect(await session.step(0)).toEqual({ kind: "singleStep", vp: 0 });
      expect(rpcs().slice(before)).toEqual(["SetDebugState", "Resume", "Resume", "Resume"]);
      expect(session.debugState(0).singleStep).toBe(false); // the state the caller set

      // A plain resume runs freely again: it stops at the watchpoint, not after one instruction.
      await session.setWatchpoint(0, { address: sym("counter").gva, type: "write", size: 8 });
      expect(await session.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0 });

      // Stepping another VP turns stepping of the first off.
      await session.clearBreakpoint(0, 0);
      await session.step(0);
      const mark = rpcs().length;
      expect(await session.step(1)).toEqual({ kind: "singleStep", vp: 1 });
      expect(rpcs().slice(mark)).toEqual(["SetDebugState", "SetDebugState", "Resume"]);

      // A batched step turns single-step off first, so it runs its whole count.
      const batch = await session.step(1, { count: 10 });
      expect({ executed: batch.executed, stop: batch.stop }).toEqual({ executed: 10, stop: undefined });
    } finally {
      await session.detach();
    }
  });

  it("costs one Step message per step on the stream, and a watchpoint hit within the step is its stop", async () => {
    const session = await h.client.attach("demo");
    try {
      await session.break();
      const before = audits().length;
      for (let i = 0; i < 3; i++) expect(await session.step(0)).toEqual({ kind: "singleStep", vp: 0 });
      expect(audits().slice(before).map((l) => [l.fields.rpc, l.fields.via])).toEqual(Array(3).fill(["Step", "stream"]));

      // Step until the instruction that writes the counter: that step answers the watchpoint.
      await session.setWatchpoint(0, { address: sym("counter").gva, type: "write", size: 8 });
      let stop = await session.step(0);
      for (let i = 0; i < 50 && stop.kind === "singleStep"; i++) stop = await session.step(0);
      expect(stop).toMatchObject({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: sym("counter").gva, type: "write" } });
    } finally {
      await session.detach();
    }
  });
});
