// The options every CLI subcommand that talks to a vmm-debug server takes (TLS, mutual TLS, a
// bearer token), and the connect() options they make.
import { readFileSync } from "node:fs";
import type { ConnectOptions } from "../client";
import { isLoopbackHost } from "../server/listen-address";
import { type OptionSpec, UsageError } from "./args";

/** Environment variable read for the token when --token is not given. */
export const TOKEN_ENV = "VMM_DEBUG_TOKEN";

/** Merge into a subcommand's option spec. */
export const CLIENT_OPTION_SPEC: Readonly<Record<string, OptionSpec>> = {
  "tls-ca": { help: "CA certificate (PEM file) the server's certificate must chain to; turns on TLS" },
  "tls-cert": { help: "client certificate (PEM file) for a server with --client-ca; needs --tls-key" },
  "tls-key": { help: "the client certificate's private key (PEM file)" },
  "tls-server-name": { help: "name the server's certificate must carry when --server's host is not it" },
  tls: { flag: true, help: "TLS trusting the system's CA roots (implied by --tls-ca/--tls-cert)" },
  token: { help: `bearer token for a server with --tokens (default: $${TOKEN_ENV}; prefer it, a command line is visible to other users)` },
};

/** What a subcommand parsed (its `options` from parseArgs). */
type Parsed = Record<string, string | boolean | undefined>;

function readPemFile(flag: string, path: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EACCES" ? "permission denied" : err.code === "EISDIR" ? "is a directory" : err.message;
    throw new UsageError(`--${flag} ${path}: cannot read (${why})`);
  }
  if (!data.includes("-----BEGIN ")) throw new UsageError(`--${flag} ${path}: not a PEM file (no -----BEGIN line)`);
  return data;
}

function text(options: Parsed, name: string): string | undefined {
  const v = options[name];
  if (v === undefined || v === false) return undefined;
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} needs a value`);
  return v;
}

/**
 * connect() options from the client flags: TLS when any --tls* flag is given (the files read
 * now, so a wrong path is reported before connecting), the token from --token or
 * $VMM_DEBUG_TOKEN. `warn` hears about a token about to travel in plaintext to a non-loopback
 * server.
 */
export function clientConnectOptions(
  options: Parsed,
  server: string,
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = (m) => process.stderr.write(`vmm-debug: warning: ${m}\n`),
): Pick<ConnectOptions, "tls" | "token"> {
  const ca = text(options, "tls-ca");
  const cert = text(options, "tls-cert");
  const key = text(options, "tls-key");
  const serverName = text(options, "tls-server-name");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--tls-cert and --tls-key go together (a client certificate and its private key)");
  const useTls = options.tls === true || ca !== undefined || cert !== undefined || serverName !== undefined;
  const out: Pick<ConnectOptions, "tls" | "token"> = {};
  if (useTls) {
    out.tls = {
      ...(ca !== undefined && { ca: readPemFile("tls-ca", ca) }),
      ...(cert !== undefined && { cert: readPemFile("tls-cert", cert), key: readPemFile("tls-key", key!) }),
      ...(serverName !== undefined && { serverName }),
    };
  }
  const token = text(options, "token") ?? (env[TOKEN_ENV] || undefined);
  if (token !== undefined) {
    if (/[\s\x00-\x1f\x7f]/.test(token)) throw new UsageError(`the token (--token or $${TOKEN_ENV}) has spaces or control characters`);
    out.token = token;
    const host = /^\[?([^\]]+?)\]?:\d+$/.exec(server)?.[1] ?? server;
    if (!useTls && !isLoopbackHost(host)) warn(`sending the token without TLS to ${server}: anyone on the path can read it (add --tls-ca)`);
  }
  return out;
}
