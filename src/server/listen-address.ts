// Parses "HOST:PORT" listen addresses and keeps the server on loopback unless told otherwise.
import { isIP } from "node:net";

export interface ListenAddress {
  /** Host without brackets ("127.0.0.1", "::1", "localhost"). */
  host: string;
  port: number;
}

/** "127.0.0.1:50051", "[::1]:50051", "localhost:0". Throws a TypeError saying what is wrong. */
export function parseListenAddress(address: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address.trim());
  if (!m) {
    throw new TypeError(`invalid listen address "${address}": expected HOST:PORT, e.g. 127.0.0.1:50051 or [::1]:50051`);
  }
  const host = m[1] ?? m[2];
  if (m[1] !== undefined && isIP(host) !== 6) {
    throw new TypeError(`invalid listen address "${address}": only IPv6 addresses go in brackets`);
  }
  const port = Number(m[3]);
  if (port > 65535) throw new TypeError(`invalid listen address "${address}": port ${port} is above 65535`);
  return { host, port };
}

/** Whether `host` can only be reached from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(h);
  return false;
}

/** The "host:port" string grpc-js binds to. */
export function formatListenAddress({ host, port }: ListenAddress): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
