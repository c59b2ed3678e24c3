// vmm.debug.v1.DebugService: each unary RPC runs its operation from the one table; Session runs
// them all over one stream (session-stream.ts).
import type { CallContext, ServiceImplementation } from "nice-grpc";
import type { DebugServiceDefinition } from "../wire";
import type * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import type { Execute, OperationName, OperationTable, OperationTypes } from "./operations";
import { createSessionStreamHandler, type SessionStreamLimits } from "./session-stream";
import type { Logger } from "./logger";
import type { SendBudget } from "./send-budget";
import type { VmRegistry } from "./registry";
import { principalOf } from "./auth/interceptor";

export interface DebugServiceOptions {
  registry: VmRegistry;
  table: OperationTable;
  execute: Execute;
  logger: Logger;
  stream: SessionStreamLimits;
  /** Bytes of answers held for clients: reads wait for room here before they read guest memory. */
  budget: SendBudget;
}

export function createDebugService(options: DebugServiceOptions): ServiceImplementation<DebugServiceDefinition> {
  const { registry, table, execute, logger, stream, budget } = options;
  const unary =
    <K extends Exclude<OperationName, "readMemoryStream" | "dumpMemory">>(name: K) =>
    (req: OperationTypes[K][0], ctx: CallContext) =>
      execute(name, req, { peer: ctx.peer, principal: principalOf(ctx), signal: ctx.signal });
  // Reads of guest memory hold their answer's bytes in the send budget until it is written.
  const bulk =
    <K extends "readMemory" | "readMemoryMany">(name: K) =>
    (req: OperationTypes[K][0], ctx: CallContext) =>
      execute(name, req, { peer: ctx.peer, principal: principalOf(ctx), signal: ctx.signal, account: budget.open(ctx.signal) });

  return {
    attach: unary("attach"),
    detach: unary("detach"),
    // Without a stream, Resume always answers with the stop (a ResumeResponse).
    resume: unary("resume") as (req: ds.ResumeRequest, ctx: CallContext) => Promise<ds.ResumeResponse>,
    break: unary("break"),
    setDebugState: unary("setDebugState"),
    getVpState: unary("getVpState"),
    setVpState: unary("setVpState"),
    readMemory: bulk("readMemory"),
    writeMemory: unary("writeMemory"),
    step: unary("step"),
    readMemoryMany: bulk("readMemoryMany"),
    getVpStates: unary("getVpStates"),
    insertSoftwareBreakpoint: unary("insertSoftwareBreakpoint"),
    removeSoftwareBreakpoint: unary("removeSoftwareBreakpoint"),
    listSoftwareBreakpoints: unary("listSoftwareBreakpoints"),
    async *readMemoryStream(req, ctx) {
      yield* await execute("readMemoryStream", req, {
        peer: ctx.peer,
        principal: principalOf(ctx),
        signal: ctx.signal,
        account: budget.open(ctx.signal),
      });
    },
    translateGva: unary("translateGva"),
    async *dumpMemory(req, ctx) {
      yield* await execute("dumpMemory", req, {
        peer: ctx.peer,
        principal: principalOf(ctx),
        signal: ctx.signal,
        account: budget.open(ctx.signal),
      });
    },
    session: createSessionStreamHandler(registry, table, execute, logger, stream, budget),
  };
}
