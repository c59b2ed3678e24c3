// The one operation table: every DebugService operation defined once (request conversion,
// whether it needs a session, the handler), served by both the unary RPCs and the Session
// stream, and audited in one place (`createExecutor`).
import { create } from "@bufbuild/protobuf";
import { Code, type DebugStopReason, type GuestAddress, type PartialRead } from "../core";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { statusToWire } from "../wire";
import {
  debugStateFromWire,
  guestAddressFromWire,
  leaseToWire,
  memoryRangesFromWire,
  readLengthFromWire,
  checkGpaRange,
  softwareBreakpointAddressFromWire,
  softwareBreakpointIdFromWire,
  softwareBreakpointToWire,
  stepResultToWire,
  stepTraceFromWire,
  stopReasonToWire,
  translationToWire,
  unreadableToWire,
  vpStateFromWire,
  vpStateToWire,
} from "./convert";
import type { DebuggerState, StopPush } from "./debugger-state";
import type { CallAccount } from "./send-budget";
import type { DetachCause } from "./event-log";
import { clip, serverError, statusName, toErrorStatus } from "./errors";
import type { Logger } from "./logger";
import { dumpMemory } from "./dump-memory";
import type { VmRegistry } from "./registry";
import { OPERATION_ACCESS } from "./auth/access";
import { type PrincipalLimiter, refusalError } from "./auth/limits";
import { LOCAL_ADMIN, type Principal, hasRole } from "./auth/principal";

/** Who asks, the signal that aborts when they go away, and the stream the call arrived on. */
export interface OperationContext {
  peer: string;
  /** Who asks (the loopback default when absent). */
  principal?: Principal;
  signal: AbortSignal;
  /** Set when the operation arrives on a Session stream: where the session's stops go. */
  push?: StopPush;
  /** With `push`: told when the stream's session ends, however it ends. */
  onSessionEnded?: (cause: DetachCause) => void;
  /**
   * The call's share of the send budget: reads reserve the bytes of their answer before they
   * read guest memory, and the answer holds them until the transport has written it.
   */
  account?: CallAccount;
}

/**
 * - attach: opens a session.
 * - control: needs the session; audited; on a stream, runs after every earlier operation.
 * - read: needs no session (a session id it carries is checked and renewed); on a stream, runs
 *   after the control operations sent before it and may overlap other reads.
 */
export type OperationKind = "attach" | "control" | "read";

interface Spec<Req, Res> {
  rpc: string;
  kind: OperationKind;
  run(target: DebuggerState, req: Req, ctx: OperationContext): Promise<Res>;
}

/** Request and response of every operation, keyed as the unary methods and the stream's oneof. */
export interface OperationTypes {
  attach: [ds.AttachRequest, ds.AttachResponse];
  detach: [ds.DetachRequest, ds.DetachResponse];
  /** Unary: the stop. On a stream: ResumeStarted, and the stop is pushed. */
  resume: [ds.ResumeRequest, ds.ResumeResponse | ds.ResumeStarted];
  break: [ds.BreakRequest, ds.BreakResponse];
  setDebugState: [ds.SetDebugStateRequest, ds.SetDebugStateResponse];
  getVpState: [ds.GetVpStateRequest, ds.GetVpStateResponse];
  setVpState: [ds.SetVpStateRequest, ds.SetVpStateResponse];
  readMemory: [ds.ReadMemoryRequest, ds.ReadMemoryResponse];
  writeMemory: [ds.WriteMemoryRequest, ds.WriteMemoryResponse];
  readMemoryStream: [ds.ReadMemoryStreamRequest, AsyncIterable<ds.ReadMemoryStreamResponse>];
  step: [ds.StepRequest, ds.StepResponse];
  readMemoryMany: [ds.ReadMemoryManyRequest, ds.ReadMemoryManyResponse];
  getVpStates: [ds.GetVpStatesRequest, ds.GetVpStatesResponse];
  insertSoftwareBreakpoint: [ds.InsertSoftwareBreakpointRequest, ds.InsertSoftwareBreakpointResponse];
  removeSoftwareBreakpoint: [ds.RemoveSoftwareBreakpointRequest, ds.RemoveSoftwareBreakpointResponse];
  listSoftwareBreakpoints: [ds.ListSoftwareBreakpointsRequest, ds.ListSoftwareBreakpointsResponse];
  translateGva: [ds.TranslateGvaRequest, ds.TranslateGvaResponse];
  dumpMemory: [ds.DumpMemoryRequest, AsyncIterable<ds.DumpMemoryResponse>];
}
export type OperationName = keyof OperationTypes;
export type OperationTable = { [K in OperationName]: Spec<OperationTypes[K][0], OperationTypes[K][1]> };
type AnyRequest = OperationTypes[OperationName][0];

