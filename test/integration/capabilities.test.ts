// VmInfo.capabilities of the embedded machine: what ListVms, GetVm and a Session's opening
// report, each value checked against what the machine then does.
import { Status } from "nice-grpc";
import { BreakpointSize, BreakpointType } from "../../gen/vmm/debug/v1/breakpoint_pb";
import { MemoryReadsWhileRunning } from "../../gen/vmm/debug/v1/vm_service_pb";
import type { Capabilities, Session, X86VpState } from "../../src/client";
import { openRawStream } from "./stream-helpers";
import { expectRpcError, startHarness, sym, u64, waitFor, type Harness } from "./harness";

const VM = "demo";
const X86_FIELDS = ["gp", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "kernel_gs_base"];
const FP_FIELDS = ["fp.xmm", "fp.mxcsr", "fp.st", "fp.fcw", "fp.fsw", "fp.ftw", "fp.fop", "fp.fip", "fp.fdp"];
const SEGMENT_FIELDS = ["es", "cs", "ss", "ds", "fs", "gs"].flatMap((s) => ["base", "limit", "selector", "attributes"].map((p) => `${s}.${p}`));

const EMU: Capabilities = {
  hardwareSlotsPerVp: 4,
  watchpointTypes: ["write", "readWrite"],
  watchpointSizes: [1, 2, 4, 8],
  softwareBreakpoints: { gva: true, perVp: true, gpa: true },
  setVpStateFields: [...X86_FIELDS, ...SEGMENT_FIELDS, ...FP_FIELDS],
  memoryReadsWhileRunning: "noPause",
  batchedStepping: { maxCount: 1_000_000, traces: ["none", "pc", "registers"] },
};

describe("VmInfo.capabilities (embedded machine)", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ vpCount: 2 });
  });
  afterAll(async () => {
    await h.close();
  });

  async function attachStopped(): Promise<Session> {
    const s = await h.client.attach(VM);
    await s.break();
    return s;
  }

  it("reports every capability in ListVms and GetVm", async () => {
    expect((await h.client.listVms())[0].capabilities).toEqual(EMU);
    expect((await h.client.getVm(VM)).capabilities).toEqual(EMU);
  });

  it("reports the same capabilities on the wire and in a Session's opening", async () => {
    const wire = (await h.client.rpc.vm.getVm({ vm: VM })).vm!.capabilities!;
    expect(wire.memoryReadsWhileRunning).toBe(MemoryReadsWhileRunning.NO_PAUSE);
    expect(wire.watchpointTypes).toEqual([BreakpointType.WRITE, BreakpointType.READ_OR_WRITE]);
    expect(wire.watchpointSizes).toEqual([BreakpointSize.BYTE, BreakpointSize.WORD, BreakpointSize.DWORD, BreakpointSize.QWORD]);
    expect(wire.batchedStepping).toMatchObject({ maxCount: 1_000_000, pcTrace: true, registerTrace: true });
    const stream = await openRawStream(h.client, VM);
    try {
      expect(stream.opened.vm?.capabilities).toEqual(wire);
    } finally {
      stream.end();
      await stream.done;
    }
  });

  it("takes every listed watchpoint type and size, and refuses the I/O type and a size it does not list", async () => {
    const s = await attachStopped();
    try {
      const caps = (await h.client.getVm(VM)).capabilities!;
      const counter = sym("counter").gva; // 8-aligned
      for (const type of caps.watchpointTypes) {
        for (const size of caps.watchpointSizes) await s.setWatchpoint(0, { address: counter, type, size }, 0);
      }
      const state = (size: number, type: number) => ({ breakpoints: [{ breakpoint: { address: counter, type, size } }] });
      await expectRpcError(
        h.client.rpc.debug.setDebugState({ vm: VM, sessionId: s.id, vp: 0, state: state(BreakpointSize.BYTE, BreakpointType.INVALID) }),
        Status.INVALID_ARGUMENT,
        "BREAKPOINT_INVALID_TYPE",
      );
      await expectRpcError(
        h.client.rpc.debug.setDebugState({ vm: VM, sessionId: s.id, vp: 0, state: state(7, BreakpointType.WRITE) }),
        Status.INVALID_ARGUMENT,
        "INVALID_ENUM",
      );
    } finally {
      await s.detach();
    }
  });

  it("writes every field it lists, segment descriptor caches included", async () => {
    const s = await attachStopped();
    try {
      const saved = await s.getVpState(1);
      if (saved.arch !== "x86_64") throw new Error("x86 expected");
      const changed: X86VpState = {
        ...saved.state,
        gp: saved.state.gp.map((v, i) => (i === 0 ? v ^ 0x5an : v)),
        kernelGsBase: 0xffff_8000_1234_5000n,
        cr2: 0x1000n,
        ds: { ...saved.state.ds, base: 0x1000n, limit: 0xfffff },
        fs: { ...saved.state.fs, base: 0x7f00_0000_0000n, attributes: saved.state.fs.attributes ^ 0x1000 },
      };
      await s.setVpState(1, { arch: "x86_64", state: changed });
      expect(await s.getVpState(1)).toEqual({ arch: "x86_64", state: changed });
      await s.setVpState(1, saved);
    } finally {
      await s.detach();
    }
  });

  it("places software breakpoints by GVA for every VP, by GVA for one VP and by GPA", async () => {
    const s = await attachStopped();
    try {
      await s.insertSoftwareBreakpoint(sym("tick").gva);
      await s.insertSoftwareBreakpoint({ gva: sym("tick").gva, vp: 1 });
      await s.insertSoftwareBreakpoint({ gpa: sym("main_loop").gpa });
      expect(await s.listSoftwareBreakpoints()).toHaveLength(3);
    } finally {
      await s.detach();
    }
  });

  it("serves GPA and GVA reads of a running VM while it keeps running", async () => {
    expect((await h.client.getVm(VM)).runState).toBe("running");
    const first = u64(await h.client.readMemory(VM, { gpa: sym("counter").gpa }, 8));
    await waitFor(async () => u64(await h.client.readMemory(VM, { gva: sym("counter").gva, vp: 0 }, 8)) !== first, 20_000, "the counter to move");
    expect((await h.client.getVm(VM)).runState).toBe("running");
  });

  it("steps up to max_count instructions in one batch with each listed trace, and refuses one more", async () => {
    const s = await attachStopped();
    try {
      const { maxCount, traces } = (await h.client.getVm(VM)).capabilities!.batchedStepping;
      for (const trace of traces) expect(await s.step(0, { count: 3, trace })).toMatchObject({ executed: 3 });
      await expectRpcError(s.step(0, { count: maxCount + 1 }), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE", { max: String(maxCount) });
    } finally {
      await s.detach();
    }
  });
});
