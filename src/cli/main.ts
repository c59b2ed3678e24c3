#!/usr/bin/env node
// The `vmm-debug` command: subcommand dispatch.
import { UsageError } from "./args";
import { serve } from "./serve";

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<void>> = { serve };

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

if (require.main === module) {
  runCli(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`vmm-debug: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  });
}
