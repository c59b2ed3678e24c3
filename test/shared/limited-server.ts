// A server process for the fairness test and bench: the embedded demo machine (stopped once a
// debugger breaks it) behind bearer tokens and per-principal limits, built with
// createVmmDebugServer's `tokens` and `limits` options. argv[2]: the token file; argv[3]
// (optional): JSON of Partial<PrincipalLimits>, or `false` for none. Prints `{"address":"127.0.0.1:PORT"}` once it
// serves; exits when its stdin ends.
import { join } from "node:path";
import { createEmuMachine, loadGuestImage } from "../../src/emu";
import type { PrincipalLimits } from "../../src/server/auth/limits";
import { TokenStore } from "../../src/server/auth/tokens";
import { createVmmDebugServer } from "../../src/server/create-server";

async function main(): Promise<void> {
  const image = loadGuestImage(join(__dirname, "../../guests/build/demo-x86_64.json"));
  const vm = await createEmuMachine({ id: "demo", image, vpCount: 2, memory: [{ gpa: 0, size: 64 * 1024 * 1024, name: "ram" }] });
  const tokens = TokenStore.open(process.argv[2], { watch: false });
  const limits = process.argv[3] ? (JSON.parse(process.argv[3]) as Partial<PrincipalLimits> | false) : {};
  const server = createVmmDebugServer({
    vms: [vm],
    tokens,
    limits, // {}: the defaults (DEFAULT_PRINCIPAL_LIMITS), on as they are with tokens; false: off (the bench's control)
    // The default JSON logger, as `vmm-debug serve` has: every refusal is audited, and that cost
    // is part of what a flood costs the server (the parent sends stderr to /dev/null).
  });
  const bound = await server.listen("127.0.0.1:0");
  process.stdout.write(JSON.stringify({ address: `127.0.0.1:${bound.port}` }) + "\n");
  const stop = () => void server.close().finally(() => process.exit(0));
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
}

void main().catch((e: unknown) => {
  process.stdout.write(JSON.stringify({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }) + "\n");
  process.exit(1);
});
