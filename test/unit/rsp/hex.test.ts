// Hex helpers: bytes, little-endian register values, numbers and text.
import {
  RspParseError,
  bigintToLeBytes,
  bigintToLeHex,
  bytesToHex,
  formatHex,
  hexToBytes,
  hexToText,
  leBytesToBigint,
  leHexToBigint,
  parseHexInt,
  parseHexNumber,
  textToHex,
} from "../../../src/rsp";

describe("hex helpers", () => {
  it("round-trips bytes through hex", () => {
    const bytes = Uint8Array.from([0, 1, 0x7f, 0x80, 0xab, 0xff]);
    expect(bytesToHex(bytes)).toBe("00017f80abff");
    expect(hexToBytes("00017F80abFF")).toEqual(bytes);
  });

  it("refuses odd-length and non-hex data", () => {
    expect(() => hexToBytes("abc")).toThrow(RspParseError);
    expect(() => hexToBytes("xx")).toThrow(RspParseError);
    expect(() => hexToBytes("\u0130\u0131")).toThrow(RspParseError);
    expect(() => hexToBytes(Uint8Array.of(0x30, 0x67))).toThrow(RspParseError);
  });

  it("decodes hex given as packet bytes", () => {
    expect(hexToBytes(Uint8Array.of(0x30, 0x31, 0x66, 0x46))).toEqual(Uint8Array.of(0x01, 0xff));
  });

  it("encodes register values little-endian in N bytes", () => {
    expect(bigintToLeHex(0x1122334455667788n, 8)).toBe("8877665544332211");
    expect(bigintToLeHex(0xfff0n, 8)).toBe("f0ff000000000000");
    expect(bigintToLeHex(2n, 4)).toBe("02000000");
    expect(leHexToBigint("8877665544332211")).toBe(0x1122334455667788n);
    expect(leHexToBigint("f0ff000000000000")).toBe(0xfff0n);
  });

  it("round-trips 128-bit and 80-bit values", () => {
    const v = 0x0123456789abcdef0011223344556677n;
    expect(leHexToBigint(bigintToLeHex(v, 16))).toBe(v);
    expect(leBytesToBigint(bigintToLeBytes(0xffff_ffffffff_ffffffffn, 10))).toBe(0xffff_ffffffff_ffffffffn);
  });

  it("takes negative values two's complement and refuses values that do not fit", () => {
    expect(bigintToLeHex(-1n, 4)).toBe("ffffffff");
    expect(() => bigintToLeHex(0x1_0000_0000n, 4)).toThrow(RangeError);
  });

  it("parses and formats addresses", () => {
    expect(parseHexNumber("ffffffff80001000")).toBe(0xffffffff80001000n);
    expect(parseHexInt("1f")).toBe(31);
    expect(formatHex(0x40000000n)).toBe("40000000");
    expect(formatHex(255)).toBe("ff");
    expect(() => parseHexNumber("")).toThrow(RspParseError);
    expect(() => parseHexNumber("0x10")).toThrow(RspParseError);
    expect(() => formatHex(-1)).toThrow(RangeError);
  });

  it("round-trips UTF-8 text through hex (qRcmd)", () => {
    expect(textToHex("info registers")).toBe("696e666f20726567697374657273");
    expect(hexToText(textToHex("héllo\r\n"))).toBe("héllo\r\n");
  });
});
