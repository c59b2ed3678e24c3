// `vmm-debug gdb`: listen for gdb on loopback and bridge it to a VM of a vmm-debug server.
import { connect } from "../client";
import { type OptionSpec, UsageError, parseArgs, usage } from "../cli/args";
import { CLIENT_OPTION_SPEC, clientConnectOptions } from "../cli/client-options";
import { createGdbBridge, isLoopbackHost } from "./bridge";

const DEFAULT_LISTEN = "127.0.0.1:1234";
const DEFAULT_SERVER = "127.0.0.1:50051";

const SPEC: Record<string, OptionSpec> = {
  listen: { help: `loopback HOST:PORT gdb connects to (default ${DEFAULT_LISTEN})` },
  server: { help: `vmm-debug server HOST:PORT (default ${DEFAULT_SERVER}); with TLS, HOST is a name the server's certificate carries` },
  vm: { help: "VM id (default: the server's only VM)" },
  ...CLIENT_OPTION_SPEC,
  help: { flag: true, help: "show this help" },
};

/** gdb's options (for the CLI's shell completion). */
export const GDB_OPTION_SPEC: Readonly<Record<string, OptionSpec>> = SPEC;

function hostPort(text: string, name: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--${name} must be HOST:PORT, got "${text}"`);
  return { host: m[1], port };
}

export async function gdbCommand(argv: readonly string[]): Promise<void> {
  const { options, rest } = parseArgs(argv, SPEC);
  if (options.help) {
    process.stdout.write(usage("gdb", SPEC) + "\n");
    return;
  }
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const listen = hostPort((options.listen as string | undefined) ?? DEFAULT_LISTEN, "listen");
  if (!isLoopbackHost(listen.host)) throw new UsageError(`--listen must be a loopback address (gdb's protocol has no authentication), got "${listen.host}"`);
  const server = (options.server as string | undefined) ?? DEFAULT_SERVER;
  hostPort(server, "server");
  const vm = (options.vm as string | undefined) ?? "";
  const client = connect(server, clientConnectOptions(options, server));
  const bridge = createGdbBridge({ client, vm, log: (line) => process.stderr.write(`vmm-debug gdb: ${line}\n`) });
  let bound;
  try {
    bound = await bridge.listen(listen.host, listen.port);
  } catch (e) {
    client.close();
    throw e;
  }
  const where = bound.host.includes(":") ? `[${bound.host}]:${bound.port}` : `${bound.host}:${bound.port}`;
  process.stdout.write(
    `vmm-debug gdb: bridging gdb on ${where} to VM ${vm ? `"${vm}"` : "(the only VM)"} of ${server}\n` +
      `  try: gdb -ex "target remote ${where}"\n`,
  );
  const stop = async () => {
    await bridge.close();
    client.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}
