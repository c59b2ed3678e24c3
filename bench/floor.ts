// The transport floor: a bare @grpc/grpc-js echo and stream service (no nice-grpc, no protobuf),
// served by the bench's server process and measured by its client in the same process pair.
import * as grpc from "@grpc/grpc-js";

const identity = (b: Buffer) => b;
const FLOOR_SERVICE: grpc.ServiceDefinition = {
  Echo: {
    path: "/bench.Floor/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Chat: {
    path: "/bench.Floor/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Stream: {
    path: "/bench.Floor/Stream",
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** Serves Echo (returns the request), Chat (a bidi stream echoing each message) and Stream (request = u32 MiB count; streams 1 MiB buffers). */
export function addFloorService(server: grpc.Server): void {
  const chunk = Buffer.alloc(1024 * 1024, 0xab);
  server.addService(FLOOR_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (b: Buffer) => call.write(b));
      call.on("end", () => call.end());
    },
    Stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      let left = call.request.readUInt32LE(0);
      const pump = () => {
        while (left > 0) {
          left--;
          if (!call.write(chunk)) {
            call.once("drain", pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
  });
}

const FloorClient = grpc.makeGenericClientConstructor(FLOOR_SERVICE, "Floor");

export interface FloorFigures {
  echoP50Us: number;
  echoP99Us: number;
  /** A bare bidi stream echoing a 200-byte message, one in flight at a time. */
  pingPongP50Us: number;
  streamMibps: number;
}

/** Measures the bare grpc-js unary echo (~200-byte message) and a 1 MiB-buffer server stream. */
export async function measureFloor(
  address: string,
  echoCalls: number,
  streamMib: number,
  channelOptions: grpc.ChannelOptions = {},
): Promise<FloorFigures> {
  const client = new FloorClient(address, grpc.credentials.createInsecure(), channelOptions) as unknown as grpc.Client & {
    Echo(req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
    Stream(req: Buffer): grpc.ClientReadableStream<Buffer>;
    Chat(): grpc.ClientDuplexStream<Buffer, Buffer>;
  };
  const message = Buffer.alloc(200, 0x5a);
  const echo = () =>
    new Promise<void>((resolve, reject) => client.Echo(message, (err) => (err ? reject(err) : resolve())));
  for (let i = 0; i < 200; i++) await echo(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < echoCalls; i++) {
    const t0 = process.hrtime.bigint();
    await echo();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const chat = client.Chat();
  let answered: (() => void) | undefined;
  chat.on("data", () => answered?.());
  const ping = () =>
    new Promise<void>((resolve) => {
      answered = resolve;
      chat.write(message);
    });
  for (let i = 0; i < 200; i++) await ping(); // warm-up
  const pings: number[] = [];
  for (let i = 0; i < echoCalls; i++) {
    const t0 = process.hrtime.bigint();
    await ping();
    pings.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  chat.end();
  const streamOnce = (mib: number) =>
    new Promise<number>((resolve, reject) => {
      const req = Buffer.alloc(4);
      req.writeUInt32LE(mib, 0);
      const t0 = process.hrtime.bigint();
      let bytes = 0;
      const call = client.Stream(req);
      call.on("data", (b: Buffer) => (bytes += b.length));
      call.on("error", reject);
      call.on("end", () => resolve(bytes / (1024 * 1024) / (Number(process.hrtime.bigint() - t0) / 1e9)));
    });
  await streamOnce(16);
  const streamMibps = await streamOnce(streamMib);
  client.close();
  return { echoP50Us: percentile(samples, 50), echoP99Us: percentile(samples, 99), pingPongP50Us: percentile(pings, 50), streamMibps };
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
