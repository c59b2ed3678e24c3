// The debugging scenario end to end through the SDK on the embedded machine.
import { runDebuggingScenario } from "../shared/scenario";
import { startHarness, sym, type Harness } from "./harness";

describe("a debugging session on the demo guest (embedded machine)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterAll(async () => {
    await h.close();
  });

  it("catches the counter write, steps past it, edits a register, and detaches leaving the guest running", async () => {
    await runDebuggingScenario({ client: h.client, vm: "demo", arch: "x86_64", counter: sym("counter") });
  });
});
