// Wire ⇄ domain conversion: every message shape through the real pipeline (SDK → wire bytes →
// server → domain, and domain → server → wire bytes → SDK), and every validation refusal.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  BreakpointSize,
  BreakpointType,
  Code,
  VmmError,
  type DebugStopReason as CoreStopReason,
  type DebuggerVpState as CoreVpState,
  type SoftwareBreakpoint as CoreSoftwareBreakpoint,
  type VmmCore,
} from "../../../src/core";
import * as server from "../../../src/server/convert";
import * as client from "../../../src/client/convert";
import type * as sdk from "../../../src/client";
import * as wire from "../../../gen/vmm/debug/v1/types_pb";
import * as vmWire from "../../../gen/vmm/debug/v1/vm_service_pb";
import * as dsWire from "../../../gen/vmm/debug/v1/debug_service_pb";

/** Data-only stand-ins for a VM's identity (conversion reads nothing else). */
function vmStub(arch: "x86_64" | "aarch64", vpCount = 2): VmmCore {
  return {
    id: "demo",
    arch,
    vpCount,
    backend: "emu",
    memoryRegions: [{ gpa: 0n, size: 256n << 20n, name: "ram" }],
    runState: () => "stopped",
    capabilities: () => ({
      hardwareSlotsPerVp: 4,
      watchpointTypes: [BreakpointType.Write, BreakpointType.ReadOrWrite],
      watchpointSizes: [BreakpointSize.Byte, BreakpointSize.Word, BreakpointSize.DWord, BreakpointSize.QWord],
      softwareBreakpoints: { gva: true, perVp: false, gpa: false },
      setVpStateFields: arch === "x86_64" ? ["gp", "rip", "cs.selector"] : ["x", "pc"],
      memoryReadsWhileRunning: arch === "x86_64" ? "noPauseGpaRam" : "pauses",
      batchedStepping: { maxCount: 1000, traces: ["none", "pc"] },
    }),
  } as unknown as VmmCore;
}
const x86 = vmStub("x86_64");
const a64 = vmStub("aarch64");

function overWire<D extends DescMessage>(schema: D, msg: MessageShape<D>): MessageShape<D> {
  return fromBinary(schema, toBinary(schema, msg));
}

function expectVmmError(fn: () => unknown, code: Code, reason: string, metadata?: Record<string, string>): VmmError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(VmmError);
  const err = caught as VmmError;
  expect({ code: err.code, reason: err.reason }).toEqual({ code, reason });
  if (metadata) expect(err.metadata).toMatchObject(metadata);
  return err;
}

const seg = (selector: number, attributes: number, base = 0n) => ({ base, limit: 0xffff_ffff, selector, attributes });

const x86State: sdk.DebuggerVpState & CoreVpState = {
  arch: "x86_64",
  state: {
    gp: Array.from({ length: 16 }, (_, i) => 0x1111_0000_0000_0000n * BigInt(i % 15) + BigInt(i)),
    rip: 0xffff_ffff_8010_1099n,
    rflags: 0x246n,
    cr0: 0x8000_0011n,
    cr2: 0xdead_beefn,
    cr3: 0x1000n,
    cr4: 0x20n,
    cr8: 0xfn,
    efer: 0xd01n,
    kernelGsBase: 0xffff_ffff_ffff_ffffn,
    es: seg(0x10, 0xc093),
    cs: seg(0x08, 0xa09b),
    ss: seg(0x10, 0xc093),
    ds: seg(0x10, 0xc093),
    fs: seg(0, 0, 0x7fff_0000_0000n),
    gs: seg(0xffff, 0xf0ff, 0xffff_8000_0000_0000n),
  },
};

const a64State: sdk.DebuggerVpState & CoreVpState = {
  arch: "aarch64",
  state: {
    x: Array.from({ length: 31 }, (_, i) => BigInt(i) << 32n),
    spEl0: 1n,
    spEl1: 2n,
    pc: 0xffff_0000_0008_0000n,
    cpsr: 0x3c5n,
    sctlrEl1: 0x30d0_1805n,
    tcrEl1: 0x5_b510_3510n,
    ttbr0El1: 0x4000_0000n,
    ttbr1El1: 0x4000_1000n,
  },
};