export interface OperationLimits {
  /** Largest unary ReadMemory (and ReadMemoryMany in total), in bytes. */
  maxReadBytes: number;
  /** Largest ReadMemoryStream, in bytes. */
  maxStreamReadBytes: number;
  /** Bytes per ReadMemoryStream message. */
  streamChunkBytes: number;
}

/** Bytes an answer holds beyond its data, for the send budget. */
const ANSWER_OVERHEAD = 64;

export function createOperationTable(limits: OperationLimits): OperationTable {
  return {
    attach: {
      rpc: "Attach",
      kind: "attach",
      async run(target, req, ctx) {
        const principal = ctx.principal ?? LOCAL_ADMIN;
        if (req.takeOver) {
          requireAdmin(principal, "Attach with take_over");
          const live = target.liveSessionId();
          if (live !== undefined) await target.end(live, "forced");
        }
        // Another debugger is told who holds the VM: the principal where callers authenticate.
        const holder = principal.method === "local" || principal.method === "insecure" ? ctx.peer : `${principal.name} (${ctx.peer})`;
        const { sessionId, leaseMs } = await target.attach(holder, ctx.push, ctx.onSessionEnded, principal.name);
        return create(ds.AttachResponseSchema, { sessionId, lease: leaseMs > 0 ? leaseToWire(leaseMs) : undefined });
      },
    },
    detach: {
      rpc: "Detach",
      kind: "control",
      async run(target, req, ctx) {
        if (req.force) {
          requireAdmin(ctx.principal ?? LOCAL_ADMIN, "Detach with force");
          const live = target.liveSessionId();
          if (live !== undefined) await target.end(live, "forced");
          return create(ds.DetachResponseSchema);
        }
        await target.detach(req.sessionId);
        return create(ds.DetachResponseSchema);
      },
    },
    resume: {
      rpc: "Resume",
      kind: "control",
      async run(target, req, ctx) {
        if (ctx.push) {
          // On a stream Resume answers once the VM runs; the stop is pushed when it comes.
          const sequence = await target.resumeStream(req.sessionId);
          return create(ds.ResumeStartedSchema, { sequence });
        }
        return create(ds.ResumeResponseSchema, { reason: stopReasonToWire(await target.resume(req.sessionId, ctx.signal)) });
      },
    },
    break: {
      rpc: "Break",
      kind: "control",
      async run(target, req) {
        await target.break(req.sessionId);
        return create(ds.BreakResponseSchema);
      },
    },
    setDebugState: {
      rpc: "SetDebugState",
      kind: "control",
      async run(target, req) {
        await target.setDebugState(req.sessionId, req.vp, debugStateFromWire(req.state));
        return create(ds.SetDebugStateResponseSchema);
      },
    },
    getVpState: {
      rpc: "GetVpState",
      kind: "read",
      async run(target, req) {
        return create(ds.GetVpStateResponseSchema, { state: vpStateToWire(await target.getVpState(req.vp)) });
      },
    },
    setVpState: {
      rpc: "SetVpState",
      kind: "control",
      async run(target, req) {
        await target.setVpState(req.sessionId, req.vp, vpStateFromWire(req.state, target.core.arch));
        return create(ds.SetVpStateResponseSchema);
      },
    },
    readMemory: {
      rpc: "ReadMemory",
      kind: "read",
      async run(target, req, ctx) {
        const address = guestAddressFromWire(req.address);
        const length = readLengthFromWire(
          req.length,
          address,
          limits.maxReadBytes,
          "use ReadMemoryStream for longer reads (the SDK's readMemory does so by itself)",
        );
        const ticket = await ctx.account?.reserve(ANSWER_OVERHEAD + length);
        try {
          const answer = req.allowPartial
            ? partialAnswer(await target.readMemoryPartial(address, length))
            : create(ds.ReadMemoryResponseSchema, { data: await target.readMemory(address, length) });
          ticket?.attach(answer);
          return answer;
        } catch (e) {
          ticket?.release();
          throw e;
        }
      },
    },
    writeMemory: {
      rpc: "WriteMemory",
      kind: "control",
      async run(target, req) {
        const address = guestAddressFromWire(req.address);
        checkGpaRange(address, BigInt(req.data.length));
        await target.writeMemory(req.sessionId, address, req.data);
        return create(ds.WriteMemoryResponseSchema);
      },
    },
    readMemoryStream: {
      rpc: "ReadMemoryStream",
      kind: "read",
      async run(target, req, ctx) {
        const address = guestAddressFromWire(req.address);
        const length = readLengthFromWire(req.length, address, limits.maxStreamReadBytes, "split the range into several ReadMemoryStream calls");
        const chunk = limits.streamChunkBytes;
        // Reads the first chunk before answering, so a bad address fails the call, not the stream.
        // Each chunk's bytes are reserved before it is read and held until it is written, so a
        // client that stops reading holds this call at its share of the send budget.
        const account = ctx.account;
        const readChunk = async (offset: number) => {
          const n = Math.min(chunk, length - offset);
          const ticket = await account?.reserve(ANSWER_OVERHEAD + n);
          try {
            const at = offset === 0 ? address : advance(address, offset);
            let message: ds.ReadMemoryStreamResponse;
            if (req.allowPartial) {
              // Each chunk lists its own unreadable ranges (offsets from the start of the request).
              const part = await target.readMemoryPartial(at, n);
              message = create(ds.ReadMemoryStreamResponseSchema, { offset: BigInt(offset), data: part.data, unreadable: unreadableToWire(part.unreadable, offset) });
            } else {
              message = create(ds.ReadMemoryStreamResponseSchema, { offset: BigInt(offset), data: await target.readMemory(at, n) });
            }
            ticket?.attach(message);
            return message;
          } catch (e) {
            ticket?.release();
            throw e;
          }
        };
        const first = await readChunk(0);
        return (async function* () {
          yield first;
          for (let offset = chunk; offset < length; offset += chunk) {
            if (ctx.signal.aborted) return;
            yield await readChunk(offset);
          }
        })();
      },
    },
    step: {
      rpc: "Step",
      kind: "control",
      async run(target, req, ctx) {
        const trace = stepTraceFromWire(req.trace);
        return stepResultToWire(await target.step(req.sessionId, req.vp, req.count, trace, ctx.signal));
      },
    },
    readMemoryMany: {
      rpc: "ReadMemoryMany",
      kind: "read",
      async run(target, req, ctx) {
        const ranges = memoryRangesFromWire(req.ranges, limits.maxReadBytes);
        const total = ranges.reduce((n, r) => n + ("error" in r ? 0 : r.length), 0);
        const ticket = await ctx.account?.reserve(ANSWER_OVERHEAD * (1 + ranges.length) + total);
        let results: ds.MemoryRangeResult[];
        try {
          results = await Promise.all(
            ranges.map(async (r) => {
              try {
                if ("error" in r) throw r.error;
                return create(ds.MemoryRangeResultSchema, { result: { case: "data", value: await target.readMemory(r.address, r.length) } });
              } catch (e) {
                const status = toErrorStatus(e);
                if (status.unexpected) throw e; // a server fault fails the call (and is logged) rather than hide in a range
                return create(ds.MemoryRangeResultSchema, { result: { case: "error", value: statusToWire(status) } });
              }
            }),
          );
        } catch (e) {
          ticket?.release();
          throw e;
        }
        const answer = create(ds.ReadMemoryManyResponseSchema, { results });
        ticket?.attach(answer);
        return answer;
      },
    },
    getVpStates: {
      rpc: "GetVpStates",
      kind: "read",
      async run(target, req) {
        const states = await target.getVpStates(req.vps);
        return create(ds.GetVpStatesResponseSchema, {
          states: states.map((s) => create(ds.VpStateEntrySchema, { vp: s.vp, state: vpStateToWire(s.state) })),
        });
      },
    },
    insertSoftwareBreakpoint: {
      rpc: "InsertSoftwareBreakpoint",
      kind: "control",
      async run(target, req) {
        const address = softwareBreakpointAddressFromWire(req.address);
        const { breakpoint, existing } = await target.insertSoftwareBreakpoint(req.sessionId, address, req.oneShot);
        return create(ds.InsertSoftwareBreakpointResponseSchema, { id: BigInt(breakpoint.id), existing });
      },
    },
    removeSoftwareBreakpoint: {
      rpc: "RemoveSoftwareBreakpoint",
      kind: "control",
      async run(target, req) {
        await target.removeSoftwareBreakpoint(req.sessionId, softwareBreakpointIdFromWire(req.id));
        return create(ds.RemoveSoftwareBreakpointResponseSchema);
      },
    },
    listSoftwareBreakpoints: {
      rpc: "ListSoftwareBreakpoints",
      kind: "read",
      async run(target) {
        const breakpoints = await target.listSoftwareBreakpoints();
        return create(ds.ListSoftwareBreakpointsResponseSchema, { breakpoints: breakpoints.map(softwareBreakpointToWire) });
      },
    },
    translateGva: {
      rpc: "TranslateGva",
      kind: "read",
      async run(target, req) {
        return translationToWire(await target.translateGva(req.vp, req.gva));
      },
    },
    dumpMemory: {
      rpc: "DumpMemory",
      kind: "read",
      run: (target, req, ctx) => dumpMemory(target, req, ctx, limits.streamChunkBytes),
    },
  };
}

