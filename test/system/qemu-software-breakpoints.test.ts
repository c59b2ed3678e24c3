// Software breakpoints on QEMU (Z0 by virtual address): hits with counts, resuming does not hit
// again, one-shot, batched steps, reads see the guest's bytes, per-VP breakpoints on machine-wide
// Z0 (aarch64, two VPs), and a GPA breakpoint refused before anything changes.
import { Status } from "nice-grpc";
import { readFileSync } from "node:fs";
import { expectRpcError } from "../integration/harness";
import { describeWithQemu, guestSymbols, manifestPath, startQemuHarness, type QemuHarness } from "./qemu-harness";

const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);

for (const arch of ["x86_64", "aarch64"] as const) {
  const sym = guestSymbols(arch);
  /** The guest image's bytes at `gpa` (what RAM held before anyone wrote it). */
  const imageBytes = (gpa: bigint, length: number) => {
    const manifest = JSON.parse(readFileSync(manifestPath(arch), "utf8")) as { load_gpa: string };
    const bin = readFileSync(manifestPath(arch).replace(/\.json$/, ".bin"));
    const at = Number(gpa - BigInt(manifest.load_gpa));
    return new Uint8Array(bin.subarray(at, at + length));
  };

  describeWithQemu(arch)(`software breakpoints on QEMU ${arch}`, () => {
    let h: QemuHarness;
    beforeAll(async () => {
      h = await startQemuHarness(arch, arch === "aarch64" ? { smp: 2 } : {});
    }, 60_000);
    afterAll(async () => {
      await h?.close();
    });

    const counter = async () => u64(await h.client.readMemory("qemu", { gpa: sym.counter.gpa }, 8));

    it("stops before the instruction, counts hits, resumes past it, and one-shot ones go", async () => {
      const s = await h.client.attach("qemu");
      try {
        await s.break();
        expect(await s.resume({ deadlineMs: 20_000 })).toEqual({ kind: "break" });
        const { id } = await s.insertSoftwareBreakpoint({ gva: sym.tick.gva, vp: 0 });
        const seen: bigint[] = [];
        for (let i = 0; i < 3; i++) {
          expect(await s.resume({ deadlineMs: 20_000 })).toEqual({ kind: "softwareBreakpoint", vp: 0, address: sym.tick.gva, id });
          seen.push(await counter());
        }
        expect(seen[1]).toBe(seen[0] + 1n); // each resume runs the instruction first: one pass per hit
        expect(seen[2]).toBe(seen[1] + 1n);
        expect(await s.listSoftwareBreakpoints()).toEqual([{ id, address: { gva: sym.tick.gva, vp: 0 }, oneShot: false, hitCount: 3 }]);

        // Reads see the guest's bytes (TCG's Z0 patches nothing).
        expect(await s.readMemory({ gva: sym.tick.gva }, 8)).toEqual(imageBytes(sym.tick.gpa, 8));
        expect(await s.readMemory({ gpa: sym.tick.gpa }, 8)).toEqual(imageBytes(sym.tick.gpa, 8));

        // A batched step ends before the breakpoint's instruction (and steps off it first).
        const batch = await s.step(0, { count: 10_000, trace: "pc" });
        expect(batch.stop).toEqual({ kind: "softwareBreakpoint", vp: 0, address: sym.tick.gva, id });
        expect(batch.pcs[batch.executed - 1]).toBe(sym.tick.gva);

        // One-shot: it fires once, then it is gone (and tick's stays).
        await s.removeSoftwareBreakpoint(id);
        const once = await s.insertSoftwareBreakpoint({ gva: sym.main_loop.gva }, { oneShot: true });
        expect(await s.resume({ deadlineMs: 20_000 })).toMatchObject({ kind: "softwareBreakpoint", address: sym.main_loop.gva, id: once.id });
        expect(await s.listSoftwareBreakpoints()).toEqual([]);
        await expectRpcError(s.removeSoftwareBreakpoint(once.id), Status.NOT_FOUND, "SOFTWARE_BREAKPOINT_NOT_FOUND");
      } finally {
        await s.detach();
      }
    }, 60_000);

    it("refuses a GPA breakpoint with SOFTWARE_BREAKPOINT_UNSUPPORTED, changing nothing", async () => {
      const s = await h.client.attach("qemu");
      try {
        await s.break();
        await s.resume({ deadlineMs: 20_000 });
        await expectRpcError(s.insertSoftwareBreakpoint({ gpa: sym.tick.gpa }), Status.FAILED_PRECONDITION, "SOFTWARE_BREAKPOINT_UNSUPPORTED", {
          backend: "qemu",
        });
        expect(await s.listSoftwareBreakpoints()).toEqual([]);
      } finally {
        await s.detach();
      }
    }, 60_000);

    it("Detach removes them from QEMU: the guest runs on past tick", async () => {
      const s = await h.client.attach("qemu");
      await s.break();
      await s.resume({ deadlineMs: 20_000 });
      await s.insertSoftwareBreakpoint(sym.tick.gva);
      await s.detach();
      expect((await h.client.rpc.debug.listSoftwareBreakpoints({ vm: "qemu" })).breakpoints).toEqual([]);
      const before = await counter();
      const end = Date.now() + 10_000;
      while ((await counter()) < before + 1000n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(await counter()).toBeGreaterThanOrEqual(before + 1000n);
    }, 60_000);

    if (arch === "aarch64") {
      it("stops only the VP a breakpoint names, though Z0 is machine-wide", async () => {
        const s = await h.client.attach("qemu");
        try {
          await s.break();
          await s.resume({ deadlineMs: 20_000 });
          const { id } = await s.insertSoftwareBreakpoint({ gva: sym.tick.gva, vp: 1 });
          for (let i = 0; i < 5; i++) {
            expect(await s.resume({ deadlineMs: 20_000 })).toEqual({ kind: "softwareBreakpoint", vp: 1, address: sym.tick.gva, id });
          }
        } finally {
          await s.detach();
        }
      }, 60_000);
    }
  });
}
