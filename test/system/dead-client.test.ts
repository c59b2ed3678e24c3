// Chaos on the client side: a client process frozen (SIGSTOP) or killed (SIGKILL) while its Resume
// waits, or while it holds a Session stream, loses its session within lease + keepalive, and the
// VM runs on without the debugger's state. The server runs in this process with a short lease and
// keepalive; each client is a child process.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { startHarness, waitFor, type Harness } from "../integration/harness";

const ROOT = join(__dirname, "../..");
const LEASE_MS = 1_000;
const KEEPALIVE_MS = 300;
const KEEPALIVE_TIMEOUT_MS = 300;
/** The guarantee under test: a gone peer's session ends within lease + keepalive time + timeout. */
const BOUND_MS = LEASE_MS + KEEPALIVE_MS + KEEPALIVE_TIMEOUT_MS;

let h: Harness;
const children: ChildProcess[] = [];
beforeAll(async () => {
  h = await startHarness({ leaseMs: LEASE_MS, keepaliveMs: KEEPALIVE_MS, keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS });
});
afterEach(() => {
  // Every child this file started, by its PID; a stopped one must be killed, not continued.
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
afterAll(() => h.close());

/** A client process that attaches, stops the VM, then resumes: its Resume waits for a stop that never comes. */
function startClient(transport: "unary" | "stream"): { child: ChildProcess; ready: Promise<void> } {
  const script = `
    const { connect } = require(${JSON.stringify(join(ROOT, "src/client"))});
    (async () => {
      const client = connect(${JSON.stringify(h.address)});
      const s = await client.attach("demo", { transport: ${JSON.stringify(transport)} });
      await s.break();
      // The first Resume reports the Break's stop; the second waits for a stop that never comes.
      const first = await s.resume();
      if (first.kind !== "break") throw new Error("expected the Break's stop, got " + first.kind);
      process.stdout.write("resuming\\n");
      await s.resume();
    })().catch((e) => { console.error(String(e)); process.exit(1); });
  `;
  const child = spawn(process.execPath, ["-r", "tsx/cjs", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const ready = (async () => {
    await waitFor(async () => out.includes("resuming") || child.exitCode !== null, 60_000, "the client attached");
    if (!out.includes("resuming")) throw new Error(`the client failed: ${err}`);
    // The Resume has reached the server once the VM runs again under the client's session.
    await waitFor(
      async () => {
        const vm = await h.client.getVm("demo");
        return vm.attached !== undefined && vm.runState === "running";
      },
      20_000,
      "the client's Resume running the VM",
    );
  })();
  return { child, ready };
}

async function expectReleased(sinceMs: number): Promise<number> {
  await waitFor(async () => (await h.client.getVm("demo")).attached === undefined, BOUND_MS + 10_000, "the session released");
  const elapsed = Date.now() - sinceMs;
  expect((await h.client.getVm("demo")).runState).toBe("running");
  // Free for the next debugger.
  const s = await h.client.attach("demo", { transport: "unary" });
  await s.detach();
  return elapsed;
}

describe("a client that dies or freezes while its Resume waits", () => {
  it.each(["unary", "stream"] as const)("SIGSTOP (%s): the session ends within lease + keepalive, and the VM runs on", async (transport) => {
    const { child, ready } = startClient(transport);
    await ready;
    const frozenAt = Date.now();
    child.kill("SIGSTOP");
    const elapsed = await expectReleased(frozenAt);
    // Not a timing assertion on the machine's speed: only that the frozen peer did not keep the
    // session for ever (before keepalive, an in-flight Resume renewed the lease indefinitely).
    expect(elapsed).toBeLessThan(BOUND_MS + 10_000);
  }, 90_000);

  it.each(["unary", "stream"] as const)("SIGKILL (%s): the session ends, and the VM runs on", async (transport) => {
    const { child, ready } = startClient(transport);
    await ready;
    const killedAt = Date.now();
    child.kill("SIGKILL");
    await expectReleased(killedAt);
  }, 90_000);
});
