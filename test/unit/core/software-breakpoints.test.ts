import { MAX_SOFTWARE_BREAKPOINTS, SoftwareBreakpointTable, VmmError } from "../../../src/core";

describe("SoftwareBreakpointTable", () => {
  it("numbers breakpoints from 1 and lists them in id order with their hit counts", () => {
    const t = new SoftwareBreakpointTable();
    expect(t.insert({ kind: "gva", gva: 0x1000n }, false)).toMatchObject({ breakpoint: { id: 1 }, existing: false, changed: true });
    expect(t.insert({ kind: "gpa", gpa: 0x2000n }, true)).toMatchObject({ breakpoint: { id: 2 }, existing: false });
    expect(t.recordHit(1)).toBe(true);
    expect(t.list()).toEqual([
      { id: 1, address: { kind: "gva", gva: 0x1000n }, oneShot: false, hitCount: 1 },
      { id: 2, address: { kind: "gpa", gpa: 0x2000n }, oneShot: true, hitCount: 0 },
    ]);
  });

  it("answers the breakpoint already at an address; a permanent insert makes a one-shot permanent", () => {
    const t = new SoftwareBreakpointTable();
    t.insert({ kind: "gva", gva: 0x1000n, vp: 1 }, true);
    expect(t.insert({ kind: "gva", gva: 0x1000n, vp: 1 }, true)).toMatchObject({ breakpoint: { id: 1, oneShot: true }, existing: true, changed: false });
    expect(t.insert({ kind: "gva", gva: 0x1000n, vp: 1 }, false)).toMatchObject({ breakpoint: { id: 1, oneShot: false }, existing: true, changed: true });
    expect(t.insert({ kind: "gva", gva: 0x1000n, vp: 1 }, true)).toMatchObject({ breakpoint: { oneShot: false }, existing: true, changed: false });
    // Another VP scope, or every VP, is another address.
    expect(t.insert({ kind: "gva", gva: 0x1000n }, false).breakpoint.id).toBe(2);
    expect(t.insert({ kind: "gva", gva: 0x1000n, vp: 0 }, false).breakpoint.id).toBe(3);
    expect(t.find({ kind: "gva", gva: 0x1000n, vp: 0 })?.id).toBe(3);
    expect(t.find({ kind: "gva", gva: 0x1000n, vp: 2 })).toBeUndefined();
    expect(t.find({ kind: "gpa", gpa: 0x1000n })).toBeUndefined();
  });

  it("removes a one-shot breakpoint when it is hit, and never reuses an id", () => {
    const t = new SoftwareBreakpointTable();
    t.insert({ kind: "gva", gva: 0x1000n }, true);
    expect(t.recordHit(1)).toBe(true);
    expect(t.list()).toEqual([]);
    expect(t.recordHit(1)).toBe(false);
    expect(t.insert({ kind: "gva", gva: 0x1000n }, true).breakpoint.id).toBe(2);
  });

  it("refuses an unknown id with NOT_FOUND / SOFTWARE_BREAKPOINT_NOT_FOUND", () => {
    const t = new SoftwareBreakpointTable();
    expect(() => t.remove(7)).toThrow(expect.objectContaining({ reason: "SOFTWARE_BREAKPOINT_NOT_FOUND", metadata: { id: "7" } }));
  });

  it("refuses more than the limit without changing anything", () => {
    const t = new SoftwareBreakpointTable();
    for (let i = 0; i < MAX_SOFTWARE_BREAKPOINTS; i++) t.insert({ kind: "gpa", gpa: BigInt(i) }, false);
    let error: unknown;
    try {
      t.insert({ kind: "gpa", gpa: -1n }, false);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VmmError);
    expect(error).toMatchObject({ reason: "SOFTWARE_BREAKPOINT_LIMIT" });
    expect(t.size).toBe(MAX_SOFTWARE_BREAKPOINTS);
    // An address that has one still answers it.
    expect(t.insert({ kind: "gpa", gpa: 5n }, false)).toMatchObject({ existing: true, breakpoint: { id: 6 } });
  });
});
