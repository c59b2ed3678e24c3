// VmInfo.capabilities of a QEMU VM (launched under TCG with its shared RAM file): where QEMU's
// behaviour differs from the embedded machine's the capabilities say so, and the VM then does
// what they say: segment caches and EL1 system registers refused, GPA software breakpoints
// refused, reads pausing once the RAM file is not used.
import { Status } from "nice-grpc";
import type { Capabilities } from "../../src/client";
import type { QemuVm } from "../../src/qemu";
import { expectRpcError } from "../integration/harness";
import { describeWithQemu, guestSymbols, startQemuHarness, type QemuHarness } from "./qemu-harness";

const X86_FIELDS = ["gp", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "kernel_gs_base"];

const expected = (arch: "x86_64" | "aarch64"): Capabilities => ({
  hardwareSlotsPerVp: 4,
  watchpointTypes: ["write", "readWrite"],
  watchpointSizes: [1, 2, 4, 8],
  softwareBreakpoints: { gva: true, perVp: true, gpa: false },
  setVpStateFields:
    arch === "x86_64"
      ? [...X86_FIELDS, "es.selector", "cs.selector", "ss.selector", "ds.selector", "fs.base", "fs.selector", "gs.base", "gs.selector", "fp.xmm", "fp.mxcsr", "fp.st", "fp.fcw", "fp.fsw"]
      : ["x", "sp_el0", "sp_el1", "pc", "cpsr"],
  memoryReadsWhileRunning: "noPauseGpaRam",
  batchedStepping: { maxCount: 1_000_000, traces: ["none", "pc", "registers"] },
});

for (const arch of ["x86_64", "aarch64"] as const) {
  const sym = guestSymbols(arch);

  describeWithQemu(arch)(`VmInfo.capabilities on QEMU ${arch}`, () => {
    let h: QemuHarness;
    beforeAll(async () => {
      h = await startQemuHarness(arch);
    }, 60_000);
    afterAll(async () => {
      await h?.close();
    });

    async function attachStopped() {
      const s = await h.client.attach("qemu");
      await s.break();
      expect(await s.resume({ deadlineMs: 20_000 })).toEqual({ kind: "break" });
      return s;
    }

    it("reports QEMU's capabilities: no GPA software breakpoints, fewer writable fields, GPA RAM reads without pausing", async () => {
      expect((await h.client.getVm("qemu")).capabilities).toEqual(expected(arch));
      expect((await h.client.listVms())[0].capabilities).toEqual(expected(arch));
    });

    it("writes a listed field and refuses one it does not list, writing nothing", async () => {
      const s = await attachStopped();
      try {
        const saved = await s.getVpState(0);
        if (saved.arch === "x86_64") {
          const changed = { ...saved.state, gp: saved.state.gp.map((v, i) => (i === 0 ? v ^ 0x5an : v)), kernelGsBase: 0xffff_8000_1234_5000n };
          await s.setVpState(0, { arch: "x86_64", state: changed });
          expect(await s.getVpState(0)).toEqual({ arch: "x86_64", state: changed });
          // cs.base is not listed: the descriptor cache comes only from the GDT.
          await expectRpcError(
            s.setVpState(0, { arch: "x86_64", state: { ...changed, gp: saved.state.gp, cs: { ...changed.cs, base: 0x1000n } } }),
            Status.FAILED_PRECONDITION,
            "UNSUPPORTED_REGISTER",
          );
          expect(await s.getVpState(0)).toEqual({ arch: "x86_64", state: changed });
        } else if (saved.arch === "aarch64") {
          const changed = { ...saved.state, x: saved.state.x.map((v, i) => (i === 0 ? v ^ 0x5an : v)) };
          await s.setVpState(0, { arch: "aarch64", state: changed });
          expect(await s.getVpState(0)).toEqual({ arch: "aarch64", state: changed });
          // sctlr_el1 is not listed: the gdbstub only reads it.
          await expectRpcError(
            s.setVpState(0, { arch: "aarch64", state: { ...changed, x: saved.state.x, sctlrEl1: changed.sctlrEl1 ^ 0x1000n } }),
            Status.FAILED_PRECONDITION,
            "UNSUPPORTED_REGISTER",
          );
          expect(await s.getVpState(0)).toEqual({ arch: "aarch64", state: changed });
        }
        await s.setVpState(0, saved);
      } finally {
        await s.detach();
      }
    }, 60_000);

    it("takes every listed watchpoint type and size, places GVA software breakpoints and refuses GPA ones", async () => {
      const s = await attachStopped();
      try {
        const caps = (await h.client.getVm("qemu")).capabilities!;
        for (const type of caps.watchpointTypes) {
          for (const size of caps.watchpointSizes) await s.setWatchpoint(0, { address: sym.counter.gva, type, size }, 0);
        }
        await s.insertSoftwareBreakpoint(sym.tick.gva);
        await s.insertSoftwareBreakpoint({ gva: sym.tick.gva, vp: 0 });
        await expectRpcError(s.insertSoftwareBreakpoint({ gpa: sym.tick.gpa }), Status.FAILED_PRECONDITION, "SOFTWARE_BREAKPOINT_UNSUPPORTED");
        expect(await s.listSoftwareBreakpoints()).toHaveLength(2);
      } finally {
        await s.detach();
      }
    }, 60_000);

    it("says reads pause once the RAM file is not used, and reads of a running VM still answer", async () => {
      const vm = h.vms[0] as QemuVm;
      vm.fastMemory = false;
      try {
        expect((await h.client.getVm("qemu")).capabilities?.memoryReadsWhileRunning).toBe("pauses");
        expect((await h.client.getVm("qemu")).runState).toBe("running");
        expect(await h.client.readMemory("qemu", { gpa: sym.counter.gpa }, 8)).toHaveLength(8);
        expect((await h.client.getVm("qemu")).runState).toBe("running");
      } finally {
        vm.fastMemory = true;
      }
      expect((await h.client.getVm("qemu")).capabilities?.memoryReadsWhileRunning).toBe("noPauseGpaRam");
    }, 60_000);
  });
}