describe("requests: SDK → wire bytes → server → domain", () => {
  it("carries an x86-64 register state unchanged", () => {
    const w = overWire(wire.DebuggerVpStateSchema, client.vpStateToWire(x86State));
    expect(server.vpStateFromWire(w, "x86_64")).toEqual(x86State);
  });

  it("carries an aarch64 register state unchanged", () => {
    const w = overWire(wire.DebuggerVpStateSchema, client.vpStateToWire(a64State));
    expect(server.vpStateFromWire(w, "aarch64")).toEqual(a64State);
  });

  it("carries GVA and GPA addresses (a GVA without vp means VP 0)", () => {
    const gva = overWire(wire.GuestAddressSchema, client.guestAddressToWire({ gva: 0xffff_ffff_8010_7000n, vp: 1 }));
    expect(server.guestAddressFromWire(gva)).toEqual({ kind: "gva", vp: 1, gva: 0xffff_ffff_8010_7000n });
    const gva0 = overWire(wire.GuestAddressSchema, client.guestAddressToWire({ gva: 5n }));
    expect(server.guestAddressFromWire(gva0)).toEqual({ kind: "gva", vp: 0, gva: 5n });
    const gpa = overWire(wire.GuestAddressSchema, client.guestAddressToWire({ gpa: 0x10_7000n }));
    expect(server.guestAddressFromWire(gpa)).toEqual({ kind: "gpa", gpa: 0x10_7000n });
    const zero = overWire(wire.GuestAddressSchema, client.guestAddressToWire({ gpa: 0n }));
    expect(server.guestAddressFromWire(zero)).toEqual({ kind: "gpa", gpa: 0n });
  });

  it("carries a debug state, mapping SDK types and sizes to the DR7 encodings and padding to four slots", () => {
    const state: sdk.DebugState = {
      singleStep: true,
      breakpoints: [
        { address: 0x1000n, type: "execute", size: 1 },
        null,
        { address: 0x2000n, type: "write", size: 8 },
        { address: 0x3004n, type: "readWrite", size: 4 },
      ],
    };
    const w = overWire(wire.DebugStateSchema, client.debugStateToWire(state));
    expect(server.debugStateFromWire(w)).toEqual({
      singleStep: true,
      breakpoints: [
        { address: 0x1000n, type: BreakpointType.Execute, size: BreakpointSize.Byte },
        null,
        { address: 0x2000n, type: BreakpointType.Write, size: BreakpointSize.QWord },
        { address: 0x3004n, type: BreakpointType.ReadOrWrite, size: BreakpointSize.DWord },
      ],
    });
    const short = overWire(
      wire.DebugStateSchema,
      client.debugStateToWire({ singleStep: false, breakpoints: [null, { address: 0x2n, type: "write", size: 2 }] }),
    );
    expect(server.debugStateFromWire(short).breakpoints).toEqual([
      null,
      { address: 0x2n, type: BreakpointType.Write, size: BreakpointSize.Word },
      null,
      null,
    ]);
  });

  it("reads an unset debug state as single-step off and every slot free", () => {
    expect(server.debugStateFromWire(undefined)).toEqual({ singleStep: false, breakpoints: [null, null, null, null] });
  });
});

