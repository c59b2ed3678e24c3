// Stop replies: S, T with thread ids, watchpoints and break kinds, W (exited), X (killed).
import { RspParseError, formatStopReply, isStopReply, parseStopReply } from "../../../src/rsp";

describe("parseStopReply", () => {
  it("parses S xx", () => {
    expect(parseStopReply("S05")).toEqual({ kind: "signal", signal: 5, registers: new Map(), fields: [] });
  });

  it("parses QEMU's unprompted T02 with a plain thread id", () => {
    expect(parseStopReply("T02thread:01;")).toMatchObject({ kind: "signal", signal: 2, thread: { tid: 1 } });
  });

  it("parses multiprocess thread ids", () => {
    const r = parseStopReply("T05thread:p01.02;");
    expect(r).toMatchObject({ kind: "signal", signal: 5, thread: { pid: 1, tid: 2 } });
    expect(r.kind === "signal" && r.reason).toBeFalsy();
  });

  it.each([
    ["watch", "T05thread:p01.01;watch:0000000040001000;", 0x40001000n],
    ["rwatch", "T05thread:p01.01;rwatch:ffffffff80001000;", 0xffffffff80001000n],
    ["awatch", "T05thread:p01.01;awatch:10;", 0x10n],
  ] as const)("parses %s with its address", (kind, payload, address) => {
    expect(parseStopReply(payload)).toMatchObject({ kind: "signal", signal: 5, reason: { kind, address } });
  });

  it("parses swbreak and hwbreak", () => {
    expect(parseStopReply("T05swbreak:;thread:p1.1;")).toMatchObject({ reason: { kind: "swbreak" }, thread: { pid: 1, tid: 1 } });
    expect(parseStopReply("T05hwbreak:;")).toMatchObject({ reason: { kind: "hwbreak" } });
  });

  it("collects expedited registers and core, and keeps every field in order", () => {
    const r = parseStopReply("T0506:0000000000000000;07:f0ff000000000000;10:f0ff000000000000;thread:p01.01;core:1;library:;");
    if (r.kind !== "signal") throw new Error("not a signal stop");
    expect([...r.registers]).toEqual([
      [6, "0000000000000000"],
      [7, "f0ff000000000000"],
      [16, "f0ff000000000000"],
    ]);
    expect(r.core).toBe(1);
    expect(r.fields.map(([k]) => k)).toEqual(["06", "07", "10", "thread", "core", "library"]);
  });

  it("parses W (exited) and X (killed), with and without a process", () => {
    expect(parseStopReply("W00")).toEqual({ kind: "exited", status: 0 });
    expect(parseStopReply("W01;process:a")).toEqual({ kind: "exited", status: 1, pid: 10 });
    expect(parseStopReply("X09")).toEqual({ kind: "killed", signal: 9 });
    expect(parseStopReply("X0f;process:1")).toEqual({ kind: "killed", signal: 15, pid: 1 });
  });

  it.each(["", "T", "T5", "Tzz", "S05x", "W00;pid:1", "Q05", "T05thread:p1.zz;", "T05watch:xyz;"])(
    "refuses %j",
    (payload) => {
      expect(() => parseStopReply(payload)).toThrow(RspParseError);
    },
  );

  it("tells stop replies apart from other replies", () => {
    for (const p of ["T05", "T02thread:01;", "S05", "W00", "X09"]) expect(isStopReply(p)).toBe(true);
    for (const p of ["OK", "E22", "", "l", "m00", "PacketSize=1000", "1122", "QC1"]) expect(isStopReply(p)).toBe(false);
  });
});

describe("formatStopReply", () => {
  it.each([
    "S05",
    "T02thread:01;",
    "T05thread:p01.01;watch:0000000040001000;",
    "T05hwbreak:;thread:p1.2;",
    "W00",
    "W01;process:a",
    "X09",
  ])("round-trips %s exactly", (payload) => {
    expect(formatStopReply(parseStopReply(payload))).toBe(payload);
  });

  it("builds a T reply from parts, with multiprocess ids", () => {
    const text = formatStopReply(
      { kind: "signal", signal: 5, thread: { pid: 1, tid: 2 }, reason: { kind: "watch", address: 0x1000n }, registers: new Map(), fields: [] },
      true,
    );
    expect(text).toBe("T05thread:p1.2;watch:1000;");
    expect(parseStopReply(text)).toMatchObject({ thread: { pid: 1, tid: 2 }, reason: { kind: "watch", address: 0x1000n } });
    expect(formatStopReply({ kind: "signal", signal: 5, reason: { kind: "swbreak" }, registers: new Map(), fields: [] })).toBe("T05swbreak:;");
  });
});
