// The reconnection rule the SDK's feeds share (watchEvents, watchConsole): after UNAVAILABLE
// (server gone, connection lost) wait 50 ms, doubling, at most 2 s, and call again.
import { Status } from "nice-grpc";
import { VmmDebugError } from "./errors";

const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 2_000;
export const DEFAULT_MAX_RETRIES = 10;

/**
 * After a feed's call failed with `e` following `failures` failures in a row: rethrows it unless
 * it is UNAVAILABLE with retries left, else reports the retry and waits. Returns the new count of
 * failures in a row (call again), or -1 when `signal` aborted (end quietly).
 */
export async function reconnectAfter(
  e: unknown,
  failures: number,
  signal: AbortSignal | undefined,
  maxRetries: number,
  onRetry: ((error: VmmDebugError, attempt: number, delayMs: number) => void) | undefined,
): Promise<number> {
  if (signal?.aborted) return -1;
  const error = VmmDebugError.from(e);
  if (error.code !== Status.UNAVAILABLE || failures >= maxRetries) throw error;
  const attempt = failures + 1;
  const delay = Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), MAX_RETRY_MS);
  onRetry?.(error, attempt, delay);
  return (await wait(delay, signal)) ? attempt : -1;
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
