// The fuzzer's server, run as a child process so that a crash is a process exit the fuzzer sees:
// two embedded machines behind a real vmm-debug server on 127.0.0.1:0. Over IPC it reports its
// port, and on request a snapshot of each VM taken from the VMM core itself (registers, debug
// state, run state, the count of calls that changed the VM, which RAM chunks differ from the
// canonical copy) with the audit lines and warnings the server logged since the last snapshot.
import { createHash } from "node:crypto";
import { createEmuMachine } from "../../src/emu";
import { createVmmDebugServer, type Logger } from "../../src/server";
import { image, waitForBoot } from "../integration/harness";
import { watchCore, type WatchedCore } from "./watched-core";

/**
 * Guest RAM the snapshot compares, in 16 KiB chunks: the boot page tables (0x1000), the image at
 * 1 MiB with its code, data, stacks and page tables, and the scratch area WriteMemory aims at.
 */
export const WINDOWS: readonly { gpa: bigint; bytes: number }[] = [
  { gpa: 0n, bytes: 0x10000 },
  { gpa: 0x100000n, bytes: 0x30000 },
  { gpa: 0x200000n, bytes: 0x10000 },
];
export const CHUNK_BYTES = 0x4000;
export const SCRATCH_GPA = 0x200000n;

/** The chunks of the windows, numbered in order. */
export function chunkAddress(chunk: number): bigint {
  let c = chunk;
  for (const w of WINDOWS) {
    const n = w.bytes / CHUNK_BYTES;
    if (c < n) return w.gpa + BigInt(c * CHUNK_BYTES);
    c -= n;
  }
  throw new RangeError(`no chunk ${chunk}`);
}

async function readWindows(core: WatchedCore): Promise<Uint8Array> {
  const parts = await Promise.all(WINDOWS.map((w) => core.readMemory({ kind: "gpa", gpa: w.gpa }, w.bytes)));
  return Buffer.concat(parts);
}

export interface VmDigest {
  runState: string;
  changes: number;
  /** Each VP's registers (JSON) when stopped. */
  vps: string[];
  debug: string;
  /** The armed software breakpoints (JSON), and their ids. */
  softwareBreakpoints: string;
  softwareBreakpointIds: number[];
  /** Chunk index → content hash, for the chunks of the RAM window that differ from the canonical copy. */
  window: Record<number, string>;
}

export interface AuditTuple {
  rpc: string;
  outcome: string;
  via: string;
  peer: string;
  vm: string;
}

export type ToChild = { type: "snapshot"; id: number } | { type: "canonical"; id: number } | { type: "stop" };
export type FromChild =
  | { type: "ready"; port: number; vms: string[] }
  | { type: "snapshot"; id: number; vms: Record<string, VmDigest>; audits: AuditTuple[]; warnings: string[] }
  | { type: "canonical"; id: number };

const EMPTY_DIGEST: VmDigest = { runState: "", changes: -1, vps: [], debug: "", softwareBreakpoints: "", softwareBreakpointIds: [], window: {} };

const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? "0x" + x.toString(16) : x));

async function main(): Promise<void> {
  const send = (msg: FromChild) => process.send!(msg);
  const audits: AuditTuple[] = [];
  const warnings: string[] = [];
  const logger: Logger = {
    info(message, fields = {}) {
      if (message === "audit" && fields.peer !== "server") {
        audits.push({ rpc: String(fields.rpc), outcome: String(fields.outcome), via: String(fields.via), peer: String(fields.peer), vm: String(fields.vm) });
      }
    },
    warn(message, fields = {}) {
      warnings.push(`${message} ${json(fields)}`);
    },
  };
  const machines = await Promise.all(["fuzz", "stream"].map((id) => createEmuMachine({ id, image, vpCount: 2 })));
  for (const m of machines) await waitForBoot(m);
  const cores: WatchedCore[] = machines.map(watchCore);
  // Stream reads are capped lower than the default 1 GiB so a mutated length costs seconds, not minutes.
  const server = createVmmDebugServer({ vms: cores, logger, maxStreamReadBytes: 8 * 1024 * 1024 });
  const { port } = await server.listen("127.0.0.1:0");
  const canonical = new Map<string, Uint8Array>();

  const digest = async (core: WatchedCore): Promise<VmDigest> => {
    const runState = core.runState();
    const vps: string[] = [];
    if (runState === "stopped") {
      for (let vp = 0; vp < core.vpCount; vp++) vps.push(json(await core.getVpState(vp)));
    }
    const window: Record<number, string> = {};
    const base = canonical.get(core.id);
    if (base) {
      const now = await readWindows(core);
      for (let c = 0; c * CHUNK_BYTES < now.length; c++) {
        const a = Buffer.from(now.buffer, now.byteOffset + c * CHUNK_BYTES, CHUNK_BYTES);
        const b = Buffer.from(base.buffer, base.byteOffset + c * CHUNK_BYTES, CHUNK_BYTES);
        if (!a.equals(b)) window[c] = createHash("sha1").update(a).digest("hex");
      }
    }
    const armed = core.softwareBreakpoints?.list() ?? [];
    return {
      runState,
      changes: core.changes,
      vps,
      debug: json(core.debugStates()),
      softwareBreakpoints: json(armed),
      softwareBreakpointIds: armed.map((b) => b.id),
      window,
    };
  };

  process.on("message", (msg: ToChild) => {
    void (async () => {
      if (msg.type === "stop") {
        await server.close();
        await Promise.all(machines.map((m) => m.close()));
        process.exit(0);
      }
      if (msg.type === "canonical") {
        for (const core of cores) canonical.set(core.id, await readWindows(core));
        send({ type: "canonical", id: msg.id });
        return;
      }
      const vms: Record<string, VmDigest> = {};
      for (const core of cores) {
        // A VM that started running while its registers were read reads as "unstable".
        vms[core.id] = await digest(core).catch((e: unknown) => ({ ...EMPTY_DIGEST, runState: `unstable (${String(e)})` }));
      }
      send({ type: "snapshot", id: msg.id, vms, audits: audits.splice(0), warnings: warnings.splice(0) });
    })();
  });
  // The fuzzer went away: nothing left to serve.
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", port, vms: cores.map((c) => c.id) });
}

// Imported by the fuzzer for its constants and types: serve only when run as the child.
if (require.main === module) void main();
