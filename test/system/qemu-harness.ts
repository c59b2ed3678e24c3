// System-test harness: a QEMU VM (launched on a committed guest) behind a real server and SDK.
import { join } from "node:path";
import { connect, type Session, type VmmDebugClient } from "../../src/client";
import type { Arch, VmmCore } from "../../src/core";
import { hasExecutable, launchQemuVm, qemuArgsForGuest, qemuPackage, defaultQemuBinary, type QemuVm } from "../../src/qemu";
import { createVmmDebugServer, silentLogger, type VmmDebugServer } from "../../src/server";

export const manifestPath = (arch: Arch) => join(__dirname, `../../guests/build/demo-${arch}.json`);

export function guestSymbols(arch: Arch): Record<string, { gva: bigint; gpa: bigint }> {
  const manifest = require(manifestPath(arch)) as { symbols: Record<string, { gva: string; gpa: string }> };
  return Object.fromEntries(Object.entries(manifest.symbols).map(([k, v]) => [k, { gva: BigInt(v.gva), gpa: BigInt(v.gpa) }]));
}

/** `describe` when QEMU for `arch` is installed, else `describe.skip` with a warning naming the Debian package. */
export function describeWithQemu(arch: Arch): jest.Describe {
  if (hasExecutable(defaultQemuBinary(arch))) return describe;
  console.warn(`skipping QEMU ${arch} system tests: ${defaultQemuBinary(arch)} not found (install the Debian package ${qemuPackage(arch)})`);
  return describe.skip;
}

export interface QemuHarness {
  vms: VmmCore[];
  server: VmmDebugServer;
  client: VmmDebugClient;
  address: string;
  close(): Promise<void>;
}

/** Launches QEMU on the demo guest of `arch` (plus any extra VMs) and serves them on 127.0.0.1:0. */
export async function startQemuHarness(
  arch: Arch,
  options: { id?: string; extraVms?: VmmCore[]; leaseMs?: number; smp?: number } = {},
): Promise<QemuHarness> {
  const { args } = qemuArgsForGuest(manifestPath(arch), options.smp);
  const vm = await launchQemuVm({ id: options.id ?? "qemu", arch, args });
  const vms = [vm, ...(options.extraVms ?? [])];
  const server = createVmmDebugServer({ vms, logger: silentLogger, leaseMs: options.leaseMs });
  const { port } = await server.listen("127.0.0.1:0");
  const address = `127.0.0.1:${port}`;
  const client = connect(address);
  // Until every VP counts (the guest has built its page tables and dropped its identity map).
  const counters = [guestSymbols(arch).counter.gpa, guestSymbols(arch).counter_vp1.gpa].slice(0, vm.vpCount);
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    const values = await Promise.all(counters.map(async (gpa) => ((b) => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true))(await vm.readMemory({ kind: "gpa", gpa }, 8))));
    if (values.every((v) => v > 1000n)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    vms,
    server,
    client,
    address,
    async close() {
      client.close();
      await server.close();
      await Promise.all(vms.map((v) => v.close()));
    },
  };
}

/** Bytes QEMU's monitor shows at a guest virtual address (`x /Nxb`), through VP 0's MMU. */
export async function monitorBytes(vm: QemuVm, gva: bigint, length: number): Promise<number[]> {
  const text = await vm.humanMonitorCommand(`x /${length}xb 0x${gva.toString(16)}`);
  // Lines read "ffffffff80107000: 0x12 0x34 …": take the byte columns after each colon.
  const bytes: number[] = [];
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon >= 0) for (const m of line.slice(colon + 1).matchAll(/0x([0-9a-f]{2})\b/g)) bytes.push(parseInt(m[1], 16));
  }
  return bytes.slice(0, length);
}
/** Breaks until VP 0 runs the demo's kernel (paging on, PC in the higher half), resuming in between. */
export async function breakInKernel(client: VmmDebugClient, session: Session, kernel: bigint): Promise<void> {
  const end = Date.now() + 20_000;
  let running: Promise<unknown> | undefined;
  for (;;) {
    if ((await client.getVm(session.vm)).runState === "running") {
      await session.break();
      // The Break goes to the Resume still waiting, or else to the next one, at once.
      expect(await (running ?? session.resume())).toEqual({ kind: "break" });
    }
    const s = await session.getVpState(0);
    const pc = s.arch === "x86_64" ? s.state.rip : s.state.pc;
    if (pc >= kernel) return;
    if (Date.now() > end) throw new Error(`VP 0 did not reach the kernel within 20 s (pc 0x${pc.toString(16)})`);
    running = session.resume();
    await new Promise((r) => setTimeout(r, 100));
  }
}
