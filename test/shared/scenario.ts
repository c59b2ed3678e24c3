// The end-to-end debugging scenario, one script for every backend (embedded machine, QEMU x86-64,
// QEMU aarch64): attach, break, watch the counter, compare GVA and GPA reads, single-step, edit a
// register, detach. Backends differ only in what the architecture dictates.
import { Decoder, DecoderOptions, FlowControl } from "iced-x86";
import type { DebuggerVpState, Session, VmmDebugClient } from "../../src/client";

export interface ScenarioTarget {
  client: VmmDebugClient;
  vm: string;
  arch: "x86_64" | "aarch64";
  counter: { gva: bigint; gpa: bigint };
}

function u64(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
}

function pcOf(s: DebuggerVpState): bigint {
  return s.arch === "x86_64" ? s.state.rip : s.state.pc;
}

/** Length of the instruction at `pc`, and where it goes if it falls through or returns. */
async function decodeAt(t: ScenarioTarget, state: DebuggerVpState): Promise<{ length: number; next: boolean; returnsTo?: bigint }> {
  const pc = pcOf(state);
  if (state.arch === "aarch64") {
    const word = new DataView((await t.client.readMemory(t.vm, { gva: pc, vp: 0 }, 4)).buffer).getUint32(0, true);
    const branch =
      (word & 0x7c000000) === 0x14000000 || // b, bl
      (word & 0xff000010) === 0x54000000 || // b.cond
      (word & 0x7e000000) === 0x34000000 || // cbz, cbnz
      (word & 0x7e000000) === 0x36000000 || // tbz, tbnz
      (word & 0xfe000000) === 0xd6000000; // br, blr, ret, eret
    const isRet = (word & 0xfffffc1f) === 0xd65f0000;
    return { length: 4, next: !branch, returnsTo: isRet ? state.state.x[(word >> 5) & 31] : undefined };
  }
  const bytes = await t.client.readMemory(t.vm, { gva: pc, vp: 0 }, 15);
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  const instr = decoder.decode();
  try {
    const ret = instr.flowControl === FlowControl.Return;
    const returnsTo = ret ? u64(await t.client.readMemory(t.vm, { gva: state.state.gp[4], vp: 0 }, 8)) : undefined;
    return { length: instr.length, next: instr.flowControl === FlowControl.Next, returnsTo };
  } finally {
    instr.free();
    decoder.free();
  }
}

async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} not met within ${ms} ms`);
}

/** Runs the scenario; returns the session if the caller must clean up after a failure. */
export async function runDebuggingScenario(t: ScenarioTarget): Promise<void> {
  const { client, vm, counter } = t;
  const session: Session = await client.attach(vm);
  try {
    expect(session.vm).toBe(vm);

    // Break; the stop is reported by the next Resume at once.
    await session.break();
    expect(await session.resume()).toEqual({ kind: "break" });

    // A write watchpoint on `counter` (by its GVA) on VP 0.
    const slot = await session.setWatchpoint(0, { address: counter.gva, type: "write", size: 8 });
    expect(await session.resume()).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: counter.gva, type: "write", size: 8 } });
    expect(session.debugState(0).breakpoints[slot]).toEqual({ address: counter.gva, type: "write", size: 8 });

    // The counter read by GVA (through VP 0's page tables) equals the read by GPA.
    const byGva = u64(await session.readMemory({ gva: counter.gva, vp: 0 }, 8));
    const byGpa = u64(await session.readMemory({ gpa: counter.gpa }, 8));
    expect(byGva).toBe(byGpa);
    const atHit = await session.getVpState(0);
    if (atHit.arch === "x86_64") {
      expect(byGva).toBeGreaterThan(0n);
      expect(atHit.state.gp[0]).toBe(byGva); // x86 stops after the store: RAX holds what was stored
    } else {
      expect(atHit.state.x[1]).toBe(byGva + 1n); // aarch64 stops before the store of x1 = counter + 1
    }

    // Single steps report SingleStep{vp: 0}; a fall-through instruction advances the PC by its length.
    await session.clearBreakpoint(0, slot);
    let checkedFallThrough = false;
    for (let i = 0; i < 6 && !checkedFallThrough; i++) {
      const before = await session.getVpState(0);
      const instr = await decodeAt(t, before);
      expect(await session.step(0)).toEqual({ kind: "singleStep", vp: 0 });
      const after = pcOf(await session.getVpState(0));
      if (instr.next) {
        expect(after).toBe(pcOf(before) + BigInt(instr.length));
        checkedFallThrough = true;
      } else if (instr.returnsTo !== undefined) {
        expect(after).toBe(instr.returnsTo);
      }
    }
    expect(checkedFallThrough).toBe(true);
    expect(session.debugState(0).singleStep).toBe(false);

    // Set a register the loop does not use and read it back.
    const regs = await session.getVpState(0);
    const value = 0x0bad_cafe_f00d_d00dn;
    if (regs.arch === "x86_64") {
      const gp = [...regs.state.gp];
      gp[13] = value; // R13
      await session.setVpState(0, { arch: "x86_64", state: { ...regs.state, gp } });
      const back = await session.getVpState(0);
      expect(back.arch === "x86_64" && back.state.gp[13]).toBe(value);
      expect(back).toEqual({ arch: "x86_64", state: { ...regs.state, gp } });
    } else {
      const x = [...regs.state.x];
      x[27] = value;
      await session.setVpState(0, { arch: "aarch64", state: { ...regs.state, x } });
      const back = await session.getVpState(0);
      expect(back.arch === "aarch64" && back.state.x[27]).toBe(value);
      expect(back).toEqual({ arch: "aarch64", state: { ...regs.state, x } });
    }

    // Detach: the guest runs on and the counter advances.
    await session.detach();
  } catch (e) {
    await session.detach().catch(() => undefined);
    throw e;
  }
  const info = await client.getVm(vm);
  expect(info.runState).toBe("running");
  expect(info.attached).toBeUndefined();
  const c0 = u64(await client.readMemory(vm, { gpa: counter.gpa }, 8));
  await waitFor(async () => u64(await client.readMemory(vm, { gpa: counter.gpa }, 8)) > c0 + 10_000n, 20_000, "counter advancing");
}
