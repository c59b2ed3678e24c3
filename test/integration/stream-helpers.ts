// Test helper: a raw Session stream over nice-grpc, with requests pushed one by one and answers
// read by id (no SDK in between, so tests see exactly what the server sends).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import type { VmmDebugClient } from "../../src/client";
import { statusFromWire, type ErrorDetails } from "../../src/wire";

type Operation = MessageInitShape<typeof ds.SessionRequestSchema>["operation"];

/** An async iterable whose items are pushed from outside; end() finishes it. */
export class Pushable<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private ended = false;
  private wake: (() => void) | undefined;
  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

export interface RawStream {
  /** The `opened` answer. */
  opened: ds.SessionOpened;
  /** Sends one operation and resolves with its (last) answer. */
  call(op: Operation): Promise<ds.SessionResponse>;
  /** Sends one operation without waiting; returns its id. */
  send(op: Operation): bigint;
  /** Every message received so far, in order. */
  received: ds.SessionResponse[];
  /** Resolves with the next pushed stop (or one already received and not yet taken). */
  nextStop(timeoutMs?: number): Promise<ds.SessionStop>;
  /** Half-closes the request side. */
  end(): void;
  /** Cancels the call. */
  cancel(): void;
  /** Resolves when the server ends the stream (rejects with its error). */
  done: Promise<void>;
}

/** Opens a Session stream on `vm` and waits for `opened` (rejects with the attach error). */
export async function openRawStream(client: VmmDebugClient, vm = ""): Promise<RawStream> {
  const requests = new Pushable<ds.SessionRequest>();
  const controller = new AbortController();
  const received: ds.SessionResponse[] = [];
  const waiters = new Map<bigint, (r: ds.SessionResponse) => void>();
  let stopsTaken = 0;
  let stopWaiter: (() => void) | undefined;
  let nextId = 1n;
  let openedResolve!: (o: ds.SessionOpened) => void;
  let openedReject!: (e: unknown) => void;
  const opened = new Promise<ds.SessionOpened>((resolve, reject) => {
    openedResolve = resolve;
    openedReject = reject;
  });
  requests.push(create(ds.SessionRequestSchema, { id: 0n, operation: { case: "attach", value: { vm } } }));
  const done = (async () => {
    for await (const msg of client.rpc.debug.session(requests, { signal: controller.signal })) {
      received.push(msg);
      if (msg.result.case === "opened") openedResolve(msg.result.value);
      else if (msg.result.case === "stop") stopWaiter?.();
      else if (!msg.more) {
        const w = waiters.get(msg.id);
        waiters.delete(msg.id);
        w?.(msg);
      }
    }
  })();
  done.catch(openedReject);
  const send = (op: Operation) => {
    const id = nextId++;
    requests.push(create(ds.SessionRequestSchema, { id, operation: op }));
    return id;
  };
  return {
    opened: await opened,
    received,
    send,
    call(op) {
      return new Promise((resolve, reject) => {
        const id = send(op);
        waiters.set(id, resolve);
        done.then(() => waiters.has(id) && reject(new Error(`stream ended before answering ${id}`)), reject);
      });
    },
    async nextStop(timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const stops = received.filter((m) => m.result.case === "stop");
        if (stops.length > stopsTaken) return stops[stopsTaken++].result.value as ds.SessionStop;
        if (Date.now() > end) throw new Error(`no stop within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          stopWaiter = r;
          setTimeout(r, Math.max(1, end - Date.now())).unref();
        });
      }
    },
    end: () => requests.end(),
    cancel: () => controller.abort(),
    done,
  };
}

/** The ErrorInfo of an `error` answer (throws if the answer is not an error). */
export function answerError(msg: ds.SessionResponse): ErrorDetails {
  if (msg.result.case !== "error") throw new Error(`expected an error answer, got ${msg.result.case}`);
  return statusFromWire(msg.result.value);
}
