// The QEMU backend's listeners: a stop or gone listener that throws is logged, the others still
// hear the event once, and the VM goes on as if nothing happened.
import { type QemuVm, launchQemuVm, qemuArgsForGuest } from "../../src/qemu";
import { describeWithQemu, manifestPath } from "./qemu-harness";

describeWithQemu("x86_64")("QEMU backend listeners", () => {
  let vm: QemuVm | undefined;
  const logs: string[] = [];
  const launch = (id: string) => launchQemuVm({ id, arch: "x86_64", args: qemuArgsForGuest(manifestPath("x86_64")).args, log: (m) => logs.push(m) });

  beforeEach(() => (logs.length = 0));
  afterEach(async () => {
    await vm?.close();
    vm = undefined;
  });

  it("a stop listener that throws is logged, and every listener hears each stop once", async () => {
    vm = await launch("stops");
    const seen: string[] = [];
    vm.onStop(() => {
      throw new Error("listener bug");
    });
    vm.onStop((r) => seen.push(r.kind));
    await vm.halt();
    expect(vm.runState()).toBe("stopped");
    await vm.resume();
    await vm.halt();
    expect(seen).toEqual(["break", "break"]);
    expect(logs.filter((l) => /a stop listener failed on break: listener bug/.test(l))).toHaveLength(2);
    expect(logs.filter((l) => /run loop error/.test(l))).toEqual([]);
  }, 30_000);

  it("a gone listener that throws is logged, and the others still hear that QEMU is gone", async () => {
    vm = await launch("gone");
    vm.onGone(() => {
      throw new Error("listener bug");
    });
    const gone = new Promise<string>((resolve) => vm!.onGone(resolve));
    process.kill(vm.pid!, "SIGKILL"); // this test's QEMU, by its PID
    expect(await gone).toMatch(/QEMU/);
    expect(vm.runState()).toBe("gone");
    expect(logs.some((l) => /a gone listener failed: listener bug/.test(l))).toBe(true);
  }, 30_000);
});
