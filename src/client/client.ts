// connect(): the SDK's entry point, a typed async API over the DebugService and VmService.
import { durationMs } from "@bufbuild/protobuf/wkt";
import {
  ChannelCredentials,
  Status,
  createChannel,
  createClientFactory,
  type Channel,
  type ChannelOptions,
  type Client,
} from "nice-grpc";
import { DebugServiceDefinition, HealthServiceDefinition, VmServiceDefinition } from "./definitions";
import { guestAddressToWire, vmInfoFromWire, vpStateFromWire } from "./convert";
import { VmmDebugError, vmmDebugClientMiddleware, type DeadlineOptions } from "./errors";
import { Session } from "./session";
import type { CallOptions, DebuggerVpState, GuestAddress, VmInfo } from "./types";

const MIB = 1024 * 1024;

export interface ConnectOptions {
  /** Default: insecure (the server has no TLS yet and listens on loopback). */
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

/** Connects (lazily) to a vmm-debug server at "host:port". */
export function connect(address: string, options: ConnectOptions = {}): VmmDebugClient {
  const maxUnaryReadBytes = options.maxUnaryReadBytes ?? 4 * MIB;
  const channel = createChannel(address, options.credentials ?? ChannelCredentials.createInsecure(), {
    // A full-size unary read plus framing must fit.
    "grpc.max_receive_message_length": Math.max(maxUnaryReadBytes, 4 * MIB) + MIB,
    // Memory reads are bulk transfers: an 8 MiB HTTP/2 receive window (instead of 64 KiB) lets
    // the server keep sending while the client works (about 1.7x the streamed read rate here).
    "grpc-node.flow_control_window": 8 * MIB,
    ...options.channelOptions,
  });
  return new VmmDebugClient(channel, maxUnaryReadBytes);
}

export class VmmDebugClient {
  readonly rpc: RawClients;

  /** Use connect(). */
  constructor(
    private readonly channel: Channel,
    private readonly maxUnaryReadBytes: number,
  ) {
    const factory = createClientFactory().use(vmmDebugClientMiddleware);
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

  /** Becomes the VM's controlling debugger ("" means the only VM). Does not stop the VM. */
  async attach(vm = "", opts: CallOptions = {}): Promise<Session> {
    const id = vm === "" ? (await this.getVm("", opts)).id : vm;
    const res = await this.rpc.debug.attach({ vm: id }, opts);
    const leaseMs = res.lease ? durationMs(res.lease) : 0;
    return new Session(this, id, res.sessionId, leaseMs);
  }

  /** One VP's registers; the VM must be stopped. Needs no session. */
  async getVpState(vm: string, vp: number, opts: CallOptions = {}): Promise<DebuggerVpState> {
    const res = await this.rpc.debug.getVpState({ vm, vp }, opts);
    return vpStateFromWire(res.state);
  }

  /**
   * Reads guest memory (works while the VM runs; needs no session). Longer reads than the unary
   * cap go through ReadMemoryStream and come back as one array.
   */
  async readMemory(vm: string, address: GuestAddress, length: number, opts: CallOptions = {}): Promise<Uint8Array> {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new VmmDebugError(Status.INVALID_ARGUMENT, `length must be a non-negative integer, got ${length}`, {
        reason: "VALUE_OUT_OF_RANGE",
      });
    }
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
  async readMemoryStream(vm: string, address: GuestAddress, length: number, opts: CallOptions = {}): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let received = 0;
    for await (const chunk of this.rpc.debug.readMemoryStream(
      { vm, address: guestAddressToWire(address), length: BigInt(length) },
      opts,
    )) {
      const offset = Number(chunk.offset);
      if (offset + chunk.data.length > length) {
        throw new VmmDebugError(Status.INTERNAL, `the server sent bytes past the requested ${length}`);
      }
      out.set(chunk.data, offset);
      received += chunk.data.length;
    }
    if (received !== length) {
      throw new VmmDebugError(Status.INTERNAL, `the stream ended after ${received} of ${length} bytes`);
    }
    return out;
  }

  /** Closes the connection; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.channel.close();
  }
}
