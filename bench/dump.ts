// `dump` section: DumpMemory against ReadMemoryStream of the same RAM, in the same run. A server
// process (this file with `serve`) runs the x86-64 demo on the embedded machine with 1 GiB of
// RAM, 256 MiB of it filled with a pattern, and stops it; the bench then reads the whole GiB
// with one ReadMemoryStream and dumps the VM (an ELF core file of ~1 GiB), discarding the data,
// alternately for a few rounds, and reports the best of each (MiB/s of bytes received).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { connect } from "../src/client";
import { guestAddressToWire } from "../src/client/convert";
import { createEmuMachine, loadGuestImage } from "../src/emu";
import { serveUntilStdinEnds } from "./child-server";

type Emit = (name: string, value: number, unit: string, extra?: Record<string, unknown>) => void;

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const ROUNDS = 3;
const MANIFEST = join(__dirname, "..", "guests", "build", "demo-x86_64.json");

/** The server process: prints {"vmm": "127.0.0.1:PORT"} and serves until stdin closes. */
async function serve(): Promise<void> {
  const image = loadGuestImage(MANIFEST);
  const vm = await createEmuMachine({ id: "big", image, vpCount: 1, memory: [{ gpa: 0, size: GIB, name: "ram" }] });
  const counter = image.symbols.counter.gpa;
  for (let i = 0; i < 500; i++) {
    const b = await vm.readMemory({ kind: "gpa", gpa: counter }, 8);
    if (new DataView(b.buffer, b.byteOffset).getBigUint64(0, true) > 1000n) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await vm.halt();
  // Some RAM that is not zero: 256 MiB from 512 MiB on, each 8 bytes their own GPA.
  const piece = new Uint8Array(16 * MIB);
  const view = new DataView(piece.buffer);
  for (let base = 512 * MIB; base < 768 * MIB; base += piece.length) {
    for (let o = 0; o < piece.length; o += 8) view.setBigUint64(o, BigInt(base + o), true);
    await vm.writeMemory({ kind: "gpa", gpa: BigInt(base) }, piece);
  }
  await serveUntilStdinEnds(vm);
}

async function startServer(): Promise<{ address: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), __filename, "serve"], { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("dump bench server did not start within 60 s")), 60_000);
    createInterface({ input: child.stdout! }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once("exit", (code) => reject(new Error(`dump bench server exited with ${code}`)));
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.stdin!.end(); // the server exits when its stdin closes
      setTimeout(() => child.kill(), 5000).unref();
    });
  return { address: (JSON.parse(line) as { vmm: string }).vmm, stop };
}

export async function benchDump(emit: Emit): Promise<void> {
  const server = await startServer();
  const client = connect(server.address);
  try {
    const info = await client.getVm("big");
    const ram = info.memoryRegions.reduce((n, r) => n + Number(r.size), 0);
    if (ram !== GIB || info.runState !== "stopped") throw new Error(`dump bench: expected a stopped VM with 1 GiB, got ${ram} bytes, ${info.runState}`);

    /** One ReadMemoryStream of all RAM through the raw client; the bytes received. */
    const read = async () => {
      let n = 0;
      for await (const chunk of client.rpc.debug.readMemoryStream({ vm: "big", address: guestAddressToWire({ gpa: 0n }), length: BigInt(GIB) })) {
        n += chunk.data.length;
      }
      if (n !== GIB) throw new Error(`ReadMemoryStream answered ${n} of ${GIB} bytes`);
      return n;
    };
    /** One DumpMemory through the SDK; the bytes received (the whole core file). */
    const dump = async () => {
      let n = 0;
      let total = 0n;
      for await (const piece of client.dumpMemory("big")) {
        n += piece.data.length;
        total = piece.bytesTotal;
      }
      if (BigInt(n) !== total || n < GIB) throw new Error(`DumpMemory answered ${n} of ${total} bytes`);
      return n;
    };
    const mibps = async (body: () => Promise<number>) => {
      const t0 = process.hrtime.bigint();
      const bytes = await body();
      return bytes / MIB / (Number(process.hrtime.bigint() - t0) / 1e9);
    };

    // Warm-up (JIT, connection windows), then alternate so both see the same machine state.
    await read();
    await dump();
    const reads: number[] = [];
    const dumps: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      reads.push(await mibps(read));
      dumps.push(await mibps(dump));
    }
    const bestRead = Math.max(...reads);
    const bestDump = Math.max(...dumps);
    const fmt = (xs: number[]) => xs.map((x) => Math.round(x));
    emit("read_memory_stream_1gib_mibps", bestRead, "MiB/s", { rounds: fmt(reads) });
    emit("dump_mibps", bestDump, "MiB/s", { rounds: fmt(dumps), ram_mib: GIB / MIB });
    emit("dump_ratio", bestDump / bestRead, "x", { target_min_ratio: 0.8 });
  } finally {
    client.close();
    await server.stop();
  }
}

if (require.main === module && process.argv[2] === "serve") {
  serve().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
