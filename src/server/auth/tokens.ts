// Bearer tokens: the token file (one principal per line, a salted hash of its token, never the
// token itself), verification in constant time, and re-reading the file when it changes or on
// SIGHUP without ever dropping everyone because of a typo.
//
// File format, one principal per line, fields separated by whitespace:
//
//   NAME ROLE sha256:SALT:DIGEST
//
// NAME is [A-Za-z0-9._@-]{1,64}, ROLE is viewer, debugger or admin, SALT is the hex of random
// bytes and DIGEST the hex of sha256(SALT bytes || token as UTF-8). `#` starts a comment (no field
// can contain one); blank lines are ignored. A name may appear once.
//
// Why a salted sha256 and not a slow KDF (scrypt, argon2): every token `newToken` makes carries
// 256 random bits, so nobody can guess one from its hash whatever the hash costs; a slow KDF
// would only add its cost (tens of milliseconds) to every authenticated call. The salt keeps two
// files (or two lines) holding the same token from showing it.
import * as crypto from "node:crypto";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { type FSWatcher, readFileSync, statSync, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { type Role, isRole } from "./principal";

/** What a principal's name may be: letters, digits and `._@-`, 1 to 64 of them. */
export const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,64}$/;
/** Prefix of the tokens `newToken` makes (lets secret scanners and humans recognize them). */
export const TOKEN_PREFIX = "vmmd_";
/** Longest token `verify` will hash; anything longer is refused without hashing. */
const MAX_TOKEN_CHARS = 1024;
const SALT_BYTES = 16;

export function isTokenName(name: string): boolean {
  return TOKEN_NAME.test(name);
}

/** A fresh bearer token: `vmmd_` and 43 base64url characters (32 random bytes). */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/** sha256 of `data`: crypto.hash (Node >= 20.12, about 3x cheaper per call) when there is one. */
const sha256: (data: Buffer) => Buffer =
  typeof crypto.hash === "function" ? (data) => crypto.hash("sha256", data, "buffer") : (data) => createHash("sha256").update(data).digest();

function saltedDigest(salt: Buffer, token: Buffer): Buffer {
  return sha256(Buffer.concat([salt, token]));
}

/** The `sha256:SALT:DIGEST` field for `token`, with a fresh random salt. */
export function hashToken(token: string): string {
  const salt = randomBytes(SALT_BYTES);
  return `sha256:${salt.toString("hex")}:${saltedDigest(salt, Buffer.from(token, "utf8")).toString("hex")}`;
}

/** A token-file line for `name` (with a fresh random salt); no newline. */
export function tokenLine(name: string, role: Role, token: string): string {
  if (!isTokenName(name)) throw new Error(`token name "${name}" must be 1 to 64 of A-Z a-z 0-9 . _ @ -`);
  if (!isRole(role)) throw new Error(`role "${String(role)}" must be viewer, debugger or admin`);
  if (!token) throw new Error("empty token");
  return `${name} ${role} ${hashToken(token)}`;
}

/** One parsed line of a token file. */
export interface TokenEntry {
  name: string;
  role: Role;
  /** The hash field as written (`sha256:SALT:DIGEST`). */
  hash: string;
  /** 1-based line number in the file. */
  line: number;
  salt: Buffer;
  digest: Buffer;
}

/**
 * Parses a token file's text; throws an Error naming `file` and the line number on the first
 * line that does not parse, and on a name given twice (naming both lines).
 */
