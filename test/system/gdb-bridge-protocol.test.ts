// The gdb bridge at the packet level (an RSP client built from src/rsp): no-ack mode, refusals
// that change nothing, binary writes, stepping one VP, kill, a second gdb, and a lost server.
import { type GdbBridge, createGdbBridge } from "../../src/gdb";
import { bytesToHex, hexToText, leHexToBigint, loadTargetDescription } from "../../src/rsp";
import { RspPeer } from "./rsp-peer";
import { type Harness, startHarness, sym, u64Bytes, waitFor, x86 } from "../integration/harness";

const hex = (v: bigint) => v.toString(16);

describe("gdb bridge packets (embedded x86-64 demo guest, 2 VPs)", () => {
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

  it("announces its features, switches to no-ack mode, and answers unknown packets empty", async () => {
    const gdb = await RspPeer.open(port);
    try {
      const features = (await gdb.request("qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;xmlRegisters=i386"))!.split(";");
      expect(features).toEqual(
        expect.arrayContaining(["PacketSize=4000", "qXfer:features:read+", "vContSupported+", "QStartNoAckMode+", "swbreak+", "hwbreak+"]),
      );
      expect(await gdb.request("QStartNoAckMode")).toBe("OK");
      gdb.noAck = true;
      const acksBefore = gdb.acks;
      expect(await gdb.request("vMustReplyEmpty")).toBe("");
      expect(await gdb.request("qTStatus")).toBe("");
      expect(await gdb.request("?")).toBe("T05thread:1;");
      expect(await gdb.request("vCont?")).toBe("vCont;c;C;s;S");
      expect(await gdb.request("qfThreadInfo")).toBe("m1,2");
      expect(await gdb.request("qsThreadInfo")).toBe("l");
      expect(gdb.acks).toBe(acksBefore); // nothing acknowledged in no-ack mode
      const xml = await gdb.request("qXfer:features:read:target.xml:0,3fff");
      expect(xml).toMatch(/^l<\?xml/);
      expect(xml).toContain("<architecture>i386:x86-64</architecture>");
      expect(xml).toContain('<reg name="fs_base" bitsize="64"');
      expect(await gdb.request("qXfer:features:read:other.xml:0,100")).toBe("E00");
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("refuses register writes it cannot make completely with E16 and changes nothing; P and G that it can make land", async () => {
    const gdb = await RspPeer.open(port);
    try {
      expect(await gdb.request("Hg2")).toBe("OK"); // VP 1
      const before = await x86(h.client, "demo", 1);
      const g = (await gdb.request("g"))!;
      // rax…r15 (16×8) rip (8) eflags + 6 selectors (7×4): 156 bytes before st0.
      const st0 = 2 * (16 * 8 + 8 + 7 * 4);
      expect(g.slice(st0, st0 + 20)).toBe(bytesToHex(before.fp!.st[0])); // x87 from the VP state's fp
      expect(leHexToBigint(g.slice(0, 16))).toBe(before.gp[0]);

      expect(await gdb.request("G" + g.slice(0, -2))).toBe("E16"); // one byte short
      // st0-st7 (8×10), fctrl…fop (8×4), xmm0-15 (16×16), then mxcsr (register 0x38).
      const mxcsr = st0 + 2 * (8 * 10 + 8 * 4 + 16 * 16);
      const badMxcsr = g.slice(0, mxcsr) + "00000100" + g.slice(mxcsr + 8); // bit 16: reserved
      expect(await gdb.request("G" + badMxcsr.replace(/^.{16}/, "ffffffffffffffff"))).toBe("E16"); // rax would change, mxcsr cannot
      expect(await gdb.request("P38=00000100")).toBe("E16"); // mxcsr
      expect(await gdb.request("P99=00")).toBe("E16");
      expect(await x86(h.client, "demo", 1)).toEqual(before);

      const rbx = 0x1122334455667788n;
      expect(await gdb.request(`P1=${bytesToHex(u64Bytes(rbx))}`)).toBe("OK");
      expect(await gdb.request("p1")).toBe(bytesToHex(u64Bytes(rbx)));
      const rcx = 0xabcn;
      const g2 = g.slice(0, 32) + bytesToHex(u64Bytes(rcx)) + g.slice(48); // rcx is gdb register 2
      expect(await gdb.request("G" + g2)).toBe("OK"); // a G that round-trips a g
      const after = await x86(h.client, "demo", 1);
      expect({ rbx: after.gp[3], rcx: after.gp[1], rip: after.rip }).toEqual({ rbx: before.gp[3], rcx, rip: before.rip });
      expect(after.gp[0]).toBe(before.gp[0]);
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("writes memory with X (binary, escaped bytes included) and M, reads it with m, and answers an unmapped address with E0e", async () => {
    const gdb = await RspPeer.open(port);
    const scratch = sym("counter").gva + 0x800n; // inside the guest's data page, unused
    try {
      expect(await gdb.request("?")).toMatch(/^T05/);
      const data = Uint8Array.of(0x24, 0x23, 0x7d, 0x2a, 0x00, 0xff, 0x41, 0x03); // $ # } * need escaping
      const header = new TextEncoder().encode(`X${hex(scratch)},${data.length}:`);
      expect(await gdb.request(Uint8Array.from([...header, ...data]))).toBe("OK");
      expect(await gdb.request(`X${hex(scratch)},0:`)).toBe("OK"); // gdb's probe
      expect(await gdb.request(`m${hex(scratch)},8`)).toBe(bytesToHex(data));
      expect(await gdb.request(`M${hex(scratch)},2:beef`)).toBe("OK");
      expect(await gdb.request(`m${hex(scratch)},2`)).toBe("beef");
      expect(await gdb.request("m10,8")).toBe("E0e"); // the guest dropped its identity map
      expect(await gdb.request("M10,1:00")).toBe("E0e");
      expect(await h.client.readMemory("demo", { gpa: sym("counter").gpa + 0x800n }, 2)).toEqual(Uint8Array.of(0xbe, 0xef));
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("steps only the VP vCont;s names, reports it as the stop's thread, and answers monitor vps as console output", async () => {
    const gdb = await RspPeer.open(port);
    try {
      expect(await gdb.request("?")).toMatch(/^T05/);
      const before = await Promise.all([x86(h.client, "demo", 0), x86(h.client, "demo", 1)]);
      expect(await gdb.request("vCont;s:2;c")).toBe("T05thread:2;");
      const after = await Promise.all([x86(h.client, "demo", 0), x86(h.client, "demo", 1)]);
      expect(after[0]).toEqual(before[0]);
      expect(after[1].rip).not.toBe(before[1].rip);
      expect(await gdb.request("qC")).toBe("QC2");

      gdb.send(`qRcmd,${bytesToHex(new TextEncoder().encode("vps"))}`);
      const lines = [hexToText((await gdb.next())!.slice(1)), hexToText((await gdb.next())!.slice(1))];
      expect(lines[1]).toBe(`VP 1 (thread 2): rip 0x${after[1].rip.toString(16)} rsp 0x${after[1].gp[4].toString(16)} rflags 0x${after[1].rflags.toString(16)} cr3 0x${after[1].cr3.toString(16)}\n`);
      expect(lines[0]).toMatch(/^VP 0 \(thread 1\): rip /);
      expect(await gdb.next()).toBe("OK");
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("answers monitor translate, gpa read and capabilities as console output, and an unknown or malformed command with E16", async () => {
    const gdb = await RspPeer.open(port);
    const monitor = async (command: string): Promise<{ text: string; reply: string | undefined }> => {
      gdb.send(`qRcmd,${bytesToHex(new TextEncoder().encode(command))}`);
      let text = "";
      for (let i = 0; i < 100; i++) {
        const p = await gdb.next();
        if (p === undefined || p[0] !== "O" || p === "OK") return { text, reply: p };
        text += hexToText(p.slice(1));
      }
      throw new Error("no end to the monitor output");
    };
    try {
      expect(await gdb.request("?")).toMatch(/^T05/);
      const counter = sym("counter");
      const gva = BigInt(counter.gva);
      const gpa = BigInt(counter.gpa);
      const t = await monitor(`translate 0x${hex(gva + 5n)}`);
      expect(t.reply).toBe("OK");
      // A summary line, then every level of the walk (TranslateGva's answer).
      const walk = await h.client.translateGva("demo", 0, gva + 5n);
      const lines = t.text.split("\n");
      expect(lines[0]).toMatch(
        new RegExp(`^VP 0: GVA 0x${hex(gva + 5n)} -> GPA 0x${hex(gpa + 5n)} \\(4 KiB page at GPA 0x${hex(gpa)}; 4-level paging, root table at GPA 0x${hex(walk.rootGpa)}; writable, supervisor, (executable|no-execute)\\)$`),
      );
      expect(lines.slice(1, -1)).toEqual(walk.levels.map((l) => expect.stringMatching(new RegExp(`^  ${l.name} +\\(level ${l.level}\\) at GPA 0x${hex(l.entryGpa)} = 0x${hex(l.entry)}: (next table|maps the page)$`))));
      expect(lines.slice(1, -1)).toHaveLength(4);
      const unmapped = await monitor("translate 0x7000000000");
      expect(unmapped).toEqual({ text: expect.stringMatching(/^VP 0: GVA 0x7000000000 is not mapped: PML4E 0 at GPA 0x[0-9a-f]+ is not present \(4-level paging, root table at GPA 0x[0-9a-f]+\)\n  PML4E \(level 4\) at GPA 0x[0-9a-f]+ = 0x0: not present\n$/), reply: "OK" });

      const value = await h.client.readMemory("demo", { gpa }, 16);
      const dump = await monitor(`gpa read 0x${hex(gpa)} 16`);
      expect(dump.reply).toBe("OK");
      expect(dump.text.startsWith(`${gpa.toString(16).padStart(16, "0")}  ${Array.from(value, (b) => b.toString(16).padStart(2, "0")).join(" ")}`)).toBe(true);
      const big = await monitor(`gpa read ${gpa} 4096`);
      expect(big.text.split("\n").filter((l) => l !== "")).toHaveLength(256); // split over several O packets
      expect(big.reply).toBe("OK");

      const caps = await monitor("capabilities");
      expect(caps.reply).toBe("OK");
      expect(caps.text).toContain("hardware slots per VP: 4");
      expect(caps.text).toMatch(/software breakpoints: by GVA/);

      for (const bad of ["bogus", "translate", "translate zz", "gpa read 0x1000 0", "gpa read 0x1000 4097", "gpa write 1 2"]) {
        const r = await monitor(bad);
        expect([bad, r.reply]).toEqual([bad, "E16"]);
        expect(r.text).not.toBe("");
      }
      expect((await monitor("gpa read 0xfffffffff000 8")).reply).toBe("E0e"); // outside RAM
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("attaches to a VM already stopped with nobody attached without running it, and answers at once", async () => {
    await h.vms[0].halt();
    expect((await h.client.getVm("demo")).runState).toBe("stopped");
    const before = await x86(h.client, "demo", 0);
    const gdb = await RspPeer.open(port);
    try {
      expect(await gdb.request("qSupported:swbreak+")).toContain("PacketSize=");
      expect(await gdb.request("?")).toMatch(/^T05/);
      expect((await x86(h.client, "demo", 0)).rip).toBe(before.rip); // it did not run
      expect((await h.client.getVm("demo")).attached).toBeDefined();
    } finally {
      gdb.close();
    }
    // The debugger did not stop it, so its detach leaves it stopped, as it found it.
    await waitFor(async () => (await h.client.getVm("demo")).attached === undefined, 10_000, "the bridge detached");
    expect((await h.client.getVm("demo")).runState).toBe("stopped");
    await h.vms[0].resume();
    await detachedAndRunning();
  });

  it("serves target.xml in chunks that src/rsp's loader numbers as gdb's amd64 layout", async () => {
    const gdb = await RspPeer.open(port);
    try {
      const desc = await loadTargetDescription(async (annex) => {
        let text = "";
        for (;;) {
          const reply = (await gdb.request(`qXfer:features:read:${annex}:${text.length.toString(16)},100`))!;
          text += reply.slice(1);
          if (reply[0] === "l") return text;
          expect(reply[0]).toBe("m");
        }
      });
      expect(desc.architecture).toBe("i386:x86-64");
      const names = desc.registers.map((r) => r.name);
      expect(names.slice(0, 24)).toEqual(
        "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs".split(" "),
      );
      expect(desc.byName.get("st0")?.regnum).toBe(24);
      expect(desc.byName.get("xmm0")).toMatchObject({ regnum: 40, bitsize: 128, feature: "org.gnu.gdb.i386.sse" });
      expect(desc.byName.get("mxcsr")).toMatchObject({ regnum: 56, bitsize: 32, feature: "org.gnu.gdb.i386.sse" });
      expect(desc.byName.get("fs_base")).toMatchObject({ regnum: 57, bitsize: 64, feature: "org.gnu.gdb.i386.segments" });
      expect(desc.byName.get("gs_base")?.regnum).toBe(58);
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("arms hardware slots on every VP up to four, then refuses with E1c; refuses a misaligned watchpoint; ignores unknown Z types", async () => {
    const gdb = await RspPeer.open(port);
    const counter = sym("counter").gva;
    try {
      expect(await gdb.request("?")).toMatch(/^T05/);
      expect(await gdb.request(`Z1,${hex(sym("tick").gva)},1`)).toBe("OK");
      expect(await gdb.request(`Z2,${hex(counter)},8`)).toBe("OK");
      expect(await gdb.request(`Z3,${hex(counter + 8n)},4`)).toBe("OK");
      expect(await gdb.request(`Z4,${hex(counter + 16n)},2`)).toBe("OK");
      expect(await gdb.request(`Z2,${hex(counter + 24n)},8`)).toBe("E1c");
      expect(await gdb.request(`z4,${hex(counter + 16n)},2`)).toBe("OK");
      expect(await gdb.request(`Z2,${hex(counter + 4n)},8`)).toBe("E16"); // not 8-byte aligned
      expect(await gdb.request(`Z2,${hex(counter)},3`)).toBe("E16"); // no 3-byte slot
      expect(await gdb.request(`Z5,${hex(counter)},8`)).toBe("");
      const info = await h.client.getVm("demo");
      expect(info.runState).toBe("stopped");
    } finally {
      gdb.close();
    }
    await detachedAndRunning();
  });

  it("turns away a second gdb while one is connected, and on k detaches and closes with the VM running", async () => {
    const first = await RspPeer.open(port);
    expect(await first.request("?")).toMatch(/^T05/);
    const second = await RspPeer.open(port);
    expect(await second.next()).toBeUndefined(); // closed without a word
    first.send("k");
    expect(await first.next()).toBeUndefined();
    await detachedAndRunning();
  });
});

describe("gdb bridge when the vmm-debug server goes away", () => {
  it("ends a continuing gdb's connection with console output saying why, not a hang", async () => {
    const h = await startHarness({ vpCount: 1 });
    const lines: string[] = [];
    const bridge = createGdbBridge({ client: h.client, vm: "demo", log: (l) => lines.push(l) });
    const { port } = await bridge.listen("127.0.0.1", 0);
    try {
      const gdb = await RspPeer.open(port);
      expect(await gdb.request("?")).toMatch(/^T05/);
      gdb.send("c");
      await waitFor(async () => (await h.client.getVm("demo")).runState === "running", 10_000, "the VM running");
      await h.server.close();
      const message = await gdb.next();
      expect(message?.startsWith("O")).toBe(true);
      expect(hexToText(message!.slice(1))).toMatch(/^vmm-debug: .*(lost the vmm-debug server|session ended)/);
      expect(await gdb.next()).toBeUndefined(); // and the connection closes
      expect(lines.join("\n")).toMatch(/closing the gdb connection/);
    } finally {
      await bridge.close();
      await h.close();
    }
  });

  it("closes an idle gdb's connection when the server goes away", async () => {
    const h = await startHarness({ vpCount: 1 });
    const bridge = createGdbBridge({ client: h.client, vm: "demo" });
    const { port } = await bridge.listen("127.0.0.1", 0);
    try {
      const gdb = await RspPeer.open(port);
      expect(await gdb.request("?")).toMatch(/^T05/);
      await h.server.close();
      expect(await gdb.next()).toBeUndefined();
    } finally {
      await bridge.close();
      await h.close();
    }
  });
});
