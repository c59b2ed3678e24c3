// Test harness: the embedded machine running the demo guest, a real server on 127.0.0.1:0, the SDK.
import { join } from "node:path";
import { Decoder, DecoderOptions, FlowControl } from "iced-x86";
import { Status } from "nice-grpc";
import { createEmuMachine, loadGuestImage, type EmuMachine, type GuestImage, type RegionSpec } from "../../src/emu";
import { connect, VmmDebugError, type VmmDebugClient, type X86VpState } from "../../src/client";
import { createVmmDebugServer, type Logger, type VmmDebugServer, type VmmDebugServerOptions } from "../../src/server";

export const image: GuestImage = loadGuestImage(join(__dirname, "../../guests/build/demo-x86_64.json"));
export const sym = (name: string) => {
  const s = image.symbols[name];
  if (!s) throw new Error(`the demo guest has no symbol ${name}`);
  return s;
};

export interface LogLine {
  level: "info" | "warn";
  message: string;
  fields: Record<string, unknown>;
}

export interface Harness {
  vms: EmuMachine[];
  server: VmmDebugServer;
  client: VmmDebugClient;
  address: string;
  logs: LogLine[];
  close(): Promise<void>;
}

export async function startHarness(
  options: { vmIds?: string[]; vpCount?: number; memory?: RegionSpec[] } & Omit<VmmDebugServerOptions, "vms" | "logger"> = {},
): Promise<Harness> {
  const { vmIds = ["demo"], vpCount = 2, memory, ...serverOptions } = options;
  const vms = await Promise.all(vmIds.map((id) => createEmuMachine({ id, image, vpCount, memory })));
  const logs: LogLine[] = [];
  const logger: Logger = {
    info: (message, fields = {}) => logs.push({ level: "info", message, fields }),
    warn: (message, fields = {}) => logs.push({ level: "warn", message, fields }),
  };
  const server = createVmmDebugServer({ vms, logger, ...serverOptions });
  const { port } = await server.listen("127.0.0.1:0");
  const address = `127.0.0.1:${port}`;
  const client = connect(address);
  for (const vm of vms) await waitForBoot(vm);
  return {
    vms,
    server,
    client,
    address,
    logs,
    async close() {
      client.close();
      await server.close();
      await Promise.all(vms.map((vm) => vm.close()));
    },
  };
}

/** 16 MiB of RAM at GPA 0: room for the demo guest, small enough to dump and hash quickly. */
export const SMALL_RAM: RegionSpec[] = [{ gpa: 0, size: 16 * 1024 * 1024, name: "ram" }];

/** Until both VPs count (the guest has built its page tables and dropped the identity map). */
export async function waitForBoot(vm: EmuMachine): Promise<void> {
  await waitFor(async () => {
    const a = await readU64(vm, sym("counter").gpa);
    const b = vm.vpCount > 1 ? await readU64(vm, sym("counter_vp1").gpa) : 1n;
    return a > 0n && b > 0n;
  });
}

export async function readU64(vm: EmuMachine, gpa: bigint): Promise<bigint> {
  return u64(await vm.readMemory({ kind: "gpa", gpa }, 8));
}

export function u64(bytes: Uint8Array, offset = 0): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset, true);
}

export function u64Bytes(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, true);
  return out;
}

export async function waitFor(cond: () => Promise<boolean> | boolean, ms = 20_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(5);
  }
  throw new Error(`${what} not met within ${ms} ms`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Awaits a rejection and checks it is a VmmDebugError with this code and reason. */
export async function expectRpcError(
  call: Promise<unknown>,
  code: Status,
  reason: string,
  metadata?: Record<string, string>,
): Promise<VmmDebugError> {
  const err = await call.then(
    (value) => {
      throw new Error(`expected ${Status[code]}/${reason}, but the call succeeded with ${String(value)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VmmDebugError);
  const e = err as VmmDebugError;
  expect({ code: e.codeName, reason: e.reason }).toEqual({ code: Status[code], reason });
  if (metadata) expect(e.metadata).toMatchObject(metadata);
  return e;
}

/** The x86 state of a VP through the SDK. */
export async function x86(client: VmmDebugClient, vm: string, vp: number): Promise<X86VpState> {
  const s = await client.getVpState(vm, vp);
  if (s.arch !== "x86_64") throw new Error(`VM ${vm} is not x86_64`);
  return s.state;
}

/** Decodes the instruction at `rip` from guest memory: its length and whether it falls through. */
export async function decodeAt(client: VmmDebugClient, vm: string, vp: number, rip: bigint): Promise<{ length: number; next: boolean; ret: boolean }> {
  const bytes = await client.readMemory(vm, { gva: rip, vp }, 15);
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  const instr = decoder.decode();
  try {
    return { length: instr.length, next: instr.flowControl === FlowControl.Next, ret: instr.flowControl === FlowControl.Return };
  } finally {
    instr.free();
    decoder.free();
  }
}

/** What must not change when a request is refused: run state, holder, registers (if stopped), the counters. */
export async function vmSnapshot(client: VmmDebugClient, vm: string): Promise<unknown> {
  const info = await client.getVm(vm);
  const snap: Record<string, unknown> = { runState: info.runState, holder: info.attached?.holder };
  if (info.runState === "stopped") {
    snap.vps = await Promise.all(Array.from({ length: info.vpCount }, (_, vp) => client.getVpState(vm, vp)));
    snap.counters = await client.readMemory(vm, { gpa: sym("counter").gpa }, 0x48);
  }
  return snap;
}
