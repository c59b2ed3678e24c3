// Server TLS and mutual TLS from PEM files that are re-read while the server runs (certificate
// rotation without a restart), and the principal a client certificate names.
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import { experimental, type ServerCredentials } from "@grpc/grpc-js";

/** PEM files (paths) for the server's TLS. */
export interface TlsFiles {
  /** The server's certificate chain (`--tls-cert`). */
  cert: string;
  /** The server certificate's private key (`--tls-key`). */
  key: string;
  /** CA certificate(s) client certificates must chain to (`--client-ca`); given, client certificates are required. */
  clientCa?: string;
}

export interface TlsCredentials {
  /** For `server.bindAsync`. */
  credentials: ServerCredentials;
  /** Stops watching the files (the watcher's timer would keep the process alive). */
  close(): void;
}

/** A problem with one of the TLS files, naming the CLI flag that gave it. */
export class TlsFileError extends Error {
  constructor(
    readonly flag: "--tls-cert" | "--tls-key" | "--client-ca",
    readonly path: string,
    message: string,
  ) {
    super(`${flag} ${path}: ${message}`);
    this.name = "TlsFileError";
  }
}

/** Default interval at which the files are re-read. */
export const DEFAULT_TLS_REFRESH_MS = 1000;

type Identity = experimental.IdentityCertificateUpdate;
type Ca = experimental.CaCertificateUpdate;

/**
 * Server credentials from PEM files, re-read every `refreshIntervalMs` (default 1000 ms) so a
 * replaced certificate, key or client CA takes effect for new connections without a restart
 * (connections already open keep the certificate they were made with). With `clientCa`, clients
 * must present a certificate that chains to it (mutual TLS).
 *
 * The files are read and checked once synchronously first: a missing or unreadable file, a file
 * with no PEM certificate or key, or a key that does not belong to the certificate throws a
 * TlsFileError naming the flag. Later re-reads that do not make a consistent set (a rotation
 * caught half-way, with the new certificate and the old key; a file briefly missing while it is
 * replaced) keep serving the last good set and are tried again at the next refresh.
 */
export function createTlsCredentials(files: TlsFiles, opts: { refreshIntervalMs?: number; onWarning?: (message: string) => void } = {}): TlsCredentials {
  const refreshIntervalMs = opts.refreshIntervalMs ?? DEFAULT_TLS_REFRESH_MS;
  if (!Number.isFinite(refreshIntervalMs) || refreshIntervalMs <= 0) throw new RangeError(`refreshIntervalMs must be positive, got ${refreshIntervalMs}`);
  const certPem = readPem(files.cert, "--tls-cert");
  const keyPem = readPem(files.key, "--tls-key");
  const caPem = files.clientCa === undefined ? undefined : readPem(files.clientCa, "--client-ca");
  const initial = checkIdentity(certPem, keyPem);
  if (typeof initial === "string") {
    throw initial.startsWith("key:")
      ? new TlsFileError("--tls-key", files.key, initial.slice(4).trim())
      : new TlsFileError("--tls-cert", files.cert, initial.slice(5).trim());
  }
  if (caPem !== undefined) {
    const problem = checkCa(caPem);
    if (problem) throw new TlsFileError("--client-ca", files.clientCa!, problem);
  }

  const watcher = new experimental.FileWatcherCertificateProvider({
    certificateFile: files.cert,
    privateKeyFile: files.key,
    caCertificateFile: files.clientCa,
    refreshIntervalMs,
  });
  const provider = new CheckedProvider(
    watcher,
    { certificate: certPem, privateKey: keyPem },
    caPem === undefined ? null : { caCertificate: caPem },
    opts.onWarning ?? (() => {}),
  );
  const credentials = experimental.createCertificateProviderServerCredentials(
    // grpc-js's declaration names the parameters the other way round; the implementation takes
    // the identity provider first, then the CA provider (null: no client certificates).
    provider,
    caPem === undefined ? null : provider,
    caPem !== undefined,
  );
  return { credentials, close: () => provider.close() };
}

function readPem(path: string, flag: TlsFileError["flag"]): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EACCES" ? "permission denied" : err.code === "EISDIR" ? "is a directory" : err.message;
    throw new TlsFileError(flag, path, `cannot read (${why})`);
  }
  if (!data.includes("-----BEGIN ")) throw new TlsFileError(flag, path, "not a PEM file (no -----BEGIN line)");
  return data;
}

