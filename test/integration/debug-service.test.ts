// DebugService against the embedded machine: every RPC's happy path, and every refusal leaving the VM as it was.
import { create } from "@bufbuild/protobuf";
import { Status } from "nice-grpc";
import type { Session } from "../../src/client";
import { DebuggerVpStateSchema } from "../../gen/vmm/debug/v1/types_pb";
import { BreakpointSize, BreakpointType } from "../../gen/vmm/debug/v1/breakpoint_pb";
import {
  expectRpcError,
  readU64,
  startHarness,
  sym,
  u64,
  u64Bytes,
  vmSnapshot,
  waitFor,
  x86,
  type Harness,
} from "./harness";

/** These tests pin the unary session rules (leases, session ids); the stream has its own tests. */
const UNARY = { transport: "unary" } as const;

const VM = "demo";

/** A well-formed x86 register state (a payload only; refused before it could be written). */
function zeroX86() {
  const seg = { base: 0n, limit: 0, selector: 0, attributes: 0 };
  return {
    gp: Array<bigint>(16).fill(0n),
    rip: 0n,
    rflags: 2n,
    cr0: 0n,
    cr2: 0n,
    cr3: 0n,
    cr4: 0n,
    cr8: 0n,
    efer: 0n,
    kernelGsBase: 0n,
    es: seg,
    cs: seg,
    ss: seg,
    ds: seg,
    fs: seg,
    gs: seg,
  };
}
const KIB = 1024;