/** A partial read's answer: the bytes and their unreadable ranges. */
function partialAnswer(part: PartialRead): ds.ReadMemoryResponse {
  return create(ds.ReadMemoryResponseSchema, { data: part.data, unreadable: unreadableToWire(part.unreadable) });
}

/** The session a Session stream holds: its VM, its id, where its stops go. */
export interface StreamBinding {
  target: DebuggerState;
  sessionId: string;
  push: StopPush;
}

/** One audit line per control request (and per session the server ends on its own). */
export interface AuditEntry {
  time: string;
  peer: string;
  /** Who asked, and how they proved it ("local" in the loopback default). */
  principal: string;
  auth: string;
  vm: string;
  rpc: string;
  /** First 8 characters of the session id ("" when the request carried none). */
  session: string;
  /** "ok", or "STATUS/REASON". */
  outcome: string;
  /** "unary" or "stream". */
  via?: string;
}

export function audit(logger: Logger, entry: Omit<AuditEntry, "time">): void {
  // The VM name is the client's: clipped like the errors that echo it.
  const line: AuditEntry = { time: new Date().toISOString(), ...entry, vm: clip(entry.vm, 256) };
  logger.info("audit", { ...line });
}

/** The audit line of a refused request: its outcome is the status the caller gets for `thrown`. */
export function auditRefusal(logger: Logger, entry: Omit<AuditEntry, "time" | "outcome">, thrown: unknown): void {
  const status = toErrorStatus(thrown);
  audit(logger, { ...entry, outcome: `${statusName(status.code)}/${status.reason}` });
}

