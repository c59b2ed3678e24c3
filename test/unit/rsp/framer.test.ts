// The framer: packets across any chunk split, checksums, escapes, RLE, acks and the interrupt byte.
import {
  ChecksumMismatch,
  type FrameEvent,
  MalformedChecksum,
  MalformedEscape,
  MalformedRle,
  PacketTooLarge,
  type RspFrameError,
  UnterminatedPacket,
  bytesToLatin1,
  createFramer,
  encodePacket,
  latin1ToBytes,
} from "../../../src/rsp";

const enc = (s: string): Uint8Array => latin1ToBytes(s);

/** `$payload#xx` with the checksum computed over the bytes exactly as given (no escaping). */
function raw(body: string, sum?: number): string {
  let s = 0;
  for (const c of enc(body)) s = (s + c) & 0xff;
  return `$${body}#${(sum ?? s).toString(16).padStart(2, "0")}`;
}

function summarise(events: FrameEvent[]): string[] {
  return events.map((e) => {
    switch (e.type) {
      case "packet":
      case "notification":
        return `${e.type}:${bytesToLatin1(e.data)}`;
      case "error":
        return `error:${e.error.kind}`;
      default:
        return e.type;
    }
  });
}

/** The error of an error event (throws otherwise). */
function errorOf(event: FrameEvent | undefined): RspFrameError {
  if (event?.type !== "error") throw new Error(`expected an error event, got ${event?.type}`);
  return event.error;
}

/** Feeds `input` split at the given offsets. */
function feedSplit(input: Uint8Array, cuts: number[]): FrameEvent[] {
  const f = createFramer();
  const events: FrameEvent[] = [];
  let prev = 0;
  for (const cut of [...cuts, input.length]) {
    events.push(...f.push(input.subarray(prev, cut)));
    prev = cut;
  }
  return events;
}

