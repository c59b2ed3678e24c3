// connect(): the SDK's entry point, a typed async API over the DebugService and VmService.
import { durationMs } from "@bufbuild/protobuf/wkt";
import {
  ChannelCredentials,
  Metadata,
  Status,
  createChannel,
  createClientFactory,
  type Channel,
  type ChannelOptions,
  type Client,
  type ClientMiddleware,
} from "nice-grpc";
import { DebugServiceDefinition, HealthServiceDefinition, VmServiceDefinition } from "../wire";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ReadMemoryStreamRequestSchema } from "../../gen/vmm/debug/v1/debug_service_pb";
import {
  ReadAssembler,
  badLength,
  guestAddressToWire,
  memoryRangeToWire,
  readManyFromWire,
  translationFromWire,
  unreadableFromWire,
  vmInfoFromWire,
  vpStateFromWire,
  vpStatesFromWire,
} from "./convert";
import { VmmDebugError, vmmDebugClientMiddleware, type DeadlineOptions } from "./errors";
import { Session } from "./session";
import { StreamTransport } from "./stream-transport";
import type {
  AttachOptions,
  CallOptions,
  DebuggerVpState,
  GuestAddress,
  MemoryRange,
  PartialRead,
  ReadManyResult,
  Translation,
  VmEvent,
  VmInfo,
  VpStateEntry,
  WatchEventsOptions,
} from "./types";
import { UnaryTransport } from "./unary-transport";
import { watchEvents } from "./watch-events";
import { type ConsoleChunk, type WatchConsoleOptions, watchConsole } from "./watch-console";
import { type DumpPiece, dumpMemory } from "./dump";

const MIB = 1024 * 1024;

/** PEM text (a string or the bytes of a file) for a TLS connection. */
export type Pem = string | Uint8Array;

export interface ConnectTlsOptions {
  /**
   * CA certificate(s) the server's certificate must chain to. Omitted: the system's default
   * roots (Node's bundled CA list).
   */
  ca?: Pem;
  /** Client certificate chain, for a server that requires client certificates (mutual TLS); needs `key`. */
  cert?: Pem;
  /** The client certificate's private key (unencrypted PEM); needs `cert`. */
  key?: Pem;
  /**
   * The name the server's certificate must carry, when it differs from the host in the address
   * (e.g. connecting to 10.0.0.5:50443 with a certificate for debug.example). Default: the
   * address's host.
   */
  serverName?: string;
}

export interface ConnectOptions {
  /**
   * TLS: `{}` trusts the system roots; `ca` a private CA; `cert` + `key` present a client
   * certificate (mutual TLS, the server's `--client-ca`). Omitted (and no `credentials`):
   * plaintext, for the loopback default.
   */
  tls?: ConnectTlsOptions;
  /**
   * Bearer token (from `vmm-debug token add`) sent on every call as
   * `authorization: Bearer <token>`, over TLS or a plaintext loopback channel alike.
   */
  token?: string;
  /** grpc-js channel credentials, for what `tls` does not cover; not together with `tls`. Default: insecure. */
  credentials?: ChannelCredentials;
  /** Extra grpc-js channel options. */
  channelOptions?: ChannelOptions;
  /** Reads longer than this use ReadMemoryStream. Default 4 MiB, the server's default unary cap. */
  maxUnaryReadBytes?: number;
}

/** The raw nice-grpc clients behind the SDK (for requests the typed API does not make). */
export interface RawClients {
  debug: Client<DebugServiceDefinition, DeadlineOptions>;
  vm: Client<VmServiceDefinition, DeadlineOptions>;
  health: Client<HealthServiceDefinition, DeadlineOptions>;
}

/**
 * Connects (lazily) to a vmm-debug server at "host:port".
 *
 * ```ts
 * // Loopback default: plaintext, no identity.
 * const local = connect("127.0.0.1:50051");
 * // Across hosts: TLS with a private CA, a client certificate (mutual TLS) and a token.
 * const remote = connect("debug.example:50443", {
 *   tls: { ca: readFileSync("ca.crt"), cert: readFileSync("client.crt"), key: readFileSync("client.key") },
 *   token: process.env.VMM_DEBUG_TOKEN,
 * });
 * ```
 *
 * Throws a TypeError for options that cannot work (both `tls` and `credentials`, `cert`
 * without `key`, a token with spaces or line breaks).
 */
