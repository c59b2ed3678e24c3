// `vmm-debug serve`: boot a guest on the embedded machine and serve it over gRPC.
import { resolve } from "node:path";
import { createEmuMachine, loadGuestImage } from "../emu";
import { createJsonLogger, createVmmDebugServer } from "../server";
import { type OptionSpec, UsageError, parseArgs, usage } from "./args";

const DEFAULT_LISTEN = "127.0.0.1:50051";
const DEFAULT_IMAGE = resolve(__dirname, "..", "..", "guests", "build", "demo-x86_64.json");

const SPEC: Record<string, OptionSpec> = {
  listen: { help: `HOST:PORT to listen on (default ${DEFAULT_LISTEN}, or $VMM_DEBUG_LISTEN)` },
  image: { help: "guest manifest to boot (default: the x86-64 demo guest)" },
  vps: { help: "number of VPs (default 2)" },
  id: { help: 'VM id (default "demo")' },
  "memory-mib": { help: "guest RAM in MiB at GPA 0 (default 256)" },
  "lease-ms": { help: "session lease in milliseconds (default 30000)" },
  "max-read-bytes": { help: "largest unary ReadMemory (default 4194304)" },
  "allow-non-loopback": { flag: true, help: "allow a non-loopback --listen address (no TLS yet: insecure)" },
  help: { flag: true, help: "show this help" },
};

function integer(value: string | boolean | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}, got "${value}"`);
  return n;
}

export async function serve(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const { options, rest } = parseArgs(argv, SPEC);
  if (options.help) {
    process.stdout.write(usage("serve", SPEC) + "\n");
    return;
  }
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const listen = (options.listen as string | undefined) ?? env.VMM_DEBUG_LISTEN ?? DEFAULT_LISTEN;
  const vpCount = integer(options.vps, "vps", 2, 1, 8);
  const memoryMib = integer(options["memory-mib"], "memory-mib", 256, 4, 4096);
  const logger = createJsonLogger();

  const image = loadGuestImage(resolve((options.image as string | undefined) ?? DEFAULT_IMAGE));
  const id = (options.id as string | undefined) ?? "demo";
  const vm = await createEmuMachine({
    id,
    image,
    vpCount,
    memory: [{ gpa: 0, size: memoryMib * 1024 * 1024, name: "ram" }],
    onConsole: (line) => logger.info("guest console", { vm: id, line }),
  });
  const server = createVmmDebugServer({
    vms: [vm],
    logger,
    leaseMs: integer(options["lease-ms"], "lease-ms", 30_000, 100, 86_400_000),
    maxReadBytes: integer(options["max-read-bytes"], "max-read-bytes", 4 * 1024 * 1024, 1, 64 * 1024 * 1024),
    allowNonLoopback: options["allow-non-loopback"] === true,
  });
  let bound;
  try {
    bound = await server.listen(listen);
  } catch (e) {
    await vm.close();
    throw e;
  }
  const where = bound.host.includes(":") ? `[${bound.host}]:${bound.port}` : `${bound.host}:${bound.port}`;
  process.stdout.write(
    `vmm-debug: serving VM "${id}" (${image.name}, x86_64, ${vpCount} VPs, emu) on ${where}\n` +
      `  try: npx buf curl --protocol grpc --http2-prior-knowledge --list-services http://${where}\n`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    await server.close();
    await vm.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
}
