// The one mapping of thrown values to statuses, and the google.rpc.Status detail it encodes.
import { fromBinary, toJson } from "@bufbuild/protobuf";
import { StructSchema, anyUnpack } from "@bufbuild/protobuf/wkt";
import { ServerError, Status } from "nice-grpc";
import { Code, VmmError, errors } from "../../../src/core";
import { serverError, toErrorStatus } from "../../../src/server/errors";
import { encodeStatusDetails } from "../../../src/wire";
import { decodeStatusDetails } from "../../../src/client";
import { StatusSchema } from "../../../gen/google/rpc/status_pb";
import { ErrorInfoSchema } from "../../../gen/google/rpc/error_details_pb";

describe("toErrorStatus", () => {
  it("keeps a VmmError's code, reason and metadata", () => {
    const s = toErrorStatus(errors.vpOutOfRange(5, 2));
    expect(s).toEqual({
      code: Status.INVALID_ARGUMENT,
      message: expect.stringContaining("vp 5 is out of range"),
      reason: "VP_OUT_OF_RANGE",
      metadata: { vp: "5", vp_count: "2" },
    });
  });

  it("carries server-only reasons", () => {
    const s = toErrorStatus(serverError(Code.FailedPrecondition, "RESUME_IN_PROGRESS", "busy", { vm: "a" }));
    expect(s.code).toBe(Status.FAILED_PRECONDITION);
    expect(s.reason).toBe("RESUME_IN_PROGRESS");
  });

  it("keeps a nice-grpc ServerError's code and names the reason after it", () => {
    const s = toErrorStatus(new ServerError(Status.NOT_FOUND, "Unknown service"));
    expect(s).toMatchObject({ code: Status.NOT_FOUND, message: "Unknown service", reason: "NOT_FOUND" });
  });

  it("reports an abort as CANCELLED", () => {
    const abort = new Error("This operation was aborted");
    abort.name = "AbortError";
    expect(toErrorStatus(abort)).toMatchObject({ code: Status.CANCELLED, reason: "CANCELLED" });
  });

  it("hides anything else behind INTERNAL with an incident id", () => {
    const s = toErrorStatus(new TypeError("cannot read properties of undefined (reading 'secret')"));
    expect(s.code).toBe(Status.INTERNAL);
    expect(s.reason).toBe("INTERNAL");
    expect(s.message).not.toContain("secret");
    expect(s.unexpected?.incident).toMatch(/^[0-9a-f]{8}$/);
    expect(s.metadata.incident).toBe(s.unexpected?.incident);
  });
});

describe("encodeStatusDetails", () => {
  it("packs an ErrorInfo of domain vmm.debug into a google.rpc.Status", () => {
    const bytes = encodeStatusDetails({
      code: Status.NOT_FOUND,
      message: 'no VM "x"',
      reason: "VM_NOT_FOUND",
      metadata: { vm: "x" },
    });
    const status = fromBinary(StatusSchema, bytes);
    expect(status.code).toBe(Status.NOT_FOUND);
    expect(status.message).toBe('no VM "x"');
    expect(status.details).toHaveLength(2);
    expect(status.details[0].typeUrl).toBe("type.googleapis.com/google.rpc.ErrorInfo");
    const info = anyUnpack(status.details[0], ErrorInfoSchema);
    expect(info).toMatchObject({ reason: "VM_NOT_FOUND", domain: "vmm.debug", metadata: { vm: "x" } });
    // The same, as a google.protobuf.Struct, for tools that decode only well-known types.
    expect(status.details[1].typeUrl).toBe("type.googleapis.com/google.protobuf.Struct");
    const readable = anyUnpack(status.details[1], StructSchema);
    expect(readable && toJson(StructSchema, readable)).toEqual({ reason: "VM_NOT_FOUND", domain: "vmm.debug", metadata: { vm: "x" } });
  });

  it("round-trips through the client's decoder", () => {
    const err = new VmmError(Code.OutOfRange, "GPA_UNMAPPED", "not RAM", { gpa: "0x1", length: "2" });
    const s = toErrorStatus(err);
    expect(decodeStatusDetails(encodeStatusDetails(s))).toEqual({
      code: Code.OutOfRange,
      message: "not RAM",
      reason: "GPA_UNMAPPED",
      domain: "vmm.debug",
      metadata: { gpa: "0x1", length: "2" },
    });
  });
});
