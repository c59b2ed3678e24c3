// Bearer tokens: the file format, verification, and reloading (watcher, SIGHUP, failed reloads).
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Role } from "../../../src/server/auth/principal";
import { TokenStore, newToken, parseTokenFile, reloadOnSighup, tokenLine } from "../../../src/server/auth/tokens";

let dir: string;
let file: string;
const stores: TokenStore[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vmm-tokens-"));
  file = join(dir, "tokens");
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes the file as `token add` does: a whole new file renamed over the old one, mode 0600. */
function write(lines: string[], path = file): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, lines.join("\n") + "\n", { mode: 0o600 });
  renameSync(tmp, path);
}

function open(opts: Parameters<typeof TokenStore.open>[1] = {}): TokenStore {
  const s = TokenStore.open(file, opts);
  stores.push(s);
  return s;
}

type Change = { removed: string[]; current: Map<string, Role> };

/** Collects onChange / onError events; `next*` wait (bounded) for the next one. */
function events() {
  const changes: Change[] = [];
  const errors: Error[] = [];
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const waitFor = async <T>(list: T[], what: string, ms = 10_000): Promise<T> => {
    const deadline = Date.now() + ms;
    while (list.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return list.shift()!;
  };
  return {
    opts: {
      onChange: (removed: string[], current: ReadonlyMap<string, Role>) => {
        changes.push({ removed: [...removed].sort(), current: new Map(current) });
        wake();
      },
      onError: (e: Error) => {
        errors.push(e);
        wake();
      },
    },
    changes,
    errors,
    nextChange: () => waitFor(changes, "onChange"),
    nextError: () => waitFor(errors, "onError"),
  };
}

describe("newToken and tokenLine", () => {
  it("makes vmmd_ plus 43 base64url characters, different every time", () => {
    const a = newToken();
    expect(a).toMatch(/^vmmd_[A-Za-z0-9_-]{43}$/);
    expect(newToken()).not.toBe(a);
  });

  it("writes NAME ROLE sha256:SALT:sha256(SALT||token), with a fresh salt each time", () => {
    const token = newToken();
    const line = tokenLine("ci-farm@fleet", "debugger", token);
    const m = /^ci-farm@fleet debugger sha256:([0-9a-f]+):([0-9a-f]{64})$/.exec(line);
    expect(m).not.toBeNull();
    const expected = createHash("sha256").update(Buffer.from(m![1], "hex")).update(token).digest("hex");
    expect(m![2]).toBe(expected);
    expect(line).not.toContain(token);
    expect(tokenLine("ci-farm@fleet", "debugger", token)).not.toBe(line);
  });

  it("refuses bad names and roles", () => {
    expect(() => tokenLine("a b", "admin", "t")).toThrow(/token name/);
    expect(() => tokenLine("x".repeat(65), "admin", "t")).toThrow(/token name/);
    expect(() => tokenLine("ok", "root" as Role, "t")).toThrow(/role/);
  });
});

describe("parseTokenFile", () => {
  const good = tokenLine("alice", "admin", "t1");
  it("skips comments and blank lines and keeps line numbers", () => {
    const entries = parseTokenFile(`# header\n\n  ${good}   # trailing comment\n\t\n${tokenLine("bob", "viewer", "t2")}\n`, "F");
    expect(entries.map((e) => [e.name, e.role, e.line])).toEqual([
      ["alice", "admin", 3],
      ["bob", "viewer", 5],
    ]);
  });

  it.each([
    ["alice admin", /F:2: 2 fields/],
    [`alice root ${good.split(" ")[2]}`, /F:2: role "root"/],
    [`al!ce admin ${good.split(" ")[2]}`, /F:2: name "al!ce"/],
    ["alice admin sha256:zz:00", /F:2: the hash/],
    ["alice admin md5:00:00", /F:2: the hash/],
    [`alice admin ${good.split(" ")[2]} extra`, /F:2: 4 fields/],
  ])("names the file and line of %j", (line, message) => {
    expect(() => parseTokenFile(`# ok\n${line}\n`, "F")).toThrow(message);
  });

  it("refuses a name given twice, naming both lines", () => {
    expect(() => parseTokenFile(`${good}\n${tokenLine("bob", "viewer", "x")}\n${tokenLine("alice", "viewer", "y")}\n`, "F")).toThrow(
      /F:3: name "alice" is already given on line 1/,
    );
  });
});

describe("TokenStore", () => {
  it("verifies the right token, and not a wrong, empty, truncated or huge one", () => {
    const alice = newToken();
    const bob = newToken();
    write([tokenLine("alice", "admin", alice), tokenLine("bob", "viewer", bob)]);
    const store = open({ watch: false });
    expect(store.verify(alice)).toEqual({ name: "alice", role: "admin" });
    expect(store.verify(bob)).toEqual({ name: "bob", role: "viewer" });
    expect(store.verify(alice)).toEqual({ name: "alice", role: "admin" }); // from the cache
    expect(store.verify(newToken())).toBeUndefined();
    expect(store.verify("")).toBeUndefined();
    expect(store.verify(alice.slice(0, -1))).toBeUndefined();
    expect(store.verify(alice + "x")).toBeUndefined();
    expect(store.verify("x".repeat(100_000))).toBeUndefined();
    expect([...store.principals]).toEqual([
      ["alice", "admin"],
      ["bob", "viewer"],
    ]);
  });

  it("verifies against hundreds of lines quickly", () => {
    const tokens = Array.from({ length: 500 }, () => newToken());
    write(tokens.map((t, i) => tokenLine(`p${i}`, "viewer", t)));
    const store = open({ watch: false });
    const started = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) expect(store.verify(newToken())).toBeUndefined(); // worst case: every salt
    for (let i = 0; i < 500; i++) expect(store.verify(tokens[i])?.name).toBe(`p${i}`);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeLessThan(5000); // ~100k sha256 of a few dozen bytes; generous for slow CI
  });

  it("throws on the first load naming the file and line", () => {
    write(["# tokens", "alice admin nothash"]);
    expect(() => open()).toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2: the hash`));
  });

  it("refuses a file writable by group or others", () => {
    if (process.platform === "win32") return;
    write([tokenLine("alice", "admin", newToken())]);
    chmodSync(file, 0o620);
    expect(() => open()).toThrow(/writable by group or others/);
  });

  it("reloads when the file is replaced (rename), reporting removed, rotated and re-roled names", async () => {
    const [a, b, c] = [newToken(), newToken(), newToken()];
    write([tokenLine("alice", "admin", a), tokenLine("bob", "debugger", b), tokenLine("carol", "viewer", c)]);
    const ev = events();
    const store = open(ev.opts);

    const a2 = newToken();
    const d = newToken();
    // alice rotated, bob removed, carol promoted, dave added.
    write([tokenLine("alice", "admin", a2), tokenLine("carol", "debugger", c), tokenLine("dave", "viewer", d)]);
    const change = await ev.nextChange();
    expect(change.removed).toEqual(["alice", "bob", "carol"]);
    expect([...change.current].sort()).toEqual([
      ["alice", "admin"],
      ["carol", "debugger"],
      ["dave", "viewer"],
    ]);
    expect(store.verify(a)).toBeUndefined();
    expect(store.verify(b)).toBeUndefined();
    expect(store.verify(a2)).toEqual({ name: "alice", role: "admin" });
    expect(store.verify(c)).toEqual({ name: "carol", role: "debugger" });
    expect(store.verify(d)).toEqual({ name: "dave", role: "viewer" });
  });

  it("reloads when the file is rewritten in place, and reports an addition with nothing removed", async () => {
    const a = newToken();
    write([tokenLine("alice", "admin", a)]);
    const ev = events();
    const store = open(ev.opts);
    const b = newToken();
    writeFileSync(file, `${tokenLine("bob", "viewer", b)}\n`, { flag: "a" }); // in place: same inode
    const change = await ev.nextChange();
    expect(change.removed).toEqual([]);
    expect(store.verify(b)).toEqual({ name: "bob", role: "viewer" });
    expect(store.verify(a)).toEqual({ name: "alice", role: "admin" });
  });

  it("reloads when an editor moves the old file away and writes a new one", async () => {
    const a = newToken();
    write([tokenLine("alice", "admin", a)]);
    const ev = events();
    const store = open(ev.opts);
    renameSync(file, `${file}~`);
    const b = newToken();
    writeFileSync(file, `${tokenLine("bob", "viewer", b)}\n`, { mode: 0o600 });
    const change = await ev.nextChange();
    expect(change.removed).toEqual(["alice"]);
    expect(store.verify(b)).toEqual({ name: "bob", role: "viewer" });
    expect(ev.errors).toEqual([]);
  });

  it("reloads a file reached through a symlink that is swapped (as Kubernetes secret volumes do)", async () => {
    if (process.platform === "win32") return;
    const a = newToken();
    const b = newToken();
    mkdirSync(join(dir, "v1"));
    mkdirSync(join(dir, "v2"));
    write([tokenLine("alice", "admin", a)], join(dir, "v1", "tokens"));
    write([tokenLine("alice", "admin", b)], join(dir, "v2", "tokens"));
    symlinkSync("v1", join(dir, "..data"));
    symlinkSync(join("..data", "tokens"), file);
    const ev = events();
    const store = open(ev.opts);
    expect(store.verify(a)?.name).toBe("alice");
    symlinkSync("v2", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    const change = await ev.nextChange();
    expect(change.removed).toEqual(["alice"]);
    expect(store.verify(a)).toBeUndefined();
    expect(store.verify(b)?.name).toBe("alice");
  });

  it("keeps the previous tokens when a reload fails, and takes the next good file", async () => {
    const a = newToken();
    const aliceLine = tokenLine("alice", "admin", a);
    write([aliceLine]);
    const ev = events();
    const store = open(ev.opts);

    write([aliceLine, "bob viewer sha256:typo"]);
    const error = await ev.nextError();
    expect(error.message).toContain(`${file}:2:`);
    expect(store.verify(a)).toEqual({ name: "alice", role: "admin" });
    expect(ev.changes).toEqual([]);

    const b = newToken();
    write([aliceLine, tokenLine("bob", "viewer", b)]);
    const change = await ev.nextChange();
    expect(change.removed).toEqual([]);
    expect(store.verify(b)).toEqual({ name: "bob", role: "viewer" });
  });

  it("keeps the previous tokens when the file disappears", () => {
    const a = newToken();
    write([tokenLine("alice", "admin", a)]);
    const ev = events();
    const store = open({ ...ev.opts, watch: false });
    rmSync(file);
    store.reload();
    expect(ev.errors).toHaveLength(1);
    expect(ev.errors[0].message).toMatch(/ENOENT/);
    expect(store.verify(a)).toEqual({ name: "alice", role: "admin" });
  });

  it("does not call onChange when nothing but comments changed", () => {
    const line = tokenLine("alice", "admin", newToken());
    write([line]);
    const ev = events();
    const store = open({ ...ev.opts, watch: false });
    write(["# a comment", line]);
    store.reload();
    expect(ev.changes).toEqual([]);
    expect(ev.errors).toEqual([]);
  });

  it("reloads on SIGHUP once wired, and not after the unsubscribe", () => {
    const a = newToken();
    write([tokenLine("alice", "admin", a)]);
    const ev = events();
    const store = open({ ...ev.opts, watch: false });
    const listenersBefore = process.listenerCount("SIGHUP");
    const off = reloadOnSighup(store);
    try {
      write([]);
      process.emit("SIGHUP", "SIGHUP");
      expect(ev.changes).toEqual([{ removed: ["alice"], current: new Map() }]);
      expect(store.verify(a)).toBeUndefined();
    } finally {
      off();
    }
    expect(process.listenerCount("SIGHUP")).toBe(listenersBefore);
    write([tokenLine("bob", "viewer", newToken())]);
    process.emit("SIGHUP", "SIGHUP");
    expect(ev.changes).toHaveLength(1);
  });

  it("reports an onChange that throws through onError instead of throwing from a timer or signal", () => {
    write([tokenLine("alice", "admin", newToken())]);
    const errors: Error[] = [];
    const store = open({
      watch: false,
      onChange: () => {
        throw new Error("callback bug");
      },
      onError: (e) => errors.push(e),
    });
    const b = newToken();
    write([tokenLine("bob", "viewer", b)]);
    expect(() => store.reload()).not.toThrow();
    expect(errors.map((e) => e.message)).toEqual(["callback bug"]);
    expect(store.verify(b)?.name).toBe("bob");
  });

  it("stops watching on close", async () => {
    write([tokenLine("alice", "admin", newToken())]);
    const ev = events();
    const store = open(ev.opts);
    store.close();
    write([]);
    store.reload(); // closed: does nothing
    expect(ev.changes).toEqual([]);
    expect(statSync(file).size).toBe(1);
  });
});
