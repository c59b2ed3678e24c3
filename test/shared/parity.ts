// Parity of the two transports: every DebugService operation, with good and bad input, run as a
// unary RPC and as a Session-stream operation, must give the same result or the same error.
import { create, createRegistry, toJson, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { Status } from "nice-grpc";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import * as types from "../../gen/vmm/debug/v1/types_pb";
import { BreakpointSize, BreakpointType } from "../../gen/vmm/debug/v1/breakpoint_pb";
import { VmmDebugError, type VmmDebugClient } from "../../src/client";
import { openRawStream, answerError, type RawStream } from "../integration/stream-helpers";

type Op = Exclude<ds.SessionRequest["operation"]["case"], undefined | "attach" | "readMemoryStream" | "dumpMemory">;

export interface ParityTarget {
  arch: "x86_64" | "aarch64";
  /** A GVA of guest data (the counter) and a GPA of it. */
  data: { gva: bigint; gpa: bigint };
  /** A GPA nothing maps. */
  unmappedGpa: bigint;
  /** A canonical GVA the guest does not map. */
  unmappedGva: bigint;
  vpCount: number;
}

export interface ParityCase {
  name: string;
  op: Op;
  /** The request without vm and session id (the runner adds them). */
  request: (t: ParityTarget) => Record<string, unknown>;
  /** "ok", or the reason the server must give. */
  expect: "ok" | string;
}

const gpa = (a: bigint) => ({ kind: { case: "gpa" as const, value: a } });
const gva = (vp: number, a: bigint) => ({ kind: { case: "gva" as const, value: { vp, gva: a } } });
const slot = (address: bigint, type: BreakpointType, size: BreakpointSize) => ({ breakpoint: { address, type, size } });

export const PARITY_CASES: ParityCase[] = [
  { name: "GetVpState of VP 0", op: "getVpState", request: () => ({ vp: 0 }), expect: "ok" },
  { name: "GetVpState of a VP the VM lacks", op: "getVpState", request: () => ({ vp: 99 }), expect: "VP_OUT_OF_RANGE" },
  { name: "GetVpStates of every VP", op: "getVpStates", request: () => ({ vps: [] }), expect: "ok" },
  { name: "GetVpStates naming a VP the VM lacks", op: "getVpStates", request: () => ({ vps: [0, 99] }), expect: "VP_OUT_OF_RANGE" },
  { name: "ReadMemory by GPA", op: "readMemory", request: (t) => ({ address: gpa(t.data.gpa), length: 64n }), expect: "ok" },
  { name: "ReadMemory by GVA", op: "readMemory", request: (t) => ({ address: gva(0, t.data.gva), length: 64n }), expect: "ok" },
  { name: "ReadMemory of unmapped GPA", op: "readMemory", request: (t) => ({ address: gpa(t.unmappedGpa), length: 8n }), expect: "GPA_UNMAPPED" },
  { name: "ReadMemory of unmapped GVA", op: "readMemory", request: (t) => ({ address: gva(0, t.unmappedGva), length: 8n }), expect: "GVA_NOT_MAPPED" },
  { name: "ReadMemory without address", op: "readMemory", request: () => ({ length: 8n }), expect: "MISSING_FIELD" },
  { name: "ReadMemory over the cap", op: "readMemory", request: (t) => ({ address: gpa(t.data.gpa), length: 1n << 40n }), expect: "READ_TOO_LARGE" },
  {
    name: "ReadMemoryMany with a bad range among good ones",
    op: "readMemoryMany",
    request: (t) => ({
      ranges: [
        { address: gpa(t.data.gpa), length: 16n },
        { address: gpa(t.unmappedGpa), length: 8n },
        { address: gva(0, t.data.gva), length: 8n },
        { address: gva(99, t.data.gva), length: 8n },
        { length: 8n },
      ],
    }),
    expect: "ok",
  },
  {
    name: "ReadMemoryMany over the cap in total",
    op: "readMemoryMany",
    request: (t) => ({ ranges: [{ address: gpa(t.data.gpa), length: 1n << 40n }] }),
    expect: "READ_TOO_LARGE",
  },
  {
    name: "SetDebugState with an execute breakpoint and a watchpoint",
    op: "setDebugState",
    request: (t) => ({
      vp: 0,
      state: { breakpoints: [slot(t.data.gva + 0x1000n, BreakpointType.EXECUTE, BreakpointSize.BYTE), slot(t.data.gva, BreakpointType.WRITE, BreakpointSize.QWORD)] },
    }),
    expect: "ok",
  },
  {
    name: "SetDebugState with a misaligned watchpoint",
    op: "setDebugState",
    request: (t) => ({ vp: 0, state: { breakpoints: [slot(t.data.gva + 2n, BreakpointType.WRITE, BreakpointSize.QWORD)] } }),
    expect: "BREAKPOINT_MISALIGNED",
  },
  {
    name: "SetDebugState with five slots",
    op: "setDebugState",
    request: (t) => ({ vp: 0, state: { breakpoints: Array.from({ length: 5 }, () => slot(t.data.gva, BreakpointType.WRITE, BreakpointSize.BYTE)) } }),
    expect: "TOO_MANY_BREAKPOINTS",
  },
  {
    name: "SetDebugState with an unknown type",
    op: "setDebugState",
    request: (t) => ({ vp: 0, state: { breakpoints: [slot(t.data.gva, 7 as BreakpointType, BreakpointSize.BYTE)] } }),
    expect: "INVALID_ENUM",
  },
  { name: "SetDebugState of a VP the VM lacks", op: "setDebugState", request: () => ({ vp: 99 }), expect: "VP_OUT_OF_RANGE" },
  { name: "SetDebugState clearing VP 0", op: "setDebugState", request: () => ({ vp: 0 }), expect: "ok" },
  { name: "SetVpState without a state", op: "setVpState", request: () => ({ vp: 0 }), expect: "MISSING_FIELD" },
  {
    name: "SetVpState with too few registers",
    op: "setVpState",
    request: (t) =>
      t.arch === "x86_64"
        ? { vp: 0, state: { arch: { case: "x8664", value: { gp: [1n, 2n, 3n] } } } }
        : { vp: 0, state: { arch: { case: "aarch64", value: { x: [1n, 2n, 3n] } } } },
    expect: "INVALID_ARRAY_LENGTH",
  },
  {
    name: "SetVpState of the other architecture",
    op: "setVpState",
    request: (t) =>
      t.arch === "x86_64"
        ? { vp: 0, state: { arch: { case: "aarch64", value: { x: Array(31).fill(0n) } } } }
        : {
            vp: 0,
            state: {
              arch: {
                case: "x8664",
                value: { gp: Array(16).fill(0n), es: {}, cs: {}, ss: {}, ds: {}, fs: {}, gs: {} },
              },
            },
          },
    expect: "ARCH_MISMATCH",
  },
  { name: "WriteMemory to an unmapped GPA", op: "writeMemory", request: (t) => ({ address: gpa(t.unmappedGpa), data: new Uint8Array(4) }), expect: "GPA_UNMAPPED" },
  { name: "WriteMemory without address", op: "writeMemory", request: () => ({ data: new Uint8Array(4) }), expect: "MISSING_FIELD" },
  { name: "Step of 0 instructions", op: "step", request: () => ({ vp: 0, count: 0 }), expect: "VALUE_OUT_OF_RANGE" },
  { name: "Step of too many instructions", op: "step", request: () => ({ vp: 0, count: 1_000_001 }), expect: "VALUE_OUT_OF_RANGE" },
  { name: "Step of a VP the VM lacks", op: "step", request: () => ({ vp: 99, count: 1 }), expect: "VP_OUT_OF_RANGE" },
  { name: "Step with an unknown trace", op: "step", request: () => ({ vp: 0, count: 1, trace: 9 }), expect: "INVALID_ENUM" },
  { name: "Step of 50 with a PC trace", op: "step", request: () => ({ vp: 0, count: 50, trace: ds.StepTrace.PC }), expect: "ok" },
  { name: "Step of 20 with a register trace", op: "step", request: () => ({ vp: 0, count: 20, trace: ds.StepTrace.REGISTERS }), expect: "ok" },
  { name: "Break on a stopped VM", op: "break", request: () => ({}), expect: "ok" },
  { name: "TranslateGva of guest data", op: "translateGva", request: (t) => ({ vp: 0, gva: t.data.gva }), expect: "ok" },
  { name: "TranslateGva of an unmapped GVA (an answer, not an error)", op: "translateGva", request: (t) => ({ vp: 0, gva: t.unmappedGva }), expect: "ok" },
  { name: "TranslateGva of a non-canonical GVA", op: "translateGva", request: () => ({ vp: 0, gva: 1n << 60n }), expect: "ok" },
  { name: "TranslateGva of a VP the VM lacks", op: "translateGva", request: (t) => ({ vp: 99, gva: t.data.gva }), expect: "VP_OUT_OF_RANGE" },
  {
    name: "ReadMemory with allow_partial across an unmapped GVA",
    op: "readMemory",
    request: (t) => ({ address: gva(0, t.unmappedGva - 8n), length: 16n, allowPartial: true }),
    expect: "ok",
  },
  { name: "ReadMemory with allow_partial of an unmapped GPA", op: "readMemory", request: (t) => ({ address: gpa(t.unmappedGpa), length: 8n, allowPartial: true }), expect: "ok" },
  { name: "ReadMemory with allow_partial of guest data", op: "readMemory", request: (t) => ({ address: gva(0, t.data.gva), length: 64n, allowPartial: true }), expect: "ok" },
  { name: "ReadMemory with allow_partial for a VP the VM lacks", op: "readMemory", request: (t) => ({ address: gva(99, t.data.gva), length: 8n, allowPartial: true }), expect: "VP_OUT_OF_RANGE" },
  { name: "ReadMemory with allow_partial over the cap", op: "readMemory", request: (t) => ({ address: gpa(t.data.gpa), length: 1n << 40n, allowPartial: true }), expect: "READ_TOO_LARGE" },
];

const swGva = (a: bigint, vp?: number) => ({ kind: { case: "gva" as const, value: { gva: a, vp } } });
const swGpa = (a: bigint) => ({ kind: { case: "gpa" as const, value: a } });

/**
 * Software breakpoints, run by the embedded machine's parity test on two fresh VMs: the ids
 * assume a VM on which none were inserted before (ids are never reused), and the cases leave
 * none armed. QEMU's stream test runs both transports on one VM, and QEMU refuses the GPA case
 * (SOFTWARE_BREAKPOINT_UNSUPPORTED): test/system/qemu-software-breakpoints.test.ts covers it.
 */
export const SOFTWARE_BREAKPOINT_PARITY_CASES: ParityCase[] = [
  { name: "ListSoftwareBreakpoints with none armed", op: "listSoftwareBreakpoints", request: () => ({}), expect: "ok" },
  { name: "InsertSoftwareBreakpoint by GVA for every VP", op: "insertSoftwareBreakpoint", request: (t) => ({ address: swGva(t.data.gva + 0x800n) }), expect: "ok" },
  { name: "InsertSoftwareBreakpoint at the same address (existing)", op: "insertSoftwareBreakpoint", request: (t) => ({ address: swGva(t.data.gva + 0x800n), oneShot: true }), expect: "ok" },
  { name: "InsertSoftwareBreakpoint by GVA for VP 1, one-shot", op: "insertSoftwareBreakpoint", request: (t) => ({ address: swGva(t.data.gva + 0x800n, 1), oneShot: true }), expect: "ok" },
  { name: "InsertSoftwareBreakpoint by GPA", op: "insertSoftwareBreakpoint", request: (t) => ({ address: swGpa(t.data.gpa + 0x800n) }), expect: "ok" },
  { name: "InsertSoftwareBreakpoint at an unmapped GPA", op: "insertSoftwareBreakpoint", request: (t) => ({ address: swGpa(t.unmappedGpa) }), expect: "GPA_UNMAPPED" },
  { name: "InsertSoftwareBreakpoint for a VP the VM lacks", op: "insertSoftwareBreakpoint", request: (t) => ({ address: swGva(t.data.gva, 99) }), expect: "VP_OUT_OF_RANGE" },
  { name: "InsertSoftwareBreakpoint without address", op: "insertSoftwareBreakpoint", request: () => ({}), expect: "MISSING_FIELD" },
  { name: "ListSoftwareBreakpoints with three armed", op: "listSoftwareBreakpoints", request: () => ({}), expect: "ok" },
  { name: "RemoveSoftwareBreakpoint 2", op: "removeSoftwareBreakpoint", request: () => ({ id: 2n }), expect: "ok" },
  { name: "RemoveSoftwareBreakpoint 2 again", op: "removeSoftwareBreakpoint", request: () => ({ id: 2n }), expect: "SOFTWARE_BREAKPOINT_NOT_FOUND" },
  { name: "RemoveSoftwareBreakpoint of an id past 2^53", op: "removeSoftwareBreakpoint", request: () => ({ id: 1n << 60n }), expect: "SOFTWARE_BREAKPOINT_NOT_FOUND" },
  { name: "RemoveSoftwareBreakpoint 1", op: "removeSoftwareBreakpoint", request: () => ({ id: 1n }), expect: "ok" },
  { name: "RemoveSoftwareBreakpoint 3", op: "removeSoftwareBreakpoint", request: () => ({ id: 3n }), expect: "ok" },
];

/** What one operation gave: its result as JSON, or its status and ErrorInfo. */
export type Outcome =
  | { ok: true; json: unknown }
  | { ok: false; code: string; reason: string | undefined; metadata: Record<string, string> };

/** Range errors carry an Any(ErrorInfo) and an Any(Struct). */
const registry = createRegistry(ErrorInfoSchema, StructSchema);

const OUTPUTS: Record<Op, DescMessage> = {
  detach: ds.DetachResponseSchema,
  resume: ds.ResumeResponseSchema,
  break: ds.BreakResponseSchema,
  setDebugState: ds.SetDebugStateResponseSchema,
  getVpState: ds.GetVpStateResponseSchema,
  setVpState: ds.SetVpStateResponseSchema,
  readMemory: ds.ReadMemoryResponseSchema,
  writeMemory: ds.WriteMemoryResponseSchema,
  step: ds.StepResponseSchema,
  readMemoryMany: ds.ReadMemoryManyResponseSchema,
  getVpStates: ds.GetVpStatesResponseSchema,
  insertSoftwareBreakpoint: ds.InsertSoftwareBreakpointResponseSchema,
  removeSoftwareBreakpoint: ds.RemoveSoftwareBreakpointResponseSchema,
  listSoftwareBreakpoints: ds.ListSoftwareBreakpointsResponseSchema,
  translateGva: ds.TranslateGvaResponseSchema,
};

/** Replaces what legitimately differs between two VMs and two sessions (their ids) in error metadata. */
function normalize(o: Outcome, vm: string, session: string): Outcome {
  if (o.ok) return o;
  const metadata = Object.fromEntries(
    Object.entries(o.metadata).map(([k, v]) => [k, v === vm ? "<vm>" : v === session.slice(0, 8) ? "<session>" : v]),
  );
  return { ...o, metadata };
}

/** Runs one case over unary calls on `vm` with `sessionId`. */
export async function unaryOutcome(client: VmmDebugClient, vm: string, sessionId: string, c: ParityCase, t: ParityTarget): Promise<Outcome> {
  const method = client.rpc.debug[c.op] as (req: unknown) => Promise<unknown>;
  try {
    const res = await method({ ...c.request(t), vm, sessionId });
    return { ok: true, json: toJson(OUTPUTS[c.op], res as never, { registry }) };
  } catch (e) {
    if (!(e instanceof VmmDebugError)) throw e;
    return normalize({ ok: false, code: Status[e.code], reason: e.reason, metadata: e.metadata }, vm, sessionId);
  }
}

/** Runs one case as an operation of a Session stream. */
export async function streamOutcome(stream: RawStream, vm: string, c: ParityCase, t: ParityTarget): Promise<Outcome> {
  const op = create(ds.SessionRequestSchema, {
    operation: { case: c.op, value: c.request(t) } as MessageInitShape<typeof ds.SessionRequestSchema>["operation"],
  }).operation;
  const answer = await stream.call(op as never);
  const session = stream.opened.sessionId;
  if (answer.result.case === "error") {
    const e = answerError(answer);
    return normalize({ ok: false, code: Status[e.code], reason: e.reason, metadata: e.metadata }, vm, session);
  }
  if (answer.result.case !== c.op) throw new Error(`answer to ${c.op} came as ${answer.result.case}`);
  return { ok: true, json: toJson(OUTPUTS[c.op], answer.result.value as never, { registry }) };
}

/** The outcome reduced to what must match across backends whose timing differs (QEMU). */
export function outcomeKind(o: Outcome): string {
  return o.ok ? "ok" : `${o.code}/${o.reason}`;
}

export { types, openRawStream };
