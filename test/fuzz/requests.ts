// What the fuzzer sends: a valid request for every DebugService and VmService RPC (and every
// Session stream operation), mutated at the field and byte level. Request i of a run is generated
// from its own sub-seed, so it can be generated again (with the live session ids) for a replay.
import { clone, create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { DebugService } from "../../gen/vmm/debug/v1/debug_service_pb";
import * as vs from "../../gen/vmm/debug/v1/vm_service_pb";
import { BreakpointSize, BreakpointType } from "../../gen/vmm/debug/v1/breakpoint_pb";
import { createOperationTable } from "../../src/server/operations";
import { DebuggerVpStateSchema, type DebuggerVpState } from "../../gen/vmm/debug/v1/types_pb";
import { Random, subSeed } from "./random";
import { mutateBytes, mutateFields, parseWire, serializeWire, type MutationContext } from "./wire-mutator";

/**
 * The operation table's view of every operation (its RPC name and kind), keyed as the Session
 * stream's oneof cases: the fuzzer follows the table, so a new operation is fuzzed (and its audit
 * lines expected) without being listed here.
 */
const TABLE = createOperationTable({ maxReadBytes: 1, maxStreamReadBytes: 1, streamChunkBytes: 1 } as Parameters<typeof createOperationTable>[0]);
export const OPERATIONS: ReadonlyMap<string, { rpc: string; kind: string }> = new Map(
  Object.entries(TABLE).map(([name, spec]) => [name, { rpc: spec.rpc, kind: spec.kind }]),
);

/** RPC names of the operations the server audits (the table's attach and control kinds). */
export const AUDITED_RPCS: ReadonlySet<string> = new Set([...OPERATIONS.values()].filter((o) => o.kind !== "read").map((o) => o.rpc));

/** What a run knows when it generates a request. */
export interface GenContext {
  /** The VM the unary lane debugs, and the one the Session stream lane holds. */
  vm: string;
  streamVm: string;
  /** The live unary session on `vm`, and the stream lane's session on `streamVm`. */
  session: string;
  streamSession: string;
  vpCount: number;
  /** The registers of each VP of `vm` as the run keeps them between batches (SetVpState's payload). */
  vpStates: readonly DebuggerVpState[];
  /** GPA of the scratch area WriteMemory aims at (inside the checked RAM window). */
  scratch: bigint;
  /** Guest addresses worth aiming at: code, data, page tables, the scratch area, the end of RAM. */
  addresses: readonly bigint[];
  /** Longest `vm` / `session_id` a mutation may send (see MutationContext). */
  maxNameLength: number;
  /** A GVA mapped by the guest's page tables (its data page). */
  dataGva: bigint;
  codeGva: bigint;
}

/** One RPC the fuzzer can send. */
export interface Target {
  lane: "unary" | "stream";
  /** RPC name ("WriteMemory"); on the stream lane the operation's RPC name. */
  rpc: string;
  /** grpc method path (the Session path on the stream lane). */
  path: string;
  /** How the unary lane calls it. */
  call: "unary" | "serverStream";
  schema: DescMessage;
  weight: number;
  /** A valid request. */
  build(rng: Random, ctx: GenContext): Uint8Array;
}

export interface FuzzRequest {
  index: number;
  target: Target;
  bytes: Uint8Array;
  /** What was done to the valid request, for reports. */
  mutations: string[];
}

const gpa = (value: bigint) => ({ kind: { case: "gpa" as const, value } });
const gva = (vp: number, value: bigint) => ({ kind: { case: "gva" as const, value: { vp, gva: value } } });

function address(rng: Random, ctx: GenContext) {
  return rng.chance(0.7) ? gpa(ctx.scratch + BigInt(rng.below(0x1000))) : gva(rng.below(ctx.vpCount), rng.chance(0.5) ? ctx.dataGva : ctx.codeGva);
}

function debugState(rng: Random) {
  const slots = Array.from({ length: rng.below(5) }, () => {
    if (rng.chance(0.3)) return {};
    const type = rng.pick([BreakpointType.EXECUTE, BreakpointType.WRITE, BreakpointType.READ_OR_WRITE]);
    const size = type === BreakpointType.EXECUTE ? BreakpointSize.BYTE : rng.pick([BreakpointSize.BYTE, BreakpointSize.WORD, BreakpointSize.DWORD, BreakpointSize.QWORD]);
    const align = [1n, 2n, 8n, 4n][size];
    return { breakpoint: { address: (0x200000n + BigInt(rng.below(0x10000))) & ~(align - 1n), type, size } };
  });
  return { singleStep: rng.chance(0.3), breakpoints: slots };
}

/** The valid operations, keyed by their Session case; `unary` names the unary RPC of each. */
function operations(): Partial<Record<string, { schema: DescMessage; weight: number; build(rng: Random, ctx: GenContext, vm: string, session: string): object }>> {
  return {
    attach: { schema: ds.AttachRequestSchema, weight: 1, build: (_r, _c, vm) => ({ vm }) },
    detach: { schema: ds.DetachRequestSchema, weight: 1, build: (_r, _c, vm, sessionId) => ({ vm, sessionId }) },
    resume: { schema: ds.ResumeRequestSchema, weight: 1.5, build: (_r, _c, vm, sessionId) => ({ vm, sessionId }) },
    break: { schema: ds.BreakRequestSchema, weight: 3, build: (_r, _c, vm, sessionId) => ({ vm, sessionId }) },
    setDebugState: {
      schema: ds.SetDebugStateRequestSchema,
      weight: 5,
      build: (r, c, vm, sessionId) => ({ vm, sessionId, vp: r.below(c.vpCount), state: debugState(r) }),
    },
    getVpState: { schema: ds.GetVpStateRequestSchema, weight: 2, build: (r, c, vm) => ({ vm, vp: r.below(c.vpCount) }) },
    setVpState: {
      schema: ds.SetVpStateRequestSchema,
      weight: 5,
      build: (r, c, vm, sessionId) => {
        const vp = r.below(c.vpCount);
        return { vm, sessionId, vp, state: withFpVariant(r, c.vpStates[vp]) };
      },
    },
    readMemory: {
      schema: ds.ReadMemoryRequestSchema,
      weight: 2,
      build: (r, c, vm) => ({ vm, address: address(r, c), length: BigInt(r.between(1, 256)), allowPartial: r.chance(0.3) }),
    },
    writeMemory: {
      schema: ds.WriteMemoryRequestSchema,
      weight: 5,
      build: (r, c, vm, sessionId) => ({ vm, sessionId, address: address(r, c), data: r.bytes(r.between(1, 64)) }),
    },
    readMemoryStream: {
      schema: ds.ReadMemoryStreamRequestSchema,
      weight: 1,
      build: (r, c, vm) => ({ vm, address: address(r, c), length: BigInt(r.between(1, 8192)), allowPartial: r.chance(0.3) }),
    },
    step: {
      schema: ds.StepRequestSchema,
      weight: 4,
      build: (r, c, vm, sessionId) => ({ vm, sessionId, vp: r.below(c.vpCount), count: r.between(1, 8), trace: r.below(4) }),
    },
    readMemoryMany: {
      schema: ds.ReadMemoryManyRequestSchema,
      weight: 1.5,
      build: (r, c, vm) => ({ vm, ranges: Array.from({ length: r.between(1, 4) }, () => ({ address: address(r, c), length: BigInt(r.between(0, 64)) })) }),
    },
    getVpStates: { schema: ds.GetVpStatesRequestSchema, weight: 1.5, build: (r, c, vm) => ({ vm, vps: r.chance(0.5) ? [] : [r.below(c.vpCount)] }) },
    insertSoftwareBreakpoint: {
      schema: ds.InsertSoftwareBreakpointRequestSchema,
      weight: 2,
      build: (r, c, vm, sessionId) => ({
        vm,
        sessionId,
        address: r.chance(0.5) ? { kind: { case: "gpa", value: c.scratch + BigInt(r.below(0x1000)) } } : { kind: { case: "gva", value: { vp: r.below(c.vpCount), gva: c.codeGva } } },
        oneShot: r.chance(0.3),
      }),
    },
    removeSoftwareBreakpoint: { schema: ds.RemoveSoftwareBreakpointRequestSchema, weight: 1, build: (r, _c, vm, sessionId) => ({ vm, sessionId, id: BigInt(r.below(4)) }) },
    listSoftwareBreakpoints: { schema: ds.ListSoftwareBreakpointsRequestSchema, weight: 1, build: (_r, _c, vm, sessionId) => ({ vm, sessionId }) },
    translateGva: {
      schema: ds.TranslateGvaRequestSchema,
      weight: 1.5,
      // Mapped code and data, the guest addresses worth aiming at (page tables, RAM's end: not
      // GVAs, so often unmapped), and any 64-bit value (non-canonical ones too).
      build: (r, c, vm) => ({
        vm,
        vp: r.below(c.vpCount),
        gva: r.pick([c.dataGva, c.codeGva, r.pick([...c.addresses]), BigInt.asUintN(64, (BigInt(r.below(0x1_0000)) << 48n) | BigInt(r.below(0x1000_0000)))]),
      }),
    },
  };
}

/** A request of an operation this file has no builder for: its `vm` and `session_id`; mutations add the rest. */
function genericBuilder(schema: DescMessage) {
  const has = (name: string) => schema.fields.some((f) => f.localName === name);
  return {
    schema,
    weight: 1,
    build: (_r: Random, _c: GenContext, vm: string, sessionId: string) => ({ ...(has("vm") ? { vm } : {}), ...(has("sessionId") ? { sessionId } : {}) }),
  };
}

const DEBUG = "/vmm.debug.v1.DebugService/";
const VMS = "/vmm.debug.v1.VmService/";

/** Every target: the unary RPCs, the server streams, VmService, and the Session stream's operations. */
export function createTargets(): Target[] {
  const builders = operations();
  const targets: Target[] = [];
  const methods = new Map(DebugService.methods.map((m) => [m.localName, m]));
  for (const [name, { rpc }] of OPERATIONS) {
    const method = methods.get(name);
    if (!method) throw new Error(`operation ${name} has no DebugService method`);
    const op = builders[name] ?? genericBuilder(method.input);
    targets.push({
      lane: "unary",
      rpc,
      path: DEBUG + rpc,
      call: method.methodKind === "server_streaming" ? "serverStream" : "unary",
      schema: op.schema,
      weight: op.weight,
      build: (r, c) => toBinary(op.schema, create(op.schema, op.build(r, c, c.vm, c.session) as MessageInitShape<DescMessage>)),
    });
    // Inside a stream `vm` and `session_id` are mostly left empty, sometimes set to the stream's.
    targets.push({
      lane: "stream",
      rpc,
      path: DEBUG + "Session",
      call: "unary",
      schema: ds.SessionRequestSchema,
      weight: op.weight * 0.15,
      build: (r, c) => {
        const vm = r.chance(0.8) ? "" : c.streamVm;
        const session = r.chance(0.8) ? "" : c.streamSession;
        const value = create(op.schema, op.build(r, c, vm, session) as MessageInitShape<DescMessage>);
        return toBinary(ds.SessionRequestSchema, create(ds.SessionRequestSchema, { id: BigInt(r.between(1, 1000)), operation: { case: name, value } as never }));
      },
    });
  }
  targets.push(
    { lane: "unary", rpc: "ListVms", path: VMS + "ListVms", call: "unary", schema: vs.ListVmsRequestSchema, weight: 0.5, build: () => new Uint8Array(0) },
    {
      lane: "unary",
      rpc: "GetVm",
      path: VMS + "GetVm",
      call: "unary",
      schema: vs.GetVmRequestSchema,
      weight: 1,
      build: (r, c) => toBinary(vs.GetVmRequestSchema, create(vs.GetVmRequestSchema, { vm: r.chance(0.7) ? c.vm : c.streamVm })),
    },
    {
      lane: "unary",
      rpc: "WatchEvents",
      path: VMS + "WatchEvents",
      call: "serverStream",
      schema: vs.WatchEventsRequestSchema,
      weight: 1,
      build: (r, c) =>
        toBinary(vs.WatchEventsRequestSchema, create(vs.WatchEventsRequestSchema, { vm: c.vm, afterSequence: r.chance(0.5) ? BigInt(r.below(4)) : undefined })),
    },
    {
      lane: "unary",
      rpc: "WatchConsole",
      path: VMS + "WatchConsole",
      call: "serverStream",
      schema: vs.WatchConsoleRequestSchema,
      weight: 1,
      build: (r, c) =>
        toBinary(
          vs.WatchConsoleRequestSchema,
          create(vs.WatchConsoleRequestSchema, { vm: c.vm, fromOffset: r.chance(0.5) ? BigInt(r.below(64)) : undefined, stopAtEnd: r.chance(0.5) }),
        ),
    },
  );
  return targets;
}

/** Request `index` of a run: a valid request of a target picked by weight, then 1–4 mutations. */
export function generateRequest(seed: number, index: number, targets: readonly Target[], ctx: GenContext): FuzzRequest {
  const rng = new Random(subSeed(seed, index));
  const target = rng.weighted(targets.map((t) => [t.weight, t] as const));
  let bytes = target.build(rng, ctx);
  const mctx: MutationContext = {
    vmIds: [ctx.vm, ctx.streamVm],
    sessions: target.lane === "stream" ? [ctx.streamSession, ctx.session] : [ctx.session, ctx.streamSession],
    addresses: ctx.addresses,
    maxNameLength: ctx.maxNameLength,
  };
  const mutations: string[] = [];
  // Raw byte damage mostly makes bytes grpc-js cannot decode (refused before any handler), and on
  // the stream lane it ends the stream: most mutations work on fields, which reach the handlers.
  const mode = rng.weighted<"fields" | "both" | "bytes">(
    target.lane === "stream"
      ? [
          [80, "fields"],
          [10, "both"],
          [10, "bytes"],
        ]
      : [
          [70, "fields"],
          [10, "both"],
          [20, "bytes"],
        ],
  );
  if (mode !== "bytes") {
    const entries = parseWire(bytes, target.schema);
    const n = rng.weighted([
      [6, 1],
      [3, 2],
      [1, 3],
    ]);
    for (let i = 0; i < n; i++) mutations.push(mutateFields(rng, entries, target.schema, mctx));
    bytes = serializeWire(entries);
  }
  if (mode !== "fields") {
    const n = rng.chance(0.8) ? 1 : 2;
    for (let i = 0; i < n; i++) {
      const [b, what] = mutateBytes(rng, bytes);
      bytes = b;
      mutations.push(what);
    }
  }
  if (bytes.length > MAX_REQUEST_BYTES) {
    bytes = bytes.subarray(0, MAX_REQUEST_BYTES);
    mutations.push(`cut to ${MAX_REQUEST_BYTES} bytes`);
  }
  return { index, target, bytes, mutations };
}

/** Past the server's message limit (5 MiB) with room to spare; bigger only costs time. */
const MAX_REQUEST_BYTES = 6 * 1024 * 1024 + 64;

/**
 * SetVpState's x86 FP state (X86VpState.fp) in its forms: as read (most often), left unset (a
 * client that predates it: the FP state must stay), or with new XMM, x87 and MXCSR values
 * (MXCSR sometimes with reserved bits, which must be refused).
 */
function withFpVariant(r: Random, state: DebuggerVpState): DebuggerVpState {
  if (state.arch.case !== "x8664" || !state.arch.value.fp || r.chance(0.5)) return state;
  const copy = clone(DebuggerVpStateSchema, state);
  if (copy.arch.case !== "x8664" || !copy.arch.value.fp) return copy;
  if (r.chance(0.5)) {
    copy.arch.value.fp = undefined;
    return copy;
  }
  const fp = copy.arch.value.fp;
  fp.xmm[r.below(fp.xmm.length)] = r.bytes(16);
  fp.st[r.below(fp.st.length)] = r.bytes(10);
  fp.mxcsr = r.chance(0.2) ? (0x1f80 | (1 << r.between(16, 31))) >>> 0 : r.below(0x10000);
  fp.fcw = r.below(0x10000);
  fp.ftw = r.below(0x10000);
  return copy;
}
