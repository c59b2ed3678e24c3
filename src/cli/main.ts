#!/usr/bin/env node
// The `vmm-debug` command: the commander tree (program.ts), and one exit code per kind of failure
// (exit-codes.ts) with one readable line, never a stack.
import { CommanderError } from "commander";
import { CliError, EXIT, errorLine, exitCodeOf } from "./exit-codes";
import { buildProgram } from "./program";
import { SERVER_ENV, SESSION_ENV } from "./context";
import { VmmDebugError } from "../client/errors";

/** Runs the CLI; rejects with what failed (main() turns it into a line and an exit code). */
export async function runCli(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  program.configureOutput({
    outputError: (text, write) => write(`vmm-debug: ${text.replace(/^error: /, "")}`),
  });
  // Exit overrides reach every subcommand (commander copies the setting when they are added, so
  // set it on each).
  const all = (c: typeof program): (typeof program)[] => [c, ...c.commands.flatMap((s) => all(s as typeof program))];
  for (const c of all(program)) {
    c.exitOverride();
    c.configureOutput({ outputError: (text, write) => write(`vmm-debug: ${text.replace(/^error: /, "")}`) });
  }
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    throw new CliError("no command given", EXIT.usage);
  }
  await program.parseAsync([...argv], { from: "user" });
}

/** Runs the CLI; on failure prints `vmm-debug: <message>` and exits with the code of its kind. */
export function main(argv: readonly string[]): void {
  // Output piped into a reader that stops early (`| head`) ends the command quietly, as cat does.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? EXIT.ok);
      throw e;
    });
  }
  runCli(argv).then(
    () => {
      // Client commands are done: let the event loop drain (servers and bridges keep it alive).
    },
    (e: unknown) => {
      if (e instanceof CommanderError) {
        // Commander printed its message (or the help) already.
        const ok = e.code === "commander.helpDisplayed" || e.code === "commander.version";
        process.exitCode = ok || e.exitCode === 0 ? EXIT.ok : EXIT.usage;
        return;
      }
      const server = process.env[SERVER_ENV] || undefined;
      let line = errorLine(e, serverFromArgv(argv) ?? server ?? "127.0.0.1:50051");
      const stale = e instanceof VmmDebugError && e.reason === "NOT_ATTACHED" && process.env[SESSION_ENV] && !argv.includes("--session");
      if (stale) line += `; $${SESSION_ENV} names a session that is over: unset ${SESSION_ENV} (or attach again)`;
      if (!(e instanceof CliError && e.message === "no command given")) process.stderr.write(`vmm-debug: ${line}\n`);
      process.exitCode = exitCodeOf(e);
      // Whatever is left (a channel closing) must not hold the exit.
      setTimeout(() => process.exit(process.exitCode), 2000).unref();
    },
  );
}

function serverFromArgv(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--server") return argv[i + 1];
    if (argv[i].startsWith("--server=")) return argv[i].slice("--server=".length);
  }
  return undefined;
}

if (require.main === module) main(process.argv.slice(2));