describe("RspFramer", () => {
  it("yields a packet's payload and checks its checksum", () => {
    const f = createFramer();
    expect(summarise(f.push(enc("$OK#9a")))).toEqual(["packet:OK"]);
    expect(f.idle).toBe(true);
  });

  it("reports acks, nacks and the interrupt byte between packets", () => {
    const f = createFramer();
    expect(summarise(f.push(enc("+-\x03+$T05#b9-")))).toEqual(["ack", "nack", "interrupt", "ack", "packet:T05", "nack"]);
  });

  it("ignores line noise between packets", () => {
    expect(summarise(createFramer().push(enc("xyz\r\n$OK#9a!")))).toEqual(["packet:OK"]);
  });

  it("treats 0x03, + and - inside a packet as data", () => {
    expect(summarise(createFramer().push(enc(raw("a\x03+-b"))))).toEqual(["packet:a\x03+-b"]);
  });

  it("frames the same stream identically under every two-way and many three-way chunk splits", () => {
    const stream = enc("+" + raw("T05thread:p01.01;") + "-" + raw("a}]b}\x03c}\x0ad0* e") + "\x03" + raw("OK"));
    const whole = summarise(feedSplit(stream, []));
    expect(whole).toEqual(["ack", "packet:T05thread:p01.01;", "nack", "packet:a}b#c*d0000e", "interrupt", "packet:OK"]);
    for (let a = 0; a <= stream.length; a++) {
      expect(summarise(feedSplit(stream, [a]))).toEqual(whole);
      for (let b = a; b <= stream.length; b += 7) expect(summarise(feedSplit(stream, [a, b]))).toEqual(whole);
    }
  });

  it("frames a stream fed one byte at a time", () => {
    const f = createFramer();
    const events: FrameEvent[] = [];
    for (const b of enc(raw("m1122") + raw("l"))) {
      const e = f.feed(b);
      if (e) events.push(e);
    }
    expect(summarise(events)).toEqual(["packet:m1122", "packet:l"]);
  });

  it("reports a checksum mismatch with the computed and the received values, then resyncs", () => {
    const f = createFramer();
    const events = f.push(enc("$OK#00$OK#9a"));
    expect(summarise(events)).toEqual(["error:checksum-mismatch", "packet:OK"]);
    const err = errorOf(events[0]);
    if (!(err instanceof ChecksumMismatch)) throw new Error("expected ChecksumMismatch");
    expect(err.expected).toBe(0x9a);
    expect(err.actual).toBe(0x00);
    expect(err.message).toMatch(/0x9a.*0x00/);
  });

  it("accepts upper-case checksum digits", () => {
    expect(summarise(createFramer().push(enc("$OK#9A")))).toEqual(["packet:OK"]);
  });

  it("reports a non-hex checksum digit as MalformedChecksum", () => {
    const events = createFramer().push(enc("$OK#9z+"));
    expect(events[0]).toMatchObject({ type: "error" });
    expect(errorOf(events[0])).toBeInstanceOf(MalformedChecksum);
    expect(summarise(events)).toEqual(["error:malformed-checksum", "ack"]);
  });

  it("unescapes } escapes (byte xor 0x20)", () => {
    expect(summarise(createFramer().push(enc(raw("}\x03}\x04}]}\x0a"))))).toEqual(["packet:#$}*"]);
  });

  it("expands run-length encoding: the count byte minus 29 extra copies", () => {
    // "0* " = '0' plus 3 more; '"' (34) = 5 more; '~' (126) = 97 more.
    expect(summarise(createFramer().push(enc(raw("0* ")))) ).toEqual(["packet:0000"]);
    expect(summarise(createFramer().push(enc(raw('x*"y'))))).toEqual(["packet:xxxxxxy"]);
    const long = createFramer().push(enc(raw("f*~")));
    expect(summarise(long)).toEqual(["packet:" + "f".repeat(98)]);
  });

  it("repeats the unescaped byte when a run follows an escape", () => {
    expect(summarise(createFramer().push(enc(raw("}]* "))))).toEqual(["packet:}}}}"]);
  });

  it("reports malformed run-length encoding and keeps going", () => {
    const first = createFramer().push(enc(raw("*  ") + raw("OK")));
    expect(summarise(first)).toEqual(["error:malformed-rle", "packet:OK"]);
    expect(errorOf(first[0])).toBeInstanceOf(MalformedRle);
    expect(summarise(createFramer().push(enc(raw("a*\x10"))))).toEqual(["error:malformed-rle"]);
    expect(summarise(createFramer().push(enc(raw("a*"))))).toEqual(["error:malformed-rle"]);
  });

  it("reports an escape cut by the terminator as MalformedEscape", () => {
    const events = createFramer().push(enc(raw("ab}")));
    expect(errorOf(events[0])).toBeInstanceOf(MalformedEscape);
  });

  it("drops a packet interrupted by a new '$' and frames the new one", () => {
    const events = createFramer().push(enc("$T05thr" + raw("OK")));
    expect(summarise(events)).toEqual(["error:unterminated-packet", "packet:OK"]);
    const err = errorOf(events[0]);
    expect(err).toBeInstanceOf(UnterminatedPacket);
    expect((err as UnterminatedPacket).partialLength).toBe(6);
  });

  it("refuses payloads beyond maxPacketSize without buffering them", () => {
    const f = createFramer({ maxPacketSize: 8 });
    const events = f.push(enc(raw("0123456789") + raw("0123")));
    expect(summarise(events)).toEqual(["error:packet-too-large", "packet:0123"]);
    const err = errorOf(events[0]);
    expect(err).toBeInstanceOf(PacketTooLarge);
    expect((err as PacketTooLarge).limit).toBe(8);
  });

  it("can skip checksum verification", () => {
    expect(summarise(createFramer({ verifyChecksums: false }).push(enc("$OK#00")))).toEqual(["packet:OK"]);
  });

  it("frames % notifications apart from packets", () => {
    const body = "Stop:T05";
    let s = 0;
    for (const c of enc(body)) s = (s + c) & 0xff;
    expect(summarise(createFramer().push(enc(`%${body}#${s.toString(16)}`)))).toEqual(["notification:Stop:T05"]);
  });

  it("says + after a packet and - after an error, and nothing in no-ack mode", () => {
    const f = createFramer();
    const [ok, bad] = f.push(enc("$OK#9a$OK#00"));
    expect(bytesToLatin1(f.ackFor(ok)!)).toBe("+");
    expect(bytesToLatin1(f.ackFor(bad)!)).toBe("-");
    expect(f.ackFor({ type: "ack" })).toBeUndefined();
    f.noAck = true;
    expect(f.ackFor(ok)).toBeUndefined();
    expect(f.ackFor(bad)).toBeUndefined();
    expect(createFramer({ noAck: true }).ackFor(ok)).toBeUndefined();
  });

  it("round-trips every byte value through encodePacket", () => {
    const all = new Uint8Array(256).map((_, i) => i);
    for (const rle of [false, true]) {
      const events = createFramer().push(encodePacket(all, { rle }));
      expect(events).toHaveLength(1);
      expect(events[0]).toEqual({ type: "packet", data: all });
    }
  });
});
