// VmmDebugError.from: gRPC errors with their ErrorInfo, aborts, platform errors, anything else.
import { ClientError, Metadata, Status } from "nice-grpc";
import { VmmDebugError, decodeStatusDetails, STATUS_DETAILS_KEY } from "../../../src/client";
import { encodeStatusDetails } from "../../../src/wire";

describe("VmmDebugError.from", () => {
  it("keeps a ClientError's code and reads reason and metadata from the trailer", () => {
    const trailer = Metadata();
    trailer.set(
      STATUS_DETAILS_KEY,
      encodeStatusDetails({
        code: Status.FAILED_PRECONDITION,
        message: "needs a session",
        reason: "NOT_ATTACHED",
        metadata: { vm: "demo" },
      }),
    );
    const cause = new ClientError("/vmm.debug.v1.DebugService/Break", Status.FAILED_PRECONDITION, "needs a session");
    const e = VmmDebugError.from(cause, trailer);
    expect(e).toBeInstanceOf(VmmDebugError);
    expect(e.code).toBe(Status.FAILED_PRECONDITION);
    expect(e.codeName).toBe("FAILED_PRECONDITION");
    expect(e.reason).toBe("NOT_ATTACHED");
    expect(e.metadata).toEqual({ vm: "demo" });
    expect(e.rawMessage).toBe("needs a session");
    expect(e.message).toBe("[FAILED_PRECONDITION NOT_ATTACHED] needs a session");
    expect(e.cause).toBe(cause);
  });

  it("makes do without a trailer", () => {
    const e = VmmDebugError.from(new ClientError("/x/Y", Status.UNAVAILABLE, "connection refused"));
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.reason).toBeUndefined();
    expect(e.metadata).toEqual({});
  });

  it("turns an abort into CANCELLED", () => {
    const abort = new Error("aborted");
    abort.name = "AbortError";
    expect(VmmDebugError.from(abort).code).toBe(Status.CANCELLED);
  });

  it("maps platform errors by errno code", () => {
    const err = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(VmmDebugError.from(err).code).toBe(Status.UNAVAILABLE);
  });

  it("turns anything else into UNKNOWN and returns a VmmDebugError unchanged", () => {
    expect(VmmDebugError.from("boom").code).toBe(Status.UNKNOWN);
    const e = new VmmDebugError(Status.INTERNAL, "x");
    expect(VmmDebugError.from(e)).toBe(e);
  });
});

describe("decodeStatusDetails", () => {
  it("returns undefined for bytes that are not a google.rpc.Status", () => {
    expect(decodeStatusDetails(new Uint8Array([0xff, 0xff, 0xff]))).toBeUndefined();
  });
});