export function connect(address: string, options: ConnectOptions = {}): VmmDebugClient {
  const maxUnaryReadBytes = options.maxUnaryReadBytes ?? 4 * MIB;
  const channel = createChannel(address, channelCredentials(options), {
    // A full-size unary read plus framing must fit.
    "grpc.max_receive_message_length": Math.max(maxUnaryReadBytes, 4 * MIB) + MIB,
    // Memory reads are bulk transfers: an 8 MiB HTTP/2 receive window (instead of 64 KiB) lets
    // the server keep sending while the client works (about 1.7x the streamed read rate here).
    "grpc-node.flow_control_window": 8 * MIB,
    // While a call is open (a Resume waiting for a stop, a Session stream), ping a quiet
    // connection every 30 s and give up on a server that does not answer within 10 s: the call
    // fails with UNAVAILABLE instead of waiting forever on a frozen or vanished server.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    ...(options.tls?.serverName ? { "grpc.ssl_target_name_override": options.tls.serverName } : {}),
    ...options.channelOptions,
  });
  return new VmmDebugClient(channel, maxUnaryReadBytes, options.token === undefined ? undefined : checkToken(options.token));
}

function pemBuffer(pem: Pem | undefined, what: string): Buffer | null {
  if (pem === undefined) return null;
  if (typeof pem === "string") return Buffer.from(pem, "utf8");
  if (pem instanceof Uint8Array) return Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength);
  throw new TypeError(`tls.${what} must be PEM text (a string, Buffer or Uint8Array)`);
}

function channelCredentials(options: ConnectOptions): ChannelCredentials {
  const { tls } = options;
  if (!tls) return options.credentials ?? ChannelCredentials.createInsecure();
  if (options.credentials) throw new TypeError("connect: give either tls or credentials, not both");
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new TypeError("connect: tls.cert and tls.key go together (a client certificate and its private key)");
  return ChannelCredentials.createSsl(pemBuffer(tls.ca, "ca"), pemBuffer(tls.key, "key"), pemBuffer(tls.cert, "cert"));
}

function checkToken(token: string): string {
  if (typeof token !== "string" || token === "" || /[\s\x00-\x1f\x7f]/.test(token)) {
    throw new TypeError("connect: token must be a non-empty string without spaces or control characters");
  }
  return token;
}

/**
 * Adds `authorization: Bearer <token>` to every call's metadata (a client middleware rather
 * than grpc-js call credentials, which grpc-js refuses on a plaintext channel).
 */
export function bearerTokenMiddleware(token: string): ClientMiddleware {
  const value = `Bearer ${checkToken(token)}`;
  return async function* (call, options) {
    const metadata = Metadata(options.metadata);
    metadata.set("authorization", value);
    return yield* call.next(call.request, { ...options, metadata });
  };
}

export class VmmDebugClient {
  readonly rpc: RawClients;

  /** Use connect(). */
  constructor(
    private readonly channel: Channel,
    /** @internal Reads longer than this are streamed. */
    readonly maxUnaryReadBytes: number,
    token?: string,
  ) {
    const base = createClientFactory().use(vmmDebugClientMiddleware);
    const factory = token === undefined ? base : base.use(bearerTokenMiddleware(token));
    this.rpc = {
      debug: factory.create(DebugServiceDefinition, channel),
      vm: factory.create(VmServiceDefinition, channel),
      health: factory.create(HealthServiceDefinition, channel),
    };
  }

  /** Every served VM, ordered by id. */
  async listVms(opts: CallOptions = {}): Promise<VmInfo[]> {
    const res = await this.rpc.vm.listVms({}, opts);
    return res.vms.map((vm) => vmInfoFromWire(vm));
  }

  /** One VM; "" (the default) means the only one. */
  async getVm(vm = "", opts: CallOptions = {}): Promise<VmInfo> {
    const res = await this.rpc.vm.getVm({ vm }, opts);
    return vmInfoFromWire(res.vm);
  }

