// Software breakpoints on the embedded machine, through the SDK over both transports (unary RPCs
// and the Session stream): any number armed, hit counts, one-shot, list and remove, per-VP and
// GPA breakpoints, batched steps, guest memory never patched, the guest's own INT3 untouched,
// Detach clears them, and one audit line per insert and remove.
import { Status } from "nice-grpc";
import type { Session, SoftwareBreakpoint, Transport } from "../../src/client";
import { expectRpcError, image, readU64, startHarness, sym, waitFor, x86, type Harness } from "./harness";

const VM = "demo";

/** Bytes of the guest image at `gpa` (what guest memory held before anyone wrote it). */
function imageBytes(gpa: bigint, length: number): Uint8Array {
  const at = Number(gpa - image.loadGpa);
  return image.bytes.subarray(at, at + length);
}

/** 1,000 addresses no VP executes: 4-byte steps through VP 0's stack page, half by GVA, half by GPA. */
function idleAddresses(): ({ gva: bigint } | { gpa: bigint })[] {
  const stacks = sym("stacks");
  return Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? { gva: stacks.gva + BigInt(4 * i) } : { gpa: stacks.gpa + BigInt(4 * i) }));
}

describe("software breakpoints (embedded machine)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vmIds: [VM], vpCount: 2 });
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(async () => {
    // No test depends on the one before it: whatever a test left attached is released by now.
    await waitFor(async () => (await h.client.getVm(VM)).attached === undefined, 10_000, "no session left");
  });

  /** A session on a stopped VM (the Break's stop already reported). */
  async function attachStopped(transport: Transport): Promise<Session> {
    const s = await h.client.attach(VM, { transport });
    await s.break();
    expect(await s.resume()).toEqual({ kind: "break" });
    return s;
  }

  const counter = () => readU64(h.vms[0], sym("counter").gpa);

  describe.each<Transport>(["unary", "stream"])("over %s", (transport) => {
    it("arms 1,000 and more, stops before the instruction on each hit, and counts the hits", async () => {
      const s = await attachStopped(transport);
      try {
        const ids: number[] = [];
        for (const address of idleAddresses()) ids.push((await s.insertSoftwareBreakpoint(address)).id);
        // Ids count up from 1 and are never reused on a VM (earlier tests used some).
        expect(ids).toEqual(Array.from({ length: 1000 }, (_, i) => ids[0] + i));
        const tick = sym("tick").gva;
        const { id, existing } = await s.insertSoftwareBreakpoint({ gva: tick, vp: 0 });
        expect({ id, existing }).toEqual({ id: ids[0] + 1000, existing: false });
        for (let i = 0; i < 5; i++) {
          expect(await s.resume()).toEqual({ kind: "softwareBreakpoint", vp: 0, address: tick, id });
          expect((await x86(h.client, VM, 0)).rip).toBe(tick);
        }
        const list = await s.listSoftwareBreakpoints();
        expect(list).toHaveLength(1001);
        expect(list.map((b) => b.id)).toEqual([...ids, id]);
        expect(list[1000]).toEqual<SoftwareBreakpoint>({ id, address: { gva: tick, vp: 0 }, oneShot: false, hitCount: 5 });
        expect(list.slice(0, 1000).every((b) => b.hitCount === 0)).toBe(true);
        expect(list.slice(0, 2).map((b) => b.address)).toEqual(idleAddresses().slice(0, 2));
      } finally {
        await s.detach();
      }
    });

    it("does not hit again when resuming from the breakpoint: the instruction runs first", async () => {
      const s = await attachStopped(transport);
      try {
        await s.insertSoftwareBreakpoint({ gva: sym("tick").gva, vp: 0 });
        await s.resume();
        const first = await counter(); // tick has not incremented it yet
        await s.resume();
        expect(await counter()).toBe(first + 1n); // one whole pass through the loop in between
        // A single step from the breakpoint executes its instruction too.
        expect(await s.step(0)).toEqual({ kind: "singleStep", vp: 0 });
        expect((await x86(h.client, VM, 0)).rip).toBe(sym("tick").gva + 3n); // mov (%rdi), %rax is 3 bytes
      } finally {
        await s.detach();
      }
    });

    it("removes a one-shot breakpoint when it fires ('run to here')", async () => {
      const s = await attachStopped(transport);
      try {
        const loop = sym("main_loop").gva;
        const { id } = await s.insertSoftwareBreakpoint({ gva: loop, vp: 1 }, { oneShot: true });
        expect(await s.listSoftwareBreakpoints()).toEqual([{ id, address: { gva: loop, vp: 1 }, oneShot: true, hitCount: 0 }]);
        expect(await s.resume()).toEqual({ kind: "softwareBreakpoint", vp: 1, address: loop, id });
        expect(await s.listSoftwareBreakpoints()).toEqual([]);
        await expectRpcError(s.removeSoftwareBreakpoint(id), Status.NOT_FOUND, "SOFTWARE_BREAKPOINT_NOT_FOUND", { id: String(id) });
      } finally {
        await s.detach();
      }
    });

    it("lists, removes, and refuses to remove an id that is not armed", async () => {
      const s = await attachStopped(transport);
      try {
        const a = await s.insertSoftwareBreakpoint(sym("tick").gva);
        const b = await s.insertSoftwareBreakpoint({ gpa: sym("main_loop").gpa });
        // The same address again answers the same breakpoint.
        expect(await s.insertSoftwareBreakpoint(sym("tick").gva, { oneShot: true })).toEqual({ id: a.id, existing: true });
        await s.removeSoftwareBreakpoint(a.id);
        expect((await s.listSoftwareBreakpoints()).map((x) => x.id)).toEqual([b.id]);
        await expectRpcError(s.removeSoftwareBreakpoint(a.id), Status.NOT_FOUND, "SOFTWARE_BREAKPOINT_NOT_FOUND");
        await expectRpcError(s.removeSoftwareBreakpoint(987_654), Status.NOT_FOUND, "SOFTWARE_BREAKPOINT_NOT_FOUND", { id: "987654" });
        // With the breakpoint at tick gone, the VM runs to main_loop's (by GPA) instead.
        expect(await s.resume()).toMatchObject({ kind: "softwareBreakpoint", address: sym("main_loop").gva, id: b.id });
      } finally {
        await s.detach();
      }
    });

    it("stops a batched step before the breakpoint's instruction", async () => {
      const s = await attachStopped(transport);
      try {
        const { id } = await s.insertSoftwareBreakpoint({ gva: sym("tick").gva, vp: 0 });
        const r = await s.step(0, { count: 100_000, trace: "pc" });
        expect(r.stop).toEqual({ kind: "softwareBreakpoint", vp: 0, address: sym("tick").gva, id });
        expect(r.executed).toBeLessThan(100_000);
        expect(r.pcs[r.executed - 1]).toBe(sym("tick").gva);
        // The next batch steps off it: its first instruction is the breakpoint's.
        const next = await s.step(0, { count: 3, trace: "pc" });
        expect({ executed: next.executed, stop: next.stop }).toEqual({ executed: 3, stop: undefined });
      } finally {
        await s.detach();
      }
    });
  });

  it("never patches guest memory: reads by GVA and GPA see the guest's bytes at an armed breakpoint", async () => {
    const s = await attachStopped("stream");
    try {
      const tick = sym("tick");
      await s.insertSoftwareBreakpoint(tick.gva);
      await s.insertSoftwareBreakpoint({ gpa: tick.gpa + 3n });
      expect(await s.resume()).toMatchObject({ kind: "softwareBreakpoint", address: tick.gva });
      const original = imageBytes(tick.gpa, 16);
      expect(await s.readMemory({ gva: tick.gva }, 16)).toEqual(original);
      expect(await s.readMemory({ gpa: tick.gpa }, 16)).toEqual(original);
      expect((await s.readMany([{ address: { gpa: tick.gpa + 3n }, length: 1 }]))[0]).toEqual({ data: original.subarray(3, 4) });
    } finally {
      await s.detach();
    }
  });

  it("lets a guest's own INT3 go to the guest's #BP handler", async () => {
    const s = await attachStopped("stream");
    // On the embedded machine the demo guest keeps the loader's GDT at linear 0x500 and then
    // unmaps it with the identity map, so delivering any exception would triple-fault: map the
    // first GiB again (a spare page as PDPT) while the test needs it, and put it all back after.
    const spare = 0x800_0000n;
    const saved = await s.getVpState(0);
    if (saved.arch !== "x86_64") throw new Error("x86 expected");
    const pml4 = saved.state.cr3 & ~0xfffn;
    const oldPml4 = await s.readMemory({ gpa: pml4 }, 8);
    const oldSpare = await s.readMemory({ gpa: spare }, 8);
    const u64 = (v: bigint) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v, true);
      return b;
    };
    try {
      await s.writeMemory({ gpa: spare }, u64(0x83n)); // 1 GiB page at GPA 0, present, writable
      await s.writeMemory({ gpa: pml4 }, u64(spare | 3n));
      // An INT3 in the padding at the end of the kernel's text page; VP 0 jumps there.
      const int3 = sym("text_end").gva - 0x10n;
      const old = await s.readMemory({ gva: int3, vp: 0 }, 1);
      await s.writeMemory({ gva: int3, vp: 0 }, Uint8Array.of(0xcc));
      await s.setVpState(0, { arch: "x86_64", state: { ...saved.state, rip: int3 } });
      // The guest's handler for vector 3 (its IDT stub), by physical address.
      const stub = sym("exception_stubs");
      const { id } = await s.insertSoftwareBreakpoint({ gpa: stub.gpa + 3n * 16n });
      expect(await s.resume()).toEqual({ kind: "softwareBreakpoint", vp: 0, address: stub.gva + 3n * 16n, id });
      // The CPU delivered #BP: the return address on the handler's stack is just past the INT3.
      const state = await x86(h.client, VM, 0);
      const frame = await s.readMemory({ gva: state.gp[4], vp: 0 }, 8);
      expect(new DataView(frame.buffer, frame.byteOffset).getBigUint64(0, true)).toBe(int3 + 1n);
      await s.removeSoftwareBreakpoint(id);
      await s.writeMemory({ gva: int3, vp: 0 }, old);
    } finally {
      await s.writeMemory({ gpa: pml4 }, oldPml4);
      await s.writeMemory({ gpa: spare }, oldSpare);
      await s.setVpState(0, saved); // also drops VP 0's TLB
      await s.detach();
    }
    const before = await counter();
    await waitFor(async () => (await counter()) > before, 10_000, "VP 0 counts again");
  });

  it("stops only the VP a breakpoint names, and any VP for one without a VP", async () => {
    const s = await attachStopped("unary");
    try {
      const tick = sym("tick").gva;
      const { id } = await s.insertSoftwareBreakpoint({ gva: tick, vp: 1 });
      for (let i = 0; i < 3; i++) expect(await s.resume()).toEqual({ kind: "softwareBreakpoint", vp: 1, address: tick, id });
      await s.removeSoftwareBreakpoint(id);
      // One for every VP: each VP stops there (a resume lets VP 0 run first, so step VP 1 alone).
      const every = await s.insertSoftwareBreakpoint(tick);
      expect(await s.resume()).toEqual({ kind: "softwareBreakpoint", vp: 0, address: tick, id: every.id });
      expect((await s.step(1, { count: 100_000 })).stop).toEqual({ kind: "softwareBreakpoint", vp: 1, address: tick, id: every.id });
      expect((await s.listSoftwareBreakpoints())[0].hitCount).toBe(2);
    } finally {
      await s.detach();
    }
  });

  it("refuses bad inserts before anything changes", async () => {
    const s = await attachStopped("stream");
    try {
      await expectRpcError(s.insertSoftwareBreakpoint({ gva: sym("tick").gva, vp: 2 }), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
      await expectRpcError(s.insertSoftwareBreakpoint({ gpa: 0x4000_0000_0000n }), Status.OUT_OF_RANGE, "GPA_UNMAPPED");
      expect(await s.listSoftwareBreakpoints()).toEqual([]);
      const raw = h.client.rpc.debug;
      await expectRpcError(raw.insertSoftwareBreakpoint({ vm: VM, sessionId: s.id }), Status.INVALID_ARGUMENT, "MISSING_FIELD");
      await expectRpcError(
        raw.insertSoftwareBreakpoint({ vm: VM, sessionId: s.id, address: {} }),
        Status.INVALID_ARGUMENT,
        "MISSING_FIELD",
        { field: "address.kind" },
      );
      const tick = { kind: { case: "gva" as const, value: { gva: sym("tick").gva } } };
      await expectRpcError(raw.insertSoftwareBreakpoint({ vm: VM, address: tick }), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
      expect(await s.listSoftwareBreakpoints()).toEqual([]);
    } finally {
      await s.detach();
    }
  });

  it("refuses insert and remove while the VM runs (VM_RUNNING); list works", async () => {
    const s = await h.client.attach(VM, { transport: "unary" });
    try {
      expect((await h.client.getVm(VM)).runState).toBe("running");
      await expectRpcError(s.insertSoftwareBreakpoint(sym("tick").gva), Status.FAILED_PRECONDITION, "VM_RUNNING");
      await expectRpcError(s.removeSoftwareBreakpoint(1), Status.FAILED_PRECONDITION, "VM_RUNNING");
      expect(await s.listSoftwareBreakpoints()).toEqual([]);
      expect(await h.client.rpc.debug.listSoftwareBreakpoints({ vm: VM })).toMatchObject({ breakpoints: [] });
    } finally {
      await s.detach();
    }
  });

  it("Detach removes every software breakpoint and the VM runs on", async () => {
    for (const transport of ["unary", "stream"] as const) {
      const s = await attachStopped(transport);
      await s.insertSoftwareBreakpoint(sym("tick").gva);
      await s.insertSoftwareBreakpoint({ gpa: sym("main_loop").gpa }, { oneShot: true });
      expect(await s.listSoftwareBreakpoints()).toHaveLength(2);
      if (transport === "stream") await s.close(); // the stream's end is a detach too
      else await s.detach();
      await waitFor(async () => (await h.client.getVm(VM)).attached === undefined, 10_000, "detached");
      expect((await h.client.rpc.debug.listSoftwareBreakpoints({ vm: VM })).breakpoints).toEqual([]);
      const before = await counter();
      await waitFor(async () => (await counter()) > before + 1000n, 10_000, "the guest runs past tick");
    }
  });

  it("writes one audit line per insert and remove, refused ones included, and none for list", async () => {
    const s = await attachStopped("stream");
    try {
      const mark = h.logs.length;
      const { id } = await s.insertSoftwareBreakpoint(sym("tick").gva);
      await s.listSoftwareBreakpoints();
      await s.removeSoftwareBreakpoint(id);
      await s.removeSoftwareBreakpoint(id).catch(() => undefined);
      const lines = h.logs.slice(mark).filter((l) => l.message === "audit");
      expect(lines.map((l) => [l.fields.rpc, l.fields.outcome, l.fields.via])).toEqual([
        ["InsertSoftwareBreakpoint", "ok", "stream"],
        ["RemoveSoftwareBreakpoint", "ok", "stream"],
        ["RemoveSoftwareBreakpoint", "NOT_FOUND/SOFTWARE_BREAKPOINT_NOT_FOUND", "stream"],
      ]);
    } finally {
      await s.detach();
    }
  });
});