export function parseTokenFile(text: string, file: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const content = lines[i].replace(/#.*$/, "").trim();
    if (!content) continue;
    const fail = (why: string): never => {
      throw new Error(`${file}:${line}: ${why} (expected "NAME ROLE sha256:SALT:DIGEST")`);
    };
    const fields = content.split(/\s+/);
    if (fields.length !== 3) fail(`${fields.length} field${fields.length === 1 ? "" : "s"} where 3 are needed`);
    const [name, role, hash] = fields;
    if (!isTokenName(name)) fail(`name "${name.slice(0, 80)}" must be 1 to 64 of A-Z a-z 0-9 . _ @ -`);
    if (!isRole(role)) fail(`role "${role.slice(0, 80)}" must be viewer, debugger or admin`);
    const m = /^sha256:((?:[0-9a-fA-F]{2}){1,64}):([0-9a-fA-F]{64})$/.exec(hash);
    if (!m) fail("the hash must be sha256:SALT:DIGEST with SALT and a 64-digit DIGEST in hex");
    const first = seen.get(name);
    if (first !== undefined) throw new Error(`${file}:${line}: name "${name}" is already given on line ${first}; each name may appear once`);
    seen.set(name, line);
    entries.push({ name, role: role as Role, hash, line, salt: Buffer.from(m![1], "hex"), digest: Buffer.from(m![2], "hex") });
  }
  return entries;
}

export interface TokenStoreOptions {
  /**
   * After a reload that changed anything: `removed` are the names whose token is gone or was
   * replaced, or whose role changed (their open calls should end); `current` maps every name to
   * its role now. "Replaced" means the line's hash field changed: a line rewritten with a new
   * salt counts, even for the same token (the store cannot tell without the token).
   */
  onChange?(removed: string[], current: ReadonlyMap<string, Role>): void;
  /** A reload failed (the previous tokens stay in force). Without it, a process warning is emitted. */
  onError?(e: Error): void;
  /** Re-read the file when it changes (default true). */
  watch?: boolean;
}

/** How long after a change event the file is re-read: editors write in several steps. */
const SETTLE_MS = 30;
/** A change event found no file: looked at again this much later before reporting it. */
const MISSING_RETRY_MS = 250;
/** Polling backup for filesystems where directory watching misses events (NFS, some mounts). */
const POLL_MS = 1000;

interface Loaded {
  text: string;
  entries: TokenEntry[];
  /** Entries by salt (hex): one sha256 per distinct salt verifies a token against all of them. */
  bySalt: Map<string, { salt: Buffer; entries: TokenEntry[] }>;
  roles: Map<string, Role>;
}

/** What the poll compares: the file's identity, size, times and mode ("" when it is missing). */
function fingerprint(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`;
  } catch {
    return "";
  }
}

function load(path: string): Loaded {
  if (process.platform !== "win32") {
    const st = statSync(path);
    // Whoever can write the file can make themselves admin: refuse it like ssh refuses a
    // group-writable authorized_keys.
    if (st.mode & 0o022) throw new Error(`${path}: is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const text = readFileSync(path, "utf8");
  const entries = parseTokenFile(text, path);
  const bySalt = new Map<string, { salt: Buffer; entries: TokenEntry[] }>();
  const roles = new Map<string, Role>();
  for (const e of entries) {
    const key = e.salt.toString("hex");
    const group = bySalt.get(key);
    if (group) group.entries.push(e);
    else bySalt.set(key, { salt: e.salt, entries: [e] });
    roles.set(e.name, e.role);
  }
  return { text, entries, bySalt, roles };
}

export class TokenStore {
  readonly path: string;
  private current: Loaded;
  /**
   * Tokens seen to verify, by the (unsalted) sha256 of the token: a hit costs one sha256 and a
   * map lookup. Only successes are kept, so it holds at most one key per line; it is emptied on
   * every reload. A miss costs one sha256 per distinct salt (one per line with `tokenLine`):
   * about 3 µs each, so 1.5 ms for a wrong token against 500 lines.
   */
  private cache = new Map<string, TokenEntry>();
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  /** The file's fingerprint when last polled (taken before the first read, so nothing is missed). */
  private seen: string;
  private settle?: NodeJS.Timeout;
  private closed = false;
  private missingOnce = false;

  private constructor(
    path: string,
    private readonly opts: TokenStoreOptions,
  ) {
    this.path = path;
    this.seen = fingerprint(path);
    this.current = load(path);
  }

  /** Loads `path` (throwing if it does not parse) and, unless `watch: false`, watches it. */
  static open(path: string, opts: TokenStoreOptions = {}): TokenStore {
    const store = new TokenStore(resolve(path), opts);
    if (opts.watch !== false) store.startWatching();
    return store;
  }

