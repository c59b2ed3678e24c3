// vmm.debug.v1.DebugService: each handler resolves the VM, validates and converts the request,
// makes one dispatch() call, and converts the result.
import type { CallContext, ServiceImplementation } from "nice-grpc";
import type { GuestAddress } from "../core";
import type { DebugServiceDefinition } from "../client";
import {
  debugStateFromWire,
  guestAddressFromWire,
  leaseToWire,
  readLengthFromWire,
  stopReasonToWire,
  vpFromWire,
  vpStateFromWire,
  vpStateToWire,
} from "./convert";
import type { Dispatch } from "./dispatch";
import type { VmRegistry } from "./registry";

export interface DebugServiceOptions {
  registry: VmRegistry;
  dispatch: Dispatch;
  /** Largest unary ReadMemory, in bytes. */
  maxReadBytes: number;
  /** Largest ReadMemoryStream, in bytes. */
  maxStreamReadBytes: number;
  /** Bytes per ReadMemoryStream message. */
  streamChunkBytes: number;
}

export function createDebugService(options: DebugServiceOptions): ServiceImplementation<DebugServiceDefinition> {
  const { registry, dispatch } = options;
  const call = (ctx: CallContext) => ({ peer: ctx.peer, signal: ctx.signal });

  return {
    async attach(req, ctx) {
      const target = registry.resolve(req.vm);
      const { sessionId, leaseMs } = await dispatch({ kind: "attach", target }, call(ctx));
      return { sessionId, lease: leaseToWire(leaseMs) };
    },

    async detach(req, ctx) {
      const target = registry.resolve(req.vm);
      await dispatch({ kind: "detach", target, sessionId: req.sessionId }, call(ctx));
      return {};
    },

    async resume(req, ctx) {
      const target = registry.resolve(req.vm);
      const reason = await dispatch({ kind: "resume", target, sessionId: req.sessionId }, call(ctx));
      return { reason: stopReasonToWire(reason) };
    },

    async break(req, ctx) {
      const target = registry.resolve(req.vm);
      await dispatch({ kind: "break", target, sessionId: req.sessionId }, call(ctx));
      return {};
    },

    async setDebugState(req, ctx) {
      const target = registry.resolve(req.vm);
      const vp = vpFromWire(req.vp, target.core);
      const state = debugStateFromWire(req.state);
      await dispatch({ kind: "setDebugState", target, sessionId: req.sessionId, vp, state }, call(ctx));
      return {};
    },

    async getVpState(req, ctx) {
      const target = registry.resolve(req.vm);
      const vp = vpFromWire(req.vp, target.core);
      const state = await dispatch({ kind: "getVpState", target, vp }, call(ctx));
      return { state: vpStateToWire(state) };
    },

    async setVpState(req, ctx) {
      const target = registry.resolve(req.vm);
      const vp = vpFromWire(req.vp, target.core);
      const state = vpStateFromWire(req.state, target.core);
      await dispatch({ kind: "setVpState", target, sessionId: req.sessionId, vp, state }, call(ctx));
      return {};
    },

    async readMemory(req, ctx) {
      const target = registry.resolve(req.vm);
      const address = guestAddressFromWire(req.address, target.core);
      const length = readLengthFromWire(
        req.length,
        address,
        options.maxReadBytes,
        "use ReadMemoryStream for longer reads (the SDK's readMemory does so by itself)",
      );
      const data = await dispatch({ kind: "readMemory", target, address, length }, call(ctx));
      return { data };
    },

    async writeMemory(req, ctx) {
      const target = registry.resolve(req.vm);
      const address = guestAddressFromWire(req.address, target.core);
      await dispatch({ kind: "writeMemory", target, sessionId: req.sessionId, address, data: req.data }, call(ctx));
      return {};
    },

    async *readMemoryStream(req, ctx) {
      const target = registry.resolve(req.vm);
      const address = guestAddressFromWire(req.address, target.core);
      const length = readLengthFromWire(
        req.length,
        address,
        options.maxStreamReadBytes,
        "split the range into several ReadMemoryStream calls",
      );
      for (let offset = 0; offset < length; offset += options.streamChunkBytes) {
        if (ctx.signal.aborted) return;
        const n = Math.min(options.streamChunkBytes, length - offset);
        const data = await dispatch(
          { kind: "readMemory", target, address: advance(address, offset), length: n },
          call(ctx),
        );
        yield { offset: BigInt(offset), data };
      }
    },
  };
}

function advance(address: GuestAddress, offset: number): GuestAddress {
  return address.kind === "gpa"
    ? { kind: "gpa", gpa: address.gpa + BigInt(offset) }
    : { kind: "gva", vp: address.vp, gva: (address.gva + BigInt(offset)) & 0xffff_ffff_ffff_ffffn };
}
