// Small packet parsers: thread ids and lists, qSupported, vCont?, E xx, O output, qXfer chunks.
import {
  RspParseError,
  formatErrorReply,
  formatSupported,
  formatThreadId,
  formatThreadList,
  formatXferRead,
  isConsoleOutput,
  latin1ToBytes,
  packetSizeOf,
  parseConsoleOutput,
  parseErrorReply,
  parseSupported,
  parseThreadId,
  parseThreadList,
  parseVContActions,
  parseXferReply,
  sameThread,
  textToHex,
} from "../../../src/rsp";

describe("thread ids", () => {
  it.each([
    ["p01.02", { pid: 1, tid: 2 }],
    ["p1.-1", { pid: 1, tid: "all" }],
    ["p1", { pid: 1, tid: "all" }],
    ["p-1.-1", { pid: "all", tid: "all" }],
    ["01", { tid: 1 }],
    ["1f", { tid: 31 }],
    ["-1", { tid: "all" }],
    ["0", { tid: "any" }],
  ])("parses %s", (text, id) => {
    expect(parseThreadId(text)).toEqual(id);
  });

  it.each(["", "p", "p1.", "px.1", "q1", "-2"])("refuses %j", (text) => {
    expect(() => parseThreadId(text)).toThrow(RspParseError);
  });

  it("formats with and without multiprocess", () => {
    expect(formatThreadId({ pid: 1, tid: 2 }, true)).toBe("p1.2");
    expect(formatThreadId({ tid: 2 }, true)).toBe("p1.2");
    expect(formatThreadId({ tid: "all" }, true)).toBe("p1.-1");
    expect(formatThreadId({ pid: 1, tid: 26 }, false)).toBe("1a");
    expect(formatThreadId({ tid: "any" }, false)).toBe("0");
  });

  it("matches threads with or without a pid", () => {
    expect(sameThread({ pid: 1, tid: 2 }, { tid: 2 })).toBe(true);
    expect(sameThread({ pid: 1, tid: 2 }, { pid: 2, tid: 2 })).toBe(false);
  });

  it("parses thread list replies", () => {
    expect(parseThreadList("mp01.01,p01.02")).toEqual({ done: false, threads: [{ pid: 1, tid: 1 }, { pid: 1, tid: 2 }] });
    expect(parseThreadList("m1")).toEqual({ done: false, threads: [{ tid: 1 }] });
    expect(parseThreadList("l")).toEqual({ done: true, threads: [] });
    expect(() => parseThreadList("m")).toThrow(RspParseError);
    expect(() => parseThreadList("OK")).toThrow(RspParseError);
    expect(formatThreadList(parseThreadList("mp01.01,p01.02"), true)).toBe("mp1.1,p1.2");
  });
});

describe("qSupported", () => {
  it("parses QEMU's reply and its hex PacketSize", () => {
    const f = parseSupported("PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+");
    expect(f.get("qXfer:features:read")).toBe(true);
    expect(f.get("multiprocess")).toBe(true);
    expect(f.get("QStartNoAckMode")).toBeUndefined();
    expect(packetSizeOf(f)).toBe(4096);
  });

  it("parses -, ? and round-trips", () => {
    const text = "multiprocess+;swbreak-;xmlRegisters=i386;fork-events?";
    const f = parseSupported(text);
    expect([...f]).toEqual([
      ["multiprocess", true],
      ["swbreak", false],
      ["xmlRegisters", "i386"],
      ["fork-events", "?"],
    ]);
    expect(formatSupported(f)).toBe(text);
  });

  it("refuses a feature without a suffix", () => {
    expect(() => parseSupported("multiprocess")).toThrow(RspParseError);
  });

  it("leaves PacketSize undefined when absent and refuses tiny values", () => {
    expect(packetSizeOf(parseSupported("multiprocess+"))).toBeUndefined();
    expect(() => packetSizeOf(parseSupported("PacketSize=4"))).toThrow(RspParseError);
  });

  it("parses vCont? replies", () => {
    expect(parseVContActions("vCont;c;C;s;S")).toEqual(new Set(["c", "C", "s", "S"]));
    expect(parseVContActions("")).toEqual(new Set());
    expect(() => parseVContActions("OK")).toThrow(RspParseError);
  });
});

describe("small replies", () => {
  it("parses E xx and E.text, and nothing else", () => {
    expect(parseErrorReply("E22")).toEqual({ code: 0x22 });
    expect(parseErrorReply("E.no such thing")).toEqual({ code: undefined, message: "no such thing" });
    expect(parseErrorReply("E01;detail")).toEqual({ code: 1, message: "detail" });
    expect(parseErrorReply("OK")).toBeUndefined();
    expect(parseErrorReply("e22")).toBeUndefined();
    expect(parseErrorReply("")).toBeUndefined();
    expect(formatErrorReply(0x16)).toBe("E16");
  });

  it("decodes O console output, not OK", () => {
    const payload = "O" + textToHex("RAX=0000000000000000\r\n");
    expect(isConsoleOutput(payload)).toBe(true);
    expect(parseConsoleOutput(payload)).toBe("RAX=0000000000000000\r\n");
    expect(isConsoleOutput("OK")).toBe(false);
    expect(isConsoleOutput("O")).toBe(false);
    expect(() => parseConsoleOutput("OK")).toThrow(RspParseError);
  });

  it("parses qXfer chunks and formats reads", () => {
    expect(parseXferReply(latin1ToBytes("m<?xml"))).toEqual({ last: false, data: latin1ToBytes("<?xml") });
    expect(parseXferReply(latin1ToBytes("l"))).toEqual({ last: true, data: new Uint8Array() });
    expect(() => parseXferReply(latin1ToBytes("E00"))).toThrow(RspParseError);
    expect(formatXferRead("features", "target.xml", 0, 0xffb)).toBe("qXfer:features:read:target.xml:0,ffb");
  });
});
