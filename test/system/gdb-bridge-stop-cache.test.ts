// The gdb bridge's per-stop caches (src/gdb/stop-cache.ts) at the packet level: registers carried
// through a step by its register trace and expedited in the stop reply, `g` and `m` answered from
// what the stop read, and every write or run forgetting them: each answer is checked against what
// the server says at that moment (gRPC, another client).
import { type GdbBridge, createGdbBridge } from "../../src/gdb";
import { bytesToHex, leHexToBigint } from "../../src/rsp";
import { RspPeer } from "./rsp-peer";
import { type Harness, startHarness, sym, u64Bytes, waitFor, x86 } from "../integration/harness";

const hex = (v: bigint) => v.toString(16);
const le64 = (v: bigint) => bytesToHex(u64Bytes(v));

describe("gdb bridge stop caches (embedded x86-64 demo guest, 2 VPs)", () => {
  let h: Harness;
  let bridge: GdbBridge;
  let port: number;

  beforeAll(async () => {
    h = await startHarness();
    bridge = createGdbBridge({ client: h.client, vm: "demo" });
    ({ port } = await bridge.listen("127.0.0.1", 0));
  });

  afterAll(async () => {
    await bridge?.close();
    await h?.close();
  });

  const detachedAndRunning = () =>
    waitFor(async () => {
      const vm = await h.client.getVm("demo");
      return vm.runState === "running" && vm.attached === undefined;
    }, 10_000, "the VM running with no debugger attached");

  /** gdb's `g` prefix up to eflags: rax…r15 (gdb's order), rip, eflags. */
  const gPrefix = async (vp: number) => {
    const s = await x86(h.client, "demo", vp);
    const order = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15];
    return order.map((i) => le64(s.gp[i])).join("") + le64(s.rip) + bytesToHex(u64Bytes(s.rflags & 0xffffffffn).subarray(0, 4));
  };

  it("expedites rbp, rsp and rip after a step whose registers it knows, and answers g and m as the server does at every stop", async () => {
    const gdb = await RspPeer.open(port);
    try {
      expect(await gdb.ask("?")).toMatch(/^T05/);
      expect(await gdb.ask("Hg1")).toBe("OK");
      expect(await gdb.ask("Hc1")).toBe("OK");
      // Nothing read at this stop yet: the first step's reply carries no registers.
      expect(await gdb.ask("vCont;s:1")).toBe("T05thread:1;");
      for (let i = 0; i < 40; i++) {
        const g = await gdb.ask("g");
        expect(g.slice(0, (16 + 1) * 16 + 8)).toBe(await gPrefix(0));
        const s = await x86(h.client, "demo", 0);
        const code = bytesToHex(await h.client.readMemory("demo", { gva: s.rip, vp: 0 }, 1));
        expect(await gdb.ask(`m${hex(s.rip)},1`)).toBe(code);
        expect(await gdb.ask(`m${hex(s.rip)},1`)).toBe(code);
        const reply = await gdb.ask("vCont;s:1;c");
        const after = await x86(h.client, "demo", 0);
        // Registers known before the step: rbp (6), rsp (7) and rip (0x10) ride in the reply, as the server has them now.
        expect(reply).toBe(`T0506:${le64(after.gp[5])};07:${le64(after.gp[4])};10:${le64(after.rip)};thread:1;`);
      }
      const rip = leHexToBigint((await gdb.ask("p10")) as string);
      expect(rip).toBe((await x86(h.client, "demo", 0)).rip);
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("forgets what it read when gdb writes registers or memory, or steps after a write", async () => {
    const gdb = await RspPeer.open(port);
    const scratch = sym("counter").gva + 0x800n; // inside the guest's data page, unused
    try {
      expect(await gdb.ask("?")).toMatch(/^T05/);
      expect(await gdb.ask("Hg1")).toBe("OK");
      // Memory: read, write, read again sees the write (also a part of the range read first).
      const first = await gdb.ask(`m${hex(scratch)},8`);
      expect(first).toBe(bytesToHex(await h.client.readMemory("demo", { gpa: sym("counter").gpa + 0x800n }, 8)));
      expect(await gdb.ask(`M${hex(scratch)},2:beef`)).toBe("OK");
      expect(await gdb.ask(`m${hex(scratch)},8`)).toBe("beef" + first.slice(4));
      expect(await gdb.ask(`m${hex(scratch + 1n)},1`)).toBe("ef");

      // Registers: g, then P of rbx; p, g and the next step's reply all show the write.
      const g = await gdb.ask("g");
      const rbx = 0x5566778899aabbccn;
      expect(await gdb.ask(`P1=${le64(rbx)}`)).toBe("OK");
      expect(await gdb.ask("p1")).toBe(le64(rbx));
      const g2 = await gdb.ask("g");
      expect(g2.slice(16, 32)).toBe(le64(rbx));
      expect(g2.slice(0, 16)).toBe(g.slice(0, 16));
      expect((await x86(h.client, "demo", 0)).gp[3]).toBe(rbx);
      // The step after the write starts from what the server holds: its reply and g agree with it.
      const reply = await gdb.ask("vCont;s:1");
      const after = await x86(h.client, "demo", 0);
      expect(reply).toMatch(/^T05/);
      expect((await gdb.ask("g")).slice(0, (16 + 1) * 16 + 8)).toBe(await gPrefix(0));
      expect(leHexToBigint(await gdb.ask("p10"))).toBe(after.rip);
      // And the next step (registers known again) expedites what the server has.
      const next = await gdb.ask("vCont;s:1");
      const then = await x86(h.client, "demo", 0);
      expect(next).toBe(`T0506:${le64(then.gp[5])};07:${le64(then.gp[4])};10:${le64(then.rip)};thread:1;`);
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });
});