describe("responses: domain → server → wire bytes → SDK", () => {
  it.each([x86State, a64State])("carries a $arch register state unchanged", (state) => {
    const w = overWire(wire.DebuggerVpStateSchema, server.vpStateToWire(state));
    expect(client.vpStateFromWire(w)).toEqual(state);
    // And the server reads back what it writes.
    expect(server.vpStateFromWire(w, state.arch)).toEqual(state);
  });

  const stops: [CoreStopReason, sdk.DebugStopReason][] = [
    [{ kind: "break" }, { kind: "break" }],
    [{ kind: "powerOff" }, { kind: "powerOff" }],
    [{ kind: "reset" }, { kind: "reset" }],
    [{ kind: "tripleFault", vp: 1 }, { kind: "tripleFault", vp: 1 }],
    [{ kind: "singleStep", vp: 0 }, { kind: "singleStep", vp: 0 }],
    [
      { kind: "hwBreakpoint", vp: 1, breakpoint: { address: 0xffff_ffff_8010_7000n, type: BreakpointType.Write, size: BreakpointSize.QWord } },
      { kind: "hwBreakpoint", vp: 1, breakpoint: { address: 0xffff_ffff_8010_7000n, type: "write", size: 8 } },
    ],
    [
      { kind: "hwBreakpoint", vp: 0, breakpoint: { address: 0x10n, type: BreakpointType.Execute, size: BreakpointSize.Byte } },
      { kind: "hwBreakpoint", vp: 0, breakpoint: { address: 0x10n, type: "execute", size: 1 } },
    ],
    [{ kind: "watchdog" }, { kind: "watchdog" }],
    [
      { kind: "softwareBreakpoint", vp: 1, address: 0xffff_ffff_8010_10afn, id: 42 },
      { kind: "softwareBreakpoint", vp: 1, address: 0xffff_ffff_8010_10afn, id: 42 },
    ],
  ];
  it.each(stops)("carries the stop %o", (domain, expected) => {
    const w = overWire(wire.DebugStopReasonSchema, server.stopReasonToWire(domain));
    expect(client.stopReasonFromWire(w)).toEqual(expected);
  });

  it.each<[string, CoreSoftwareBreakpoint["address"], sdk.SoftwareBreakpointAddress]>([
    ["a GVA for every VP", { kind: "gva", gva: 0xffff_ffff_8010_10afn }, { gva: 0xffff_ffff_8010_10afn }],
    ["a GVA for VP 0", { kind: "gva", gva: 0x1000n, vp: 0 }, { gva: 0x1000n, vp: 0 }],
    ["a GPA", { kind: "gpa", gpa: 0x1010afn }, { gpa: 0x1010afn }],
  ])("carries a software breakpoint at %s both ways", (_name, domain, expected) => {
    const entry = overWire(dsWire.ListSoftwareBreakpointsResponseSchema, create(dsWire.ListSoftwareBreakpointsResponseSchema, {
      breakpoints: [server.softwareBreakpointToWire({ id: 3, address: domain, oneShot: true, hitCount: 2 })],
    }));
    expect(client.softwareBreakpointsFromWire(entry)).toEqual([{ id: 3, address: expected, oneShot: true, hitCount: 2 }]);
    const request = overWire(wire.SoftwareBreakpointAddressSchema, client.softwareBreakpointAddressToWire(expected));
    expect(server.softwareBreakpointAddressFromWire(request)).toEqual(domain);
  });

  it("refuses a software breakpoint address of no kind, and an id past 2^53 is no breakpoint's", () => {
    expect(() => server.softwareBreakpointAddressFromWire(undefined)).toThrow(expect.objectContaining({ reason: "MISSING_FIELD" }));
    expect(() => server.softwareBreakpointAddressFromWire(create(wire.SoftwareBreakpointAddressSchema))).toThrow(
      expect.objectContaining({ reason: "MISSING_FIELD", metadata: { field: "address.kind" } }),
    );
    expect(() => server.softwareBreakpointIdFromWire(1n << 60n)).toThrow(expect.objectContaining({ reason: "SOFTWARE_BREAKPOINT_NOT_FOUND" }));
  });

  it("carries VmInfo with and without an attachment", () => {
    const bare = overWire(vmWire.VmInfoSchema, server.vmInfoToWire(x86, undefined));
    expect(client.vmInfoFromWire(bare)).toEqual({
      id: "demo",
      arch: "x86_64",
      vpCount: 2,
      memoryRegions: [{ gpa: 0n, size: 256n << 20n, name: "ram" }],
      runState: "stopped",
      backend: "emu",
      capabilities: {
        hardwareSlotsPerVp: 4,
        watchpointTypes: ["write", "readWrite"],
        watchpointSizes: [1, 2, 4, 8],
        softwareBreakpoints: { gva: true, perVp: false, gpa: false },
        setVpStateFields: ["gp", "rip", "cs.selector"],
        memoryReadsWhileRunning: "noPauseGpaRam",
        batchedStepping: { maxCount: 1000, traces: ["none", "pc"] },
      },
    });
    const attached = overWire(
      vmWire.VmInfoSchema,
      server.vmInfoToWire(a64, { holder: "ipv4:127.0.0.1:5555", attachedAtMs: 1_700_000_000_123, leaseExpiresAtMs: 1_700_000_030_123 }),
    );
    expect(client.vmInfoFromWire(attached)).toMatchObject({
      arch: "aarch64",
      capabilities: { setVpStateFields: ["x", "pc"], memoryReadsWhileRunning: "pauses" },
      attached: {
        holder: "ipv4:127.0.0.1:5555",
        attachedAt: new Date(1_700_000_000_123),
        leaseExpiresAt: new Date(1_700_000_030_123),
      },
    });
  });
});

