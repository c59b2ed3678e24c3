// The VMs a server serves, by id, each with its debugger state; resolves a request's `vm` field.
import { Code, VmmError, type VmmCore } from "../core";
import { DebuggerState, type DebuggerStateOptions } from "./debugger-state";
import { serverError } from "./errors";

export class VmRegistry {
  private readonly byId = new Map<string, DebuggerState>();

  constructor(vms: readonly VmmCore[], options: DebuggerStateOptions) {
    for (const core of vms) {
      if (this.byId.has(core.id)) throw new Error(`two VMs share the id "${core.id}"; VM ids must be unique`);
      this.byId.set(core.id, new DebuggerState(core, options));
    }
  }

  /** The served VMs' cores by id. */
  get cores(): ReadonlyMap<string, VmmCore> {
    return new Map([...this.byId].map(([id, d]) => [id, d.core]));
  }

  /** Every VM's debugger state, ordered by id. */
  list(): DebuggerState[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The VM a request names; empty means the only one. NOT_FOUND / VM_NOT_FOUND, INVALID_ARGUMENT / VM_AMBIGUOUS. */
  resolve(vm: string): DebuggerState {
    if (vm === "") {
      if (this.byId.size === 1) return this.byId.values().next().value as DebuggerState;
      if (this.byId.size > 1) {
        const ids = this.list().map((d) => d.id);
        throw new VmmError(
          Code.InvalidArgument,
          "VM_AMBIGUOUS",
          `this server serves ${ids.length} VMs (${ids.join(", ")}): set \`vm\` to one of them`,
          { vms: ids.join(",") },
        );
      }
    }
    const found = this.byId.get(vm);
    if (!found) {
      const ids = this.list().map((d) => d.id);
      throw new VmmError(
        Code.NotFound,
        "VM_NOT_FOUND",
        ids.length === 0
          ? `no VM "${vm}": this server serves no VMs`
          : `no VM "${vm}" on this server; it serves: ${ids.join(", ")} (see ListVms)`,
        { vm },
      );
    }
    return found;
  }

  /**
   * The VM of a request that may carry a session id: a live session names its VM (a `vm` that
   * contradicts it is INVALID_ARGUMENT / SESSION_VM_MISMATCH); otherwise `vm` decides, and the
   * session rules answer NOT_ATTACHED later. An unknown session with an empty `vm` on a server
   * of several VMs is NOT_ATTACHED rather than VM_AMBIGUOUS: the session was meant to name it.
   */
  resolveFor(vm: string, sessionId: string): DebuggerState {
    if (sessionId !== "") {
      const owner = [...this.byId.values()].find((d) => d.hasSession(sessionId));
      if (owner) {
        if (vm !== "" && vm !== owner.id) {
          throw serverError(
            Code.InvalidArgument,
            "SESSION_VM_MISMATCH",
            `session ${sessionId.slice(0, 8)}… debugs VM "${owner.id}", but the request names VM "${vm}": leave \`vm\` empty or name the session's VM`,
            { vm, session_vm: owner.id, session_id: sessionId.slice(0, 8) },
          );
        }
        return owner;
      }
      if (vm === "" && this.byId.size > 1) {
        throw serverError(
          Code.FailedPrecondition,
          "NOT_ATTACHED",
          `session ${sessionId.slice(0, 8)}… is not attached to any VM (it detached, its lease lapsed, or it never existed): call Attach`,
          { session_id: sessionId.slice(0, 8) },
        );
      }
    }
    return this.resolve(vm);
  }
}
