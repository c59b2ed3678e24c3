// The debugging scenario end to end through the SDK: break, watch a variable, step, edit a register, detach.
import type { Session } from "../../src/client";
import { decodeAt, readU64, startHarness, sym, u64, waitFor, x86, type Harness } from "./harness";

describe("a debugging session on the demo guest", () => {
  let h: Harness;
  let session: Session | undefined;

  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterAll(async () => {
    await session?.detach().catch(() => undefined);
    await h.close();
  });

  it("catches the counter write, steps past it, edits a register, and detaches leaving the guest running", async () => {
    const { client } = h;
    session = await client.attach(); // the only VM
    expect(session.vm).toBe("demo");

    // Break; the stop is reported by the next Resume at once.
    await session.break();
    expect(await session.resume()).toEqual({ kind: "break" });

    // A write watchpoint on `counter` (by its GVA) on VP 0.
    const counter = sym("counter");
    const slot = await session.setWatchpoint(0, { address: counter.gva, type: "write", size: 8 });
    const stop = await session.resume();
    expect(stop).toEqual({
      kind: "hwBreakpoint",
      vp: 0,
      breakpoint: { address: counter.gva, type: "write", size: 8 },
    });
    expect(session.debugState(0).breakpoints[slot]).toEqual({ address: counter.gva, type: "write", size: 8 });

    // The counter read by GVA (through VP 0's page tables) equals the read by GPA.
    const byGva = u64(await session.readMemory({ gva: counter.gva, vp: 0 }, 8));
    const byGpa = u64(await session.readMemory({ gpa: counter.gpa }, 8));
    expect(byGva).toBe(byGpa);
    expect(byGva).toBeGreaterThan(0n);
    expect((await x86(client, "demo", 0)).gp[0]).toBe(byGva); // tick returned the stored value in RAX

    // Single steps: each reports SingleStep{vp: 0}; a fall-through instruction advances RIP by its length.
    let checkedFallThrough = false;
    for (let i = 0; i < 4 && !checkedFallThrough; i++) {
      const before = await x86(client, "demo", 0);
      const instr = await decodeAt(client, "demo", 0, before.rip);
      const returnAddress = instr.ret ? u64(await session.readMemory({ gva: before.gp[4] }, 8)) : undefined; // [RSP]
      expect(await session.step(0)).toEqual({ kind: "singleStep", vp: 0 });
      const after = await x86(client, "demo", 0);
      if (instr.next) {
        expect(after.rip).toBe(before.rip + BigInt(instr.length));
        checkedFallThrough = true;
      } else if (returnAddress !== undefined) {
        expect(after.rip).toBe(returnAddress);
      }
    }
    expect(checkedFallThrough).toBe(true);
    expect(session.debugState(0).singleStep).toBe(false); // step turned it off again

    // Set a register the loop does not use and read it back.
    const regs = await x86(client, "demo", 0);
    const edited = { ...regs, gp: [...regs.gp] };
    edited.gp[13] = 0x0bad_cafe_f00d_d00dn; // R13
    await session.setVpState(0, { arch: "x86_64", state: edited });
    expect((await x86(client, "demo", 0)).gp[13]).toBe(0x0bad_cafe_f00d_d00dn);
    expect(await x86(client, "demo", 0)).toEqual(edited);

    // Detach: the watchpoint is gone and the guest runs on.
    await session.detach();
    session = undefined;
    const info = await client.getVm("demo");
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
    const c0 = await readU64(h.vms[0], counter.gpa);
    await waitFor(async () => (await readU64(h.vms[0], counter.gpa)) > c0 + 10_000n, 20_000, "counter advancing");
  });
});
