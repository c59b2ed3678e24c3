// `vmm-debug serve`: boot a guest on the embedded machine and serve it over gRPC.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { VmmCore } from "../core";
import { createEmuMachine, loadGuestImage } from "../emu";
import { createQemuVm, launchQemuVm, parseSocketAddress, qemuArgsForGuest } from "../qemu";
import { createVmmDebugServer } from "../server";
import { LOG_LEVELS, type LogLevel, createLogger, isLogLevel, routeGrpcJsLogs } from "../server/logger";
import { parseMetricsAddress } from "../server/metrics";
import { TokenStore, reloadOnSighup } from "../server/auth/tokens";
import { type Role, isRole } from "../server/auth/principal";
import { type OptionSpec, UsageError, parseArgs, usage } from "./args";

const DEFAULT_LISTEN = "127.0.0.1:50051";
/** The committed guest images: guests/build at the package root (above src/cli, or dist/src/cli when built). */
const GUESTS = [resolve(__dirname, "../../guests/build"), resolve(__dirname, "../../../guests/build")].find((d) => existsSync(d)) ?? resolve(__dirname, "../../guests/build");
const DEFAULT_IMAGE = resolve(GUESTS, "demo-x86_64.json");

const SPEC: Record<string, OptionSpec> = {
  listen: { help: `HOST:PORT to listen on (default ${DEFAULT_LISTEN}, or $VMM_DEBUG_LISTEN)` },
  image: { help: "guest manifest to boot (default: the x86-64 demo guest)" },
  vps: { help: "number of VPs (default 2)" },
  id: { help: 'VM id (default "demo")' },
  "memory-mib": { help: "guest RAM in MiB at GPA 0 (default 256)" },
  "lease-ms": { help: "lease of a unary session in milliseconds (default 600000: 10 minutes)" },
  "max-read-bytes": { help: "largest unary ReadMemory (default 4194304)" },
  "insecure-non-loopback": { flag: true, help: "allow a non-loopback --listen without TLS client authentication (anyone who reaches it controls the VMs)" },
  "allow-non-loopback": { flag: true, help: "old name of --insecure-non-loopback" },
  emu: { flag: true, help: "also serve the embedded machine when a QEMU VM is served (it is the default otherwise)" },
  qemu: { flag: true, help: "launch QEMU with the arguments after `--` (x86-64 unless --qemu-arch aarch64)" },
  "qemu-arch": { help: "architecture of --qemu: x86_64 (default) or aarch64" },
  "qemu-guest": { help: "launch QEMU booting the demo guest: x86_64 or aarch64" },
  "qemu-id": { help: 'id of the launched QEMU VM (default "qemu")' },
  "qemu-gdb": { help: "attach to a running QEMU: its gdbstub, HOST:PORT (loopback) or unix:PATH" },
  "qemu-qmp": { help: "attach to a running QEMU: its QMP socket, HOST:PORT (loopback) or unix:PATH" },
  "qemu-ram-file": { help: "attached QEMU's shared memory-backend file, read directly for guest RAM" },
  "qemu-attach-id": { help: 'id of the attached QEMU VM (default "qemu-attached")' },
  "tls-cert": { help: "serve TLS with this PEM certificate chain (re-read when it changes)" },
  "tls-key": { help: "the PEM private key of --tls-cert" },
  "client-ca": { help: "require client certificates that chain to this PEM CA (mutual TLS); the principal is the CN or first SAN" },
  "certificate-role": { help: "role of a principal known only by its client certificate, unless its subject OU names one (default viewer)" },
  tokens: { help: "require bearer tokens: the file `vmm-debug token add` writes (re-read on change and on SIGHUP)" },
  "log-level": { help: `${LOG_LEVELS.join(", ")}: the least severe log line written (default info, or $VMM_DEBUG_LOG_LEVEL); logs go to stderr, readable on a terminal and JSON lines otherwise` },
  metrics: { help: "serve Prometheus metrics at http://HOST:PORT/metrics (loopback only, e.g. 127.0.0.1:9464)" },
  help: { flag: true, help: "show this help" },
};

