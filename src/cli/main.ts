#!/usr/bin/env node
// The `vmm-debug` command: subcommand dispatch, and exit codes (2 for usage errors, 1 otherwise).
import { UsageError } from "./args";
import { gdbCommand } from "../gdb";
import { serve } from "./serve";
import { tokenCommand } from "./token";

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<void>> = { serve, gdb: gdbCommand, token: tokenCommand };

const SUMMARY: Record<string, string> = {
  serve: "serve VMs (the embedded demo machine by default, or QEMU) over gRPC",
  gdb: "let gdb or lldb debug a served VM (a GDB remote protocol bridge)",
  token: "add, list or remove bearer tokens in a tokens file",
};

function overview(): string {
  const lines = Object.keys(COMMANDS).map((c) => `  ${c.padEnd(8)}${SUMMARY[c] ?? ""}`);
  return `usage: vmm-debug COMMAND [options]\n\ncommands:\n${lines.join("\n")}\n\n"vmm-debug help COMMAND" or "vmm-debug COMMAND --help" shows a command's options.\n`;
}

export async function runCli(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || (command === "help" && rest.length === 0)) {
    process.stdout.write(overview());
    return;
  }
  if (command === "help") {
    const sub = COMMANDS[rest[0]];
    if (!sub) throw new UsageError(`unknown command "${rest[0]}"; commands: ${Object.keys(COMMANDS).join(", ")}`);
    await sub([...rest.slice(1), "--help"]);
    return;
  }
  const run = command ? COMMANDS[command] : undefined;
  if (!run) {
    throw new UsageError(
      `${command ? `unknown command "${command}"` : "no command given"}; commands: ${Object.keys(COMMANDS).join(", ")}`,
    );
  }
  await run(rest);
}

/** Runs the CLI; on failure prints the message and exits (2 for a usage error, 1 for anything else). */
export function main(argv: readonly string[]): void {
  runCli(argv).catch((e: unknown) => {
    process.stderr.write(`vmm-debug: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  });
}

if (require.main === module) main(process.argv.slice(2));
