// The embedded machine's worker `message` listener: nothing it is sent escapes into the process.
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { createEmuMachine, type EmuMachine, loadGuestImage } from "../../../src/emu";
import type { FromWorker } from "../../../src/emu/protocol";

const image = loadGuestImage(join(__dirname, "../../../guests/build/demo-x86_64.json"));

/** Delivers `msg` as the worker would: through the Worker's "message" event, listeners run synchronously. */
function deliver(vm: EmuMachine, msg: FromWorker): void {
  (vm as unknown as { worker: Worker }).worker.emit("message", msg);
}

describe("embedded machine worker messages", () => {
  let vm: EmuMachine;
  let console_: string[];

  beforeEach(async () => {
    console_ = [];
    vm = await createEmuMachine({ id: "m", image, startRunning: false, onConsole: (l) => console_.push(l) });
  });
  afterEach(() => vm.close());

  it("a stop naming a disabled breakpoint slot fails that VM (gone, logged, waiters released) instead of throwing", async () => {
    await vm.resume();
    const gone = new Promise<string>((resolve) => vm.onGone(resolve));
    const halted = vm.halt(); // waits for a stop that will never map to a reason
    const bad: FromWorker = { type: "stopped", halt: { kind: "vp", vp: 0, exit: { kind: "hwBreakpoint", slot: 2 } } };
    expect(() => deliver(vm, bad)).not.toThrow();
    expect(vm.runState()).toBe("gone");
    expect(await gone).toMatch(/"stopped" message could not be handled: VP 0 reported disabled slot 2/);
    await expect(halted).resolves.toBeUndefined();
    expect(console_.some((l) => /could not be handled/.test(l))).toBe(true);
    await expect(vm.getVpState(0)).rejects.toMatchObject({ reason: "BACKEND_UNAVAILABLE" });
  });

  it("a stop listener that throws is logged; the other listeners and the stop itself still happen", async () => {
    const seen: string[] = [];
    vm.onStop(() => {
      throw new Error("listener bug");
    });
    vm.onStop((r) => seen.push(r.kind));
    await vm.resume();
    await vm.halt();
    expect(seen).toEqual(["break"]);
    expect(vm.runState()).toBe("stopped");
    expect(console_.some((l) => /a stop listener failed on break: listener bug/.test(l))).toBe(true);
  });

  it("a console consumer that throws loses the line, not the VM", async () => {
    const throwing = await createEmuMachine({
      id: "c",
      image,
      startRunning: false,
      onConsole: () => {
        throw new Error("consumer bug");
      },
    });
    try {
      expect(() => deliver(throwing, { type: "console", line: "hello" })).not.toThrow();
      expect(throwing.runState()).toBe("stopped");
    } finally {
      await throwing.close();
    }
  });
});
