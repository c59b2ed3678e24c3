// A small, strict command-line parser: --name value / --name=value / --flag, unknown options refused.

export interface OptionSpec {
  /** Takes a value (default) or is a boolean flag. */
  flag?: boolean;
  help: string;
}

export class UsageError extends Error {
  override name = "UsageError";
}

export function parseArgs(
  argv: readonly string[],
  spec: Record<string, OptionSpec>,
): { options: Record<string, string | boolean>; rest: string[] } {
  const options: Record<string, string | boolean> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--")) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (s.flag) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
    } else if (eq !== -1) {
      options[name] = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      options[name] = argv[++i];
    }
  }
  return { options, rest };
}

export function usage(command: string, spec: Record<string, OptionSpec>): string {
  const lines = Object.entries(spec).map(([name, s]) => `  --${name}${s.flag ? "" : " VALUE"}`.padEnd(28) + s.help);
  return `usage: vmm-debug ${command} [options]\n${lines.join("\n")}`;
}
