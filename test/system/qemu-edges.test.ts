// The edges on QEMU (x86-64 and aarch64), as on the embedded machine: zero-length accesses are
// checked as one-byte accesses at the same address; register states the architecture forbids are
// refused (VP_STATE_INVALID) before anything reaches QEMU, and the VP keeps its registers; the
// debugger's GVA view stays QEMU's own.
import type { Session } from "../../src/client";
import type { QemuVm } from "../../src/qemu";
import {
  edgeAddresses,
  expectedRefusals,
  expectedZeroLengthRow,
  refuseForbiddenX86,
  zeroLengthOutcomes,
  type EdgeTarget,
} from "../shared/edges";
import { breakInKernel, describeWithQemu, guestSymbols, monitorBytes, startQemuHarness, type QemuHarness } from "./qemu-harness";

for (const arch of ["x86_64", "aarch64"] as const) {
  const sym = guestSymbols(arch);
  const target: EdgeTarget = {
    vm: "qemu",
    arch,
    vpCount: 1,
    data: sym.counter,
    unmappedGpa: 0x4000_0000_0000n,
    unmappedGva: arch === "x86_64" ? 0xffff_8000_1234_0000n : 0xffff_0000_9000_0000n,
  };

  describeWithQemu(arch)(`edges on QEMU ${arch}`, () => {
    let h: QemuHarness;
    let session: Session | undefined;
    beforeAll(async () => {
      h = await startQemuHarness(arch);
    }, 60_000);
    afterAll(async () => {
      await h?.close();
    });
    afterEach(async () => {
      await session?.detach().catch(() => undefined);
      session = undefined;
    });

    async function stoppedInKernel(): Promise<Session> {
      session = await h.client.attach("qemu");
      await breakInKernel(h.client, session, sym.kernel_main.gva);
      return session;
    }

    /** The 16 bytes at the PC by GVA, through our page walk, and as QEMU's monitor shows them through its MMU. */
    async function pcViews(): Promise<[number[], number[]]> {
      const s = await h.client.getVpState("qemu", 0);
      const pc = s.arch === "x86_64" ? s.state.rip : s.state.pc;
      const ours = [...(await h.client.readMemory("qemu", { gva: pc, vp: 0 }, 16))];
      return [ours, await monitorBytes(h.vms[0] as QemuVm, pc, 16)];
    }

    it("checks every zero-length access as a one-byte access at the same address, answering no bytes", async () => {
      const s = await stoppedInKernel();
      const rows = await zeroLengthOutcomes(h.client, s, target);
      expect(rows).toEqual(edgeAddresses(target).map(expectedZeroLengthRow));
    }, 60_000);

    if (arch === "x86_64") {
      it("refuses every register state the architecture forbids with VP_STATE_INVALID, leaving the VP as it was", async () => {
        const s = await stoppedInKernel();
        const { before, rows } = await refuseForbiddenX86(s);
        expect(rows).toEqual(expectedRefusals(before));
        const [ours, qemu] = await pcViews();
        expect(ours).toEqual(qemu);
      }, 60_000);
    } else {
      it("refuses a PSTATE.M that is no AArch64 mode with VP_STATE_INVALID, leaving the VP as it was", async () => {
        const s = await stoppedInKernel();
        const before = await s.getVpState(0);
        if (before.arch !== "aarch64") throw new Error("not aarch64");
        const edited = { ...before.state, cpsr: (before.state.cpsr & ~0xfn) | 0b0011n };
        await expect(s.setVpState(0, { arch: "aarch64", state: edited })).rejects.toMatchObject({
          reason: "VP_STATE_INVALID",
          metadata: expect.objectContaining({ field: "state.aarch64.cpsr" }),
        });
        expect(await s.getVpState(0)).toEqual(before);
        const [ours, qemu] = await pcViews();
        expect(ours).toEqual(qemu);
      }, 60_000);
    }
  });
}
