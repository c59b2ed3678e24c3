// Who may call what: the whole access table walked for every role (and for no token), over the
// wire and at the executor; sessions that belong to their principal; tokens removed while their
// principal has calls open; and the loopback default, where every caller is a local admin.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Status } from "nice-grpc";
import * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import { type VmmDebugClient, VmmDebugError, connect } from "../../src/client";
import { VmmError } from "../../src/core";
import { OPERATION_ACCESS, RPC_ACCESS } from "../../src/server/auth/access";
import { LOCAL_ADMIN, type Principal, ROLES, type Role, hasRole } from "../../src/server/auth/principal";
import { TokenStore, newToken, tokenLine } from "../../src/server/auth/tokens";
import { createOperationTable, createExecutor, type OperationName } from "../../src/server/operations";
import { VmRegistry } from "../../src/server/registry";
import { DebugServiceDefinition, VmServiceDefinition } from "../../src/wire";
import { type Harness, type LogLine, expectRpcError, startHarness, waitFor } from "./harness";

const VM = "demo";
const tokens: Record<Role, string> = { viewer: newToken(), debugger: newToken(), admin: newToken() };

/** Each principal's line, hashed once (a line re-hashed with a new salt reads as a changed token). */
const lineCache = new Map<string, string>();

/** Writes a token file with these principals. */
function writeTokens(dir: string, names: Partial<Record<string, [Role, string]>>): string {
  const file = join(dir, "tokens");
  const lines = Object.entries(names).map(([name, v]) => {
    const key = `${name} ${v![0]} ${v![1]}`;
    if (!lineCache.has(key)) lineCache.set(key, tokenLine(name, v![0], v![1]));
    return lineCache.get(key)!;
  });
  writeFileSync(file + ".new", lines.join("\n") + "\n", { mode: 0o600 });
  chmodSync(file + ".new", 0o600);
  // Replaced by rename, as `vmm-debug token` does: a watching server never reads half a file.
  require("node:fs").renameSync(file + ".new", file);
  return file;
}

function errorOf(e: unknown): { code: string; reason: string } {
  if (e instanceof VmmDebugError) return { code: e.codeName, reason: e.reason ?? "" };
  // The executor's own errors (called directly, without the wire).
  if (e instanceof VmmError) return { code: Status[e.code as number], reason: e.reason };
  throw e;
}

/** Settles a call to "ok" or its code/reason. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "ok";
  } catch (e) {
    const { code, reason } = errorOf(e);
    return `${code}/${reason}`;
  }
}

const aborters = new WeakMap<AbortSignal, AbortController>();
/** Ends the stream whose signal this is: its header came, so the call was let through. */
function abortOnHeader(signal: AbortSignal): void {
  aborters.get(signal)?.abort();
}

/** First message (or, with abortOnHeader, the header) of a server stream, then cancelled; or the stream's error. */
async function firstOf<T>(open: (signal: AbortSignal) => AsyncIterable<T>): Promise<void> {
  const abort = new AbortController();
  aborters.set(abort.signal, abort);
  try {
    for await (const _ of open(abort.signal)) break;
  } catch (e) {
    if (abort.signal.aborted && e instanceof VmmDebugError && e.codeName === "CANCELLED") return;
    throw e;
  } finally {
    abort.abort();
  }
}