describe("request validation", () => {
  const x86Wire = () => client.vpStateToWire(structuredClone(x86State)) as wire.DebuggerVpState & { arch: { case: "x8664" } };

  it("refuses a missing address and an address without kind", () => {
    expectVmmError(() => server.guestAddressFromWire(undefined), Code.InvalidArgument, "MISSING_FIELD", { field: "address" });
    expectVmmError(() => server.guestAddressFromWire(create(wire.GuestAddressSchema)), Code.InvalidArgument, "MISSING_FIELD", {
      field: "address.kind",
    });
  });

  it("refuses a missing state and a state without arch", () => {
    expectVmmError(() => server.vpStateFromWire(undefined, "x86_64"), Code.InvalidArgument, "MISSING_FIELD", { field: "state" });
    expectVmmError(() => server.vpStateFromWire(create(wire.DebuggerVpStateSchema), "x86_64"), Code.InvalidArgument, "MISSING_FIELD", {
      field: "state.arch",
    });
  });

  it("refuses gp with other than 16 values and x with other than 31", () => {
    for (const n of [0, 15, 17]) {
      const w = x86Wire();
      w.arch.value.gp = w.arch.value.gp.slice(0, n).concat(n > 16 ? [0n] : []);
      if (n === 17) w.arch.value.gp = Array(17).fill(0n);
      expectVmmError(() => server.vpStateFromWire(w, "x86_64"), Code.InvalidArgument, "INVALID_ARRAY_LENGTH", {
        field: "state.x86_64.gp",
        length: String(n),
        expected: "16",
      });
    }
    const a = client.vpStateToWire(structuredClone(a64State));
    if (a.arch.case !== "aarch64") throw new Error("fixture");
    a.arch.value.x.pop();
    expectVmmError(() => server.vpStateFromWire(a, "aarch64"), Code.InvalidArgument, "INVALID_ARRAY_LENGTH", {
      field: "state.aarch64.x",
      length: "30",
    });
  });

  it("refuses a missing segment register", () => {
    const w = x86Wire();
    w.arch.value.ss = undefined;
    expectVmmError(() => server.vpStateFromWire(w, "x86_64"), Code.InvalidArgument, "MISSING_FIELD", { field: "state.x86_64.ss" });
  });

  it("refuses selectors and attributes beyond 16 bits, reserved attribute bits, and CR8 beyond 4 bits", () => {
    const sel = x86Wire();
    sel.arch.value.cs!.selector = 0x1_0000;
    expectVmmError(() => server.vpStateFromWire(sel, "x86_64"), Code.InvalidArgument, "VALUE_OUT_OF_RANGE", {
      field: "state.x86_64.cs.selector",
      value: "0x10000",
    });
    const attr = x86Wire();
    attr.arch.value.ds!.attributes = 0x1_c093;
    expectVmmError(() => server.vpStateFromWire(attr, "x86_64"), Code.InvalidArgument, "VALUE_OUT_OF_RANGE", {
      field: "state.x86_64.ds.attributes",
    });
    const reserved = x86Wire();
    reserved.arch.value.es!.attributes = 0xc193;
    expectVmmError(() => server.vpStateFromWire(reserved, "x86_64"), Code.InvalidArgument, "VALUE_OUT_OF_RANGE", {
      field: "state.x86_64.es.attributes",
    });
    const cr8 = x86Wire();
    cr8.arch.value.cr8 = 16n;
    expectVmmError(() => server.vpStateFromWire(cr8, "x86_64"), Code.InvalidArgument, "VALUE_OUT_OF_RANGE", { field: "state.x86_64.cr8" });
  });

  const bp = (address: bigint, type: number, size: number) =>
    create(wire.BreakpointSlotSchema, { breakpoint: { address, type, size } });

  it("refuses five slots", () => {
    const s = create(wire.DebugStateSchema, { breakpoints: [bp(0n, 0, 0), bp(1n, 0, 0), bp(2n, 0, 0), bp(3n, 0, 0), bp(4n, 0, 0)] });
    expectVmmError(() => server.debugStateFromWire(s), Code.InvalidArgument, "TOO_MANY_BREAKPOINTS", { count: "5", max: "4" });
  });

  it("refuses the INVALID type, EXECUTE wider than a byte, misaligned addresses and unknown enum values", () => {
    const one = (slot: wire.BreakpointSlot) => create(wire.DebugStateSchema, { breakpoints: [slot] });
    expectVmmError(() => server.debugStateFromWire(one(bp(0x1000n, 1, 0))), Code.InvalidArgument, "BREAKPOINT_INVALID_TYPE");
    expectVmmError(() => server.debugStateFromWire(one(bp(0x1000n, 0, 3))), Code.InvalidArgument, "BREAKPOINT_INVALID_SIZE");
    expectVmmError(() => server.debugStateFromWire(one(bp(0x1004n, 2, 2))), Code.InvalidArgument, "BREAKPOINT_MISALIGNED", {
      address: "0x1004",
      alignment: "8",
    });
    expectVmmError(() => server.debugStateFromWire(one(bp(0x1000n, 9, 0))), Code.InvalidArgument, "INVALID_ENUM");
    expectVmmError(() => server.debugStateFromWire(one(bp(0x1000n, 2, 7))), Code.InvalidArgument, "INVALID_ENUM");
  });

  it("refuses a unary read above the cap with RESOURCE_EXHAUSTED, and a GPA range past 2^64", () => {
    const gpa = { kind: "gpa" as const, gpa: 0n };
    expect(server.readLengthFromWire(4096n, gpa, 4096, "hint")).toBe(4096);
    const e = expectVmmError(() => server.readLengthFromWire(4097n, gpa, 4096, "use ReadMemoryStream"), Code.ResourceExhausted, "READ_TOO_LARGE", {
      length: "4097",
      max: "4096",
    });
    expect(e.message).toContain("use ReadMemoryStream");
    expectVmmError(
      () => server.readLengthFromWire(16n, { kind: "gpa", gpa: 0xffff_ffff_ffff_fff8n }, 4096, "h"),
      Code.InvalidArgument,
      "VALUE_OUT_OF_RANGE",
    );
  });

  it("takes lengths 0 and 1 at the last GPA, and refuses 2 (the core checks length 0 as one byte)", () => {
    const last = { kind: "gpa" as const, gpa: 0xffff_ffff_ffff_ffffn };
    expect([server.readLengthFromWire(0n, last, 4096, "h"), server.readLengthFromWire(1n, last, 4096, "h")]).toEqual([0, 1]);
    expectVmmError(() => server.readLengthFromWire(2n, last, 4096, "h"), Code.InvalidArgument, "VALUE_OUT_OF_RANGE");
    const range = create(dsWire.MemoryRangeSchema, { address: { kind: { case: "gpa", value: last.gpa } }, length: 0n });
    const ranges = server.memoryRangesFromWire([range], 4096);
    expect(ranges).toEqual([{ address: last, length: 0 }]);
  });

  it("refuses a register state the architecture forbids with VP_STATE_INVALID, naming the register", () => {
    const noPaging = x86Wire();
    noPaging.arch.value.cr0 = 0n; // EFER.LMA stays 1
    expectVmmError(() => server.vpStateFromWire(noPaging, "x86_64"), Code.InvalidArgument, "VP_STATE_INVALID", { field: "state.x86_64.cr0", value: "0x0" });
    const rip = x86Wire();
    rip.arch.value.rip = 0x0000_8000_0000_0000n;
    expectVmmError(() => server.vpStateFromWire(rip, "x86_64"), Code.InvalidArgument, "VP_STATE_INVALID", { field: "state.x86_64.rip" });
    const mode = overWire(wire.DebuggerVpStateSchema, client.vpStateToWire({ ...a64State, state: { ...a64State.state, cpsr: 0x3c1n } }));
    expectVmmError(() => server.vpStateFromWire(mode, "aarch64"), Code.InvalidArgument, "VP_STATE_INVALID", { field: "state.aarch64.cpsr" });
    // A state of the other architecture is left to the core's ARCH_MISMATCH.
    expect(server.vpStateFromWire(mode, "x86_64")).toMatchObject({ arch: "aarch64" });
    expect(server.vpStateFromWire(noPaging, "aarch64")).toMatchObject({ arch: "x86_64" });
  });
});
