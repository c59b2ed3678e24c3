// The one dispatcher: every RPC becomes an Operation on a VM's debugger state, so a later
// bidirectional session stream can reuse exactly the same operations. Control ops are audited.
import type { DebugState, DebugStopReason, DebuggerVpState, GuestAddress } from "../core";
import type { DebuggerState } from "./debugger-state";
import { statusName, toErrorStatus } from "./errors";
import type { Logger } from "./logger";

export type Operation =
  | { kind: "attach"; target: DebuggerState }
  | { kind: "detach"; target: DebuggerState; sessionId: string }
  | { kind: "resume"; target: DebuggerState; sessionId: string }
  | { kind: "break"; target: DebuggerState; sessionId: string }
  | { kind: "setDebugState"; target: DebuggerState; sessionId: string; vp: number; state: DebugState }
  | { kind: "getVpState"; target: DebuggerState; vp: number }
  | { kind: "setVpState"; target: DebuggerState; sessionId: string; vp: number; state: DebuggerVpState }
  | { kind: "readMemory"; target: DebuggerState; address: GuestAddress; length: number }
  | { kind: "writeMemory"; target: DebuggerState; sessionId: string; address: GuestAddress; data: Uint8Array };

export interface OperationResults {
  attach: { sessionId: string; leaseMs: number };
  detach: void;
  resume: DebugStopReason;
  break: void;
  setDebugState: void;
  getVpState: DebuggerVpState;
  setVpState: void;
  readMemory: Uint8Array;
  writeMemory: void;
}

/** Who asked, and the signal that aborts when they go away. */
export interface CallInfo {
  peer: string;
  signal: AbortSignal;
}

export type Dispatch = <O extends Operation>(op: O, call: CallInfo) => Promise<OperationResults[O["kind"]]>;

/** One audit line per control request (and per session the server ends on its own). */
export interface AuditEntry {
  time: string;
  peer: string;
  vm: string;
  rpc: string;
  /** First 8 characters of the session id ("" when the request carried none). */
  session: string;
  /** "ok", or "STATUS/REASON". */
  outcome: string;
}

const CONTROL_RPC: Partial<Record<Operation["kind"], string>> = {
  attach: "Attach",
  detach: "Detach",
  resume: "Resume",
  break: "Break",
  setDebugState: "SetDebugState",
  setVpState: "SetVpState",
  writeMemory: "WriteMemory",
};

export function audit(logger: Logger, entry: Omit<AuditEntry, "time">): void {
  const line: AuditEntry = { time: new Date().toISOString(), ...entry };
  logger.info("audit", { ...line });
}

export function createDispatcher(logger: Logger): Dispatch {
  async function run(op: Operation, call: CallInfo): Promise<unknown> {
    switch (op.kind) {
      case "attach":
        return op.target.attach(call.peer);
      case "detach":
        return op.target.detach(op.sessionId);
      case "resume":
        return op.target.resume(op.sessionId, call.signal);
      case "break":
        return op.target.break(op.sessionId);
      case "setDebugState":
        return op.target.setDebugState(op.sessionId, op.vp, op.state);
      case "getVpState":
        return op.target.getVpState(op.vp);
      case "setVpState":
        return op.target.setVpState(op.sessionId, op.vp, op.state);
      case "readMemory":
        return op.target.readMemory(op.address, op.length);
      case "writeMemory":
        return op.target.writeMemory(op.sessionId, op.address, op.data);
    }
  }

  return (async (op: Operation, call: CallInfo) => {
    const rpc = CONTROL_RPC[op.kind];
    if (!rpc) return run(op, call);
    const carried = "sessionId" in op ? op.sessionId : "";
    try {
      const result = await run(op, call);
      const session = op.kind === "attach" ? (result as OperationResults["attach"]).sessionId : carried;
      audit(logger, { peer: call.peer, vm: op.target.id, rpc, session: session.slice(0, 8), outcome: "ok" });
      return result;
    } catch (e) {
      const status = toErrorStatus(e);
      audit(logger, {
        peer: call.peer,
        vm: op.target.id,
        rpc,
        session: carried.slice(0, 8),
        outcome: `${statusName(status.code)}/${status.reason}`,
      });
      throw e;
    }
  }) as Dispatch;
}
