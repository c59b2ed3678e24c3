// VmmDebugClient.watchEvents: one VM's event feed as an async iterator that reconnects after UNAVAILABLE.
import { Status } from "nice-grpc";
import { vmEventFromWire } from "./convert";
import { VmmDebugError } from "./errors";
import type { RawClients } from "./client";
import type { VmEvent, WatchEventsOptions } from "./types";

/** Reconnection waits: 50 ms, doubling, at most 2 s. */
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 2_000;
const DEFAULT_MAX_RETRIES = 10;

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
      if (signal?.aborted) return;
      const error = VmmDebugError.from(e);
      if (error.code !== Status.UNAVAILABLE || failures >= maxRetries) throw error;
      failures += 1;
      const delay = Math.min(FIRST_RETRY_MS * 2 ** (failures - 1), MAX_RETRY_MS);
      onRetry?.(error, failures, delay);
      if (!(await wait(delay, signal))) return;
    }
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function wait(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
