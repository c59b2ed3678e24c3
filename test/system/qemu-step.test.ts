// Batched stepping on QEMU (VmmCore.step), checked against single steps (single_step + resume) run
// from the same registers and counter: the demo loop's control flow depends on nothing else.
import {
  type Arch,
  BreakpointSize,
  BreakpointType,
  type DebugStopReason,
  type DebuggerVpState,
  emptyDebugState,
  flattenVpState,
} from "../../src/core";
import { type QemuVm, launchQemuVm, qemuArgsForGuest } from "../../src/qemu";
import { describeWithQemu, guestSymbols, manifestPath } from "./qemu-harness";

const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
const pcOf = (s: DebuggerVpState) => (s.arch === "x86_64" ? s.state.rip : s.state.pc);
/** Register number of the PC in the flattened state (REGISTER_COUNT numbering). */
const PC_REGISTER: Record<Arch, number> = { x86_64: 16, aarch64: 33 };

for (const arch of ["x86_64", "aarch64"] as const) {
  const sym = guestSymbols(arch);

  describeWithQemu(arch)(`batched stepping on QEMU ${arch}`, () => {
    let vm: QemuVm;

    /** QEMU on the demo guest, stopped once the guest counts (its page tables are built). */
    async function launchBooted(id: string): Promise<QemuVm> {
      const { args } = qemuArgsForGuest(manifestPath(arch));
      const launched = await launchQemuVm({ id, arch, args });
      const end = Date.now() + 20_000;
      while (Date.now() < end && u64(await launched.readMemory({ kind: "gpa", gpa: sym.counter.gpa }, 8)) < 1000n) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await launched.halt();
      return launched;
    }

    beforeAll(async () => {
      vm = await launchBooted("qemu");
    }, 60_000);

    afterAll(async () => {
      await vm?.close();
    });

    afterEach(async () => {
      await vm.setDebugState(0, emptyDebugState());
    });

    /** VP 0's registers and the counter the loop reads: enough to replay the same instructions. */
    async function snapshot(): Promise<() => Promise<void>> {
      const state = await vm.getVpState(0);
      const counter = await vm.readMemory({ kind: "gpa", gpa: sym.counter.gpa }, 8);
      return async () => {
        await vm.setVpState(0, state);
        await vm.writeMemory({ kind: "gpa", gpa: sym.counter.gpa }, counter);
      };
    }

    async function singleSteps(n: number): Promise<bigint[]> {
      await vm.setDebugState(0, { ...emptyDebugState(), singleStep: true });
      const pcs: bigint[] = [];
      for (let i = 0; i < n; i++) {
        const stop = new Promise<DebugStopReason>((resolve) => {
          const off = vm.onStop((r) => {
            off();
            resolve(r);
          });
        });
        await vm.resume();
        expect(await stop).toEqual({ kind: "singleStep", vp: 0 });
        pcs.push(pcOf(await vm.getVpState(0)));
      }
      await vm.setDebugState(0, emptyDebugState());
      return pcs;
    }

    it("records the PCs that as many single steps show, and ends in the same registers", async () => {
      const restore = await snapshot();
      const expected = await singleSteps(200);
      const afterSingles = await vm.getVpState(0);
      await restore();
      const result = await vm.step(0, 200, "pc");
      expect(result.executed).toBe(200);
      expect(result.stop).toBeUndefined();
      expect([...result.pcs!]).toEqual(expected);
      expect(await vm.getVpState(0)).toEqual(afterSingles);
      expect(vm.runState()).toBe("stopped");
    }, 60_000);

    it("reports registers whose PC entries equal the PC trace and whose sum is the final state", async () => {
      const restore = await snapshot();
      const pcTrace = await vm.step(0, 100, "pc");
      const final = await vm.getVpState(0);
      await restore();
      let flat = flattenVpState(await vm.getVpState(0));
      const result = await vm.step(0, 100, "registers");
      expect(result.executed).toBe(100);
      expect([...result.pcs!]).toEqual([...pcTrace.pcs!]);
      const pcs: bigint[] = [];
      for (const delta of result.deltas!) {
        flat = [...flat];
        delta.registers.forEach((reg, j) => (flat[reg] = delta.values[j]));
        pcs.push(flat[PC_REGISTER[arch]]);
      }
      expect(pcs).toEqual([...pcTrace.pcs!]);
      expect(flat).toEqual(flattenVpState(final));
    }, 60_000);

    it("ends the batch before an execute breakpoint, and steps off it in the next batch", async () => {
      const tick = sym.tick.gva;
      if (pcOf(await vm.getVpState(0)) === tick) await vm.step(0, 1, "none");
      const bp = { address: tick, type: BreakpointType.Execute, size: BreakpointSize.Byte };
      await vm.setDebugState(0, { singleStep: false, breakpoints: [null, null, bp, null] });
      const result = await vm.step(0, 1000, "pc");
      expect(result.stop).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: bp });
      expect(result.executed).toBeGreaterThan(0);
      expect(result.executed).toBeLessThan(20);
      expect(result.pcs![result.executed - 1]).toBe(tick);
      expect(pcOf(await vm.getVpState(0))).toBe(tick);

      const next = await vm.step(0, 4, "pc");
      expect(next.stop).toBeUndefined();
      expect(next.executed).toBe(4);
      expect(next.pcs![0]).toBe(tick + (arch === "x86_64" ? 3n : 4n)); // past tick's first load
    }, 60_000);

    it("ends the batch on a write watchpoint of the VP as the architecture reports it", async () => {
      const watch = { address: sym.counter.gva, type: BreakpointType.Write, size: BreakpointSize.QWord };
      await vm.setDebugState(0, { singleStep: false, breakpoints: [watch, null, null, null] });
      const before = u64(await vm.readMemory({ kind: "gpa", gpa: sym.counter.gpa }, 8));
      const result = await vm.step(0, 1000, "pc");
      expect(result.stop).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: watch });
      const after = u64(await vm.readMemory({ kind: "gpa", gpa: sym.counter.gpa }, 8));
      // x86 stops after the store (counted); aarch64 before it (not run yet).
      expect(after).toBe(arch === "x86_64" ? before + 1n : before);
      if (arch === "x86_64") expect(result.pcs![result.executed - 1]).toBe(pcOf(await vm.getVpState(0)));
      // The next batch gets past the store it stopped at.
      const next = await vm.step(0, 2, "pc");
      expect(next.executed).toBeGreaterThan(0);
      expect(u64(await vm.readMemory({ kind: "gpa", gpa: sym.counter.gpa }, 8))).toBe(before + 1n);
    }, 60_000);

    it("reports running while the batch runs; reads wait for it; Break ends it", async () => {
      const pending = vm.step(0, 1_000_000, "pc");
      expect(vm.runState()).toBe("running");
      await expect(vm.getVpState(0)).rejects.toMatchObject({ reason: "VM_RUNNING" });
      const read = vm.readMemory({ kind: "gva", vp: 0, gva: sym.counter.gva }, 8); // walks VP 0's tables: waits for the batch
      await new Promise((r) => setTimeout(r, 200));
      await vm.halt();
      const result = await pending;
      expect(result.stop).toEqual({ kind: "break" });
      expect(result.executed).toBeGreaterThan(0);
      expect(result.pcs).toHaveLength(result.executed);
      expect((await read).length).toBe(8);
      expect(vm.runState()).toBe("stopped");
    }, 60_000);

    it("ends early with break when the signal aborts", async () => {
      const controller = new AbortController();
      const pending = vm.step(0, 1_000_000, "none", controller.signal);
      setTimeout(() => controller.abort(), 100);
      const result = await pending;
      expect(result.stop).toEqual({ kind: "break" });
      expect(result.executed).toBeGreaterThan(0);
    }, 60_000);

    it("ends the batch once the VP waits in HLT/WFI, and then steps nothing", async () => {
      // A VM of its own: QEMU keeps a halted vCPU halted whatever the registers say.
      const own = await launchBooted("halting");
      try {
        const state = await own.getVpState(0);
        const at = sym.tick.gva + 0x800n; // unused text of the kernel's page
        const code = arch === "x86_64" ? [0x90, 0xf4, 0x90] : [0x1f, 0x20, 0x03, 0xd5, 0x7f, 0x20, 0x03, 0xd5, 0x1f, 0x20, 0x03, 0xd5];
        await own.writeMemory({ kind: "gva", vp: 0, gva: at }, Uint8Array.from(code)); // nop; hlt|wfi; nop
        await own.setVpState(0, state.arch === "x86_64" ? { arch: "x86_64", state: { ...state.state, rip: at } } : { arch: "aarch64", state: { ...state.state, pc: at } });
        const step = arch === "x86_64" ? 1n : 4n;
        expect(await own.step(0, 5, "pc")).toEqual({ executed: 2, halted: true, pcs: new BigUint64Array([at + step, at + 2n * step]) });
        expect(await own.step(0, 5, "pc")).toEqual({ executed: 0, halted: true, pcs: new BigUint64Array(0) });
        expect(own.runState()).toBe("stopped");
      } finally {
        await own.close();
      }
    }, 60_000);

    it("refuses a bad count and a VP out of range, leaving the VP where it was", async () => {
      const before = await vm.getVpState(0);
      await expect(vm.step(0, 0, "pc")).rejects.toMatchObject({ reason: "VALUE_OUT_OF_RANGE" });
      await expect(vm.step(0, 1_000_001, "pc")).rejects.toMatchObject({ reason: "VALUE_OUT_OF_RANGE" });
      await expect(vm.step(1, 1, "pc")).rejects.toMatchObject({ reason: "VP_OUT_OF_RANGE" });
      expect(await vm.getVpState(0)).toEqual(before);
    });
  });
}