describe("DebugService", () => {
  let h: Harness;
  let session: Session | undefined;

  beforeAll(async () => {
    h = await startHarness({ maxReadBytes: 256 * KIB, streamChunkBytes: 64 * KIB });
  });
  afterAll(async () => {
    await h.close();
  });
  afterEach(async () => {
    await session?.detach().catch(() => undefined);
    session = undefined;
  });

  /** Attached, with the VM stopped and the stop already reported. */
  async function attachStopped(): Promise<Session> {
    session = await h.client.attach(VM, UNARY);
    await session.break();
    expect(await session.resume()).toEqual({ kind: "break" });
    return session;
  }

  describe("happy paths", () => {
    it("Attach returns a session id and the lease, and GetVm shows the holder", async () => {
      session = await h.client.attach(VM, UNARY);
      expect(session.id).toMatch(/^[0-9a-f]{32}$/);
      expect(session.lease).toBe(600_000);
      const info = await h.client.getVm(VM);
      expect(info.attached?.holder).toMatch(/127\.0\.0\.1:\d+$/);
      expect(info.attached!.leaseExpiresAt.getTime()).toBeGreaterThan(Date.now() + 20_000);
      expect(info.runState).toBe("running"); // Attach does not stop the VM
    });

    it("Break stops a running VM, and the next Resume answers Break without running", async () => {
      session = await h.client.attach(VM, UNARY);
      await session.break();
      expect((await h.client.getVm(VM)).runState).toBe("stopped");
      const rip = (await x86(h.client, VM, 0)).rip;
      expect(await session.resume()).toEqual({ kind: "break" });
      expect((await h.client.getVm(VM)).runState).toBe("stopped");
      expect((await x86(h.client, VM, 0)).rip).toBe(rip);
    });

    it("Break on a stopped VM is a no-op", async () => {
      const s = await attachStopped();
      const before = await vmSnapshot(h.client, VM);
      await s.break();
      expect(await vmSnapshot(h.client, VM)).toEqual(before);
    });

    it("Resume runs until an execute breakpoint and reports it with the slot's breakpoint", async () => {
      const s = await attachStopped();
      const slot = await s.setBreakpoint(1, sym("tick").gva);
      expect(slot).toBe(0);
      expect(await s.resume()).toEqual({
        kind: "hwBreakpoint",
        vp: 1,
        breakpoint: { address: sym("tick").gva, type: "execute", size: 1 },
      });
      expect((await x86(h.client, VM, 1)).rip).toBe(sym("tick").gva); // stops before the instruction
    });

    it("SetDebugState arms a write watchpoint that fires after the write", async () => {
      const s = await attachStopped();
      const slot = await s.setWatchpoint(0, { address: sym("counter").gva, type: "write", size: 8 }, 2);
      expect(slot).toBe(2);
      const before = await readU64(h.vms[0], sym("counter").gpa);
      const stop = await s.resume();
      expect(stop).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: sym("counter").gva, type: "write", size: 8 } });
      expect(await readU64(h.vms[0], sym("counter").gpa)).toBe(before + 1n);
      expect((await x86(h.client, VM, 0)).gp[0]).toBe(before + 1n); // RAX holds the value tick stored
    });

    it("GetVpState returns the x86-64 registers of a stopped VP", async () => {
      await attachStopped();
      const state = await h.client.getVpState(VM, 1);
      expect(state.arch).toBe("x86_64");
      if (state.arch !== "x86_64") return;
      expect(state.state.gp).toHaveLength(16);
      expect(state.state.gp[15]).toBe(1n); // r15 = VP index
      expect(state.state.cs.attributes & 0xfffe).toBe(0xa09a);
      expect(state.state.cs.selector).toBe(0x08);
      expect(state.state.rip >> 32n).toBe(0xffff_ffffn); // running in the higher half
      expect(state.state.efer & 0x500n).toBe(0x500n); // LME | LMA
    });

    it("SetVpState writes registers that GetVpState reads back", async () => {
      const s = await attachStopped();
      const before = await x86(h.client, VM, 1);
      const changed = { ...before, gp: [...before.gp] };
      changed.gp[8] = 0x1234_5678_9abc_def0n; // R8 (unused by the loop)
      await s.setVpState(1, { arch: "x86_64", state: changed });
      expect(await x86(h.client, VM, 1)).toEqual(changed);
      await s.setVpState(1, { arch: "x86_64", state: before });
      expect(await x86(h.client, VM, 1)).toEqual(before);
    });

    it("ReadMemory by GVA and by GPA agree, while the VM runs and without a session", async () => {
      const stack = sym("stacks");
      await waitFor(async () => {
        const [v, p] = await Promise.all([
          h.client.readMemory(VM, { gva: stack.gva, vp: 1 }, 4 * KIB),
          h.client.readMemory(VM, { gpa: stack.gpa }, 4 * KIB),
        ]);
        return Buffer.compare(v, p) === 0; // stacks are live; retry if a push landed in between
      });
      const text = await h.client.readMemory(VM, { gva: sym("tick").gva }, 16);
      expect(text).toEqual(await h.client.readMemory(VM, { gpa: sym("tick").gpa }, 16));
      expect((await h.client.getVm(VM)).runState).toBe("running");
    });

    it("WriteMemory writes through a GVA, ignoring the read-only text mapping", async () => {
      const s = await attachStopped();
      const at = sym("text_end").gva - 16n; // text padding, never executed
      const old = await s.readMemory({ gva: at }, 8);
      await s.writeMemory({ gva: at, vp: 1 }, u64Bytes(0xcccc_cccc_cccc_ccccn));
      expect(u64(await s.readMemory({ gpa: sym("text_end").gpa - 16n }, 8))).toBe(0xcccc_cccc_cccc_ccccn);
      await s.writeMemory({ gva: at }, old);
      expect(await s.readMemory({ gva: at }, 8)).toEqual(old);
    });

    it("ReadMemoryStream sends the range as offset-tagged chunks", async () => {
      const length = 200 * KIB + 17;
      const chunks: { offset: bigint; size: number }[] = [];
      const parts: Uint8Array[] = [];
      for await (const c of h.client.rpc.debug.readMemoryStream({
        vm: VM,
        address: { kind: { case: "gpa", value: 0x10_0000n } },
        length: BigInt(length),
      })) {
        chunks.push({ offset: c.offset, size: c.data.length });
        parts.push(c.data);
      }
      expect(chunks).toEqual([
        { offset: 0n, size: 64 * KIB },
        { offset: 64n * 1024n, size: 64 * KIB },
        { offset: 128n * 1024n, size: 64 * KIB },
        { offset: 192n * 1024n, size: 8 * KIB + 17 },
      ]);
      const image = Buffer.concat(parts).subarray(0, 0x100); // the image is loaded at 1 MiB
      expect(image).toEqual(Buffer.from(await h.client.readMemory(VM, { gpa: 0x10_0000n }, 0x100)));
    });

    it("the SDK's readMemory streams reads above the unary cap into one array", async () => {
      await attachStopped(); // the range holds live counters and stacks
      const length = 1024 * KIB + 3; // server unary cap is 256 KiB here
      const whole = await h.client.readMemory(VM, { gpa: 0x10_0000n }, length);
      expect(whole.length).toBe(length);
      const head = await h.client.readMemory(VM, { gpa: 0x10_0000n }, 64 * KIB);
      expect(Buffer.compare(whole.subarray(0, 64 * KIB), head)).toBe(0);
      const tail = await h.client.readMemory(VM, { gpa: 0x10_0000n + BigInt(length - 4 * KIB) }, 4 * KIB);
      expect(Buffer.compare(whole.subarray(length - 4 * KIB), tail)).toBe(0);
    });

    it("Detach clears the debug state and resumes the VM the debugger stopped", async () => {
      const s = await attachStopped();
      await s.setBreakpoint(0, sym("tick").gva);
      await s.detach();
      session = undefined;
      const info = await h.client.getVm(VM);
      expect(info.runState).toBe("running");
      expect(info.attached).toBeUndefined();
      const c0 = await readU64(h.vms[0], sym("counter").gpa);
      await waitFor(async () => (await readU64(h.vms[0], sym("counter").gpa)) > c0 + 1000n); // no breakpoint left
    });
  });

  describe("refusals leave the VM unchanged", () => {
    /** Runs the refused call on a stopped, attached VM and checks nothing moved. */
    async function refused(call: (s: Session) => Promise<unknown>, code: Status, reason: string, metadata?: Record<string, string>) {
      const s = session ?? (await attachStopped());
      const before = await vmSnapshot(h.client, VM);
      const err = await expectRpcError(call(s), code, reason, metadata);
      expect(await vmSnapshot(h.client, VM)).toEqual(before);
      return err;
    }

    it("refuses an unknown VM with NOT_FOUND / VM_NOT_FOUND", async () => {
      const err = await refused(() => h.client.getVpState("nope", 0), Status.NOT_FOUND, "VM_NOT_FOUND", { vm: "nope" });
      expect(err.message).toContain("demo");
      await refused(() => h.client.readMemory("nope", { gpa: 0n }, 8), Status.NOT_FOUND, "VM_NOT_FOUND");
      await refused(() => h.client.rpc.debug.attach({ vm: "nope" }), Status.NOT_FOUND, "VM_NOT_FOUND");
      await refused((s) => h.client.rpc.debug.break({ vm: "nope", sessionId: "0".repeat(32) }), Status.NOT_FOUND, "VM_NOT_FOUND");
    });

    it("refuses a `vm` that contradicts the session's VM with INVALID_ARGUMENT / SESSION_VM_MISMATCH", async () => {
      await refused((s) => h.client.rpc.debug.break({ vm: "nope", sessionId: s.id }), Status.INVALID_ARGUMENT, "SESSION_VM_MISMATCH", {
        vm: "nope",
        session_vm: VM,
      });
    });

    it("refuses a VP at or above the VP count with INVALID_ARGUMENT / VP_OUT_OF_RANGE", async () => {
      await refused(() => h.client.getVpState(VM, 2), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE", { vp: "2", vp_count: "2" });
      await refused((s) => s.setBreakpoint(5, sym("tick").gva), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE", { vp: "5" });
      await refused((s) => s.readMemory({ gva: sym("counter").gva, vp: 9 }, 8), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE", {
        vp: "9",
      });
      const state = { arch: "x86_64" as const, state: await x86(h.client, VM, 0) };
      await refused((s) => s.setVpState(7, state), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
    });

    it("refuses a GuestAddress without kind with INVALID_ARGUMENT / MISSING_FIELD", async () => {
      await refused(
        () => h.client.rpc.debug.readMemory({ vm: VM, address: {}, length: 8n }),
        Status.INVALID_ARGUMENT,
        "MISSING_FIELD",
        { field: "address.kind" },
      );
      await refused(
        (s) => h.client.rpc.debug.writeMemory({ vm: VM, sessionId: s.id, data: new Uint8Array(8) }),
        Status.INVALID_ARGUMENT,
        "MISSING_FIELD",
        { field: "address" },
      );
    });

    it("refuses a DebuggerVpState without arch with INVALID_ARGUMENT / MISSING_FIELD", async () => {
      await refused(
        (s) => h.client.rpc.debug.setVpState({ vm: VM, sessionId: s.id, vp: 0, state: {} }),
        Status.INVALID_ARGUMENT,
        "MISSING_FIELD",
        { field: "state.arch" },
      );
      await refused(
        (s) => h.client.rpc.debug.setVpState({ vm: VM, sessionId: s.id, vp: 0 }),
        Status.INVALID_ARGUMENT,
        "MISSING_FIELD",
        { field: "state" },
      );
    });

    it("refuses gp with 15 values with INVALID_ARGUMENT / INVALID_ARRAY_LENGTH", async () => {
      await attachStopped();
      const state = await x86(h.client, VM, 0);
      await refused(
        (s) => s.setVpState(0, { arch: "x86_64", state: { ...state, gp: state.gp.slice(0, 15) } }),
        Status.INVALID_ARGUMENT,
        "INVALID_ARRAY_LENGTH",
        { field: "state.x86_64.gp", length: "15", expected: "16" },
      );
    });

    it("refuses an aarch64 state for the x86-64 VM with FAILED_PRECONDITION / ARCH_MISMATCH", async () => {
      const a64 = create(DebuggerVpStateSchema, {
        arch: { case: "aarch64", value: { x: Array(31).fill(0n), pc: 0x4000_0000n } },
      });
      await refused(
        (s) => h.client.rpc.debug.setVpState({ vm: VM, sessionId: s.id, vp: 0, state: a64 }),
        Status.FAILED_PRECONDITION,
        "ARCH_MISMATCH",
        { vm_arch: "x86_64", request_arch: "aarch64" },
      );
    });

    it("refuses out-of-range selector and attribute values with INVALID_ARGUMENT / VALUE_OUT_OF_RANGE", async () => {
      await attachStopped();
      const state = await x86(h.client, VM, 0);
      await refused(
        (s) => s.setVpState(0, { arch: "x86_64", state: { ...state, ss: { ...state.ss, selector: 0x1_0010 } } }),
        Status.INVALID_ARGUMENT,
        "VALUE_OUT_OF_RANGE",
        { field: "state.x86_64.ss.selector" },
      );
      await refused(
        (s) => s.setVpState(0, { arch: "x86_64", state: { ...state, cs: { ...state.cs, attributes: 0x1_a09b } } }),
        Status.INVALID_ARGUMENT,
        "VALUE_OUT_OF_RANGE",
        { field: "state.x86_64.cs.attributes" },
      );
    });

    it("refuses a misaligned watchpoint with INVALID_ARGUMENT / BREAKPOINT_MISALIGNED", async () => {
      await refused(
        (s) => s.setWatchpoint(0, { address: sym("counter").gva + 4n, type: "write", size: 8 }),
        Status.INVALID_ARGUMENT,
        "BREAKPOINT_MISALIGNED",
        { slot: "0", alignment: "8" },
      );
    });

    it("refuses five slots with INVALID_ARGUMENT / TOO_MANY_BREAKPOINTS, keeping the armed slots", async () => {
      const s = await attachStopped();
      await s.setWatchpoint(0, { address: sym("counter").gva, type: "write", size: 8 });
      const slot = () => ({ breakpoint: { address: sym("tick").gva, type: BreakpointType.EXECUTE, size: BreakpointSize.BYTE } });
      await refused(
        () =>
          h.client.rpc.debug.setDebugState({
            vm: VM,
            sessionId: s.id,
            vp: 0,
            state: { breakpoints: [slot(), slot(), slot(), slot(), slot()] },
          }),
        Status.INVALID_ARGUMENT,
        "TOO_MANY_BREAKPOINTS",
        { count: "5", max: "4" },
      );
      // The watchpoint set before is still the one that fires (no execute breakpoint on tick).
      expect(await s.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0, breakpoint: { type: "write" } });
    });

    it("refuses the INVALID (I/O) breakpoint type with INVALID_ARGUMENT / BREAKPOINT_INVALID_TYPE", async () => {
      await refused(
        (s) =>
          h.client.rpc.debug.setDebugState({
            vm: VM,
            sessionId: s.id,
            vp: 0,
            state: { breakpoints: [{ breakpoint: { address: 0x3f8n, type: BreakpointType.INVALID, size: BreakpointSize.BYTE } }] },
          }),
        Status.INVALID_ARGUMENT,
        "BREAKPOINT_INVALID_TYPE",
      );
    });

    it("refuses an EXECUTE breakpoint wider than a byte with INVALID_ARGUMENT / BREAKPOINT_INVALID_SIZE", async () => {
      await refused(
        (s) => s.setBreakpoint(0, { address: sym("tick").gva & ~3n, type: "execute", size: 4 }),
        Status.INVALID_ARGUMENT,
        "BREAKPOINT_INVALID_SIZE",
      );
    });

    it("refuses a unary read above the cap with RESOURCE_EXHAUSTED / READ_TOO_LARGE, pointing to ReadMemoryStream", async () => {
      const err = await refused(
        () => h.client.rpc.debug.readMemory({ vm: VM, address: { kind: { case: "gpa", value: 0n } }, length: 256n * 1024n + 1n }),
        Status.RESOURCE_EXHAUSTED,
        "READ_TOO_LARGE",
        { length: String(256 * KIB + 1), max: String(256 * KIB) },
      );
      expect(err.message).toContain("ReadMemoryStream");
    });

    it("refuses an unmapped GPA with OUT_OF_RANGE / GPA_UNMAPPED, and a write crossing the end of RAM writes nothing", async () => {
      await refused(() => h.client.readMemory(VM, { gpa: 0x1_0000_0000n }, 8), Status.OUT_OF_RANGE, "GPA_UNMAPPED", {
        gpa: "0x100000000",
      });
      const end = 256n << 20n;
      const s = session!;
      const last = await s.readMemory({ gpa: end - 4n }, 4);
      await refused(() => s.writeMemory({ gpa: end - 4n }, new Uint8Array(8).fill(0xee)), Status.OUT_OF_RANGE, "GPA_UNMAPPED");
      expect(await s.readMemory({ gpa: end - 4n }, 4)).toEqual(last);
    });

    it("refuses a GVA the VP's page tables do not map with FAILED_PRECONDITION / GVA_NOT_MAPPED", async () => {
      await refused(
        () => h.client.readMemory(VM, { gva: 0x7fff_0000_0000n, vp: 1 }, 8),
        Status.FAILED_PRECONDITION,
        "GVA_NOT_MAPPED",
        { vp: "1", gva: "0x7fff00000000" },
      );
      // The identity map is gone after boot: low GVAs are unmapped even though the GPA is RAM.
      await refused((s) => s.writeMemory({ gva: 0x10_0000n }, new Uint8Array(4)), Status.FAILED_PRECONDITION, "GVA_NOT_MAPPED");
    });

    it("refuses GetVpState, SetVpState and SetDebugState while the VM runs with FAILED_PRECONDITION / VM_RUNNING", async () => {
      session = await h.client.attach(VM, UNARY); // running
      const before = await vmSnapshot(h.client, VM);
      const err = await expectRpcError(h.client.getVpState(VM, 0), Status.FAILED_PRECONDITION, "VM_RUNNING", { vm: VM });
      expect(err.message).toContain("GetVpState");
      const s = session;
      const state = { arch: "x86_64" as const, state: zeroX86() };
      await expectRpcError(s.setVpState(0, state), Status.FAILED_PRECONDITION, "VM_RUNNING");
      const e2 = await expectRpcError(s.setBreakpoint(0, sym("tick").gva), Status.FAILED_PRECONDITION, "VM_RUNNING");
      expect(e2.message).toContain("SetDebugState");
      expect(await vmSnapshot(h.client, VM)).toEqual(before);
    });
  });
});
