// Bench server process: the bare grpc-js floor service and vmm-debug serving the demo guest,
// both on ephemeral loopback ports. Prints {"floor": "...", "vmm": "..."} and runs until stdin closes.
import * as grpc from "@grpc/grpc-js";
import { join } from "node:path";
import { createEmuMachine, loadGuestImage } from "../src/emu";
import { serveUntilStdinEnds } from "./child-server";
import { addFloorService } from "./floor";

async function main(): Promise<void> {
  const floor = new grpc.Server();
  addFloorService(floor);
  const floorPort = await new Promise<number>((resolve, reject) =>
    floor.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const vm = await createEmuMachine({
    id: "demo",
    image: loadGuestImage(join(__dirname, "..", "guests", "build", "demo-x86_64.json")),
    vpCount: 2,
  });
  // Let the guest boot into its loop, then stop it: a running guest would take one of the two
  // cores from every figure, the transport floor included.
  const counter = loadGuestImage(join(__dirname, "..", "guests", "build", "demo-x86_64.json")).symbols.counter.gpa;
  for (let i = 0; i < 200; i++) {
    const b = await vm.readMemory({ kind: "gpa", gpa: counter }, 8);
    if (new DataView(b.buffer).getBigUint64(0, true) > 1000n) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await vm.halt();
  await serveUntilStdinEnds(vm, { floor: `127.0.0.1:${floorPort}` }, () => floor.forceShutdown());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
