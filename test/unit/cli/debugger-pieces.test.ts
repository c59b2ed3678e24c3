// The debugger CLI's pure pieces: watch ranges (the aligned slot covering a range, as Fuchsia's
// debug agent AlignRange), addresses and symbols, the hexdump, and aarch64 disassembly.
import { join } from "node:path";
import { UsageError } from "../../../src/cli/args";
import { loadSymbols, parseAddress, symbolize } from "../../../src/cli/address";
import { disasmAarch64, disasmX86, parseHexBytes } from "../../../src/cli/commands/read";
import { hexdump, toJson } from "../../../src/cli/format";
import { alignRange, splitRange } from "../../../src/cli/watch-range";

const r = (begin: number, end: number) => alignRange(BigInt(begin), end - begin);
const range = (from: number, to: number) => ({ address: BigInt(from), size: to - from });

describe("alignRange", () => {
  it("covers a range with the smallest aligned slot, or none (Fuchsia's AlignRange cases)", () => {
    expect(r(0x10, 0x10)).toBeUndefined();
    expect(r(0x11, 0x12)).toEqual(range(0x11, 0x12));
    expect(r(0x10, 0x12)).toEqual(range(0x10, 0x12));
    expect(r(0x11, 0x13)).toEqual(range(0x10, 0x14));
    expect(r(0x13, 0x15)).toEqual(range(0x10, 0x18));
    expect(r(0x15, 0x17)).toEqual(range(0x14, 0x18));
    expect(r(0x17, 0x19)).toBeUndefined();
    expect(r(0x11, 0x14)).toEqual(range(0x10, 0x14));
    expect(r(0x12, 0x15)).toEqual(range(0x10, 0x18));
    expect(r(0x16, 0x19)).toBeUndefined();
    expect(r(0x1a, 0x1d)).toEqual(range(0x18, 0x20));
    expect(r(0x11, 0x15)).toEqual(range(0x10, 0x18));
    expect(r(0x15, 0x19)).toBeUndefined();
    expect(r(0x1b, 0x20)).toEqual(range(0x18, 0x20));
    expect(r(0x11, 0x18)).toEqual(range(0x10, 0x18));
    expect(r(0x10, 0x18)).toEqual(range(0x10, 0x18));
    expect(r(0x11, 0x19)).toBeUndefined();
    expect(r(0x10, 0x19)).toBeUndefined();
  });

  it("keeps to the sizes a backend takes", () => {
    expect(alignRange(0x11n, 1, [4, 8])).toEqual({ address: 0x10n, size: 4 });
  });

  it("splits what no slot covers into aligned pieces", () => {
    expect(splitRange(0x16n, 4)).toEqual([
      { address: 0x16n, size: 2 },
      { address: 0x18n, size: 2 },
    ]);
    expect(splitRange(0x11n, 16)).toEqual([
      { address: 0x11n, size: 1 },
      { address: 0x12n, size: 2 },
      { address: 0x14n, size: 4 },
      { address: 0x18n, size: 8 },
      { address: 0x20n, size: 1 },
    ]);
  });
});

describe("addresses", () => {
  const symbols = loadSymbols(join(__dirname, "../../../guests/build/demo-x86_64.json"));
  it("takes hex, decimal and SYMBOL[+-OFFSET] (GVA, or GPA)", () => {
    expect(parseAddress("0x1000", undefined, false)).toBe(0x1000n);
    expect(parseAddress("4096", undefined, false)).toBe(4096n);
    expect(parseAddress("counter", symbols, false)).toBe(0xffffffff80107000n);
    expect(parseAddress("counter+8", symbols, false)).toBe(0xffffffff80107008n);
    expect(parseAddress("tick+0x10", symbols, true)).toBe(0x1010bfn);
    expect(parseAddress("counter-0x10", symbols, true)).toBe(0x106ff0n);
  });
  it("refuses what is not one, as a usage error naming the fix", () => {
    expect(() => parseAddress("0xzz", symbols, false)).toThrow(UsageError);
    expect(() => parseAddress("counter", undefined, false)).toThrow(/--symbols FILE or \$VMM_DEBUG_SYMBOLS/);
    expect(() => parseAddress("countr", symbols, false)).toThrow(/no symbol "countr"/);
    expect(() => parseAddress("0x10000000000000000", undefined, false)).toThrow(/outside/);
    expect(() => parseHexBytes("abc")).toThrow(UsageError);
    expect(parseHexBytes("de ad:be_ef")).toEqual(Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
  });
  it("names an address by the symbol at or before it", () => {
    expect(symbolize(0xffffffff801010afn, symbols)).toBe("tick");
    expect(symbolize(0xffffffff801010b6n, symbols)).toBe("tick+0x7");
    expect(symbolize(0x107008n, symbols, true)).toBe("counter+0x8");
    expect(symbolize(0x10n, symbols)).toBeUndefined();
  });
});

describe("output", () => {
  it("hexdumps like xxd, with ?? for unreadable bytes", () => {
    const data = Uint8Array.from([0x41, 0x42, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0x7e, 0x20]);
    expect(hexdump(0x1000n, data)).toBe("00001000: 4142 0001 0203 0405 0607 0809 0a0b 0c0d  AB..............\n00001010: 7e20                                     ~ \n");
    expect(hexdump(0x1000n, data.subarray(0, 4), [{ offset: 2, length: 2, reason: "GPA_UNMAPPED", metadata: {} }])).toBe(
      "00001000: 4142 ????                                AB??\n",
    );
  });
  it("writes JSON with bigints and bytes as hex", () => {
    expect(JSON.parse(toJson({ a: 1n << 63n, b: Buffer.from([1, 2]), c: Uint8Array.from([255]) }))).toEqual({ a: "0x8000000000000000", b: "0102", c: "ff" });
  });
});

describe("disassembly", () => {
  it("formats x86-64 with iced-x86", () => {
    const insns = disasmX86(Uint8Array.from([0x48, 0x8b, 0x07, 0xc3]), 0xffffffff801010afn, 10);
    expect(insns).toEqual([
      { address: 0xffffffff801010afn, length: 3, text: "mov rax,[rdi]" },
      { address: 0xffffffff801010b2n, length: 1, text: "ret" },
    ]);
    expect(disasmX86(Uint8Array.from([0x48, 0x8b, 0x07]), 0n, 1, "att")[0].text).toBe("mov (%rdi),%rax");
  });
  it("formats aarch64 with capstone", async () => {
    // nop; mov x0, xzr; ret — at a higher-half address (above 2^53).
    const code = Uint8Array.from([0x1f, 0x20, 0x03, 0xd5, 0xe0, 0x03, 0x1f, 0xaa, 0xc0, 0x03, 0x5f, 0xd6]);
    const insns = await disasmAarch64(code, 0xffff000040081000n, 10);
    expect(insns.map((i) => [i.address, i.text])).toEqual([
      [0xffff000040081000n, "nop"],
      [0xffff000040081004n, "mov x0, xzr"],
      [0xffff000040081008n, "ret"],
    ]);
  });
});
