// The fuzzer's own parts: the wire parser writes back exactly what it read, request generation is
// reproducible from the seed, and mutated requests stay within the size the fuzzer allows.
import { Random } from "./random";
import { createTargets, generateRequest, type GenContext } from "./requests";
import { hex, parseWire, serializeWire } from "./wire-mutator";
import { create } from "@bufbuild/protobuf";
import { DebuggerVpStateSchema, X86VpStateSchema, SegmentRegisterSchema } from "../../gen/vmm/debug/v1/types_pb";

const segment = create(SegmentRegisterSchema, { base: 0n, limit: 0xffff_ffff, selector: 0x10, attributes: 0xc093 });
const x86 = create(DebuggerVpStateSchema, {
  arch: {
    case: "x8664",
    value: create(X86VpStateSchema, { gp: Array.from({ length: 16 }, (_, i) => BigInt(i) << 40n), rip: 0xffff_ffff_8010_1000n, rflags: 2n, es: segment, cs: segment, ss: segment, ds: segment, fs: segment, gs: segment }),
  },
});
const ctx: GenContext = {
  vm: "fuzz",
  streamVm: "stream",
  session: "0123456789abcdef0123456789abcdef",
  streamSession: "fedcba9876543210fedcba9876543210",
  vpCount: 2,
  vpStates: [x86, x86],
  scratch: 0x200000n,
  addresses: [0x200000n, 0xffff_ffff_8010_7000n, 1n << 63n],
  maxNameLength: 16384,
  dataGva: 0xffff_ffff_8010_7000n,
  codeGva: 0xffff_ffff_8010_10afn,
};

describe("fuzz request generation", () => {
  const targets = createTargets();

  it("parses every target's valid request into wire fields and writes the same bytes back", () => {
    const rng = new Random(1);
    for (const t of targets) {
      for (let i = 0; i < 20; i++) {
        const bytes = t.build(rng, ctx);
        expect({ rpc: `${t.lane} ${t.rpc}`, hex: hex(serializeWire(parseWire(bytes, t.schema))) }).toEqual({ rpc: `${t.lane} ${t.rpc}`, hex: hex(bytes) });
      }
    }
  });

  it("generates request i of a seed the same way every time", () => {
    for (let i = 0; i < 300; i++) {
      const a = generateRequest(42, i, targets, ctx);
      const b = generateRequest(42, i, targets, ctx);
      expect([a.target.rpc, a.mutations, hex(a.bytes)]).toEqual([b.target.rpc, b.mutations, hex(b.bytes)]);
    }
  });

  it("mutates every request and keeps it within 6 MiB + 64 bytes", () => {
    for (let i = 0; i < 3000; i++) {
      const r = generateRequest(7, i, targets, ctx);
      expect(r.bytes.length).toBeLessThanOrEqual(6 * 1024 * 1024 + 64);
      expect(r.mutations.length).toBeGreaterThan(0);
    }
  });
});
