// The protobuf-es → nice-grpc adapter: method shapes, idempotency, and binary round trips.
import { create, equals } from "@bufbuild/protobuf";
import {
  DebugServiceDefinition,
  HealthServiceDefinition,
  VmServiceDefinition,
  createServiceDefinition,
} from "../../../src/wire";
import { DebugService, ReadMemoryRequestSchema, SetDebugStateRequestSchema } from "../../../gen/vmm/debug/v1/debug_service_pb";
import { VmService } from "../../../gen/vmm/debug/v1/vm_service_pb";
import { Health } from "../../../gen/grpc/health/v1/health_pb";
import { BreakpointSize, BreakpointType } from "../../../gen/vmm/debug/v1/breakpoint_pb";

describe("createServiceDefinition", () => {
  it("names the service by its fully-qualified proto name and keys methods by local name", () => {
    expect(DebugServiceDefinition.fullName).toBe("vmm.debug.v1.DebugService");
    expect(DebugServiceDefinition.name).toBe("DebugService");
    expect(Object.keys(DebugServiceDefinition.methods).sort()).toEqual(
      DebugService.methods.map((m) => m.localName).sort(),
    );
    expect(DebugServiceDefinition.methods.readMemoryStream.name).toBe("ReadMemoryStream");
    expect(VmServiceDefinition.fullName).toBe("vmm.debug.v1.VmService");
    expect(HealthServiceDefinition.fullName).toBe("grpc.health.v1.Health");
  });

  it("derives stream flags from the method kind", () => {
    expect(DebugServiceDefinition.methods.resume.requestStream).toBe(false);
    expect(DebugServiceDefinition.methods.resume.responseStream).toBe(false);
    expect(DebugServiceDefinition.methods.readMemoryStream.requestStream).toBe(false);
    expect(DebugServiceDefinition.methods.readMemoryStream.responseStream).toBe(true);
    expect(HealthServiceDefinition.methods.watch.responseStream).toBe(true);
  });

  it("carries the idempotency level of every method", () => {
    const levels = Object.fromEntries(
      Object.entries(DebugServiceDefinition.methods).map(([k, m]) => [k, m.options.idempotencyLevel]),
    );
    expect(levels).toEqual({
      attach: undefined,
      detach: undefined,
      resume: undefined,
      break: undefined,
      setDebugState: undefined,
      getVpState: "NO_SIDE_EFFECTS",
      setVpState: undefined,
      readMemory: "NO_SIDE_EFFECTS",
      writeMemory: undefined,
      readMemoryStream: "NO_SIDE_EFFECTS",
      step: undefined,
      readMemoryMany: "NO_SIDE_EFFECTS",
      getVpStates: "NO_SIDE_EFFECTS",
      insertSoftwareBreakpoint: undefined,
      removeSoftwareBreakpoint: undefined,
      listSoftwareBreakpoints: "NO_SIDE_EFFECTS",
      session: undefined,
      translateGva: "NO_SIDE_EFFECTS",
      dumpMemory: "NO_SIDE_EFFECTS",
    });
    expect(VmServiceDefinition.methods.listVms.options.idempotencyLevel).toBe("NO_SIDE_EFFECTS");
  });

  it("round-trips a request through encode/decode", () => {
    const type = DebugServiceDefinition.methods.setDebugState.requestType;
    const msg = type.fromPartial({
      vm: "demo",
      sessionId: "abc",
      vp: 1,
      state: {
        singleStep: true,
        breakpoints: [
          {},
          { breakpoint: { address: 0xffff_ffff_8010_7000n, type: BreakpointType.WRITE, size: BreakpointSize.QWORD } },
        ],
      },
    });
    const bytes = type.encode(msg).finish();
    expect(bytes).toBeInstanceOf(Uint8Array);
    const back = type.decode(bytes);
    expect(equals(SetDebugStateRequestSchema, back, msg)).toBe(true);
    expect(back.state?.breakpoints[1].breakpoint?.address).toBe(0xffff_ffff_8010_7000n);
    expect(back.state?.breakpoints[0].breakpoint).toBeUndefined();
  });

  it("keeps uint64 as bigint and oneofs as cases", () => {
    const type = DebugServiceDefinition.methods.readMemory.requestType;
    const msg = create(ReadMemoryRequestSchema, {
      address: { kind: { case: "gva", value: { vp: 1, gva: 0xffff_ffff_ffff_fff0n } } },
      length: 1n << 40n,
    });
    const back = type.decode(type.encode(msg).finish());
    expect(back.address?.kind).toEqual(expect.objectContaining({ case: "gva" }));
    expect(back.length).toBe(1n << 40n);
  });

  it("works for any GenService", () => {
    const def = createServiceDefinition(VmService);
    expect(def.methods.getVm.requestType.fromPartial({ vm: "x" }).vm).toBe("x");
    expect(createServiceDefinition(Health).methods.check.name).toBe("Check");
  });
});
