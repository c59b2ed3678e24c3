// VmmDebugClient.watchEvents: one VM's event feed as an async iterator that reconnects after UNAVAILABLE.
import { vmEventFromWire } from "./convert";
import { DEFAULT_MAX_RETRIES, reconnectAfter } from "./reconnect";
import type { RawClients } from "./client";
import type { VmEvent, WatchEventsOptions } from "./types";


/**
 * Reads WatchEvents; when the call fails with UNAVAILABLE (server gone, connection lost) it
 * waits and calls again with `after_sequence` = the last sequence it delivered, so nothing the
 * server still holds is lost or repeated. After `maxRetries` failures in a row (a successful
 * subscription resets the count) it throws the last one. Ends without error when `signal` aborts
 * or the server ends the feed (the VM's feed closed).
 */
export async function* watchEvents(rpc: RawClients["vm"], vm: string, opts: WatchEventsOptions = {}): AsyncGenerator<VmEvent, void, undefined> {
  const { signal, maxRetries = DEFAULT_MAX_RETRIES, onRetry, onSubscribed } = opts;
  let after = opts.afterSequence;
  let failures = 0;
  for (;;) {
    if (signal?.aborted) return;
    try {
      const feed = rpc.watchEvents({ vm, afterSequence: after }, {
        signal,
        // The server sends its header once the feed is subscribed.
        onHeader: () => {
          failures = 0;
          try {
            onSubscribed?.();
          } catch {
            // A callback's throw must not reach grpc-js's event emitter (it would end the process).
          }
        },
      });
      for await (const msg of feed) {
        const event = vmEventFromWire(msg);
        // After a gap, what comes next is `nextSequence`: resuming after the one before it skips no more.
        after = event.event.kind === "gap" ? event.event.nextSequence - 1n : event.sequence;
        yield event;
      }
      return;
    } catch (e) {
      failures = await reconnectAfter(e, failures, signal, maxRetries, onRetry);
      if (failures < 0) return;
    }
  }
}

