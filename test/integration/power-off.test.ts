// A guest that powers off while a debugger waits in Resume: the stop is reported, the VM can be inspected, not run.
import { Status } from "nice-grpc";
import { expectRpcError, startHarness, sym, x86, type Harness } from "./harness";

describe("a guest powering off under the debugger", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ vpCount: 1 });
  });
  afterAll(async () => {
    await h.close();
  });

  it("reports PowerOff to Resume, keeps registers readable, refuses to run, and detaches cleanly", async () => {
    const s = await h.client.attach("demo");
    await s.break();
    expect(await s.resume()).toEqual({ kind: "break" });

    // mov $0x2000,%ax ; mov $0x604,%dx ; out %ax,%dx ; jmp .  — planted in the text padding (read-only to the guest).
    const at = sym("text_end").gva - 16n;
    await s.writeMemory({ gva: at }, Uint8Array.from([0x66, 0xb8, 0x00, 0x20, 0x66, 0xba, 0x04, 0x06, 0x66, 0xef, 0xeb, 0xfe]));
    const regs = await x86(h.client, "demo", 0);
    await s.setVpState(0, { arch: "x86_64", state: { ...regs, rip: at } });

    expect(await s.resume()).toEqual({ kind: "powerOff" });
    expect((await h.client.getVm("demo")).runState).toBe("poweredOff");
    expect((await x86(h.client, "demo", 0)).rip).toBe(at + 10n); // after the OUT
    await expectRpcError(s.resume(), Status.FAILED_PRECONDITION, "VM_POWERED_OFF", { vm: "demo" });
    await s.detach();
    const info = await h.client.getVm("demo");
    expect(info.runState).toBe("poweredOff");
    expect(info.attached).toBeUndefined();
  });
});
