// The edges on the embedded machine, over the wire: zero-length accesses are checked as one-byte
// accesses; register states the architecture forbids are refused (VP_STATE_INVALID), states it
// allows but the interpreter cannot run are refused (UNSUPPORTED_REGISTER), and the debugger's
// GVA view always translates as the interpreter does.
import { Status } from "nice-grpc";
import { VmmDebugError, type Session, type X86VpState } from "../../src/client";
import {
  LAST_GPA,
  edgeAddresses,
  expectedRefusals,
  expectedZeroLengthRow,
  outcome,
  refuseForbiddenX86,
  zeroLengthOutcomes,
  type EdgeTarget,
} from "../shared/edges";
import { expectRpcError, startHarness, sym, u64, x86, type Harness } from "./harness";

const VM = "demo";

describe("edges on the embedded machine", () => {
  let h: Harness;
  let session: Session | undefined;
  const target: EdgeTarget = {
    vm: VM,
    arch: "x86_64",
    vpCount: 2,
    data: sym("counter"),
    unmappedGpa: 0x4000_0000_0000n,
    unmappedGva: 0xffff_8000_1234_0000n,
  };

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  afterEach(async () => {
    await session?.detach().catch(() => undefined);
    session = undefined;
  });

  async function attachStopped(): Promise<Session> {
    session = await h.client.attach(VM);
    await session.break();
    return session;
  }

  /** The counter read by GVA and by GPA (the VM is stopped, so they must be equal). */
  async function counterViews(vp = 0): Promise<[bigint, bigint]> {
    const [v, p] = await Promise.all([
      h.client.readMemory(VM, { gva: sym("counter").gva, vp }, 8),
      h.client.readMemory(VM, { gpa: sym("counter").gpa }, 8),
    ]);
    return [u64(v), u64(p)];
  }

  it("answers a request naming a 1 MiB VM at once, with the name clipped in the error and the audit line", async () => {
    const huge = "v".repeat(1 << 20);
    const err = await h.client.getVm(huge, { deadlineMs: 20_000 }).catch((e: unknown) => e as VmmDebugError);
    expect(err).toBeInstanceOf(VmmDebugError);
    expect((err as VmmDebugError).reason).toBe("VM_NOT_FOUND");
    expect((err as VmmDebugError).message.length).toBeLessThan(4096);
    const mark = h.logs.length;
    await expectRpcError(h.client.attach(huge, { transport: "unary", deadlineMs: 20_000 }), Status.NOT_FOUND, "VM_NOT_FOUND");
    const lines = h.logs.slice(mark).filter((l) => l.message === "audit");
    expect(lines).toHaveLength(1);
    expect(String(lines[0].fields.vm).length).toBeLessThan(512);
  });

  describe("zero-length accesses", () => {
    it("check every zero-length access as a one-byte access at the same address, answering no bytes", async () => {
      const s = await attachStopped();
      const rows = await zeroLengthOutcomes(h.client, s, target);
      expect(rows).toEqual(edgeAddresses(target).map(expectedZeroLengthRow));
    });

    it("succeed while the VM runs, without a session, and fail the same way", async () => {
      expect((await h.client.getVm(VM)).runState).toBe("running");
      for (const { address, expect: want } of edgeAddresses(target)) {
        expect([await outcome(h.client.readMemory(VM, address, 0))]).toEqual([want === "ok" ? "ok:0" : want]);
      }
    });

    it("refuse a GPA range that runs past 2^64, but not the last byte", async () => {
      await expectRpcError(h.client.readMemory(VM, { gpa: LAST_GPA }, 2), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE");
      // Lengths 0 and 1 at 2^64-1 stay inside the address space: that byte is simply not RAM.
      await expectRpcError(h.client.readMemory(VM, { gpa: LAST_GPA }, 1), Status.OUT_OF_RANGE, "GPA_UNMAPPED");
      await expectRpcError(h.client.readMemory(VM, { gpa: LAST_GPA }, 0), Status.OUT_OF_RANGE, "GPA_UNMAPPED");
    });

    it("apply the same range rule to writes: two bytes at 2^64-1 run past the end, one is simply not RAM", async () => {
      const s = await attachStopped();
      await expectRpcError(s.writeMemory({ gpa: LAST_GPA }, Uint8Array.of(1, 2)), Status.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE");
      await expectRpcError(s.writeMemory({ gpa: LAST_GPA }, Uint8Array.of(1)), Status.OUT_OF_RANGE, "GPA_UNMAPPED");
    });
  });

  describe("SetVpState", () => {
    it("refuses every state the architecture forbids with VP_STATE_INVALID, leaving the VP as it was", async () => {
      const s = await attachStopped();
      const { before, rows } = await refuseForbiddenX86(s);
      expect(rows).toEqual(expectedRefusals(before));
    });

    it("after refusing CR0 = 0 and EFER = 0, GVA reads and the interpreter still agree: long-mode paging", async () => {
      const s = await attachStopped();
      const before = await x86(h.client, VM, 0);
      for (const edit of [{ cr0: 0n }, { efer: 0n }]) {
        await expectRpcError(s.setVpState(0, { arch: "x86_64", state: { ...before, ...edit } }), Status.INVALID_ARGUMENT, "VP_STATE_INVALID");
      }
      const [v, p] = await counterViews();
      expect(v).toBe(p);
      // The interpreter runs on from the same state: one instruction executes.
      const stepped = await s.step(0, { count: 1 });
      expect(stepped.executed).toBe(1);
      expect(stepped.stop).toBeUndefined();
    });

    it("accepts CPL 3 and CR4.SMEP/SMAP/PKE, which the interpreter runs", async () => {
      const s = await attachStopped();
      const before = await x86(h.client, VM, 0);
      const user = { ...before, cs: { ...before.cs, selector: before.cs.selector | 3 }, cr4: before.cr4 | (7n << 20n) };
      await s.setVpState(0, { arch: "x86_64", state: user });
      expect(await x86(h.client, VM, 0)).toEqual(user);
      await s.setVpState(0, { arch: "x86_64", state: before });
      expect(await x86(h.client, VM, 0)).toEqual(before);
    });

    it("refuses states the architecture allows but the interpreter cannot run with UNSUPPORTED_REGISTER, writing nothing", async () => {
      const s = await attachStopped();
      const before = await x86(h.client, VM, 0);
      const low = 0x1000n; // a RIP valid outside 64-bit mode too
      const cases: { name: string; state: X86VpState; field: string }[] = [
        { name: "real mode", state: { ...before, cr0: 0n, efer: 0n, rip: low }, field: "cr0" },
        { name: "PAE paging (EFER = 0)", state: { ...before, efer: 0n, rip: low }, field: "efer" },
        { name: "compatibility mode (CS.L = 0)", state: { ...before, rip: low, cs: { ...before.cs, attributes: before.cs.attributes & ~0x2000 } }, field: "cs.attributes" },
        { name: "CR4.VMXE", state: { ...before, cr4: before.cr4 | (1n << 13n) }, field: "cr4" },
        { name: "CR4.CET", state: { ...before, cr4: before.cr4 | (1n << 23n) }, field: "cr4" },
        { name: "EFER.SVME", state: { ...before, efer: before.efer | (1n << 12n) }, field: "efer" },
      ];
      for (const c of cases) {
        const err = await expectRpcError(s.setVpState(0, { arch: "x86_64", state: c.state }), Status.FAILED_PRECONDITION, "UNSUPPORTED_REGISTER");
        expect([c.name, err.metadata.field]).toEqual([c.name, c.field]);
        expect(await x86(h.client, VM, 0)).toEqual(before);
      }
    });
  });
});

describe("GVA reads after SetVpState changes the paging mode", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ vpCount: 1 });
  });
  afterAll(async () => {
    await h.close();
  });

  it("follow 5-level paging (CR4.LA57) as the interpreter does: mapped, both read and run; unmapped, both fault", async () => {
    const s = await h.client.attach(VM);
    await s.break();
    const before = await x86(h.client, VM, 0);
    const code = await h.client.readMemory(VM, { gva: before.rip, vp: 0 }, 16);
    // A PML5 in free RAM whose last entry (the higher half, where the guest runs) is the guest's PML4.
    const pml5 = 0x0ff0_0000n;
    const entry = new Uint8Array(8);
    new DataView(entry.buffer).setBigUint64(0, (before.cr3 & ~0xfffn) | 0x3n, true);
    await s.writeMemory({ gpa: pml5 }, new Uint8Array(4096));
    await s.writeMemory({ gpa: pml5 + 511n * 8n }, entry);
    const fiveLevel = { ...before, cr3: pml5, cr4: before.cr4 | (1n << 12n) };
    await s.setVpState(0, { arch: "x86_64", state: fiveLevel });

    expect(await h.client.readMemory(VM, { gva: before.rip, vp: 0 }, 16)).toEqual(code);
    const [v, p] = await Promise.all([
      h.client.readMemory(VM, { gva: sym("counter").gva, vp: 0 }, 8),
      h.client.readMemory(VM, { gpa: sym("counter").gpa }, 8),
    ]);
    expect(v).toEqual(p);
    const ran = await s.step(0, { count: 1 });
    expect({ executed: ran.executed, stop: ran.stop }).toEqual({ executed: 1, stop: undefined });

    // Without that entry neither translates: GVA_NOT_MAPPED, and the fetch faults (#PF, whose
    // handler is unmapped too: a triple fault). SetVpState flushes the interpreter's TLB.
    await s.writeMemory({ gpa: pml5 + 511n * 8n }, new Uint8Array(8));
    await s.setVpState(0, { arch: "x86_64", state: await x86(h.client, VM, 0) });
    const rip = (await x86(h.client, VM, 0)).rip;
    expect(await outcome(h.client.readMemory(VM, { gva: rip, vp: 0 }, 1))).toBe("FAILED_PRECONDITION/GVA_NOT_MAPPED");
    const faulted = await s.step(0, { count: 1 });
    expect(faulted.stop).toEqual({ kind: "tripleFault", vp: 0 });
    await s.detach();
  });
});
