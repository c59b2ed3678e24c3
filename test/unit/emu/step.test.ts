// Batched stepping on the embedded machine (VmmCore.step), checked against single steps
// (single_step + resume) on a second machine booted identically.
import { join } from "node:path";
import {
  BreakpointSize,
  BreakpointType,
  type DebugState,
  type DebugStopReason,
  MAX_STEP_COUNT,
  type StepTrace,
  VmmError,
  type X86VpState,
  emptyDebugState,
  flattenVpState,
} from "../../../src/core";
import { createEmuMachine, type EmuMachine, loadGuestImage } from "../../../src/emu";
import { STEP_STOP_CHECK } from "../../../src/emu/x86_64";

const image = loadGuestImage(join(__dirname, "../../../guests/build/demo-x86_64.json"));
const sym = (name: string) => image.symbols[name];
/** A free GPA inside the boot identity map. */
const SNIPPET_GPA = 0x80000n;

const machines: EmuMachine[] = [];

/** A machine stopped at boot (every VP at `_start`), never run: two of these are identical. */
async function bootedStopped(vpCount = 2): Promise<EmuMachine> {
  const vm = await createEmuMachine({ id: `t${machines.length}`, image, vpCount, quantum: 1000, startRunning: false });
  machines.push(vm);
  return vm;
}

afterEach(async () => {
  await Promise.all(machines.splice(0).map((vm) => vm.close()));
});

function nextStop(vm: EmuMachine): Promise<DebugStopReason> {
  return new Promise((resolve) => {
    const off = vm.onStop((r) => {
      off();
      resolve(r);
    });
  });
}

async function x86(vm: EmuMachine, vp: number): Promise<X86VpState> {
  const s = await vm.getVpState(vp);
  if (s.arch !== "x86_64") throw new Error("not x86");
  return s.state;
}

/** One single step (single_step armed, one resume): the stop it reports. */
async function singleStep(vm: EmuMachine): Promise<DebugStopReason> {
  const stop = nextStop(vm);
  await vm.resume();
  return stop;
}

async function armSingleStep(vm: EmuMachine, vp: number, debug: DebugState = emptyDebugState()): Promise<void> {
  await vm.setDebugState(vp, { ...debug, singleStep: true });
}

async function readU64(vm: EmuMachine, gpa: bigint): Promise<bigint> {
  const b = await vm.readMemory({ kind: "gpa", gpa }, 8);
  return new DataView(b.buffer).getBigUint64(0, true);
}

/** Writes `code` at SNIPPET_GPA and points VP 0 (at boot: identity-mapped) at it, with a stack below. */
async function placeSnippet(vm: EmuMachine, code: number[]): Promise<void> {
  await vm.writeMemory({ kind: "gpa", gpa: SNIPPET_GPA }, Uint8Array.from(code));
  const s = await x86(vm, 0);
  const gp = [...s.gp];
  gp[4] = SNIPPET_GPA; // RSP: the stack grows down from the snippet
  await vm.setVpState(0, { arch: "x86_64", state: { ...s, gp, rip: SNIPPET_GPA } });
}

async function reasonOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VmmError) return e.reason;
    throw e;
  }
  throw new Error("did not reject");
}

const execute = (address: bigint) => ({ address, type: BreakpointType.Execute, size: BreakpointSize.Byte });
const withSlot0 = (bp: ReturnType<typeof execute>): DebugState => ({ singleStep: false, breakpoints: [bp, null, null, null] });

