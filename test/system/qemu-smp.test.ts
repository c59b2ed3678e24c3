// Per-VP hardware slots on QEMU, whose breakpoints are machine-wide: with two VPs running the same
// code, a slot set on one VP stops only that VP; the other VP's hits are stepped past unseen.
import { describeWithQemu, guestSymbols, startQemuHarness, type QemuHarness } from "./qemu-harness";

const sym = guestSymbols("aarch64");
const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);

describeWithQemu("aarch64")("per-VP slots on a 2-VP QEMU aarch64 guest", () => {
  let h: QemuHarness;
  beforeAll(async () => {
    h = await startQemuHarness("aarch64", { smp: 2 });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it("serves both VPs", () => {
    expect(h.vms[0].vpCount).toBe(2);
  });

  it("stops only the VP whose slot matches, for execute breakpoints and watchpoints", async () => {
    const session = await h.client.attach("qemu");
    try {
      await session.break();
      expect(await session.resume()).toEqual({ kind: "break" });

      // Both VPs call tick all the time; the breakpoint is VP 1's only.
      await session.setBreakpoint(1, sym.tick.gva, 0);
      for (let i = 0; i < 5; i++) {
        expect(await session.resume({ deadlineMs: 20_000 })).toEqual({ kind: "hwBreakpoint", vp: 1, breakpoint: { address: sym.tick.gva, type: "execute", size: 1 } });
        const s = await session.getVpState(1);
        expect(s.arch === "aarch64" && s.state.pc).toBe(sym.tick.gva);
      }
      await session.clearBreakpoint(1, 0);

      // VP 0's counter, watched on VP 0: only VP 0 stops, before its store (aarch64), and runs on.
      await session.setWatchpoint(0, { address: sym.counter.gva, type: "write", size: 8 }, 2);
      const seen: bigint[] = [];
      for (let i = 0; i < 3; i++) {
        expect(await session.resume({ deadlineMs: 20_000 })).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: sym.counter.gva, type: "write", size: 8 } });
        seen.push(u64(await session.readMemory({ gpa: sym.counter.gpa }, 8)));
      }
      expect(seen[1]).toBe(seen[0] + 1n); // each Resume steps over the pending store and catches the next
      expect(seen[2]).toBe(seen[1] + 1n);

      // The same watchpoint on VP 1 instead: VP 0 keeps writing its counter, and nothing stops.
      await session.clearBreakpoint(0, 2);
      await session.setWatchpoint(1, { address: sym.counter.gva, type: "write", size: 8 }, 0);
      const running = session.resume();
      await new Promise((r) => setTimeout(r, 500));
      const c0 = u64(await session.readMemory({ gpa: sym.counter.gpa }, 8));
      await new Promise((r) => setTimeout(r, 200));
      const c1 = u64(await session.readMemory({ gpa: sym.counter.gpa }, 8));
      expect(c1).toBeGreaterThan(c0);
      await session.break();
      expect(await running).toEqual({ kind: "break" });
    } finally {
      await session.detach();
    }
  });
});