export type Execute = <K extends OperationName>(
  name: K,
  req: OperationTypes[K][0],
  ctx: OperationContext,
  stream?: StreamBinding,
) => Promise<OperationTypes[K][1]>;

/**
 * Runs one operation: finds its VM (by the stream, by the session id it carries, or by `vm`),
 * checks the session a read carries, runs it, and writes the audit line of attach and control
 * operations — refusals included, whatever layer refused them.
 */
export function createExecutor(registry: VmRegistry, table: OperationTable, logger: Logger, limiter?: PrincipalLimiter): Execute {
  return (async (name: OperationName, req: AnyRequest, ctx: OperationContext, stream?: StreamBinding) => {
    const spec = table[name] as Spec<AnyRequest, unknown>;
    const carried = "sessionId" in req ? req.sessionId : "";
    // A stream's Attach has no binding yet, but arrives on the stream (with its push).
    const via = stream || ctx.push ? "stream" : "unary";
    let target: DebuggerState | undefined;
    let session = carried;
    const principal = ctx.principal ?? LOCAL_ADMIN;
    const who = { principal: clip(principal.name, 256), auth: principal.method };
    try {
      // A stream's operations share its principal's rate with calls (the stream itself was admitted as one call).
      if (limiter && via === "stream") {
        const admitted = limiter.admitOperation(principal.name);
        if (!admitted.ok) throw refusalError(principal.name, admitted, limiter.limits);
      }
      const needed = OPERATION_ACCESS[name];
      if (!hasRole(principal.role, needed)) {
        throw serverError(Code.PermissionDenied, "ROLE_REQUIRED", `"${clip(principal.name, 64)}" has the role ${principal.role}; ${spec.rpc} needs ${needed}`, {
          principal: principal.name,
          role: principal.role,
          needed,
        });
      }
      let request = req;
      if (stream) {
        target = stream.target;
        // Inside a stream the request runs as the stream's session, refused or not.
        session = stream.sessionId;
        checkStreamRequest(req, stream);
        if ("sessionId" in req) request = { ...req, sessionId: stream.sessionId } as AnyRequest;
      } else {
        target = registry.resolveFor(req.vm, carried);
        checkOwner(target, carried, principal, logger, { peer: ctx.peer, rpc: spec.rpc, via, read: spec.kind === "read" });
      }
      if (spec.kind === "read" && "sessionId" in request && request.sessionId) target.touch(request.sessionId);
      const result = await spec.run(target, request, { ...ctx, push: stream?.push ?? ctx.push });
      if (spec.kind !== "read") {
        if (name === "attach") session = (result as ds.AttachResponse).sessionId;
        audit(logger, { peer: ctx.peer, ...who, vm: target.id, rpc: spec.rpc, session: session.slice(0, 8), outcome: "ok", via });
      }
      return result;
    } catch (e) {
      if (spec.kind !== "read") {
        auditRefusal(logger, { peer: ctx.peer, ...who, vm: target?.id ?? req.vm, rpc: spec.rpc, session: session.slice(0, 8), via }, e);
      }
      throw e;
    }
  }) as Execute;
}