describe("EmuMachine.step", () => {
  it("records the same RIPs as as many single steps on an identical machine, and ends in the same state", async () => {
    const batched = await bootedStopped();
    const single = await bootedStopped();
    const n = 3000;
    const result = await batched.step(0, n, "pc");
    expect(result.executed).toBe(n);
    expect(result.stop).toBeUndefined();
    expect(result.halted).toBeUndefined();
    expect(result.pcs).toBeInstanceOf(BigUint64Array);

    await armSingleStep(single, 0);
    const rips: bigint[] = [];
    for (let i = 0; i < n; i++) {
      expect(await singleStep(single)).toEqual({ kind: "singleStep", vp: 0 });
      rips.push((await x86(single, 0)).rip);
    }
    expect([...result.pcs!]).toEqual(rips);
    expect(await batched.getVpState(0)).toEqual(await single.getVpState(0));
    expect(await batched.getVpState(1)).toEqual(await single.getVpState(1));
  });

  it("reports deltas that, applied in order to the starting registers, give GetVpState after each single step", async () => {
    const batched = await bootedStopped();
    const single = await bootedStopped();
    const n = 800;
    let flat = flattenVpState(await batched.getVpState(0));
    const result = await batched.step(0, n, "registers");
    expect(result.executed).toBe(n);
    expect(result.deltas).toHaveLength(n);
    expect(result.pcs).toHaveLength(n);

    await armSingleStep(single, 0);
    for (let i = 0; i < n; i++) {
      await singleStep(single);
      const delta = result.deltas![i];
      flat = [...flat];
      delta.registers.forEach((reg, j) => (flat[reg] = delta.values[j]));
      expect({ step: i, flat }).toEqual({ step: i, flat: flattenVpState(await single.getVpState(0)) });
      expect(flat[16]).toBe(result.pcs![i]);
    }
    // The boot code writes GP registers and RFLAGS too: the deltas are not RIP-only. (Its
    // `rep stosq` of 2560 quadwords takes one step per iteration, RCX and RDI changing in each.)
    const changed = new Set(result.deltas!.flatMap((d) => d.registers));
    expect([...changed]).toEqual(expect.arrayContaining([1, 7, 16, 17]));
  });

  it("records nothing per instruction with trace none", async () => {
    const vm = await bootedStopped();
    const result = await vm.step(0, 100, "none");
    expect(result).toEqual({ executed: 100 });
  });

  it("stops before an execute breakpoint, having run the instructions before it; the next batch steps off it", async () => {
    const vm = await bootedStopped();
    const reference = await bootedStopped();
    const target = sym("kernel_main").gva;
    const trace = await reference.step(0, 100_000, "pc");
    const index = [...trace.pcs!].indexOf(target);
    expect(index).toBeGreaterThan(0);

    await vm.setDebugState(0, withSlot0(execute(target)));
    const result = await vm.step(0, 100_000, "pc");
    expect(result.stop).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: execute(target) });
    expect(result.executed).toBe(index + 1);
    expect([...result.pcs!]).toEqual([...trace.pcs!.subarray(0, index + 1)]);
    expect((await x86(vm, 0)).rip).toBe(target);

    // The VP stands on the breakpoint: the first instruction of the next batch does not fire it.
    const next = await vm.step(0, 3, "pc");
    expect(next.executed).toBe(3);
    expect(next.stop).toBeUndefined();
    expect([...next.pcs!]).toEqual([...trace.pcs!.subarray(index + 1, index + 4)]);
  });

  it("stops after a watched write, counting the instruction that wrote", async () => {
    const vm = await bootedStopped();
    // At boot VP 0 stores RSI (the VP count) to vp_count through the identity map.
    const watch = { address: sym("vp_count").gpa, type: BreakpointType.Write, size: BreakpointSize.QWord };
    await vm.setDebugState(0, { singleStep: false, breakpoints: [null, watch, null, null] });
    expect(await readU64(vm, sym("vp_count").gpa)).toBe(1n); // the image's default
    const result = await vm.step(0, 1000, "pc");
    expect(result.stop).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: watch });
    expect(result.executed).toBe(5); // mov, test, jnz, movabs, mov (%rdi)
    expect(await readU64(vm, sym("vp_count").gpa)).toBe(2n);
    expect(result.pcs![4]).toBe((await x86(vm, 0)).rip);
  });

  it("moves only the stepped VP", async () => {
    const vm = await bootedStopped();
    const vp1 = await vm.getVpState(1);
    await vm.step(0, 5000, "none");
    expect(await vm.getVpState(1)).toEqual(vp1);
    const vp0 = await vm.getVpState(0);
    const result = await vm.step(1, 200, "pc");
    expect(result.executed).toBe(200);
    expect(await vm.getVpState(0)).toEqual(vp0);
  });

  it("reports running while the batch runs, stopped after, and fires no onStop", async () => {
    const vm = await bootedStopped();
    const stops: DebugStopReason[] = [];
    vm.onStop((r) => stops.push(r));
    const pending = vm.step(0, 200_000, "pc");
    expect(vm.runState()).toBe("running");
    await expect(vm.getVpState(0)).rejects.toMatchObject({ reason: "VM_RUNNING" });
    await pending;
    expect(vm.runState()).toBe("stopped");
    expect(stops).toEqual([]);
  });

  it("refuses to step a running VM", async () => {
    const vm = await bootedStopped();
    await vm.resume();
    expect(await reasonOf(vm.step(0, 10, "pc"))).toBe("VM_RUNNING");
    await vm.halt();
  });

  it("refuses a VP out of range", async () => {
    const vm = await bootedStopped();
    expect(await reasonOf(vm.step(2, 10, "pc"))).toBe("VP_OUT_OF_RANGE");
  });

  it.each([0, MAX_STEP_COUNT + 1])("refuses count %p as INVALID_ARGUMENT VALUE_OUT_OF_RANGE, leaving the VP where it was", async (count) => {
    const vm = await bootedStopped();
    const before = await vm.getVpState(0);
    await expect(vm.step(0, count, "pc")).rejects.toMatchObject({ code: 3, reason: "VALUE_OUT_OF_RANGE" });
    expect(vm.runState()).toBe("stopped");
    expect(await vm.getVpState(0)).toEqual(before);
  });

  it("ends early with break when the signal aborts, or when halt() asks", async () => {
    const vm = await bootedStopped();
    const controller = new AbortController();
    const pending = vm.step(0, MAX_STEP_COUNT, "pc", controller.signal);
    controller.abort();
    const result = await pending;
    expect(result.stop).toEqual({ kind: "break" });
    expect(result.executed).toBe(STEP_STOP_CHECK);
    expect(result.pcs).toHaveLength(STEP_STOP_CHECK);

    const halted = vm.step(0, MAX_STEP_COUNT, "none");
    await vm.halt();
    expect(vm.runState()).toBe("stopped");
    expect(await halted).toEqual({ executed: STEP_STOP_CHECK, stop: { kind: "break" } });

    const aborted = new AbortController();
    aborted.abort();
    expect(await vm.step(0, 10, "pc", aborted.signal)).toEqual({ executed: 0, stop: { kind: "break" }, pcs: new BigUint64Array(0) });
  });

  it("ends the batch at HLT with halted, and a halted VP steps nothing", async () => {
    const vm = await bootedStopped(1);
    await placeSnippet(vm, [0x90, 0xf4, 0x90]); // nop; hlt; nop
    const result = await vm.step(0, 10, "pc");
    expect(result).toEqual({ executed: 2, halted: true, pcs: new BigUint64Array([SNIPPET_GPA + 1n, SNIPPET_GPA + 2n]) });
    expect(await vm.step(0, 10, "pc")).toEqual({ executed: 0, halted: true, pcs: new BigUint64Array(0) });
  });

  it("counts a delivered exception as one step, landing where a single step lands", async () => {
    // lidt [0x80040]; ud2 — an IDT at 0x81000 whose #UD gate leads to nop; hlt at 0x80100.
    const code = new Uint8Array(0x1100);
    code.set([0x0f, 0x01, 0x1c, 0x25, 0x40, 0x00, 0x08, 0x00, 0x0f, 0x0b], 0);
    const idtr = new DataView(code.buffer, 0x40, 10);
    idtr.setUint16(0, 0xfff, true);
    idtr.setBigUint64(2, 0x81000n, true);
    code.set([0x90, 0xf4], 0x100);
    const gate = new DataView(code.buffer, 0x1000 + 6 * 16, 16);
    gate.setUint16(0, 0x0100, true); // offset 15:0 of 0x80100
    gate.setUint16(2, 0x08, true); // the boot code selector
    gate.setUint16(4, 0x8e00, true); // present interrupt gate
    gate.setUint16(6, 0x0008, true); // offset 31:16
    const handler = SNIPPET_GPA + 0x100n;

    const batched = await bootedStopped(1);
    const single = await bootedStopped(1);
    for (const vm of [batched, single]) await placeSnippet(vm, [...code]);
    const result = await batched.step(0, 10, "pc");
    expect(result).toEqual({ executed: 4, halted: true, pcs: new BigUint64Array([SNIPPET_GPA + 8n, handler, handler + 1n, handler + 2n]) });

    await armSingleStep(single, 0);
    const rips: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      expect(await singleStep(single)).toEqual({ kind: "singleStep", vp: 0 });
      rips.push((await x86(single, 0)).rip);
    }
    expect(rips).toEqual([...result.pcs!]);
    expect(await batched.getVpState(0)).toEqual(await single.getVpState(0));
  });

  it("reports a triple fault without counting it, and the next step starts from reset", async () => {
    const vm = await bootedStopped(1);
    await placeSnippet(vm, [0x90, 0x0f, 0x0b]); // nop; ud2 with no IDT yet
    const result = await vm.step(0, 10, "pc");
    expect(result).toEqual({ executed: 1, stop: { kind: "tripleFault", vp: 0 }, pcs: new BigUint64Array([SNIPPET_GPA + 1n]) });
    expect(vm.runState()).toBe("stopped");
    const next = await vm.step(0, 1, "pc");
    expect(next.pcs![0]).toBe(sym("_start").gva + 3n); // mov %rdi, %r15 at the entry
  });

  it("reports a power-off, after which the VM refuses to step", async () => {
    const vm = await bootedStopped(1);
    // mov $0x2000, %ax; mov $0x604, %dx; out %ax, %dx
    await placeSnippet(vm, [0x66, 0xb8, 0x00, 0x20, 0x66, 0xba, 0x04, 0x06, 0x66, 0xef, 0xeb, 0xfe]);
    const result = await vm.step(0, 10, "none");
    expect(result).toEqual({ executed: 3, stop: { kind: "powerOff" } });
    expect(vm.runState()).toBe("poweredOff");
    expect(await reasonOf(vm.step(0, 1, "none"))).toBe("VM_POWERED_OFF");
  });

  it.each<StepTrace>(["pc", "registers"])("returns as many trace entries as instructions executed (%s)", async (trace) => {
    const vm = await bootedStopped(1);
    await vm.setDebugState(0, withSlot0(execute(sym("_start").gva + 3n)));
    const result = await vm.step(0, 50, trace);
    expect(result.executed).toBe(1);
    expect(result.pcs).toHaveLength(1);
    if (trace === "registers") expect(result.deltas).toHaveLength(1);
  });
});
