// QEMU-specific behaviour: fast RAM path vs gdbstub, GVA reads vs QEMU's own view, attaching to a
// running QEMU, guest reset and power-off, refusals, and QEMU dying under a waiting Resume.
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { Status } from "nice-grpc";
import { connect, VmmDebugError, type Session, type VmmDebugClient } from "../../src/client";
import type { Arch } from "../../src/core";
import { createEmuMachine, loadGuestImage } from "../../src/emu";
import { createQemuVm, launchQemu, qemuArgsForGuest, type LaunchedQemu, type QemuVm } from "../../src/qemu";
import { createVmmDebugServer, silentLogger } from "../../src/server";
import { waitFor } from "../integration/harness";
import { breakInKernel, describeWithQemu, guestSymbols, manifestPath, monitorBytes, startQemuHarness, type QemuHarness } from "./qemu-harness";

/** These tests pin the unary session rules (leases, session ids); the stream has its own tests. */
const UNARY = { transport: "unary" } as const;

const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);

async function expectError(call: Promise<unknown>, code: Status, reason: string): Promise<VmmDebugError> {
  const err = await call.then(
    (value) => {
      throw new Error(`expected ${Status[code]}/${reason} but the call succeeded with ${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VmmDebugError);
  expect({ code: (err as VmmDebugError).codeName, reason: (err as VmmDebugError).reason }).toEqual({ code: Status[code], reason });
  return err as VmmDebugError;
}

/** Reads 8 bytes of guest RAM straight from a launched QEMU's shared RAM file. */
function readRamFile(launched: LaunchedQemu, gpa: bigint): bigint {
  const fd = openSync(launched.ramFile!, "r");
  try {
    const out = new Uint8Array(8);
    // x86 RAM below 0xC0000 and from 1 MiB sits at its GPA in the file; aarch64 RAM starts at 1 GiB.
    readSync(fd, out, 0, 8, Number(gpa >= 0x4000_0000n ? gpa - 0x4000_0000n : gpa));
    return u64(out);
  } finally {
    closeSync(fd);
  }
}

for (const arch of ["x86_64", "aarch64"] as Arch[]) {
  const sym = guestSymbols(arch);

  describeWithQemu(arch)(`QEMU ${arch} backend`, () => {
    describe("a QEMU we attach to", () => {
      let launched: LaunchedQemu;
      let vm: QemuVm | undefined;

      beforeAll(async () => {
        launched = await launchQemu({ arch, args: qemuArgsForGuest(manifestPath(arch)).args });
      }, 30_000);
      afterAll(async () => {
        await vm?.close().catch(() => undefined);
        await launched.kill();
      });

      it("reads identical bytes through the shared RAM file and through the gdbstub", async () => {
        vm = await createQemuVm({ id: "a", gdb: launched.gdb, qmp: { path: launched.qmpSocket }, ramFile: launched.ramFile, startRunning: true });
        await new Promise((r) => setTimeout(r, 300));
        await vm.halt();
        const ram = vm.memoryRegions[vm.memoryRegions.length - 1];
        const ranges: [bigint, number][] = [
          [sym.counter.gpa - 0x800n, 0x4000], // data around the counter
          [sym.tick.gpa & ~0xfffn, 0x3000], // code
          [ram.gpa + ram.size - 0x1800n, 0x1800], // the end of RAM
          [ram.gpa, 0x11000], // from the start of RAM (crosses the 0xA0000/0xC0000 edge on x86? no: stays in RAM)
        ];
        for (const [gpa, length] of ranges) {
          vm.fastMemory = true;
          const fast = await vm.readMemory({ kind: "gpa", gpa }, length);
          vm.fastMemory = false;
          const slow = await vm.readMemory({ kind: "gpa", gpa }, length);
          expect(Buffer.from(fast).equals(Buffer.from(slow))).toBe(true);
        }
        vm.fastMemory = true;
      });

      it("reads guest virtual memory exactly as QEMU's own MMU view shows it", async () => {
        for (const gva of [sym.counter.gva, sym.tick.gva, sym.stacks.gva + 0x3ff0n, sym.text_start.gva]) {
          const ours = Array.from(await vm!.readMemory({ kind: "gva", vp: 0, gva }, 32));
          expect(ours).toEqual(await monitorBytes(vm!, gva, 32));
        }
      });

      it("leaves QEMU running when it detaches, and attaches again to the running QEMU", async () => {
        await vm!.close(); // detach: D;1 resumes the VM
        vm = undefined;
        const c0 = readRamFile(launched, sym.counter.gpa);
        await new Promise((r) => setTimeout(r, 200));
        expect(readRamFile(launched, sym.counter.gpa)).toBeGreaterThan(c0);

        vm = await createQemuVm({ id: "again", gdb: launched.gdb, qmp: { path: launched.qmpSocket }, ramFile: launched.ramFile });
        expect(vm.runState()).toBe("running"); // it was running, so it runs on
        const server = createVmmDebugServer({ vms: [vm], logger: silentLogger });
        const { port } = await server.listen("127.0.0.1:0");
        const client = connect(`127.0.0.1:${port}`);
        try {
          const session = await client.attach("again", UNARY);
          await session.break();
          expect(await session.resume()).toEqual({ kind: "break" });
          await session.setWatchpoint(0, { address: sym.counter.gva, type: "write", size: 8 });
          expect(await session.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0 });
          await session.detach();
        } finally {
          client.close();
          await server.close();
        }
      });
    });

    describe("through the server", () => {
      let h: QemuHarness;
      let session: Session | undefined;
      beforeAll(async () => {
        h = await startQemuHarness(arch);
      }, 60_000);
      afterEach(async () => {
        await session?.detach().catch(() => undefined);
        session = undefined;
      });
      afterAll(async () => {
        await h?.close();
      });

      it("refuses a GPA that nothing is mapped at", async () => {
        await expectError(h.client.readMemory("qemu", { gpa: 0x40_0000_0000n }, 16), Status.OUT_OF_RANGE, "GPA_UNMAPPED");
      });

      it("refuses register state of the other architecture and a VP out of range", async () => {
        session = await h.client.attach("qemu", UNARY);
        await session.break();
        const seg = { base: 0n, limit: 0, selector: 0, attributes: 0 };
        const other: Parameters<Session["setVpState"]>[1] =
          arch === "x86_64"
            ? { arch: "aarch64", state: { x: Array(31).fill(0n), spEl0: 0n, spEl1: 0n, pc: 0n, cpsr: 0n, sctlrEl1: 0n, tcrEl1: 0n, ttbr0El1: 0n, ttbr1El1: 0n } }
            : {
                arch: "x86_64",
                state: { gp: Array(16).fill(0n), rip: 0n, rflags: 2n, cr0: 0n, cr2: 0n, cr3: 0n, cr4: 0n, cr8: 0n, efer: 0n, kernelGsBase: 0n, es: seg, cs: seg, ss: seg, ds: seg, fs: seg, gs: seg },
              };
        const before = await session.getVpState(0);
        await expectError(session.setVpState(0, other), Status.FAILED_PRECONDITION, "ARCH_MISMATCH");
        expect(await session.getVpState(0)).toEqual(before);
        await expectError(h.client.getVpState("qemu", 5), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
      });

      it("refuses to set what QEMU's gdbstub cannot, writing nothing", async () => {
        session = await h.client.attach("qemu", UNARY);
        await session.break();
        const before = await session.getVpState(0);
        if (before.arch === "x86_64") {
          const edited = { ...before.state, gp: [...before.state.gp], cs: { ...before.state.cs, limit: 0x1234 } };
          edited.gp[13] = 0x5555n;
          await expectError(session.setVpState(0, { arch: "x86_64", state: edited }), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER");
        } else if (before.arch === "aarch64") {
          const edited = { ...before.state, x: [...before.state.x], ttbr0El1: 0x1000n };
          edited.x[27] = 0x5555n;
          await expectError(session.setVpState(0, { arch: "aarch64", state: edited }), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER");
        }
        expect(await session.getVpState(0)).toEqual(before);
      });

      it("reports a guest reset as Reset and a guest power-off as PowerOff", async () => {
        session = await h.client.attach("qemu", UNARY);
        await breakInKernel(h.client, session, sym.kernel_main.gva);
        const regs = await session.getVpState(0);
        // Plant code over main_loop (read-only for the guest; the debugger may write) and jump there.
        const code =
          arch === "x86_64"
            ? [0xb0, 0x06, 0x66, 0xba, 0xf9, 0x0c, 0xee, 0xeb, 0xfe] // mov $6,%al; mov $0xcf9,%dx; out %al,%dx; jmp .
            : [0x20, 0x01, 0x80, 0xd2, 0x00, 0x80, 0xb0, 0xf2, 0x02, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x00, 0x14]; // movz x0,#9; movk x0,#0x8400,lsl#16; hvc #0; b .
        await session.writeMemory({ gva: sym.main_loop.gva }, Uint8Array.from(code));
        if (regs.arch === "x86_64") await session.setVpState(0, { arch: "x86_64", state: { ...regs.state, rip: sym.main_loop.gva } });
        else if (regs.arch === "aarch64") await session.setVpState(0, { arch: "aarch64", state: { ...regs.state, pc: sym.main_loop.gva } });
        expect(await session.resume({ deadlineMs: 20_000 })).toEqual({ kind: "reset" });

        // After the reset the guest boots again (firmware reloads the image): wait for its kernel.
        await breakInKernel(h.client, session, sym.kernel_main.gva);
        const off =
          arch === "x86_64"
            ? [0x66, 0xb8, 0x00, 0x20, 0x66, 0xba, 0x04, 0x06, 0x66, 0xef, 0xeb, 0xfe] // mov $0x2000,%ax; mov $0x604,%dx; out %ax,%dx; jmp .
            : [0x00, 0x01, 0x80, 0xd2, 0x00, 0x80, 0xb0, 0xf2, 0x02, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x00, 0x14]; // movz x0,#8; movk x0,#0x8400,lsl#16; hvc #0; b .
        const regs2 = await session.getVpState(0);
        await session.writeMemory({ gva: sym.main_loop.gva }, Uint8Array.from(off));
        if (regs2.arch === "x86_64") await session.setVpState(0, { arch: "x86_64", state: { ...regs2.state, rip: sym.main_loop.gva } });
        else if (regs2.arch === "aarch64") await session.setVpState(0, { arch: "aarch64", state: { ...regs2.state, pc: sym.main_loop.gva } });
        expect(await session.resume({ deadlineMs: 20_000 })).toEqual({ kind: "powerOff" });
        expect((await h.client.getVm("qemu")).runState).toBe("poweredOff");
        session = undefined;
      });
    });

    describe("when QEMU dies", () => {
      it("fails a waiting Resume with BACKEND_UNAVAILABLE, and the server and other VMs carry on", async () => {
        const emu = await createEmuMachine({ id: "emu", image: loadGuestImage(join(__dirname, "../../guests/build/demo-x86_64.json")) });
        const h = await startQemuHarness(arch, { extraVms: [emu] });
        try {
          const session = await h.client.attach("qemu", UNARY);
          await session.break();
          expect(await session.resume()).toEqual({ kind: "break" });
          const waiting = session.resume(); // runs until a stop that never comes
          await waitFor(async () => (await h.client.getVm("qemu")).runState === "running", 20_000, "QEMU running under the Resume");
          const qemu = h.vms[0] as QemuVm;
          process.kill(qemu.pid!, "SIGKILL");
          await expectError(waiting, Status.UNAVAILABLE, "BACKEND_UNAVAILABLE");
          expect((await h.client.getVm("qemu")).runState).toBe("gone");
          await expectError(h.client.readMemory("qemu", { gpa: sym.counter.gpa }, 8), Status.UNAVAILABLE, "BACKEND_UNAVAILABLE");
          await expectError(session.break(), Status.UNAVAILABLE, "BACKEND_UNAVAILABLE");
          await expectError(h.client.attach("qemu", UNARY), Status.UNAVAILABLE, "BACKEND_UNAVAILABLE");
          // The embedded VM in the same server is unaffected.
          const other = await h.client.attach("emu", UNARY);
          await other.break();
          expect(await other.resume()).toEqual({ kind: "break" });
          await other.detach();
          expect((await h.client.listVms()).map((v) => v.id).sort()).toEqual(["emu", "qemu"]);
        } finally {
          await h.close();
        }
      }, 60_000);
    });
  });
}
