// The SDK's step(): one Resume per step in a run of steps, and single-step off again afterwards.
import { startHarness, sym, type Harness } from "./harness";

describe("Session.step", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterAll(async () => {
    await h.close();
  });

  const rpcs = () => h.logs.filter((l) => l.message === "audit").map((l) => String(l.fields.rpc));

  it("costs one Resume per step in a run, and resume() turns single-step off before running", async () => {
    const session = await h.client.attach("demo");
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
    } finally {
      await session.detach();
    }
  });
});
