// vmm.debug.v1.VmService: the served VMs, their run state, who is attached, and each VM's event feed.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImplementation } from "nice-grpc";
import type { VmServiceDefinition } from "../wire";
import * as vmWire from "../../gen/vmm/debug/v1/vm_service_pb";
import { stopReasonToWire, vmInfoToWire } from "./convert";
import type { DetachCause, FeedItem, VmEventBody } from "./event-log";
import { ObserverLane } from "./observer-lane";
import type { VmRegistry } from "./registry";
import type { SendBudget } from "./send-budget";
import { createWatchConsole } from "./watch-console";

/** WatchEvents response header: the VM's newest sequence when the watch subscribed (a live watch gets every event after it). */
export const LAST_SEQUENCE_HEADER = "vmm-last-sequence";

export function createVmService(
  registry: VmRegistry,
  lane = new ObserverLane(),
  budget?: SendBudget,
  shutdown?: AbortSignal,
): ServiceImplementation<VmServiceDefinition> {
  return {
    // The guest's console bytes (watch-console.ts), through the same observers' lane as events.
    watchConsole: createWatchConsole(registry, lane, budget, shutdown),
    async listVms() {
      return { vms: registry.list().map((d) => vmInfoToWire(d.core, d.attachment())) };
    },
    async getVm(req) {
      const d = registry.resolve(req.vm);
      return { vm: vmInfoToWire(d.core, d.attachment()) };
    },
    // Each yield waits for the client to drain (nice-grpc), so a client that stops reading holds
    // back only this generator: its cursor in the VM's ring falls behind and it gets a gap later.
    async *watchEvents(req, ctx) {
      const d = registry.resolve(req.vm);
      const last = d.events.lastSequence;
      const feed = d.events.subscribe(req.afterSequence, ctx.signal);
      // Sent at once (not with the first event): a live-only observer learns that it is subscribed
      // and from which sequence on; without it, it could not know when "from now on" began.
      ctx.header.set(LAST_SEQUENCE_HEADER, String(last));
      ctx.sendHeader();
      for await (const item of feed) {
        await lane.turn(); // the debugger and the VM go first; see ObserverLane
        yield vmEventToWire(d.id, item);
      }
    },
  };
}

/**
 * Each event's message, built once and shared by every observer (so the wire adapter encodes it
 * once too: see SHARED_MESSAGES in src/wire). Keyed by the event object of the VM's ring.
 */
const wireEvents = new WeakMap<object, vmWire.WatchEventsResponse>();

/** One feed item as a WatchEventsResponse: an event with its sequence and time, or a gap (sequence 0, no time). */
export function vmEventToWire(vm: string, item: FeedItem): vmWire.WatchEventsResponse {
  if ("nextSequence" in item) return feedItemToWire(vm, item);
  let message = wireEvents.get(item);
  if (!message) {
    message = feedItemToWire(vm, item);
    wireEvents.set(item, message);
  }
  return message;
}

function feedItemToWire(vm: string, item: FeedItem): vmWire.WatchEventsResponse {
  if ("nextSequence" in item) {
    return create(vmWire.WatchEventsResponseSchema, {
      vm,
      sequence: 0n,
      event: { case: "gap", value: create(vmWire.EventGapSchema, { nextSequence: item.nextSequence }) },
    });
  }
  return create(vmWire.WatchEventsResponseSchema, {
    vm,
    sequence: item.sequence,
    time: timestampFromMs(item.timeMs),
    event: eventBodyToWire(item.body),
  });
}

function eventBodyToWire(body: VmEventBody): vmWire.WatchEventsResponse["event"] {
  switch (body.kind) {
    case "attached":
      return { case: "attached", value: create(vmWire.EventAttachedSchema, { holder: body.holder, stream: body.stream }) };
    case "detached":
      return { case: "detached", value: create(vmWire.EventDetachedSchema, { cause: detachCauseToWire(body.cause) }) };
    case "resumed":
      return { case: "resumed", value: create(vmWire.EventResumedSchema) };
    case "stopped":
      return { case: "stopped", value: create(vmWire.EventStoppedSchema, { reason: stopReasonToWire(body.reason) }) };
    case "stepped":
      return {
        case: "stepped",
        value: create(vmWire.EventSteppedSchema, {
          vp: body.vp,
          executed: body.executed,
          stop: body.stop && stopReasonToWire(body.stop),
        }),
      };
    case "debugStateChanged":
      return { case: "debugStateChanged", value: create(vmWire.EventDebugStateChangedSchema, { vp: body.vp }) };
    case "poweredOff":
      return { case: "poweredOff", value: create(vmWire.EventPoweredOffSchema) };
    case "reset":
      return { case: "reset", value: create(vmWire.EventResetSchema) };
    case "backendLost":
      return { case: "backendLost", value: create(vmWire.EventBackendLostSchema, { detail: body.detail }) };
  }
}

function detachCauseToWire(cause: DetachCause): vmWire.DetachCause {
  switch (cause) {
    case "requested":
      return vmWire.DetachCause.REQUESTED;
    case "lease_expired":
      return vmWire.DetachCause.LEASE_EXPIRED;
    case "stream_closed":
      return vmWire.DetachCause.STREAM_CLOSED;
    case "server_shutdown":
      return vmWire.DetachCause.SERVER_SHUTDOWN;
    case "stream_overflow":
      return vmWire.DetachCause.STREAM_OVERFLOW;
    case "backend_lost":
      return vmWire.DetachCause.BACKEND_LOST;
    case "forced":
      return vmWire.DetachCause.FORCED;
  }
}
