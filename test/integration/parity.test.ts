// Unary and Session-stream parity on the embedded machine: two identical VMs, stopped at the same
// instruction, get the same operations (good and bad) — one over unary RPCs, one over a stream —
// and must give byte-identical results and identical errors.
import { toJson } from "@bufbuild/protobuf";
import { createEmuMachine, type EmuMachine } from "../../src/emu";
import { connect, type VmmDebugClient } from "../../src/client";
import { createVmmDebugServer, silentLogger, type VmmDebugServer } from "../../src/server";
import * as types from "../../gen/vmm/debug/v1/types_pb";
import { BreakpointSize, BreakpointType } from "../../gen/vmm/debug/v1/breakpoint_pb";
import { image, sym } from "./harness";
import { PARITY_CASES, SOFTWARE_BREAKPOINT_PARITY_CASES, streamOutcome, unaryOutcome, type ParityTarget } from "../shared/parity";
import { openRawStream, type RawStream } from "./stream-helpers";

const target: ParityTarget = {
  arch: "x86_64",
  data: sym("counter"),
  unmappedGpa: 0x4000_0000_0000n,
  unmappedGva: 0xffff_8000_1234_0000n,
  vpCount: 2,
};

describe("unary and Session-stream parity (embedded machine)", () => {
  let vms: EmuMachine[];
  let server: VmmDebugServer;
  let client: VmmDebugClient;
  let unarySession: string;
  let stream: RawStream;

  beforeAll(async () => {
    vms = await Promise.all(["a", "b"].map((id) => createEmuMachine({ id, image, vpCount: 2, startRunning: false })));
    // Run both to the same instruction, past the guest's own page-table setup (deterministic).
    let steps = 0;
    for (let i = 0; i < 200; i++) {
      await vms[0].step(0, 10_000, "none");
      steps += 10_000;
      const mapped = await vms[0].readMemory({ kind: "gva", vp: 0, gva: sym("counter").gva }, 8).then(
        () => true,
        () => false,
      );
      if (mapped) break;
    }
    for (let done = 0; done < steps; done += 10_000) await vms[1].step(0, 10_000, "none");
    server = createVmmDebugServer({ vms, logger: silentLogger });
    const { port } = await server.listen("127.0.0.1:0");
    client = connect(`127.0.0.1:${port}`);
    unarySession = (await client.rpc.debug.attach({ vm: "a" })).sessionId;
    stream = await openRawStream(client, "b");
  });

  afterAll(async () => {
    stream?.end();
    await stream?.done.catch(() => undefined);
    client?.close();
    await server?.close();
    await Promise.all((vms ?? []).map((vm) => vm.close()));
  });

  it("starts both VMs at the same instruction", async () => {
    expect(await vms[1].getVpState(0)).toEqual(await vms[0].getVpState(0));
  });

  // The cases run in order on both VMs, so state-changing ones (Step) keep the VMs identical.
  it.each([...PARITY_CASES, ...SOFTWARE_BREAKPOINT_PARITY_CASES].map((c) => [c.name, c] as const))("%s: same answer over unary and stream", async (_name, c) => {
    const unary = await unaryOutcome(client, "a", unarySession, c, target);
    const streamed = await streamOutcome(stream, "b", c, target);
    expect(streamed).toEqual(unary);
    if (c.expect === "ok") expect(unary.ok).toBe(true);
    else expect(unary).toMatchObject({ ok: false, reason: c.expect });
  });

  it("reports the same stop: Resume's answer over unary, a pushed stop over the stream", async () => {
    const tick = sym("tick").gva;
    const state = { breakpoints: [{ breakpoint: { address: tick, type: BreakpointType.EXECUTE, size: BreakpointSize.BYTE } }] };
    await client.rpc.debug.setDebugState({ vm: "a", sessionId: unarySession, vp: 0, state });
    expect((await stream.call({ case: "setDebugState", value: { vp: 0, state } })).result.case).toBe("setDebugState");

    const unary = await client.rpc.debug.resume({ sessionId: unarySession });
    const answer = await stream.call({ case: "resume", value: {} });
    expect(answer.result.case).toBe("resume");
    const pushed = await stream.nextStop();
    expect(toJson(types.DebugStopReasonSchema, pushed.reason!)).toEqual(toJson(types.DebugStopReasonSchema, unary.reason!));
    expect(pushed.vp).toBe(0);
    expect(pushed.sequence).toBeGreaterThan(0n);
  });

  it("refuses a request naming another VM the same way", async () => {
    const unary = await client.rpc.debug.break({ vm: "b", sessionId: unarySession }).catch((e: { reason?: string }) => e.reason);
    const streamed = await stream.call({ case: "break", value: { vm: "a" } });
    expect(unary).toBe("SESSION_VM_MISMATCH");
    expect(streamed.result.case === "error" && streamed.result.value.code).toBe(3);
  });
});
