// Listen addresses: HOST:PORT parsing and the loopback rule.
import { formatListenAddress, isLoopbackHost, parseListenAddress } from "../../../src/server";

describe("parseListenAddress", () => {
  it.each([
    ["127.0.0.1:50051", "127.0.0.1", 50051],
    ["127.0.0.1:0", "127.0.0.1", 0],
    ["[::1]:50051", "::1", 50051],
    ["localhost:8080", "localhost", 8080],
    ["0.0.0.0:1", "0.0.0.0", 1],
  ])("parses %s", (address, host, port) => {
    expect(parseListenAddress(address)).toEqual({ host, port });
  });

  it.each(["127.0.0.1", ":50051", "::1:50051", "[localhost]:1", "127.0.0.1:99999", "127.0.0.1:http", "[::1]"])(
    "refuses %s with a message showing the expected form",
    (address) => {
      expect(() => parseListenAddress(address)).toThrow(/HOST:PORT|brackets|above 65535/);
    },
  );

  it("formats IPv6 hosts in brackets", () => {
    expect(formatListenAddress({ host: "::1", port: 5 })).toBe("[::1]:5");
    expect(formatListenAddress({ host: "127.0.0.1", port: 5 })).toBe("127.0.0.1:5");
  });
});

describe("isLoopbackHost", () => {
  it.each(["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST", "::ffff:127.0.0.1"])("accepts %s", (h) => {
    expect(isLoopbackHost(h)).toBe(true);
  });
  it.each(["0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "example.com", "128.0.0.1"])("refuses %s", (h) => {
    expect(isLoopbackHost(h)).toBe(false);
  });
});
