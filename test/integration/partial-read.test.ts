// Partial reads (allow_partial) against the embedded machine: GVA ranges across an unmapped page,
// non-canonical addresses and GPAs past the end of RAM read as zero and are listed with the error
// a plain read gives; unary, streamed (ranges per chunk) and on the Session stream alike.
import { Status } from "nice-grpc";
import type { PartialRead, Session } from "../../src/client";
import { expectRpcError, startHarness, u64Bytes, type Harness } from "./harness";

const VM = "demo";
const KIB = 1024;
const RAM_END = 256n * 1024n * 1024n; // the embedded machine's default RAM: [0, 256 MiB)
/** A kernel page the demo guest does not use; the test unmaps it (GPA 0x50000 through the kernel's 4 KiB page table). */
const HOLE = 0xffff_ffff_8005_0000n;

describe("partial reads on the embedded machine", () => {
  let h: Harness;
  let session: Session;
  let pte: { gpa: bigint; value: bigint };

  beforeAll(async () => {
    // A small unary cap and chunk, so that streamed reads and chunk boundaries are cheap to reach.
    h = await startHarness({ maxReadBytes: 64 * KIB, streamChunkBytes: 4 * KIB });
    session = await h.client.attach(VM);
    await session.break();
    const t = await session.translateGva(0, HOLE);
    const last = t.levels[t.levels.length - 1];
    expect(last).toMatchObject({ name: "PTE", decision: "page" });
    pte = { gpa: last.entryGpa, value: last.entry };
    await session.writeMemory({ gpa: pte.gpa }, u64Bytes(0n));
    expect((await session.translateGva(0, HOLE)).mapped).toBe(false);
  });
  afterAll(async () => {
    if (pte) await session.writeMemory({ gpa: pte.gpa }, u64Bytes(pte.value)).catch(() => undefined);
    await session?.detach().catch(() => undefined);
    await h.close();
  });

  /** The bytes GPA reads give for [gpa, gpa+length). */
  const gpaBytes = (gpa: bigint, length: number) => h.client.readMemory(VM, { gpa }, length);

  it("mapped, unmapped, mapped GVA pages: the mapped bytes as GPA reads give them, zeros and one range for the hole", async () => {
    const start = HOLE - 0x800n;
    const r = await h.client.readMemoryPartial(VM, { gva: start, vp: 0 }, 0x2000);
    expect(r.unreadable).toEqual([{ offset: 0x800, length: 0x1000, reason: "GVA_NOT_MAPPED", metadata: { vp: "0", gva: "0xffffffff80050000" } }]);
    expect(r.data.length).toBe(0x2000);
    expect(r.data.subarray(0, 0x800)).toEqual(await gpaBytes(0x4f800n, 0x800));
    expect(r.data.subarray(0x800, 0x1800)).toEqual(new Uint8Array(0x1000));
    expect(r.data.subarray(0x1800)).toEqual(await gpaBytes(0x51000n, 0x800));
    // Without the option the same range fails as before, naming the first unmapped address.
    await expectRpcError(h.client.readMemory(VM, { gva: start, vp: 0 }, 0x2000), Status.FAILED_PRECONDITION, "GVA_NOT_MAPPED", { gva: "0xffffffff80050000" });
  });

  it("a GPA range across the end of RAM: the RAM bytes, then GPA_UNMAPPED naming the rest", async () => {
    const r = await h.client.readMemoryPartial(VM, { gpa: RAM_END - 0x100n }, 0x300);
    expect(r.unreadable).toEqual([{ offset: 0x100, length: 0x200, reason: "GPA_UNMAPPED", metadata: { gpa: "0x10000000", length: "512" } }]);
    expect(r.data.subarray(0, 0x100)).toEqual(await gpaBytes(RAM_END - 0x100n, 0x100));
    expect(r.data.subarray(0x100)).toEqual(new Uint8Array(0x200));
    await expectRpcError(h.client.readMemory(VM, { gpa: RAM_END - 0x100n }, 0x300), Status.OUT_OF_RANGE, "GPA_UNMAPPED");
    // Wholly outside RAM: all zeros, one range.
    const out = await h.client.readMemoryPartial(VM, { gpa: 1n << 40n }, 16);
    expect(out).toEqual({ data: new Uint8Array(16), unreadable: [{ offset: 0, length: 16, reason: "GPA_UNMAPPED", metadata: { gpa: "0x10000000000", length: "16" } }] });
  });

  it("a GVA mapped to a GPA past the end of RAM is GPA_UNMAPPED; a non-canonical GVA is GVA_NON_CANONICAL", async () => {
    // The kernel maps GPA 0..1 GiB with 2 MiB pages, past the 256 MiB of RAM.
    const r = await h.client.readMemoryPartial(VM, { gva: 0xffff_ffff_8fff_f000n, vp: 1 }, 0x2000);
    expect(r.data.subarray(0, 0x1000)).toEqual(await gpaBytes(RAM_END - 0x1000n, 0x1000));
    expect(r.unreadable).toEqual([{ offset: 0x1000, length: 0x1000, reason: "GPA_UNMAPPED", metadata: { gpa: "0x10000000", length: "4096" } }]);
    // The last page below the canonical hole is unmapped; the next one is not canonical.
    const edge = await h.client.readMemoryPartial(VM, { gva: 0x0000_7fff_ffff_f000n, vp: 0 }, 0x3000);
    expect(edge.data).toEqual(new Uint8Array(0x3000));
    expect(edge.unreadable).toEqual([
      { offset: 0, length: 0x1000, reason: "GVA_NOT_MAPPED", metadata: { vp: "0", gva: "0x7ffffffff000" } },
      { offset: 0x1000, length: 0x2000, reason: "GVA_NON_CANONICAL", metadata: { vp: "0", gva: "0x800000000000" } },
    ]);
  });

  it("a readable range has no unreadable ranges; a zero-length read at an unreadable address lists one empty range", async () => {
    const ok = await h.client.readMemoryPartial(VM, { gva: HOLE + 0x1000n, vp: 0 }, 64);
    expect(ok).toEqual({ data: await gpaBytes(0x51000n, 64), unreadable: [] });
    const probe = await h.client.readMemoryPartial(VM, { gva: HOLE, vp: 0 }, 0);
    expect(probe).toEqual({ data: new Uint8Array(0), unreadable: [{ offset: 0, length: 0, reason: "GVA_NOT_MAPPED", metadata: { vp: "0", gva: "0xffffffff80050000" } }] });
  });

  it("validation still fails the call: a VP out of range, a read over the unary cap, a missing address", async () => {
    await expectRpcError(h.client.readMemoryPartial(VM, { gva: HOLE, vp: 5 }, 16), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
    await expectRpcError(h.client.rpc.debug.readMemory({ vm: VM, address: { kind: { case: "gpa", value: 0n } }, length: 65n * 1024n, allowPartial: true }), Status.RESOURCE_EXHAUSTED, "READ_TOO_LARGE");
    await expectRpcError(h.client.rpc.debug.readMemory({ vm: VM, length: 16n, allowPartial: true }), Status.INVALID_ARGUMENT, "MISSING_FIELD");
  });

  it("streamed: each chunk lists its own ranges (offsets from the start); the SDK joins them", async () => {
    // 4 KiB chunks starting 0x800 before the hole: the hole straddles chunks 0 and 1.
    const start = HOLE - 0x800n;
    const chunks = [];
    for await (const c of h.client.rpc.debug.readMemoryStream({ vm: VM, address: { kind: { case: "gva", value: { vp: 0, gva: start } } }, length: 0x3000n, allowPartial: true })) {
      chunks.push({ offset: c.offset, length: c.data.length, unreadable: c.unreadable.map((u) => [u.offset, u.length, u.reason?.reason, u.reason?.domain, u.reason?.metadata.gva]) });
    }
    expect(chunks).toEqual([
      { offset: 0n, length: 0x1000, unreadable: [[0x800n, 0x800n, "GVA_NOT_MAPPED", "vmm.debug", "0xffffffff80050000"]] },
      { offset: 0x1000n, length: 0x1000, unreadable: [[0x1000n, 0x800n, "GVA_NOT_MAPPED", "vmm.debug", "0xffffffff80050800"]] },
      { offset: 0x2000n, length: 0x1000, unreadable: [] },
    ]);
    // Longer than the unary cap: the SDK streams, and the answer is the unary one's, only longer.
    const long = await h.client.readMemoryPartial(VM, { gva: HOLE - 0x8000n, vp: 0 }, 96 * KIB);
    expect(long.unreadable).toEqual([{ offset: 0x8000, length: 0x1000, reason: "GVA_NOT_MAPPED", metadata: { vp: "0", gva: "0xffffffff80050000" } }]);
    expect(long.data.subarray(0, 0x8000)).toEqual(await gpaBytes(0x48000n, 0x8000));
    expect(long.data.subarray(0x9000)).toEqual(await gpaBytes(0x51000n, 96 * KIB - 0x9000));
    // A GPA range past the end of RAM over many chunks: one range, its metadata naming all of it (as unary would).
    const past = await h.client.readMemoryPartial(VM, { gpa: RAM_END - 0x100n }, 96 * KIB);
    expect(past.unreadable).toEqual([{ offset: 0x100, length: 96 * KIB - 0x100, reason: "GPA_UNMAPPED", metadata: { gpa: "0x10000000", length: String(96 * KIB - 0x100) } }]);
    expect(past.data.subarray(0, 0x100)).toEqual(await gpaBytes(RAM_END - 0x100n, 0x100));
    expect(past.data.subarray(0x100)).toEqual(new Uint8Array(96 * KIB - 0x100));
    const pastUnary = await h.client.readMemoryPartial(VM, { gpa: RAM_END - 0x100n }, 60 * KIB);
    expect(pastUnary.unreadable).toEqual([{ offset: 0x100, length: 60 * KIB - 0x100, reason: "GPA_UNMAPPED", metadata: { gpa: "0x10000000", length: String(60 * KIB - 0x100) } }]);
    // Without the option the stream fails at once, as before.
    await expectRpcError(h.client.readMemoryStream(VM, { gva: HOLE - 0x8000n, vp: 0 }, 96 * KIB), Status.FAILED_PRECONDITION, "GVA_NOT_MAPPED");
  });

  it("the Session stream answers what unary calls answer, short and streamed", async () => {
    const cases: [Parameters<Session["readMemoryPartial"]>[0], number][] = [
      [{ gva: HOLE - 0x800n, vp: 0 }, 0x2000],
      [{ gpa: RAM_END - 0x100n }, 0x300],
      [{ gpa: RAM_END - 0x100n }, 96 * KIB],
      [{ gva: HOLE - 0x8000n, vp: 0 }, 96 * KIB],
      [{ gva: 0x0000_7fff_ffff_f000n, vp: 1 }, 0x3000],
    ];
    for (const [address, length] of cases) {
      const unary: PartialRead = await h.client.readMemoryPartial(VM, address, length);
      expect(await session.readMemoryPartial(address, length)).toEqual(unary);
    }
    await expectRpcError(session.readMemoryPartial({ gva: HOLE, vp: 9 }, 1), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
  });
});
