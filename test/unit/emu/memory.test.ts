import { VmmError } from "../../../src/core";
import { GuestMemory } from "../../../src/emu/memory";

describe("GuestMemory", () => {
  const memory = GuestMemory.allocate([
    { gpa: 0, size: 0x2000, name: "low" },
    { gpa: 0x10000, size: 0x1000, name: "high" },
  ]);
  const reason = (fn: () => unknown) => {
    try {
      fn();
      return "ok";
    } catch (e) {
      if (e instanceof VmmError) return e.reason;
      throw e;
    }
  };

  it("checks a zero-length range as its first byte and gives no views", () => {
    expect(memory.pieces(0x1fffn, 0)).toEqual([]);
    expect(memory.read(0x10000n, 0)).toEqual(new Uint8Array(0));
    for (const gpa of [0x2000n, 0x11000n, 1n << 52n, 0xffff_ffff_ffff_ffffn]) {
      expect([gpa, reason(() => memory.pieces(gpa, 0))]).toEqual([gpa, reason(() => memory.pieces(gpa, 1))]);
      expect([gpa, reason(() => memory.write(gpa, new Uint8Array(0)))]).toEqual([gpa, "GPA_UNMAPPED"]);
    }
  });

  it("splits a range over adjacent regions only, naming the whole range when a byte is not RAM", () => {
    expect(memory.pieces(0x1ff0n, 0x10).map((p) => p.length)).toEqual([0x10]);
    expect(reason(() => memory.pieces(0x1ff0n, 0x11))).toBe("GPA_UNMAPPED");
  });
});
