// Two principals on one server, for the fairness test and `npm run bench` (fairness section): a
// token file naming "calm" (debugger) and "flood" (viewer), each with a fresh token; the server
// as a child process (test/shared/limited-server.ts: tokens and per-principal limits); and the
// well-behaved client's probe.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { connect, type VmmDebugClient } from "../../src/client";
import type { PrincipalLimits } from "../../src/server/auth/limits";
import { newToken, tokenLine } from "../../src/server/auth/tokens";

export interface TwoPrincipals {
  pid: number;
  address: string;
  /** Bearer tokens by principal. */
  tokens: { calm: string; flood: string };
  /** Stops the server (stdin closed, then SIGKILL after 5 s) and removes the token file. */
  stop(): Promise<void>;
}

/** Starts the server child (at most 60 s) with a token file naming "calm" and "flood". */
export async function startTwoPrincipalServer(limits?: Partial<PrincipalLimits> | false): Promise<TwoPrincipals> {
  const dir = mkdtempSync(join(tmpdir(), "vmm-debug-fair-"));
  const tokens = { calm: newToken(), flood: newToken() };
  const file = join(dir, "tokens");
  writeFileSync(file, `${tokenLine("calm", "debugger", tokens.calm)}\n${tokenLine("flood", "viewer", tokens.flood)}\n`, { mode: 0o600 });
  const args = ["--require", require.resolve("tsx/cjs"), join(__dirname, "limited-server.ts"), file];
  if (limits !== undefined) args.push(JSON.stringify(limits));
  // stderr: the audit lines of a flood, not needed (and not to be buffered here).
  const proc: ChildProcess = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "ignore"] });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.stdin!.end();
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server did not start within 60 s")), 60_000);
      createInterface({ input: proc.stdout! }).once("line", (line) => {
        clearTimeout(timer);
        const m = JSON.parse(line) as { address?: string; error?: string };
        if (m.address) resolve(m.address);
        else reject(new Error(`the server did not start: ${m.error}`));
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error("the server exited before serving"));
      });
    });
    return { pid: proc.pid!, address, tokens, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The well-behaved client: the SDK with its own token. */
export function connectAs(address: string, token: string): VmmDebugClient {
  return connect(address, { token });
}

/**
 * Attaches as "calm" and stops the VM, so the guest's execution takes no CPU from the server's
 * answers (reads need no session; the session only holds the VM stopped). Returns the detach.
 */
export async function holdStopped(client: VmmDebugClient, vm: string): Promise<() => Promise<void>> {
  const session = await client.attach(vm, { transport: "unary" });
  await session.break();
  return async () => {
    await session.detach().catch(() => undefined);
  };
}

/**
 * Latencies (µs) of `count` calls, ReadMemory of 64 B and GetVm alternately, one at a time. With
 * `intervalMs`, one call starts every `intervalMs` at most (a client that keeps within its rate);
 * without, each starts when the last answered. Stops early after `maxMs` (at least one call).
 */
export async function probeReads(client: VmmDebugClient, vm: string, count: number, intervalMs?: number, maxMs = Infinity): Promise<number[]> {
  const samples: number[] = [];
  let next = performance.now();
  const end = next + maxMs;
  for (let i = 0; i < count && performance.now() < end; i++) {
    if (intervalMs !== undefined) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next = Math.max(next + intervalMs, performance.now());
    }
    const t0 = process.hrtime.bigint();
    if (i % 2 === 0) await client.readMemory(vm, { gpa: 0x100000n }, 64, { deadlineMs: 60_000 });
    else await client.getVm(vm, { deadlineMs: 60_000 });
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return samples;
}
