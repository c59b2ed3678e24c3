import { BreakpointSize, BreakpointType, VmmError, validateDebugState } from "../../../src/core";

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof VmmError) return e.reason;
    throw e;
  }
  throw new Error("did not throw");
}

const bp = (address: bigint, type: BreakpointType, size: BreakpointSize) => ({ address, type, size });

describe("validateDebugState", () => {
  it("pads a short slot list to four disabled slots", () => {
    const out = validateDebugState({ singleStep: true, breakpoints: [bp(0x1000n, BreakpointType.Write, BreakpointSize.QWord)] });
    expect(out.singleStep).toBe(true);
    expect(out.breakpoints).toHaveLength(4);
    expect(out.breakpoints[0]).toEqual(bp(0x1000n, BreakpointType.Write, BreakpointSize.QWord));
    expect(out.breakpoints.slice(1)).toEqual([null, null, null]);
  });

  it("refuses a fifth slot", () => {
    expect(reasonOf(() => validateDebugState({ singleStep: false, breakpoints: [null, null, null, null, null] }))).toBe(
      "TOO_MANY_BREAKPOINTS",
    );
  });

  it("refuses the I/O (INVALID) breakpoint type", () => {
    expect(
      reasonOf(() => validateDebugState({ singleStep: false, breakpoints: [bp(0n, BreakpointType.Invalid, BreakpointSize.Byte)] })),
    ).toBe("BREAKPOINT_INVALID_TYPE");
  });

  it("refuses an execute breakpoint wider than one byte", () => {
    expect(
      reasonOf(() => validateDebugState({ singleStep: false, breakpoints: [bp(0x1000n, BreakpointType.Execute, BreakpointSize.DWord)] })),
    ).toBe("BREAKPOINT_INVALID_SIZE");
  });

  it.each([
    [BreakpointSize.Word, 0x1001n],
    [BreakpointSize.DWord, 0x1002n],
    [BreakpointSize.QWord, 0x1004n],
  ])("refuses size %s at misaligned address %s", (size, address) => {
    expect(reasonOf(() => validateDebugState({ singleStep: false, breakpoints: [bp(address, BreakpointType.Write, size)] }))).toBe(
      "BREAKPOINT_MISALIGNED",
    );
  });

  it("accepts a byte watchpoint at any address", () => {
    const out = validateDebugState({ singleStep: false, breakpoints: [null, bp(0x1003n, BreakpointType.ReadOrWrite, BreakpointSize.Byte)] });
    expect(out.breakpoints[1]?.address).toBe(0x1003n);
  });
});
