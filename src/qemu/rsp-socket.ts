// Socket addresses and connecting, shared by the gdbstub (RSP) and QMP clients: loopback TCP or unix.
import { isIP, type Socket, connect } from "node:net";

/** Where QEMU listens: a unix socket path, or HOST:PORT (loopback unless explicitly allowed). */
export type QemuSocketAddress = { path: string } | { host: string; port: number };

export interface ConnectOptions {
  /** Give up connecting after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Allow a non-loopback host (the gdbstub and QMP have no authentication). Default false. */
  allowNonLoopback?: boolean;
}

/** A platform socket error reduced to what callers act on. The one place errno codes are mapped. */
export interface SocketFailure {
  code: "refused" | "not-found" | "reset" | "timeout" | "access-denied" | "closed" | "other";
  message: string;
}

/** Parses "unix:/path", "/path", "tcp:HOST:PORT", "HOST:PORT", "[::1]:PORT". Throws TypeError. */
export function parseSocketAddress(text: string): QemuSocketAddress {
  if (text.startsWith("unix:")) return { path: text.slice(5) };
  if (text.startsWith("/") || text.startsWith("./")) return { path: text };
  const t = text.startsWith("tcp:") ? text.slice(4) : text;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(t);
  if (!m || Number(m[3]) > 65535) {
    throw new TypeError(`invalid socket address "${text}": expected unix:/path or HOST:PORT (e.g. 127.0.0.1:1234)`);
  }
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** "unix:/path" or "HOST:PORT" (IPv6 in brackets). */
export function formatSocketAddress(address: QemuSocketAddress): string {
  if ("path" in address) return `unix:${address.path}`;
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h === "::1" || /^::ffff:127\./.test(h);
}

/**
 * Connects and resolves with the socket once connected (no-delay set: every request is a small
 * write waiting for its answer). Rejects with `{ failure: SocketFailure }`-carrying errors made by `wrap`.
 */
export function connectSocket(
  address: QemuSocketAddress,
  options: ConnectOptions,
  wrap: (failure: SocketFailure, cause?: unknown) => Error,
): Promise<Socket> {
  if ("host" in address && !options.allowNonLoopback && !isLoopback(address.host)) {
    return Promise.reject(
      wrap({ code: "access-denied", message: `refusing to connect to non-loopback host ${address.host} (the stub has no authentication)` }),
    );
  }
  return new Promise((resolve, reject) => {
    const socket = "path" in address ? connect({ path: address.path }) : connect({ host: address.host, port: address.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(wrap({ code: "timeout", message: `no connection to ${formatSocketAddress(address)} within ${options.timeoutMs ?? 5000} ms` }));
    }, options.timeoutMs ?? 5000);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(wrap(socketFailure(err, formatSocketAddress(address)), err));
    });
  });
}

/** Maps a Node socket error (ECONNREFUSED, ENOENT, ECONNRESET…) to a SocketFailure. */
export function socketFailure(err: unknown, where = "the socket"): SocketFailure {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const detail = err instanceof Error ? err.message : String(err);
  switch (code) {
    case "ECONNREFUSED":
      return { code: "refused", message: `connection to ${where} refused: is QEMU running with that socket?` };
    case "ENOENT":
      return { code: "not-found", message: `${where} does not exist: is QEMU running with that socket?` };
    case "ECONNRESET":
    case "EPIPE":
      return { code: "reset", message: `connection to ${where} reset by QEMU (${detail})` };
    case "EACCES":
    case "EPERM":
      return { code: "access-denied", message: `no permission to connect to ${where}` };
    case "ETIMEDOUT":
      return { code: "timeout", message: `connection to ${where} timed out` };
    default:
      return { code: "other", message: `${where}: ${detail}` };
  }
}
