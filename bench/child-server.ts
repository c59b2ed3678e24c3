// A bench child process's server: one VM served on an ephemeral loopback port until the parent
// closes the child's stdin (the parent owns the child; the child owns the VM and the server).
import type { VmmCore } from "../src/core";
import { createVmmDebugServer, silentLogger } from "../src/server";

/**
 * Serves `vm`, prints `{"vmm": "127.0.0.1:PORT", ...extra}` as one JSON line on stdout, and when
 * stdin ends runs `beforeClose`, closes the server and the VM, and exits.
 */
export async function serveUntilStdinEnds(vm: VmmCore, extra: Record<string, string> = {}, beforeClose: () => void = () => {}): Promise<void> {
  const server = createVmmDebugServer({ vms: [vm], logger: silentLogger });
  const { port } = await server.listen("127.0.0.1:0");
  process.stdout.write(JSON.stringify({ ...extra, vmm: `127.0.0.1:${port}` }) + "\n");
  process.stdin.resume();
  process.stdin.on("end", async () => {
    beforeClose();
    await server.close();
    await vm.close();
    process.exit(0);
  });
}
