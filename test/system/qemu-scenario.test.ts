// The Foundation scenario, unchanged, on QEMU x86-64 and QEMU aarch64.
import type { Arch } from "../../src/core";
import { runDebuggingScenario } from "../shared/scenario";
import { describeWithQemu, guestSymbols, startQemuHarness, type QemuHarness } from "./qemu-harness";

for (const arch of ["x86_64", "aarch64"] as Arch[]) {
  describeWithQemu(arch)(`a debugging session on the demo guest (QEMU ${arch})`, () => {
    let h: QemuHarness;
    beforeAll(async () => {
      h = await startQemuHarness(arch);
    }, 60_000);
    afterAll(async () => {
      await h?.close();
    });

    it("catches the counter write, steps past it, edits a register, and detaches leaving the guest running", async () => {
      await runDebuggingScenario({ client: h.client, vm: "qemu", arch, counter: guestSymbols(arch).counter });
    });
  });
}
