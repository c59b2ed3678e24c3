// Packet encoding: checksums, escaping of $ # } *, binary escaping, RLE round trips.
import {
  bytesToLatin1,
  checksum,
  createFramer,
  encodePacket,
  escapeBinary,
  escapedLength,
  fitEscaped,
  latin1ToBytes,
  unescapeBinary,
} from "../../../src/rsp";

const text = (b: Uint8Array): string => bytesToLatin1(b);

describe("encodePacket", () => {
  it("frames a payload with its two-digit lower-case checksum", () => {
    expect(text(encodePacket("OK"))).toBe("$OK#9a");
    expect(text(encodePacket(""))).toBe("$#00");
    expect(text(encodePacket("qSupported:multiprocess+"))).toMatch(/^\$qSupported:multiprocess\+#[0-9a-f]{2}$/);
  });

  it("escapes $ # } * as } then the byte xor 0x20, and sums the escaped bytes", () => {
    const out = text(encodePacket("a$b#c}d*"));
    expect(out.slice(0, -3)).toBe("$a}\x04b}\x03c}]d}\x0a");
    expect(out.slice(-2)).toBe(checksum(latin1ToBytes("a}\x04b}\x03c}]d}\x0a")).toString(16).padStart(2, "0"));
  });

  it("run-length encodes long runs when asked, never with a # or $ count", () => {
    const payload = "1" + "0".repeat(300) + "2" + "a".repeat(7) + "b".repeat(8) + "c".repeat(14);
    const packet = encodePacket(payload, { rle: true });
    expect(packet.length).toBeLessThan(40);
    const body = text(packet).slice(1, -3);
    for (let i = body.indexOf("*"); i >= 0; i = body.indexOf("*", i + 1)) {
      expect(["#", "$", "*", "}"]).not.toContain(body[i + 1]);
    }
    const [event] = createFramer().push(packet);
    expect(event).toEqual({ type: "packet", data: latin1ToBytes(payload) });
  });

  it("round-trips runs of every length from 1 to 200 with RLE", () => {
    for (let n = 1; n <= 200; n++) {
      const payload = "x" + "7".repeat(n) + "}".repeat(n % 9) + "y";
      const [event] = createFramer().push(encodePacket(payload, { rle: true }));
      expect(event).toEqual({ type: "packet", data: latin1ToBytes(payload) });
    }
  });

  it("refuses characters that are not bytes", () => {
    expect(() => encodePacket("€")).toThrow(RangeError);
  });
});

describe("binary escaping", () => {
  const data = Uint8Array.from([0x00, 0x23, 0x24, 0x7d, 0x2a, 0x03, 0xff]);

  it("escapes and unescapes X-packet data", () => {
    const escaped = escapeBinary(data);
    expect(Array.from(escaped)).toEqual([0x00, 0x7d, 0x03, 0x7d, 0x04, 0x7d, 0x5d, 0x7d, 0x0a, 0x03, 0xff]);
    expect(unescapeBinary(escaped)).toEqual(data);
    expect(escapedLength(data)).toBe(escaped.length);
  });

  it("returns plain data as is", () => {
    const plain = Uint8Array.of(1, 2, 3);
    expect(escapeBinary(plain)).toBe(plain);
  });

  it("refuses a trailing lone }", () => {
    expect(() => unescapeBinary(Uint8Array.of(0x41, 0x7d))).toThrow(RangeError);
  });

  it("fits as many bytes as the escaped budget allows", () => {
    expect(fitEscaped(data, 0, 3)).toBe(2); // 00 (1) + 23 (2)
    expect(fitEscaped(data, 0, 2)).toBe(1);
    expect(fitEscaped(data, 5, 100)).toBe(2);
    expect(fitEscaped(data, 0, 1000)).toBe(data.length);
  });
});
