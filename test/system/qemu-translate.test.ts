// TranslateGva and partial reads on QEMU (x86-64 and aarch64 demo guests): the kernel symbols
// translate to the manifest's GPAs (and to what QEMU's own gva2gpa says), every level's entry is
// the u64 at its GPA, unmapped addresses are answers, and a partial read across the edge of the
// kernel's mapping returns the mapped bytes with the unmapped ones listed.
import { Status } from "nice-grpc";
import type { Session } from "../../src/client";
import type { QemuVm } from "../../src/qemu";
import { expectRpcError } from "../integration/harness";
import { breakInKernel, describeWithQemu, guestSymbols, startQemuHarness, type QemuHarness } from "./qemu-harness";

const u64le = (v: bigint) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, true);
  return out;
};

for (const arch of ["x86_64", "aarch64"] as const) {
  const sym = guestSymbols(arch);
  const kernel = Object.entries(sym).filter(([, s]) => s.gva !== s.gpa);
  /** The first page of the kernel's mapping, with an unmapped page below it. */
  const edge = arch === "x86_64" ? 0xffff_ffff_8000_0000n : 0xffff_0000_4000_0000n;

  describeWithQemu(arch)(`TranslateGva on QEMU ${arch}`, () => {
    let h: QemuHarness;
    let session: Session | undefined;
    beforeAll(async () => {
      h = await startQemuHarness(arch);
    }, 60_000);
    afterAll(async () => {
      await session?.detach().catch(() => undefined);
      await h?.close();
    });

    it("refuses while the VM runs (VM_RUNNING)", async () => {
      await expectRpcError(h.client.translateGva("qemu", 0, sym.counter.gva), Status.FAILED_PRECONDITION, "VM_RUNNING");
    });

    it("translates the kernel's symbols to the manifest's GPAs, as QEMU's gva2gpa does, every level read back", async () => {
      session = await h.client.attach("qemu");
      await breakInKernel(h.client, session, sym.kernel_main.gva);
      expect(kernel.length).toBeGreaterThan(5);
      for (const [name, s] of kernel) {
        const t = await session.translateGva(0, s.gva);
        expect({ name, mapped: t.mapped, gpa: t.gpa }).toEqual({ name, mapped: true, gpa: s.gpa });
        expect(t.pagingMode).toBe(arch === "x86_64" ? "4-level" : "4k-ttbr1");
        expect(t.levels[t.levels.length - 1].decision).toBe("page");
        expect(t.levels.slice(0, -1).every((l) => l.decision === "table")).toBe(true);
        for (const l of t.levels) expect(await session.readMemory({ gpa: l.entryGpa }, 8)).toEqual(u64le(l.entry));
        const qemuSays = await (h.vms[0] as unknown as QemuVm).humanMonitorCommand(`gva2gpa 0x${s.gva.toString(16)}`);
        expect(qemuSays.trim()).toBe(`gpa: 0x${s.gpa.toString(16)}`);
        expect(await session.readMemory({ gva: s.gva, vp: 0 }, 32)).toEqual(await session.readMemory({ gpa: s.gpa }, 32));
      }
      // The client's unary call answers what the stream does.
      expect(await h.client.translateGva("qemu", 0, sym.counter.gva)).toEqual(await session.translateGva(0, sym.counter.gva));
    });

    it("answers unmapped addresses with the level and the reason", async () => {
      const below = await session!.translateGva(0, edge - 0x1000n);
      expect(below).toMatchObject({ mapped: false, fault: "notPresent" });
      expect(below.levels[below.levels.length - 1].decision).toBe("notPresent");
      expect(below.faultLevel).toBe(below.levels[below.levels.length - 1].level);
      // The boot identity map is gone: x86 clears PML4[0]; aarch64 disables TTBR0 walks (EPD0).
      const boot = await session!.translateGva(0, sym._start.gva);
      expect(boot).toMatchObject({ mapped: false, fault: arch === "x86_64" ? "notPresent" : "unsupported" });
      await expectRpcError(session!.translateGva(5, sym.counter.gva), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
    });

    it("a partial read across the edge of the kernel's mapping: zeros and GVA_NOT_MAPPED below, the bytes above", async () => {
      const start = edge - 0x800n;
      const top = await session!.translateGva(0, edge);
      expect(top.mapped).toBe(true);
      const r = await session!.readMemoryPartial({ gva: start, vp: 0 }, 0x1000);
      expect(r.unreadable).toEqual([{ offset: 0, length: 0x800, reason: "GVA_NOT_MAPPED", metadata: { vp: "0", gva: `0x${start.toString(16)}` } }]);
      expect(r.data.subarray(0, 0x800)).toEqual(new Uint8Array(0x800));
      expect(r.data.subarray(0x800)).toEqual(await session!.readMemory({ gpa: top.gpa! }, 0x800));
      expect(await h.client.readMemoryPartial("qemu", { gva: start, vp: 0 }, 0x1000)).toEqual(r);
      await expectRpcError(session!.readMemory({ gva: start, vp: 0 }, 0x1000), Status.FAILED_PRECONDITION, "GVA_NOT_MAPPED");
    });
  });
}
