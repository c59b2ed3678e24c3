// The embedded machine as a VmmCore: boots the demo guest in its worker and obeys run control.
import { join } from "node:path";
import {
  BreakpointSize,
  BreakpointType,
  type DebugStopReason,
  type X86VpState,
  VmmError,
  emptyDebugState,
} from "../../../src/core";
import { createEmuMachine, type EmuMachine, loadGuestImage } from "../../../src/emu";

const image = loadGuestImage(join(__dirname, "../../../guests/build/demo-x86_64.json"));
const sym = (name: string) => image.symbols[name];

function nextStop(vm: EmuMachine): Promise<DebugStopReason> {
  return new Promise((resolve) => {
    const off = vm.onStop((r) => {
      off();
      resolve(r);
    });
  });
}

async function resumeUntilStop(vm: EmuMachine): Promise<DebugStopReason> {
  const stop = nextStop(vm);
  await vm.resume();
  return stop;
}

async function readU64(vm: EmuMachine, gpa: bigint): Promise<bigint> {
  const b = await vm.readMemory({ kind: "gpa", gpa }, 8);
  return new DataView(b.buffer).getBigUint64(0, true);
}

async function waitFor(cond: () => Promise<boolean>, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("condition not met in time");
}

async function x86(vm: EmuMachine, vp: number): Promise<X86VpState> {
  const s = await vm.getVpState(vp);
  if (s.arch !== "x86_64") throw new Error("not x86");
  return s.state;
}

/** Points VP 0 at `code` placed at a free GPA inside the identity-mapped boot region. */
async function runSnippet(vm: EmuMachine, code: number[]): Promise<DebugStopReason> {
  const at = 0x80000n;
  await vm.writeMemory({ kind: "gpa", gpa: at }, Uint8Array.from(code));
  const s = await x86(vm, 0);
  await vm.setVpState(0, { arch: "x86_64", state: { ...s, rip: at, cr3: 0x1000n } });
  return resumeUntilStop(vm);
}

