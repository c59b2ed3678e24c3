#!/usr/bin/env node
// The `vmm-debug` command: subcommand dispatch, and exit codes (2 for usage errors, 1 otherwise).
import { UsageError } from "./args";
import { gdbCommand } from "../gdb";
import { serve } from "./serve";
import { tokenCommand } from "./token";

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<void>> = { serve, gdb: gdbCommand, token: tokenCommand };

export async function runCli(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
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