  /** Every principal and its role, as last loaded. */
  get principals(): ReadonlyMap<string, Role> {
    return this.current.roles;
  }

  /**
   * The principal whose token this is, or undefined. Digests are compared with timingSafeEqual
   * against every line; the cache is keyed by the token's sha256, so its lookup time says
   * nothing usable about the token.
   */
  verify(token: string): { name: string; role: Role } | undefined {
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_CHARS) return undefined;
    const bytes = Buffer.from(token, "utf8");
    const key = sha256(bytes).toString("hex");
    const cached = this.cache.get(key);
    if (cached) return { name: cached.name, role: cached.role };
    let found: TokenEntry | undefined;
    for (const { salt, entries } of this.current.bySalt.values()) {
      const digest = saltedDigest(salt, bytes);
      // Compare against every entry (no early exit) so timing says nothing about which matched.
      for (const e of entries) if (timingSafeEqual(digest, e.digest)) found ??= e;
    }
    if (!found) return undefined;
    this.cache.set(key, found);
    return { name: found.name, role: found.role };
  }

  /**
   * Re-reads the file. On success with any change, calls onChange; on failure keeps the previous
   * tokens and calls onError. Never throws.
   */
  reload(): void {
    this.reloadNow(false);
  }

  /** `fromWatch`: a missing file is first given a moment (an editor between its renames). */
  private reloadNow(fromWatch: boolean): void {
    if (this.closed) return;
    let next: Loaded;
    try {
      next = load(this.path);
    } catch (e) {
      if (fromWatch && (e as NodeJS.ErrnoException).code === "ENOENT" && !this.missingOnce) {
        this.missingOnce = true;
        this.schedule(MISSING_RETRY_MS);
        return;
      }
      this.missingOnce = false;
      this.report(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.missingOnce = false;
    const before = this.current;
    if (next.text === before.text) return;
    const now = new Map(next.entries.map((e) => [e.name, e]));
    const removed = before.entries.filter((e) => now.get(e.name)?.hash !== e.hash || now.get(e.name)?.role !== e.role).map((e) => e.name);
    const changed = removed.length > 0 || next.entries.length !== before.entries.length;
    this.current = next;
    this.cache.clear();
    if (!changed) return;
    try {
      this.opts.onChange?.(removed, next.roles);
    } catch (e) {
      // Called from a timer or a signal handler: a throwing callback must not end the server.
      this.report(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private report(error: Error): void {
    if (this.opts.onError) this.opts.onError(error);
    else process.emitWarning(`vmm-debug: token file not reloaded, previous tokens kept: ${error.message}`);
  }

  /** Stops watching the file. */
  close(): void {
    this.closed = true;
    clearTimeout(this.settle);
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.poll);
    this.poll = undefined;
  }

  private schedule(ms = SETTLE_MS): void {
    if (this.closed) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.reloadNow(true), ms);
    this.settle.unref();
  }


  private startWatching(): void {
    // The directory, not the file: an editor (or `vmm-debug token add`) that writes a new file
    // and renames it over the old one leaves a watch on the old inode watching nothing.
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file == null || String(file) === name) this.schedule();
      });
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined;
    }
    // And a slow poll by path, for filesystems whose change events do not arrive and for a file
    // reached through a symlink that is swapped (Kubernetes secret volumes swap `..data`).
    // (Our own stat loop rather than fs.watchFile, whose baseline is its first poll: a change
    // between our first read and that poll would go unseen.)
    this.poll = setInterval(() => {
      const now = fingerprint(this.path);
      if (now === this.seen) return;
      this.seen = now;
      this.schedule();
    }, POLL_MS);
    this.poll.unref();
  }
}

/** Reloads `store` whenever the process gets SIGHUP; returns a function that stops that. */
export function reloadOnSighup(store: TokenStore): () => void {
  const onHup = (): void => store.reload();
  process.on("SIGHUP", onHup);
  return () => {
    process.off("SIGHUP", onHup);
  };
}