/** The certificate's and key's problem ("cert: …" / "key: …"), or the parsed pair. */
function checkIdentity(certPem: Buffer, keyPem: Buffer): string | { cert: X509Certificate; key: KeyObject } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    return `cert: not a PEM certificate (${(e as Error).message})`;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    return `key: not a PEM private key (${(e as Error).message}; an encrypted key is not supported)`;
  }
  if (!cert.checkPrivateKey(key)) return `key: the private key does not match the certificate given by --tls-cert`;
  return { cert, key };
}

function checkCa(caPem: Buffer): string | undefined {
  try {
    new X509Certificate(caPem);
    return undefined;
  } catch (e) {
    return `not a PEM certificate (${(e as Error).message})`;
  }
}

/**
 * grpc-js's file watcher, with the files' first contents delivered at once (so a server bound
 * right after creation accepts connections at once, instead of dropping them until the first
 * asynchronous read) and only consistent updates passed on (a failed or half-done re-read keeps
 * the last good certificate, key and CA).
 */
class CheckedProvider implements experimental.CertificateProvider {
  private identity: Identity;
  private ca: Ca | null;
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private closed = false;
  private lastWarning = "";
  private readonly onIdentity = (update: Identity | null) => {
    if (!update) return this.warn("could not re-read --tls-cert / --tls-key; keeping the previous certificate");
    if (update.certificate.equals(this.identity.certificate) && update.privateKey.equals(this.identity.privateKey)) return;
    const checked = checkIdentity(update.certificate, update.privateKey);
    if (typeof checked === "string") return this.warn(`re-read --tls-cert / --tls-key do not make a usable pair (${checked}); keeping the previous certificate`);
    this.lastWarning = "";
    this.identity = update;
    for (const listener of this.identityListeners) listener(update);
  };
  private readonly onCa = (update: Ca | null) => {
    if (!this.ca) return; // no client CA configured
    if (!update) return this.warn("could not re-read --client-ca; keeping the previous client CA");
    if (update.caCertificate.equals(this.ca.caCertificate)) return;
    const problem = checkCa(update.caCertificate);
    if (problem) return this.warn(`re-read --client-ca is not usable (${problem}); keeping the previous client CA`);
    this.lastWarning = "";
    this.ca = update;
    for (const listener of this.caListeners) listener(update);
  };

  constructor(
    private readonly watcher: experimental.FileWatcherCertificateProvider,
    identity: Identity,
    ca: Ca | null,
    private readonly onWarning: (message: string) => void,
  ) {
    this.identity = identity;
    this.ca = ca;
    // Watch from now until close(), whether or not a server is using the credentials.
    watcher.addIdentityCertificateListener(this.onIdentity);
    if (ca) watcher.addCaCertificateListener(this.onCa);
  }

  private warn(message: string): void {
    // Once per distinct problem, not every refresh.
    if (message === this.lastWarning) return;
    this.lastWarning = message;
    this.onWarning(message);
  }

  // Listeners are called on a later tick, as grpc-js's own providers do: the server credentials
  // register their own watcher right after adding the listener and must see the first update.
  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener(this.identity);
    });
  }
  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener(this.ca);
    });
  }
  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.removeIdentityCertificateListener(this.onIdentity);
    this.watcher.removeCaCertificateListener(this.onCa);
  }
}

/**
 * The principal a client certificate names: its subject CN, else its first subjectAltName
 * (DNS, URI, IP address or email value), else undefined (also for no certificate).
 */
export function principalFromCertificate(cert: PeerCertificate | undefined): string | undefined {
  if (!cert) return undefined;
  const cn = (cert.subject as { CN?: string | string[] } | undefined)?.CN;
  const first = Array.isArray(cn) ? cn[0] : cn;
  if (first) return first;
  if (cert.subjectaltname) {
    for (const entry of splitSubjectAltName(cert.subjectaltname)) {
      const m = /^(DNS|URI|IP Address|email):(.*)$/.exec(entry);
      if (m && m[2]) return m[2];
    }
  }
  return undefined;
}

/**
 * Node's subjectaltname: "DNS:a, IP Address:127.0.0.1, URI:spiffe://x"; values with a comma or
 * quote are JSON-quoted ("URI:\"a, b\"" / "DNS:\"a,b\"" depending on Node's version).
 */
function splitSubjectAltName(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (text[i] === " ") i++;
    const colon = text.indexOf(":", i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        value = text.slice(j + 1, k);
      }
      j = k + 1;
      const comma = text.indexOf(",", j);
      i = comma < 0 ? text.length : comma + 1;
    } else {
      const comma = text.indexOf(", ", j);
      value = text.slice(j, comma < 0 ? text.length : comma);
      i = comma < 0 ? text.length : comma + 2;
    }
    out.push(`${type}:${value}`);
  }
  return out;
}
