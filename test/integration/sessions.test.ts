// Sessions and run control: who may control a VM, leases, and how Resume, Break and cancellation interact.
import { Status } from "nice-grpc";
import type { Session } from "../../src/client";
import { vpStateToWire } from "../../src/client/convert";
import { expectRpcError, readU64, sleep, startHarness, sym, u64Bytes, vmSnapshot, waitFor, x86, type Harness } from "./harness";

/** These tests pin the unary session rules (leases, session ids); the stream has its own tests. */
const UNARY = { transport: "unary" } as const;

const VM = "demo";

describe("sessions", () => {
  let h: Harness;
  let session: Session | undefined;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  afterEach(async () => {
    await session?.detach().catch(() => undefined);
    session = undefined;
    await waitFor(async () => (await h.client.getVm(VM)).attached === undefined, 5000, "no session left");
  });

  async function attachStopped(): Promise<Session> {
    session = await h.client.attach(VM, UNARY);
    await session.break();
    expect(await session.resume()).toEqual({ kind: "break" });
    return session;
  }

  it("refuses every control call without a session with FAILED_PRECONDITION / NOT_ATTACHED, changing nothing", async () => {
    const s = await attachStopped();
    const before = await vmSnapshot(h.client, VM);
    const rpc = h.client.rpc.debug;
    const state = await h.client.getVpState(VM, 0); // well-formed, so only the session is wrong
    const address = { kind: { case: "gpa" as const, value: sym("counter").gpa } };
    const calls: [string, () => Promise<unknown>][] = [
      ["Detach", () => rpc.detach({ vm: VM })],
      ["Resume", () => rpc.resume({ vm: VM })],
      ["Break", () => rpc.break({ vm: VM })],
      ["SetDebugState", () => rpc.setDebugState({ vm: VM, vp: 0, state: { singleStep: true } })],
      ["SetVpState", () => rpc.setVpState({ vm: VM, vp: 0, state: vpStateToWire(state) })],
      ["WriteMemory", () => rpc.writeMemory({ vm: VM, address, data: u64Bytes(0n) })],
    ];
    for (const [rpcName, call] of calls) {
      const err = await expectRpcError(call(), Status.FAILED_PRECONDITION, "NOT_ATTACHED", { vm: VM });
      expect([rpcName, err.message]).toEqual([rpcName, expect.stringContaining("session_id")]);
    }
    expect(await vmSnapshot(h.client, VM)).toEqual(before);
    expect((await h.client.getVm(VM)).attached).toBeDefined(); // the real session is untouched
    await s.break(); // still usable
  });

  it("refuses a stale session after Detach with FAILED_PRECONDITION / NOT_ATTACHED", async () => {
    const s = await attachStopped();
    await s.detach();
    session = undefined;
    const before = await vmSnapshot(h.client, VM);
    const err = await expectRpcError(s.break(), Status.FAILED_PRECONDITION, "NOT_ATTACHED", { session_id: s.id.slice(0, 8) });
    expect(err.message).toContain("call Attach");
    await expectRpcError(s.writeMemory({ gpa: sym("counter").gpa }, u64Bytes(0n)), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
    expect((await vmSnapshot(h.client, VM) as { runState: string }).runState).toBe((before as { runState: string }).runState);
  });

  it("refuses a second Attach with FAILED_PRECONDITION / SESSION_CONFLICT naming the holder", async () => {
    session = await h.client.attach(VM, UNARY);
    const holder = (await h.client.getVm(VM)).attached!.holder;
    const err = await expectRpcError(h.client.attach(VM, UNARY), Status.FAILED_PRECONDITION, "SESSION_CONFLICT", { vm: VM, holder });
    expect(err.message).toContain(holder);
    expect((await h.client.getVm(VM)).attached?.holder).toBe(holder);
    await session.break(); // the first session still controls the VM
  });

  it("refuses a second concurrent Resume with FAILED_PRECONDITION / RESUME_IN_PROGRESS", async () => {
    const s = await attachStopped();
    const first = s.resume();
    await waitFor(async () => (await h.client.getVm(VM)).runState === "running");
    await expectRpcError(s.resume(), Status.FAILED_PRECONDITION, "RESUME_IN_PROGRESS", { vm: VM });
    await s.break();
    expect(await first).toEqual({ kind: "break" });
  });

  it("fails a waiting Resume with ABORTED / SESSION_ENDED when the session detaches, leaving the VM running", async () => {
    const s = await attachStopped();
    const resumed = s.resume();
    await waitFor(async () => (await h.client.getVm(VM)).runState === "running");
    await s.detach();
    session = undefined;
    const err = await expectRpcError(resumed, Status.ABORTED, "SESSION_ENDED", { vm: VM, cause: "detached" });
    expect(err.message).toContain("session ended");
    const info = await h.client.getVm(VM);
    expect(info.runState).toBe("running");
    expect(info.attached).toBeUndefined();
  });

  it("reports a Resume cancelled by its AbortSignal as CANCELLED", async () => {
    const s = await attachStopped();
    const ac = new AbortController();
    const resumed = s.resume({ signal: ac.signal });
    await waitFor(async () => (await h.client.getVm(VM)).runState === "running");
    ac.abort();
    await expectRpcError(resumed, Status.CANCELLED, "CANCELLED");
    await s.break(); // the stop goes pending…
    expect(await s.resume()).toEqual({ kind: "break" }); // …and is reported here
  });

  it("writes an audit line per control request with peer, vm, rpc, session prefix and outcome", async () => {
    h.logs.length = 0;
    const s = await attachStopped();
    await expectRpcError(h.client.rpc.debug.break({ vm: VM, sessionId: "feedface" }), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
    const audits = h.logs.filter((l) => l.message === "audit").map((l) => l.fields);
    expect(audits.map((a) => [a.rpc, a.outcome])).toEqual([
      ["Attach", "ok"],
      ["Break", "ok"],
      ["Resume", "ok"],
      ["Break", "FAILED_PRECONDITION/NOT_ATTACHED"],
    ]);
    expect(audits[0]).toMatchObject({ vm: VM, session: s.id.slice(0, 8), peer: expect.stringContaining("127.0.0.1") });
    expect(audits[3]).toMatchObject({ session: "feedface" });
    expect(typeof audits[0].time).toBe("string");
  });

  it("leaves the VM running when a Resume is cancelled, and reports its next stop to the next Resume", async () => {
    const s = await attachStopped();
    const rate = await ticksPerSecond(h, s);
    // Park VP 0 at main_loop (outside tick, so it holds no stale counter value in RAX).
    await s.setBreakpoint(0, sym("main_loop").gva, 0);
    expect(await s.resume()).toMatchObject({ kind: "hwBreakpoint", vp: 0 });
    // Make VP 0 reach `report` a while from now: report runs when the counter's low 23 bits wrap.
    const counter = sym("counter").gpa;
    const ticks = BigInt(Math.min(0x7f_ffff, Math.max(2000, Math.round(rate * 1.5))));
    const wrap = ((await readU64(h.vms[0], counter)) | 0x7f_ffffn) + 1n;
    await s.writeMemory({ gpa: counter }, u64Bytes(wrap - ticks));
    const report = await reportAddress(h);
    await s.setBreakpoint(0, report, 0);

    const cancelled = await s.resume({ deadlineMs: 100 }).catch((e: unknown) => e);
    expect(cancelled).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect((await h.client.getVm(VM)).runState).toBe("running");
    await waitFor(async () => (await h.client.getVm(VM)).runState === "stopped", 30_000, "the breakpoint stop");
    const rip = (await x86(h.client, VM, 0)).rip;
    expect(rip).toBe(report);
    // Answered at once, without running: the VM stays where it stopped.
    expect(await s.resume()).toEqual({ kind: "hwBreakpoint", vp: 0, breakpoint: { address: report, type: "execute", size: 1 } });
    expect((await h.client.getVm(VM)).runState).toBe("stopped");
    expect((await x86(h.client, VM, 0)).rip).toBe(rip);
  });
});

// A short lease, so lapses happen within a test.
describe("leases", () => {
  let h: Harness;
  let session: Session | undefined;

  beforeAll(async () => {
    h = await startHarness({ leaseMs: 500 });
  });
  afterAll(async () => {
    await h.close();
  });
  afterEach(async () => {
    await session?.detach().catch(() => undefined);
    session = undefined;
    await waitFor(async () => (await h.client.getVm(VM)).attached === undefined, 5000, "no session left");
  });

  async function attachStopped(): Promise<Session> {
    session = await h.client.attach(VM, UNARY);
    await session.break();
    expect(await session.resume()).toEqual({ kind: "break" });
    return session;
  }

  it("detaches on the debugger's behalf when the lease lapses, resuming the VM and clearing breakpoints", async () => {
    const s = await attachStopped();
    await s.setBreakpoint(0, sym("tick").gva);
    session = undefined;
    await waitFor(async () => (await h.client.getVm(VM)).attached === undefined, 5000, "lease lapse");
    expect((await h.client.getVm(VM)).runState).toBe("running");
    const c0 = await readU64(h.vms[0], sym("counter").gpa);
    await waitFor(async () => (await readU64(h.vms[0], sym("counter").gpa)) > c0 + 1000n); // the breakpoint is gone
    await expectRpcError(s.break(), Status.FAILED_PRECONDITION, "NOT_ATTACHED");
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        message: "audit",
        fields: expect.objectContaining({ rpc: "LeaseExpired", vm: VM, session: s.id.slice(0, 8), outcome: "ok", peer: "server" }),
      }),
    );
  });

  it("renews the lease with every request carrying the session", async () => {
    const s = await attachStopped();
    for (let i = 0; i < 6; i++) {
      await sleep(150); // 900 ms in all, lease 500 ms
      await s.break();
    }
    expect((await h.client.getVm(VM)).attached).toBeDefined();
  });

  it("keeps the session alive while a Resume waits, and Break answers that Resume", async () => {
    const s = await attachStopped();
    const resumed = s.resume();
    await sleep(1200); // more than two leases
    expect((await h.client.getVm(VM)).runState).toBe("running");
    expect((await h.client.getVm(VM)).attached).toBeDefined();
    await s.break();
    expect(await resumed).toEqual({ kind: "break" });
    expect((await h.client.getVm(VM)).runState).toBe("stopped");
  });
});

