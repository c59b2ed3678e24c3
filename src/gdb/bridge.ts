// The gdb bridge: a loopback TCP listener serving one gdb at a time over the SDK.
import { type AddressInfo, type Server, type Socket, createServer } from "node:net";
import type { VmmDebugClient } from "../client";
import { serveGdbConnection } from "./connection";

export interface GdbBridgeOptions {
  client: VmmDebugClient;
  /** VM id ("" = the server's only VM). */
  vm: string;
  /** Operator messages (attach, detach, a lost server). Default: none. */
  log?: (line: string) => void;
}

export interface GdbBridge {
  /** Listens on a loopback host and port (0 = ephemeral); answers the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stops listening and ends the connection in progress (its session is closed: the VM runs on). */
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A bridge: each gdb that connects gets its own session; a second gdb while one is served is turned away. */
export function createGdbBridge(options: GdbBridgeOptions): GdbBridge {
  const log = options.log ?? (() => undefined);
  let server: Server | undefined;
  let current: { socket: Socket; done: Promise<void> } | undefined;

  const onConnection = (socket: Socket) => {
    if (current) {
      log(`gdb ${socket.remoteAddress}:${socket.remotePort} turned away: another gdb is connected`);
      socket.destroy();
      return;
    }
    const done = serveGdbConnection(socket, { client: options.client, vm: options.vm, log });
    current = { socket, done };
    void done.then(() => {
      if (current?.socket === socket) current = undefined;
    });
  };

  return {
    listen(host, port) {
      if (!isLoopbackHost(host)) return Promise.reject(new Error(`the gdb bridge listens on loopback only, not "${host}"`));
      return new Promise((resolve, reject) => {
        const s = createServer(onConnection);
        s.once("error", reject);
        s.listen(port, host, () => {
          s.off("error", reject);
          server = s;
          const a = s.address() as AddressInfo;
          resolve({ host: a.address, port: a.port });
        });
      });
    },
    async close() {
      const s = server;
      server = undefined;
      const closed = s ? new Promise<void>((r) => s.close(() => r())) : Promise.resolve();
      if (current) {
        current.socket.destroy();
        await current.done;
      }
      await closed;
    },
  };
}