/** Take-over and force-detach are the admin's. */
function requireAdmin(principal: Principal, what: string): void {
  if (principal.role === "admin") return;
  throw serverError(Code.PermissionDenied, "ROLE_REQUIRED", `"${clip(principal.name, 64)}" has the role ${principal.role}; ${what} needs admin`, {
    principal: principal.name,
    role: principal.role,
    needed: "admin",
  });
}

/**
 * A session belongs to the principal that attached. Another principal presenting its id is
 * PERMISSION_DENIED (audited, reads included); an admin may act on it (audited as an override).
 */
function checkOwner(
  target: DebuggerState,
  sessionId: string,
  principal: Principal,
  logger: Logger,
  call: { peer: string; rpc: string; via: string; read: boolean },
): void {
  const owner = sessionId === "" ? undefined : target.sessionOwner(sessionId);
  if (owner === undefined || owner === principal.name) return;
  const entry = { peer: call.peer, principal: clip(principal.name, 256), auth: principal.method, vm: target.id, rpc: call.rpc, session: sessionId.slice(0, 8), via: call.via };
  if (principal.role === "admin") {
    // Control requests are audited by the executor; this line says whose session it was.
    audit(logger, { ...entry, outcome: `admin_override/${clip(owner, 64)}` });
    return;
  }
  const refused = serverError(
    Code.PermissionDenied,
    "SESSION_NOT_YOURS",
    `session ${sessionId.slice(0, 8)}… belongs to another principal: only the principal that attached (or an admin) may use it`,
    { session_id: sessionId.slice(0, 8), principal: clip(principal.name, 256) },
  );
  // The executor audits refused control requests; a read presenting another's session is audited here.
  if (call.read) auditRefusal(logger, entry, refused);
  throw refused;
}

/** Inside a stream, `vm` and `session_id` may be empty; when set they must be the stream's. */
function checkStreamRequest(req: AnyRequest, stream: StreamBinding): void {
  if (req.vm !== "" && req.vm !== stream.target.id) {
    throw serverError(
      Code.InvalidArgument,
      "SESSION_VM_MISMATCH",
      `this Session stream debugs VM "${stream.target.id}", but the request names VM "${req.vm}": leave \`vm\` empty inside the stream`,
      { vm: req.vm, session_vm: stream.target.id },
    );
  }
  if ("sessionId" in req && req.sessionId !== "" && req.sessionId !== stream.sessionId) {
    throw serverError(
      Code.InvalidArgument,
      "SESSION_MISMATCH",
      `the request carries session ${req.sessionId.slice(0, 8)}…, not this stream's: leave \`session_id\` empty inside the stream`,
      { session_id: req.sessionId.slice(0, 8) },
    );
  }
}

/** Where the VP of a stop is: set for VP-specific stops, undefined for VM-wide ones. */
export function stopVp(reason: DebugStopReason): number | undefined {
  return "vp" in reason ? reason.vp : undefined;
}

function advance(address: GuestAddress, offset: number): GuestAddress {
  return address.kind === "gpa"
    ? { kind: "gpa", gpa: address.gpa + BigInt(offset) }
    : { kind: "gva", vp: address.vp, gva: (address.gva + BigInt(offset)) & 0xffff_ffff_ffff_ffffn };
}
