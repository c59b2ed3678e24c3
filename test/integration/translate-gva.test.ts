// TranslateGva against the embedded machine running the demo guest: the walk of every kernel
// symbol (its GPA is the manifest's and what a GVA read returns), unmapped and non-canonical
// addresses as answers, the refusals, the Session stream, and 5-level paging built by the test.
import { Status } from "nice-grpc";
import type { Session, Translation } from "../../src/client";
import { expectRpcError, image, startHarness, u64Bytes, x86, type Harness } from "./harness";

const VM = "demo";
const KERNEL_SYMBOLS = Object.entries(image.symbols).filter(([, s]) => s.gva >= 0xffff_ffff_8000_0000n);

describe("TranslateGva on the embedded machine", () => {
  let h: Harness;
  let session: Session;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await session?.detach().catch(() => undefined);
    await h.close();
  });

  it("refuses while the VM runs (VM_RUNNING), and changes nothing", async () => {
    await expectRpcError(h.client.translateGva(VM, 0, KERNEL_SYMBOLS[0][1].gva), Status.FAILED_PRECONDITION, "VM_RUNNING");
    expect((await h.client.getVm(VM)).runState).toBe("running");
  });

  it("translates every kernel symbol of the manifest to its GPA, the one a GVA read reads", async () => {
    session = await h.client.attach(VM);
    await session.break();
    const regs = await x86(h.client, VM, 0);
    expect(KERNEL_SYMBOLS.length).toBeGreaterThan(5);
    for (const [name, s] of KERNEL_SYMBOLS) {
      const t = await h.client.translateGva(VM, 0, s.gva);
      expect({ name, mapped: t.mapped, gpa: t.gpa, fault: t.fault }).toEqual({ name, mapped: true, gpa: s.gpa, fault: undefined });
      expect(t.pagingMode).toBe("4-level");
      expect(t.rootGpa).toBe(regs.cr3 & 0x000f_ffff_ffff_f000n);
      expect(t.levels.map((l) => l.name)).toEqual(["PML4E", "PDPTE", "PDE", "PTE"].slice(0, t.levels.length));
      expect(t.levels.map((l) => l.level)).toEqual([4, 3, 2, 1].slice(0, t.levels.length));
      expect(t.levels.slice(0, -1).every((l) => l.decision === "table")).toBe(true);
      expect(t.levels[t.levels.length - 1].decision).toBe("page");
      // Each level's entry is the u64 at its GPA, and points at the next level's table.
      for (let i = 0; i < t.levels.length; i++) {
        const l = t.levels[i];
        const bytes = await h.client.readMemory(VM, { gpa: l.entryGpa }, 8);
        expect(bytes).toEqual(u64Bytes(l.entry));
        if (i + 1 < t.levels.length) expect(t.levels[i + 1].entryGpa & ~0xfffn).toBe(l.entry & 0x000f_ffff_ffff_f000n);
      }
      const viaGva = await h.client.readMemory(VM, { gva: s.gva, vp: 0 }, 16);
      const viaGpa = await h.client.readMemory(VM, { gpa: s.gpa }, 16);
      expect(viaGva).toEqual(viaGpa);
    }
    // The kernel's text is 4 KiB pages mapped read-only; its data is writable; neither is user.
    const text = await h.client.translateGva(VM, 0, image.symbols.kernel_main.gva);
    expect(text).toMatchObject({ pageSize: 4096n, writable: false, user: false });
    const data = await h.client.translateGva(VM, 1, image.symbols.counter.gva);
    expect(data).toMatchObject({ pageSize: 4096n, writable: true, user: false });
  });

  it("answers an unmapped address with the level and the reason: the dropped identity map", async () => {
    const t = await h.client.translateGva(VM, 0, image.symbols._start.gva);
    expect(t).toMatchObject({ mapped: false, fault: "notPresent", faultLevel: 4 });
    expect("gpa" in t || "pageSize" in t).toBe(false);
    expect(t.levels).toHaveLength(1);
    expect(t.levels[0]).toMatchObject({ level: 4, name: "PML4E", entry: 0n, decision: "notPresent" });
    expect(t.faultDetail).toMatch(/PML4E 0 at GPA 0x[0-9a-f]+ is not present/);
    // The same address read: GVA_NOT_MAPPED with the same reason in words.
    const e = await expectRpcError(h.client.readMemory(VM, { gva: image.symbols._start.gva, vp: 0 }, 1), Status.FAILED_PRECONDITION, "GVA_NOT_MAPPED");
    expect(e.message).toContain(t.faultDetail!);
  });

  it("answers a non-canonical address (level 0, no entries read)", async () => {
    const t = await h.client.translateGva(VM, 0, 0x0000_8000_0000_0000n);
    expect(t).toMatchObject({ mapped: false, fault: "nonCanonical", faultLevel: 0, levels: [] });
  });

  it("a large page: a GVA beyond the kernel's first 2 MiB maps through a 2 MiB PDE", async () => {
    const t = await h.client.translateGva(VM, 0, 0xffff_ffff_8040_1234n);
    expect(t).toMatchObject({ mapped: true, gpa: 0x40_1234n, pageSize: 0x20_0000n });
    expect(t.levels.map((l) => l.decision)).toEqual(["table", "table", "page"]);
  });

  it("refuses a VP out of range (VP_OUT_OF_RANGE)", async () => {
    await expectRpcError(h.client.translateGva(VM, 2, image.symbols.counter.gva), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
    await expectRpcError(session.translateGva(9, image.symbols.counter.gva), Status.INVALID_ARGUMENT, "VP_OUT_OF_RANGE");
  });

  it("answers the same over the Session stream and over unary calls", async () => {
    for (const gva of [image.symbols.counter.gva, image.symbols._start.gva, 0xffff_8000_0000_0000n, 0x1234n]) {
      const unary: Translation = await h.client.translateGva(VM, 1, gva);
      expect(await session.translateGva(1, gva)).toEqual(unary);
    }
  });

  it("5-level paging: tables written with WriteMemory, CR4.LA57 set with SetVpState, translated and read through", async () => {
    const saved = await session.getVpState(0);
    if (saved.arch !== "x86_64") throw new Error("x86_64 expected");
    // PML5 0x800000 -> PML4 0x801000 -> PDPT 0x802000 -> PD 0x803000 -> PT 0x804000 -> the counter's page.
    const base = 0x80_0000n;
    const gva = (1n << 48n) | (2n << 39n) | (3n << 30n) | (4n << 21n) | (5n << 12n) | 0x40n;
    const counterPage = image.symbols.counter.gpa & ~0xfffn;
    const entries: [bigint, bigint][] = [
      [base + 1n * 8n, (base + 0x1000n) | 3n],
      [base + 0x1000n + 2n * 8n, (base + 0x2000n) | 3n],
      [base + 0x2000n + 3n * 8n, (base + 0x3000n) | 3n],
      [base + 0x3000n + 4n * 8n, (base + 0x4000n) | 3n],
      [base + 0x4000n + 5n * 8n, counterPage | 3n],
    ];
    // A second mapping through a 1 GiB page: PDPT[7] of the same PDPT.
    const big = (1n << 48n) | (2n << 39n) | (7n << 30n) | 0x107000n;
    entries.push([base + 0x2000n + 7n * 8n, 0x83n]);
    await session.writeMemory({ gpa: base }, new Uint8Array(0x5000));
    for (const [gpa, value] of entries) await session.writeMemory({ gpa }, u64Bytes(value));
    try {
      await session.setVpState(0, { arch: "x86_64", state: { ...saved.state, cr3: base, cr4: saved.state.cr4 | (1n << 12n) } });
      const t = await session.translateGva(0, gva);
      expect(t).toMatchObject({ pagingMode: "5-level", rootGpa: base, mapped: true, gpa: counterPage + 0x40n, pageSize: 4096n });
      expect(t.levels.map((l) => [l.level, l.name, l.entryGpa, l.entry, l.decision])).toEqual(
        entries.slice(0, 5).map(([gpa, value], i) => [5 - i, ["PML5E", "PML4E", "PDPTE", "PDE", "PTE"][i], gpa, value, i === 4 ? "page" : "table"]),
      );
      expect(await session.readMemory({ gva, vp: 0 }, 8)).toEqual(await session.readMemory({ gpa: counterPage + 0x40n }, 8));
      const t1g = await session.translateGva(0, big);
      expect(t1g).toMatchObject({ mapped: true, gpa: 0x107000n, pageSize: 1n << 30n });
      expect(t1g.levels.map((l) => l.decision)).toEqual(["table", "table", "page"]);
      expect(await session.readMemory({ gva: big, vp: 0 }, 8)).toEqual(await session.readMemory({ gpa: 0x107000n }, 8));
      // Canonical for 5-level but not for 4-level; and a PML5E not present.
      const missing = await session.translateGva(0, 3n << 48n);
      expect(missing).toMatchObject({ mapped: false, fault: "notPresent", faultLevel: 5 });
      expect((await session.translateGva(0, 1n << 57n)).fault).toBe("nonCanonical");
      // VP 1 still walks its own 4-level tables.
      expect((await session.translateGva(1, gva)).fault).toBe("nonCanonical");
    } finally {
      await session.setVpState(0, saved);
    }
    expect((await session.translateGva(0, image.symbols.counter.gva)).gpa).toBe(image.symbols.counter.gpa);
  });
});