describe("embedded machine", () => {
  let vm: EmuMachine;
  const console: string[] = [];

  beforeEach(async () => {
    console.length = 0;
    vm = await createEmuMachine({ id: "t", image, vpCount: 2, onConsole: (l) => console.push(l) });
  });
  afterEach(async () => {
    await vm.close();
  });

  /** Lets the guest finish booting (both VPs counting), then stops it. */
  async function settleAndHalt(): Promise<void> {
    await waitFor(async () => (await readU64(vm, sym("counter").gpa)) > 0n && (await readU64(vm, sym("counter_vp1").gpa)) > 0n);
    await vm.halt();
  }

  it("boots the demo guest and advances both counters while running", async () => {
    expect(vm.runState()).toBe("running");
    await waitFor(async () => (await readU64(vm, sym("counter").gpa)) > 1000n && (await readU64(vm, sym("counter_vp1").gpa)) > 1000n);
    expect(console.some((l) => l.includes("running on vp"))).toBe(true);
  });

  it("stops on halt with a break reason and reports higher-half RIPs", async () => {
    await waitFor(async () => (await readU64(vm, sym("counter").gpa)) > 0n);
    const stop = nextStop(vm);
    await settleAndHalt();
    expect(await stop).toEqual({ kind: "break" });
    expect(vm.runState()).toBe("stopped");
    const s = await x86(vm, 0);
    expect(s.rip >> 32n).toBe(0xffffffffn);
    expect(s.cs.attributes & 0x2000).toBe(0x2000); // long-mode code segment
    const before = await readU64(vm, sym("counter").gpa);
    await new Promise((r) => setTimeout(r, 50));
    expect(await readU64(vm, sym("counter").gpa)).toBe(before); // really stopped
  });

  it("reads the counter identically by GVA and by GPA", async () => {
    await settleAndHalt();
    const byGva = await vm.readMemory({ kind: "gva", vp: 0, gva: sym("counter").gva }, 8);
    const byGpa = await vm.readMemory({ kind: "gpa", gpa: sym("counter").gpa }, 8);
    expect(Buffer.from(byGva).equals(Buffer.from(byGpa))).toBe(true);
  });

  it("refuses register access while running", async () => {
    await expect(vm.getVpState(0)).rejects.toMatchObject({ reason: "VM_RUNNING" });
  });

  it("fires a write watchpoint after the store with the slot that matched", async () => {
    await settleAndHalt();
    const state = emptyDebugState();
    state.breakpoints[2] = { address: sym("counter").gva, type: BreakpointType.Write, size: BreakpointSize.QWord };
    await vm.setDebugState(0, state);
    const reason = await resumeUntilStop(vm);
    expect(reason).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: state.breakpoints[2] });
    const s = await x86(vm, 0);
    // After the access: RIP is at the `ret` that follows the store in tick, RAX holds the stored value.
    expect(s.rip).toBe(sym("tick").gva + 10n);
    expect(await readU64(vm, sym("counter").gpa)).toBe(s.gp[0]);
  });

  it("stops before an execute breakpoint and makes progress on the next resume", async () => {
    await settleAndHalt();
    const state = emptyDebugState();
    state.breakpoints[0] = { address: sym("tick").gva, type: BreakpointType.Execute, size: BreakpointSize.Byte };
    await vm.setDebugState(0, state);
    expect(await resumeUntilStop(vm)).toMatchObject({ kind: "hwBreakpoint", vp: 0 });
    expect((await x86(vm, 0)).rip).toBe(sym("tick").gva);
    const c1 = await readU64(vm, sym("counter").gpa);
    expect(await resumeUntilStop(vm)).toMatchObject({ kind: "hwBreakpoint", vp: 0 });
    expect(await readU64(vm, sym("counter").gpa)).toBe(c1 + 1n);
  });

  it("single-steps one instruction of one VP", async () => {
    await settleAndHalt();
    const before = await x86(vm, 0);
    await vm.setDebugState(0, { ...emptyDebugState(), singleStep: true });
    expect(await resumeUntilStop(vm)).toEqual({ kind: "singleStep", vp: 0 });
    const after = await x86(vm, 0);
    expect(after.rip).not.toBe(before.rip);
  });

  it("drops decoded code when the debugger rewrites it", async () => {
    await settleAndHalt();
    // Replace tick's `add $1,%rax` (4 bytes) by `add $2,%rax`, then count.
    const addAt = sym("tick").gpa + 3n;
    const orig = await vm.readMemory({ kind: "gpa", gpa: addAt }, 4);
    expect(Array.from(orig)).toEqual([0x48, 0x83, 0xc0, 0x01]);
    await vm.writeMemory({ kind: "gpa", gpa: addAt }, Uint8Array.from([0x48, 0x83, 0xc0, 0x02]));
    const state = emptyDebugState();
    state.breakpoints[0] = { address: sym("counter").gva, type: BreakpointType.Write, size: BreakpointSize.QWord };
    await vm.setDebugState(0, state);
    const c0 = await readU64(vm, sym("counter").gpa);
    await resumeUntilStop(vm);
    expect(await readU64(vm, sym("counter").gpa)).toBe(c0 + 2n);
  });

  it("writes nothing when part of a GVA range is not RAM", async () => {
    await settleAndHalt();
    // 0xffffffff8ffffffc maps to the last 4 bytes of the 256 MiB of RAM; the next page is not RAM.
    const at = 0xffff_ffff_8fff_fffcn;
    const before = await vm.readMemory({ kind: "gva", vp: 0, gva: at }, 4);
    await expect(vm.writeMemory({ kind: "gva", vp: 0, gva: at }, new Uint8Array(8).fill(0xee))).rejects.toMatchObject({
      reason: "GPA_UNMAPPED",
    });
    expect(Array.from(await vm.readMemory({ kind: "gva", vp: 0, gva: at }, 4))).toEqual(Array.from(before));
  });

  it("refuses a GVA the guest's page tables do not map", async () => {
    await settleAndHalt();
    // The guest dropped its identity map: the lower half is unmapped.
    await expect(vm.readMemory({ kind: "gva", vp: 0, gva: 0x100000n }, 4)).rejects.toMatchObject({ reason: "GVA_NOT_MAPPED" });
  });

  it("refuses a GPA outside RAM", async () => {
    await expect(vm.readMemory({ kind: "gpa", gpa: 0x1_0000_0000n }, 16)).rejects.toBeInstanceOf(VmmError);
    await expect(vm.readMemory({ kind: "gpa", gpa: 0x1_0000_0000n }, 16)).rejects.toMatchObject({ reason: "GPA_UNMAPPED" });
  });

  it("reports Reset when the guest writes the reset port, restarting at the entry", async () => {
    await settleAndHalt();
    // mov $6,%al ; out %al,$0xcf9 (via dx) ; jmp .
    const reason = await runSnippet(vm, [0xb0, 0x06, 0x66, 0xba, 0xf9, 0x0c, 0xee, 0xeb, 0xfe]);
    expect(reason).toEqual({ kind: "reset" });
    expect((await x86(vm, 0)).rip).toBe(image.entry);
    expect((await x86(vm, 1)).gp[7]).toBe(1n); // RDI = VP index again
  });

  it("reports PowerOff and refuses to run again", async () => {
    await settleAndHalt();
    // mov $0x2000,%ax ; mov $0x604,%dx ; out %ax,%dx ; jmp .
    const reason = await runSnippet(vm, [0x66, 0xb8, 0x00, 0x20, 0x66, 0xba, 0x04, 0x06, 0x66, 0xef, 0xeb, 0xfe]);
    expect(reason).toEqual({ kind: "powerOff" });
    expect(vm.runState()).toBe("poweredOff");
    await expect(vm.resume()).rejects.toMatchObject({ reason: "VM_POWERED_OFF" });
  });

  it("reports a triple fault when an exception cannot be delivered", async () => {
    await settleAndHalt();
    await vm.writeMemory({ kind: "gpa", gpa: 0x80100n }, new Uint8Array(10)); // an IDT descriptor: limit 0, base 0
    // lidt 0x80100 ; ud2
    const reason = await runSnippet(vm, [0x0f, 0x01, 0x1c, 0x25, 0x00, 0x01, 0x08, 0x00, 0x0f, 0x0b]);
    expect(reason).toEqual({ kind: "tripleFault", vp: 0 });
  });

  it("reports Watchdog when the guest arms it and stops petting", async () => {
    await settleAndHalt();
    // mov $1,%eax ; mov $0x4f0,%dx ; out %eax,%dx ; jmp .
    const reason = await runSnippet(vm, [0xb8, 0x01, 0x00, 0x00, 0x00, 0x66, 0xba, 0xf0, 0x04, 0xef, 0xeb, 0xfe]);
    expect(reason).toEqual({ kind: "watchdog" });
  });
});