/** --log-level, else $VMM_DEBUG_LOG_LEVEL, else info. */
function logLevel(option: string | boolean | undefined, env: NodeJS.ProcessEnv): LogLevel {
  if (option !== undefined) {
    const value = String(option).toLowerCase();
    if (!isLogLevel(value)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${String(option)}"`);
    return value;
  }
  const fromEnv = env.VMM_DEBUG_LOG_LEVEL;
  if (fromEnv === undefined || fromEnv === "") return "info";
  const value = fromEnv.toLowerCase();
  if (!isLogLevel(value)) throw new UsageError(`VMM_DEBUG_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${fromEnv}"`);
  return value;
}

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
  const listen = (options.listen as string | undefined) ?? env.VMM_DEBUG_LISTEN ?? DEFAULT_LISTEN;
  const vpCount = integer(options.vps, "vps", 2, 1, 8);
  const memoryMib = integer(options["memory-mib"], "memory-mib", 256, 4, 4096);
  const logger = createLogger({ level: logLevel(options["log-level"], env) });
  // grpc-js's own lines go through the same logger (and its line about a failed bind, which the
  // error below says in words, not at all).
  routeGrpcJsLogs(logger);
  const metricsListen = options.metrics as string | undefined;
  if (metricsListen !== undefined) {
    try {
      parseMetricsAddress(metricsListen);
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
  }
  const tlsCert = options["tls-cert"] as string | undefined;
  const tlsKey = options["tls-key"] as string | undefined;
  const clientCa = options["client-ca"] as string | undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  if (clientCa !== undefined && tlsCert === undefined) throw new UsageError("--client-ca needs --tls-cert and --tls-key (client certificates are checked by TLS)");
  const certificateRole = options["certificate-role"] as string | undefined;
  if (certificateRole !== undefined && !isRole(certificateRole)) throw new UsageError(`--certificate-role must be viewer, debugger or admin, got "${certificateRole}"`);

  const vms: VmmCore[] = [];
  const describe: string[] = [];
  const closeAll = () => Promise.all(vms.map((vm) => vm.close().catch(() => undefined)));
  const consoleOf = (vm: string) => (line: string) => logger.info("guest console", { vm, line });
  const wantsQemu = options.qemu || options["qemu-guest"] || options["qemu-gdb"] || options["qemu-qmp"];
  // Each served VM needs its own id: said with the flags that set them, before anything boots.
  const ids: [string, string][] = [];
  if (!wantsQemu || options.emu) ids.push(["--id", (options.id as string | undefined) ?? "demo"]);
  if (options.qemu || options["qemu-guest"]) ids.push(["--qemu-id", (options["qemu-id"] as string | undefined) ?? "qemu"]);
  if (options["qemu-gdb"] || options["qemu-qmp"]) ids.push(["--qemu-attach-id", (options["qemu-attach-id"] as string | undefined) ?? "qemu-attached"]);
  for (let i = 1; i < ids.length; i++) {
    const same = ids.slice(0, i).find(([, id]) => id === ids[i][1]);
    if (same) throw new UsageError(`${same[0]} and ${ids[i][0]} both give the id "${ids[i][1]}": each served VM needs its own id`);
  }
  try {
    if (!wantsQemu || options.emu) {
      const image = loadGuestImage(resolve((options.image as string | undefined) ?? DEFAULT_IMAGE));
      const id = (options.id as string | undefined) ?? "demo";
      vms.push(
        await createEmuMachine({
          id,
          image,
          vpCount,
          memory: [{ gpa: 0, size: memoryMib * 1024 * 1024, name: "ram" }],
          onConsole: consoleOf(id),
        }),
      );
      describe.push(`"${id}" (${image.name}, x86_64, ${vpCount} VPs, emu)`);
    }
    if (options.qemu || options["qemu-guest"]) {
      const id = (options["qemu-id"] as string | undefined) ?? "qemu";
      let launch: { arch: "x86_64" | "aarch64"; args: string[] };
      if (options["qemu-guest"]) {
        if (options.qemu) throw new UsageError("give either --qemu -- ARGS or --qemu-guest ARCH, not both");
        const arch = String(options["qemu-guest"]);
        if (arch !== "x86_64" && arch !== "aarch64") throw new UsageError(`--qemu-guest must be x86_64 or aarch64, got "${arch}"`);
        launch = qemuArgsForGuest(resolve(GUESTS, `demo-${arch}.json`));
      } else {
        if (rest.length === 0) throw new UsageError("--qemu needs QEMU's arguments after `--`, e.g. --qemu -- -machine q35 -m 256M -kernel guest.bin");
        const arch = String(options["qemu-arch"] ?? "x86_64");
        if (arch !== "x86_64" && arch !== "aarch64") throw new UsageError(`--qemu-arch must be x86_64 or aarch64, got "${arch}"`);
        launch = { arch, args: rest };
      }
      const vm = await launchQemuVm({ id, ...launch, onOutput: consoleOf(id), log: (m) => logger.warn(m) });
      vms.push(vm);
      describe.push(`"${id}" (${vm.arch}, ${vm.vpCount} VP(s), qemu launched)`);
    } else if (rest.length) {
      throw new UsageError(`unexpected argument "${rest[0]}"`);
    }
    if (options["qemu-gdb"] || options["qemu-qmp"]) {
      if (!options["qemu-gdb"] || !options["qemu-qmp"]) throw new UsageError("attaching to QEMU needs both --qemu-gdb and --qemu-qmp");
      const id = (options["qemu-attach-id"] as string | undefined) ?? "qemu-attached";
      const vm = await createQemuVm({
        id,
        gdb: parseSocketAddress(String(options["qemu-gdb"])),
        qmp: parseSocketAddress(String(options["qemu-qmp"])),
        ramFile: options["qemu-ram-file"] as string | undefined,
        log: (m) => logger.warn(m),
      });
      vms.push(vm);
      describe.push(`"${id}" (${vm.arch}, ${vm.vpCount} VP(s), qemu attached)`);
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  let tokens: TokenStore | undefined;
  // The store reports removed principals; the server (made below) ends their open calls.
  let revoke: (names: string[]) => number = () => 0;
  if (options.tokens !== undefined) {
    try {
      tokens = TokenStore.open(String(options.tokens), {
        onChange: (removed, current) => {
          const ended = removed.length ? revoke(removed) : 0;
          logger.info("tokens reloaded", { principals: current.size, removed: removed.join(","), calls_ended: ended });
        },
        onError: (e) => logger.warn("tokens file not reloaded; the previous tokens stay in force", { error: e.message }),
      });
    } catch (e) {
      await closeAll();
      throw new UsageError(`--tokens: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  let server;
  try {
    server = createVmmDebugServer({
      vms,
      logger,
      tokens,
      tls: tlsCert !== undefined && tlsKey !== undefined ? { cert: tlsCert, key: tlsKey, clientCa } : undefined,
      certificateRole: certificateRole as Role | undefined,
      leaseMs: integer(options["lease-ms"], "lease-ms", 600_000, 100, 86_400_000),
      maxReadBytes: integer(options["max-read-bytes"], "max-read-bytes", 4 * 1024 * 1024, 1, 64 * 1024 * 1024),
      insecureNonLoopback: options["insecure-non-loopback"] === true || options["allow-non-loopback"] === true,
      metrics: metricsListen !== undefined ? { listen: metricsListen } : undefined,
    });
  } catch (e) {
    tokens?.close();
    await closeAll();
    throw e;
  }
  revoke = (names) => server.revoke(names);
  const stopSighup = tokens ? reloadOnSighup(tokens) : () => undefined;
  let bound;
  try {
    bound = await server.listen(listen);
  } catch (e) {
    stopSighup();
    tokens?.close();
    await server.close();
    await closeAll();
    throw e;
  }
  const hostPort = (a: { host: string; port: number }) => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
  const where = hostPort(bound);
  process.stdout.write(
    `vmm-debug: serving ${describe.join(", ")} on ${where}\n` +
      (bound.metrics ? `  metrics: http://${hostPort(bound.metrics)}/metrics\n` : "") +
      (tlsCert
        ? `  TLS${clientCa ? " with client certificates" : ""}${tokens ? " and bearer tokens" : ""}: see "Running it across hosts" in the README\n`
        : `  try: npx buf curl --protocol grpc --http2-prior-knowledge --list-services http://${where}\n`),
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    stopSighup();
    tokens?.close();
    await server.close();
    await closeAll();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
}