describe("access by role (tokens on loopback)", () => {
  let dir: string;
  let store: TokenStore;
  let h: Harness;
  const clients = {} as Record<Role | "none" | "wrong", VmmDebugClient>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vmm-debug-auth-"));
    const file = writeTokens(dir, {
      viewer: ["viewer", tokens.viewer],
      debugger: ["debugger", tokens.debugger],
      admin: ["admin", tokens.admin],
    });
    store = TokenStore.open(file, { watch: false });
    h = await startHarness({ tokens: store });
    for (const role of ROLES) clients[role] = connect(h.address, { token: tokens[role] });
    clients.none = connect(h.address);
    clients.wrong = connect(h.address, { token: newToken() });
  });

  afterAll(async () => {
    for (const c of Object.values(clients)) c?.close();
    await h?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every DebugService and VmService RPC, with a request that any role may send. */
  const calls: Record<string, (c: VmmDebugClient) => Promise<unknown>> = {
    "/vmm.debug.v1.VmService/ListVms": (c) => c.rpc.vm.listVms({}),
    "/vmm.debug.v1.VmService/GetVm": (c) => c.rpc.vm.getVm({ vm: VM }),
    // A live watch sends its header at once and events only as they happen: the header will do.
    "/vmm.debug.v1.VmService/WatchEvents": (c) => firstOf((signal) => c.rpc.vm.watchEvents({ vm: VM }, { signal, onHeader: () => abortOnHeader(signal) })),
    "/vmm.debug.v1.VmService/WatchConsole": (c) => firstOf((signal) => c.rpc.vm.watchConsole({ vm: VM }, { signal, onHeader: () => abortOnHeader(signal) })),
    "/vmm.debug.v1.DebugService/Attach": (c) => c.rpc.debug.attach({ vm: "no-such-vm" }),
    "/vmm.debug.v1.DebugService/Detach": (c) => c.rpc.debug.detach({ vm: VM, sessionId: "feedface".repeat(4) }),
    "/vmm.debug.v1.DebugService/Resume": (c) => c.rpc.debug.resume({ vm: VM }),
    "/vmm.debug.v1.DebugService/Break": (c) => c.rpc.debug.break({ vm: VM }),
    "/vmm.debug.v1.DebugService/SetDebugState": (c) => c.rpc.debug.setDebugState({ vm: VM }),
    "/vmm.debug.v1.DebugService/GetVpState": (c) => c.rpc.debug.getVpState({ vm: VM, vp: 99 }),
    "/vmm.debug.v1.DebugService/SetVpState": (c) => c.rpc.debug.setVpState({ vm: VM }),
    "/vmm.debug.v1.DebugService/ReadMemory": (c) => c.rpc.debug.readMemory({ vm: VM, address: { kind: { case: "gpa", value: 0n } }, length: 8n }),
    "/vmm.debug.v1.DebugService/WriteMemory": (c) => c.rpc.debug.writeMemory({ vm: VM }),
    "/vmm.debug.v1.DebugService/ReadMemoryStream": (c) =>
      firstOf((signal) => c.rpc.debug.readMemoryStream({ vm: VM, address: { kind: { case: "gpa", value: 0n } }, length: 8n }, { signal })),
    "/vmm.debug.v1.DebugService/Step": (c) => c.rpc.debug.step({ vm: VM }),
    "/vmm.debug.v1.DebugService/ReadMemoryMany": (c) => c.rpc.debug.readMemoryMany({ vm: VM }),
    "/vmm.debug.v1.DebugService/GetVpStates": (c) => c.rpc.debug.getVpStates({ vm: VM, vps: [99] }),
    "/vmm.debug.v1.DebugService/InsertSoftwareBreakpoint": (c) => c.rpc.debug.insertSoftwareBreakpoint({ vm: VM }),
    "/vmm.debug.v1.DebugService/RemoveSoftwareBreakpoint": (c) => c.rpc.debug.removeSoftwareBreakpoint({ vm: VM }),
    "/vmm.debug.v1.DebugService/ListSoftwareBreakpoints": (c) => c.rpc.debug.listSoftwareBreakpoints({ vm: VM }),
    "/vmm.debug.v1.DebugService/TranslateGva": (c) => c.rpc.debug.translateGva({ vm: VM, vp: 99 }),
    "/vmm.debug.v1.DebugService/DumpMemory": (c) => firstOf((signal) => c.rpc.debug.dumpMemory({ vm: VM }, { signal })),
    // Attach to a VM that does not exist: the stream opens (or not) and ends with that refusal.
    "/vmm.debug.v1.DebugService/Session": (c) =>
      firstOf(() =>
        c.rpc.debug.session(
          (async function* () {
            yield create(ds.SessionRequestSchema, { operation: { case: "attach", value: { vm: "no-such-vm" } } });
          })(),
        ),
      ),
  };

  it("has a row for every method the server serves, and the same role for an RPC and its operation", () => {
    const served = [DebugServiceDefinition, VmServiceDefinition].flatMap((d) => Object.values(d.methods).map((m) => `/${d.fullName}/${m.name}`));
    expect(served.filter((p) => !(p in RPC_ACCESS))).toEqual([]);
    expect(Object.keys(calls).sort()).toEqual(served.sort());
    const table = createOperationTable({ maxReadBytes: 1, maxStreamReadBytes: 1, streamChunkBytes: 1 });
    for (const [op, role] of Object.entries(OPERATION_ACCESS)) {
      expect([op, RPC_ACCESS[`/vmm.debug.v1.DebugService/${table[op as OperationName].rpc}`]]).toEqual([op, role]);
    }
  });

  it.each(Object.keys(calls))("%s: refused below its role (PERMISSION_DENIED), without a valid token (UNAUTHENTICATED), let through otherwise", async (path) => {
    const needed = RPC_ACCESS[path] as Role;
    const got: Record<string, string> = {};
    for (const who of [...ROLES, "none", "wrong"] as const) got[who] = await outcome(() => calls[path](clients[who]));
    for (const role of ROLES) {
      if (hasRole(role, needed)) expect([role, got[role]]).toEqual([role, expect.not.stringMatching(/^(PERMISSION_DENIED|UNAUTHENTICATED)\//)]);
      else expect([role, got[role]]).toEqual([role, "PERMISSION_DENIED/ROLE_REQUIRED"]);
    }
    expect(got.none).toBe("UNAUTHENTICATED/TOKEN_REQUIRED");
    expect(got.wrong).toBe("UNAUTHENTICATED/TOKEN_INVALID");
  });

  it("answers health checks without a token", async () => {
    await expect(clients.none.rpc.health.check({ service: "" })).resolves.toBeDefined();
  });

  it("audits refusals with the principal and how it authenticated, never the token", async () => {
    const from = h.logs.length;
    await outcome(() => clients.viewer.rpc.debug.attach({ vm: VM }));
    await outcome(() => clients.wrong.rpc.vm.listVms({}));
    const lines = h.logs.slice(from).filter((l) => l.message === "audit").map((l) => l.fields);
    expect(lines).toEqual([
      expect.objectContaining({ rpc: "Attach", principal: "viewer", auth: "token", outcome: "PERMISSION_DENIED/ROLE_REQUIRED" }),
      expect.objectContaining({ rpc: "ListVms", principal: "", auth: "none", outcome: "UNAUTHENTICATED/TOKEN_INVALID" }),
    ]);
    const text = JSON.stringify(h.logs);
    for (const t of Object.values(tokens)) expect(text).not.toContain(t);
  });
});

describe("access by role at the executor (every operation, unary or on a stream)", () => {
  it.each(Object.keys(OPERATION_ACCESS))("%s is refused below its role before it touches the VM", async (op) => {
    const registry = new VmRegistry([], { leaseMs: 60_000 });
    const logs: LogLine[] = [];
    const logger = { info: (message: string, fields = {}) => logs.push({ level: "info" as const, message, fields }), warn: () => undefined };
    const execute = createExecutor(registry, createOperationTable({ maxReadBytes: 64, maxStreamReadBytes: 64, streamChunkBytes: 64 }), logger);
    const needed = OPERATION_ACCESS[op as OperationName];
    for (const role of ROLES) {
      const principal: Principal = { name: `p-${role}`, role, method: "token" };
      const got = await outcome(() =>
        // No VM is served: an allowed operation gets as far as looking for it.
        (execute as (n: string, r: unknown, c: unknown) => Promise<unknown>)(op, { vm: "none", sessionId: "" }, { peer: "test", principal, signal: new AbortController().signal }),
      );
      expect([role, got]).toEqual([role, hasRole(role, needed) ? "NOT_FOUND/VM_NOT_FOUND" : "PERMISSION_DENIED/ROLE_REQUIRED"]);
    }
  });
});

describe("sessions belong to their principal", () => {
  let dir: string;
  let store: TokenStore;
  let h: Harness;
  let alice: VmmDebugClient;
  let bob: VmmDebugClient;
  let root: VmmDebugClient;
  const aliceToken = newToken();
  const bobToken = newToken();
  const rootToken = newToken();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vmm-debug-auth-"));
    store = TokenStore.open(writeTokens(dir, { alice: ["debugger", aliceToken], bob: ["debugger", bobToken], root: ["admin", rootToken] }), { watch: false });
    h = await startHarness({ tokens: store });
    alice = connect(h.address, { token: aliceToken });
    bob = connect(h.address, { token: bobToken });
    root = connect(h.address, { token: rootToken });
  });

  afterAll(async () => {
    for (const c of [alice, bob, root]) c?.close();
    await h?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses another debugger presenting a stolen session id (control and read), audits it, and lets an admin act with an override line", async () => {
    const { sessionId } = await alice.rpc.debug.attach({ vm: VM });
    try {
      const from = h.logs.length;
      await expectRpcError(bob.rpc.debug.break({ sessionId }), Status.PERMISSION_DENIED, "SESSION_NOT_YOURS");
      await expectRpcError(bob.rpc.debug.readMemory({ sessionId, address: { kind: { case: "gpa", value: 0n } }, length: 8n }), Status.PERMISSION_DENIED, "SESSION_NOT_YOURS");
      // bob's own Attach tells him who holds the VM.
      const conflict = await expectRpcError(bob.rpc.debug.attach({ vm: VM }), Status.FAILED_PRECONDITION, "SESSION_CONFLICT");
      expect(conflict.metadata.holder).toMatch(/^alice \(/);
      // The VM is still alice's and running: nothing bob sent took effect.
      expect((await alice.getVm(VM)).runState).toBe("running");

      await root.rpc.debug.break({ sessionId });
      expect((await alice.getVm(VM)).runState).toBe("stopped");
      const audit = h.logs.slice(from).filter((l) => l.message === "audit").map((l) => l.fields);
      expect(audit).toEqual([
        expect.objectContaining({ rpc: "Break", principal: "bob", outcome: "PERMISSION_DENIED/SESSION_NOT_YOURS", session: sessionId.slice(0, 8) }),
        expect.objectContaining({ rpc: "ReadMemory", principal: "bob", outcome: "PERMISSION_DENIED/SESSION_NOT_YOURS" }),
        expect.objectContaining({ rpc: "Attach", principal: "bob", outcome: "FAILED_PRECONDITION/SESSION_CONFLICT" }),
        expect.objectContaining({ rpc: "Break", principal: "root", outcome: "admin_override/alice" }),
        expect.objectContaining({ rpc: "Break", principal: "root", auth: "token", outcome: "ok" }),
      ]);
      // Session ids are never written whole.
      expect(JSON.stringify(h.logs)).not.toContain(sessionId);
    } finally {
      await alice.rpc.debug.detach({ sessionId });
    }
  });
});

describe("a token removed while its principal has calls open", () => {
  it("ends that principal's streams and waiting calls with TOKEN_REVOKED, refuses its new calls, and leaves others alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vmm-debug-auth-"));
    const carol = newToken();
    const dave = newToken();
    const file = writeTokens(dir, { carol: ["debugger", carol], dave: ["viewer", dave] });
    let h: Harness | undefined;
    const changes: string[][] = [];
    const store = TokenStore.open(file, {
      onChange: (removed) => {
        changes.push(removed);
        h?.server.revoke(removed);
      },
    });
    h = await startHarness({ tokens: store });
    const c = connect(h.address, { token: carol });
    const d = connect(h.address, { token: dave });
    try {
      const session = await c.attach(VM, { transport: "stream" });
      const watch = (async () => {
        for await (const _ of d.rpc.vm.watchEvents({ vm: VM })) {
          // dave keeps watching; his token stays.
        }
      })();
      const carolWatch = (async () => {
        for await (const _ of c.rpc.vm.watchEvents({ vm: VM })) {
          // ends when carol's token goes
        }
      })();
      await waitFor(() => (h!.logs.some((l) => l.message === "audit" && l.fields.rpc === "Attach" && l.fields.principal === "carol")), 10_000, "carol attached");

      writeTokens(dir, { dave: ["viewer", dave] });
      await waitFor(() => changes.length > 0, 10_000, "the token file reloaded");
      expect(changes[0]).toEqual(["carol"]);
      await expect(carolWatch).rejects.toMatchObject({ codeName: "UNAUTHENTICATED", reason: "TOKEN_REVOKED" });
      // Her Session stream ended, and with it her session: the VM is free and running.
      await waitFor(async () => (await d.getVm(VM)).attached === undefined, 10_000, "carol's session ended");
      await expectRpcError(c.rpc.vm.listVms({}), Status.UNAUTHENTICATED, "TOKEN_INVALID");
      await expect(session.getVpState(0)).rejects.toBeInstanceOf(VmmDebugError);
      // dave's feed is still live.
      expect((await d.listVms()).length).toBe(1);
      await Promise.race([watch.then(() => Promise.reject(new Error("dave's watch ended"))), Promise.resolve()]);
    } finally {
      c.close();
      d.close();
      await h.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("the loopback default (no TLS client CA, no tokens)", () => {
  it("lets every caller do everything as the local admin, and audits it as such", async () => {
    const h = await startHarness();
    try {
      const s = await h.client.attach(VM);
      await s.break();
      await s.detach();
      const attach = h.logs.find((l) => l.message === "audit" && l.fields.rpc === "Attach");
      expect(attach?.fields).toMatchObject({ principal: LOCAL_ADMIN.name, auth: "local", outcome: "ok" });
    } finally {
      await h.close();
    }
  });
});

describe("an admin takes a VM over or force-detaches it", () => {
  it("ends another principal's session (its stream says SESSION_ENDED, the feed DETACH_CAUSE_FORCED), audits it, and refuses a debugger doing the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vmm-debug-auth-"));
    const eveToken = newToken();
    const rootToken = newToken();
    const store = TokenStore.open(writeTokens(dir, { eve: ["debugger", eveToken], root: ["admin", rootToken] }), { watch: false });
    const h = await startHarness({ tokens: store });
    const eve = connect(h.address, { token: eveToken });
    const root = connect(h.address, { token: rootToken });
    try {
      const held = await eve.attach(VM);
      await held.break();
      await held.resume();
      await expectRpcError(eve.rpc.debug.attach({ vm: VM, takeOver: true }), Status.PERMISSION_DENIED, "ROLE_REQUIRED");
      await expectRpcError(eve.forceDetach(VM), Status.PERMISSION_DENIED, "ROLE_REQUIRED");
      expect((await root.getVm(VM)).attached?.holder).toMatch(/^eve \(/);

      const from = h.logs.length;
      const mine = await root.attach(VM, { takeOver: true, transport: "unary" });
      // Its stream ended with SESSION_ENDED; the SDK answers the session's later calls NOT_ATTACHED.
      await expect(held.getVpState(0)).rejects.toMatchObject({ reason: expect.stringMatching(/^(SESSION_ENDED|NOT_ATTACHED)$/) });
      const vm = await root.getVm(VM);
      expect(vm.attached?.holder).toMatch(/^root \(/);
      expect(vm.runState).toBe("running"); // eve's stop was hers: the VM ran on when her session ended
      const audit = h.logs.slice(from).filter((l) => l.message === "audit").map((l) => l.fields);
      expect(audit).toEqual([
        expect.objectContaining({ rpc: "ForceDetach", principal: "server", outcome: "ok" }),
        expect.objectContaining({ rpc: "Attach", principal: "root", outcome: "ok" }),
      ]);

      await root.forceDetach(VM);
      expect((await root.getVm(VM)).attached).toBeUndefined();
      await expect(mine.break()).rejects.toMatchObject({ reason: "NOT_ATTACHED" });
      await root.forceDetach(VM); // nothing attached: nothing to do
      const causes: string[] = [];
      for await (const { event } of root.watchEvents(VM, { afterSequence: 0n })) {
        if (event.kind === "detached") causes.push(event.cause);
        if (causes.length === 2) break;
      }
      expect(causes).toEqual(["forced", "forced"]);
    } finally {
      eve.close();
      root.close();
      await h.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("limits per principal", () => {
  it("refuses a principal over its rate with RATE_LIMIT while another is served, and audits the refusals once a second, not one by one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vmm-debug-auth-"));
    const hasty = newToken();
    const calm = newToken();
    const store = TokenStore.open(writeTokens(dir, { hasty: ["viewer", hasty], calm: ["viewer", calm] }), { watch: false });
    const h = await startHarness({ tokens: store, limits: { ratePerSecond: 1, burst: 2 } });
    const a = connect(h.address, { token: hasty });
    const b = connect(h.address, { token: calm });
    try {
      const from = h.logs.length;
      const got = await Promise.all(Array.from({ length: 20 }, () => outcome(() => a.rpc.vm.listVms({}))));
      expect(got.filter((g) => g === "ok").length).toBeLessThanOrEqual(3);
      expect(got.filter((g) => g === "RESOURCE_EXHAUSTED/RATE_LIMIT").length).toBeGreaterThanOrEqual(17);
      const e = await expectRpcError(a.rpc.vm.listVms({}), Status.RESOURCE_EXHAUSTED, "RATE_LIMIT");
      expect(e.metadata).toMatchObject({ principal: "hasty", retry_after_ms: expect.stringMatching(/^\d+$/) });
      expect(await outcome(() => b.rpc.vm.listVms({}))).toBe("ok"); // the other principal's bucket is its own
      const refusals = h.logs.slice(from).filter((l) => l.message === "audit" && l.fields.outcome === "RESOURCE_EXHAUSTED/RATE_LIMIT");
      expect(refusals.length).toBeGreaterThanOrEqual(1);
      expect(refusals.length).toBeLessThanOrEqual(3); // one per second of the burst, not 18
    } finally {
      a.close();
      b.close();
      await h.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