  /**
   * Becomes the VM's controlling debugger ("" means the only VM). Does not stop the VM. By
   * default the session is one Session stream (`opts.transport: "unary"` for one RPC per
   * operation with a lease); `signal` and `deadlineMs` bound the attach, not the session.
   */
  async attach(vm = "", opts: AttachOptions = {}): Promise<Session> {
    const { transport = "stream", takeOver = false, ...callOpts } = opts;
    if (transport === "stream") {
      const stream = await StreamTransport.open(this, vm, callOpts, takeOver);
      return new Session(this, () => stream);
    }
    if (transport !== "unary") {
      throw new VmmDebugError(Status.INVALID_ARGUMENT, `unknown transport "${String(transport)}" (use "stream" or "unary")`, {
        reason: "INVALID_ENUM",
      });
    }
    const id = vm === "" ? (await this.getVm("", callOpts)).id : vm;
    const res = await this.rpc.debug.attach({ vm: id, takeOver }, callOpts);
    const leaseMs = res.lease ? durationMs(res.lease) : 0;
    return new Session(this, (session) => new UnaryTransport(this, id, res.sessionId, leaseMs, (vp) => session.debugState(vp)));
  }

  /**
   * Admin only: ends whatever session holds the VM, whoever attached it (as Detach: a VM the
   * debugger stopped resumes). A VM with no session is left as it is.
   */
  async forceDetach(vm = "", opts: CallOptions = {}): Promise<void> {
    await this.rpc.debug.detach({ vm, force: true }, opts);
  }

  /** One VP's registers; the VM must be stopped. Needs no session. */
  async getVpState(vm: string, vp: number, opts: CallOptions = {}): Promise<DebuggerVpState> {
    const res = await this.rpc.debug.getVpState({ vm, vp }, opts);
    return vpStateFromWire(res.state);
  }

  /** Several VPs' registers in one call (every VP when `vps` is empty or omitted); the VM must be stopped. Needs no session. */
  async getVpStates(vm: string, vps: number[] = [], opts: CallOptions = {}): Promise<VpStateEntry[]> {
    return vpStatesFromWire(await this.rpc.debug.getVpStates({ vm, vps }, opts));
  }

  /**
   * Reads guest memory (works while the VM runs; needs no session). Longer reads than the unary
   * cap go through ReadMemoryStream and come back as one array.
   */
  async readMemory(vm: string, address: GuestAddress, length: number, opts: CallOptions = {}): Promise<Uint8Array> {
    if (!Number.isSafeInteger(length) || length < 0) throw badLength(length);
    if (length <= this.maxUnaryReadBytes) {
      try {
        const res = await this.rpc.debug.readMemory({ vm, address: guestAddressToWire(address), length: BigInt(length) }, opts);
        return res.data;
      } catch (e) {
        // The server's cap is lower than ours: stream instead.
        if (!(e instanceof VmmDebugError && e.reason === "READ_TOO_LARGE")) throw e;
      }
    }
    return this.readMemoryStream(vm, address, length, opts);
  }

  /** Reads through ReadMemoryStream, whatever the length. */
  readMemoryStream(vm: string, address: GuestAddress, length: number, opts: CallOptions = {}): Promise<Uint8Array> {
    if (!Number.isSafeInteger(length) || length < 0) return Promise.reject(badLength(length));
    return this.streamRead({ vm, address: guestAddressToWire(address), length: BigInt(length) }, length, opts);
  }

  /** @internal One ReadMemoryStream call put together (Session's unary reads carry their session id). */
  async streamRead(request: MessageInitShape<typeof ReadMemoryStreamRequestSchema>, length: number, opts: CallOptions): Promise<Uint8Array> {
    const chunks = new ReadAssembler(length);
    for await (const chunk of this.rpc.debug.readMemoryStream(request, opts)) chunks.add(chunk);
    return chunks.result();
  }

  /** @internal A partial ReadMemoryStream call put together. */
  async streamReadPartial(request: MessageInitShape<typeof ReadMemoryStreamRequestSchema>, length: number, opts: CallOptions): Promise<PartialRead> {
    const chunks = new ReadAssembler(length);
    for await (const chunk of this.rpc.debug.readMemoryStream({ ...request, allowPartial: true }, opts)) chunks.add(chunk);
    return chunks.partialResult();
  }