/** VP 0's counter increments per second while running (VM left stopped again). */
async function ticksPerSecond(h: Harness, s: Session): Promise<number> {
  const counter = sym("counter").gpa;
  const resumed = s.resume();
  await waitFor(async () => (await h.client.getVm(VM)).runState === "running");
  const a = await readU64(h.vms[0], counter);
  const t0 = Date.now();
  await sleep(200);
  const b = await readU64(h.vms[0], counter);
  const rate = (Number(b - a) * 1000) / (Date.now() - t0);
  await s.break();
  expect(await resumed).toEqual({ kind: "break" });
  return rate;
}

/** `report`'s address: the call after `test $REPORT_MASK, %eax; jnz main_loop` in main_loop. */
async function reportAddress(h: Harness): Promise<bigint> {
  const loop = sym("main_loop").gva;
  const code = await h.client.readMemory(VM, { gva: loop }, 32);
  // main_loop: mov %r12,%rdi (3) ; call tick (5) ; test $imm32,%eax (5) ; jnz rel (2 or 6) ; call report (e8 rel32)
  for (let i = 0; i < code.length - 5; i++) {
    if (code[i] === 0xe8 && i > 8) {
      const rel = new DataView(code.buffer, code.byteOffset + i + 1, 4).getInt32(0, true);
      const target = loop + BigInt(i + 5) + BigInt(rel);
      if (target !== sym("tick").gva) return target;
    }
  }
  throw new Error("call report not found in main_loop");
}