  /**
   * Reads what can be read (works while the VM runs; needs no session): bytes that cannot be
   * read (unmapped GVA pages, non-canonical GVAs, GPAs outside RAM) come back as zero and are
   * listed in `unreadable` (offsets from `address`, in order, with the error a plain read would
   * give). Longer reads than the unary cap are streamed. Bad requests (a VP out of range, too
   * long) still fail.
   */
  async readMemoryPartial(vm: string, address: GuestAddress, length: number, opts: CallOptions = {}): Promise<PartialRead> {
    if (!Number.isSafeInteger(length) || length < 0) throw badLength(length);
    const request = { vm, address: guestAddressToWire(address), length: BigInt(length), allowPartial: true };
    if (length <= this.maxUnaryReadBytes) {
      try {
        const res = await this.rpc.debug.readMemory(request, opts);
        return { data: res.data, unreadable: unreadableFromWire(res.unreadable) };
      } catch (e) {
        if (!(e instanceof VmmDebugError && e.reason === "READ_TOO_LARGE")) throw e;
      }
    }
    return this.streamReadPartial(request, length, opts);
  }

  /**
   * Translates `gva` through VP `vp`'s page tables as the VP would now, with every level of the
   * walk; an unmapped address is an answer (`mapped` false, `fault`), not an error. The VM must
   * be stopped (FAILED_PRECONDITION / VM_RUNNING). Needs no session.
   */
  async translateGva(vm: string, vp: number, gva: bigint, opts: CallOptions = {}): Promise<Translation> {
    return translationFromWire(await this.rpc.debug.translateGva({ vm, vp, gva }, opts));
  }

  /**
   * Reads many ranges in one call (at most 4096, adding up to at most the unary read cap); each
   * range answers its bytes or its own error. Works while the VM runs; needs no session.
   */
  async readMany(vm: string, ranges: MemoryRange[], opts: CallOptions = {}): Promise<ReadManyResult[]> {
    const res = await this.rpc.debug.readMemoryMany({ vm, ranges: ranges.map(memoryRangeToWire) }, opts);
    return readManyFromWire(res, ranges.length);
  }

  /**
   * One VM's events as they happen (or, with `afterSequence`, every event the server still holds
   * after that number first), for any number of observers; needs no session. Reconnects after
   * UNAVAILABLE (waits of 50 ms doubling to 2 s, at most `maxRetries` failures in a row, default
   * 10) and resumes after the last event it delivered; a `gap` event says events were lost
   * (they left the server's ring). Without `afterSequence`, events published while the first
   * call was still connecting are not seen. Ends without error when `signal` aborts.
   */
  watchEvents(vm: string, opts: WatchEventsOptions = {}): AsyncGenerator<VmEvent, void, undefined> {
    return watchEvents(this.rpc.vm, vm, opts);
  }

  /**
   * One VM's guest console output (the debug console at 0xE9, the COM1 UART at 0x3F8, a launched
   * QEMU's stdout) as raw byte chunks, each with its device and its offset in the VM's console
   * byte stream; needs no session. Without `fromOffset` only output from now on; with it, what
   * the server holds from there first (0: everything held). A `gap` says bytes were lost (gone
   * from the server's 1 MiB history); an `end` (the guest powered off, the backend is gone) is the
   * last chunk. Reconnects after UNAVAILABLE from the byte after the last one delivered. Ends
   * without error when `signal` aborts; with `stopAtEnd`, once what was there at the start is read.
   */
  watchConsole(vm: string, opts: WatchConsoleOptions = {}): AsyncGenerator<ConsoleChunk, void, undefined> {
    return watchConsole(this.rpc.vm, vm, opts);
  }

  /**
   * An ELF core file of the VM (which must be stopped), as pieces in file order with the
   * progress; abort `opts.signal` to stop the dump. See DumpMemory in the proto.
   */
  dumpMemory(vm = "", opts: CallOptions = {}): AsyncGenerator<DumpPiece, void, undefined> {
    return dumpMemory(this.rpc, vm, opts);
  }

  /** Closes the connection; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.channel.close();
  }
}
