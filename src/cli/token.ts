// `vmm-debug token add|list|remove`: manage the bearer-token file `serve --tokens FILE` reads.
// The file holds salted hashes only; `add` prints the new token once. Every change writes a
// whole new file next to the old one and renames it over, so a server watching the file never
// reads half a line.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { ROLES, isRole } from "../server/auth/principal";
import { isTokenName, newToken, parseTokenFile, tokenLine } from "../server/auth/tokens";
import { type OptionSpec, UsageError, parseArgs, usage } from "./args";

/** Where the token file is when neither --tokens nor $VMM_DEBUG_TOKENS says. */
export const DEFAULT_TOKENS_FILE = "vmm-debug-tokens";

const TOKENS: OptionSpec = { help: `token file (default $VMM_DEBUG_TOKENS, else ./${DEFAULT_TOKENS_FILE})` };
const HELP: OptionSpec = { flag: true, help: "show this help" };

const SPECS = {
  add: {
    spec: {
      role: { help: `the principal's role: ${ROLES.join(", ")} (required)` },
      tokens: TOKENS,
      replace: { flag: true, help: "replace NAME's token (and role) if it exists: rotation" },
      help: HELP,
    } as Record<string, OptionSpec>,
    synopsis: "token add NAME --role ROLE",
    about: "Makes a new token for NAME, prints it once on stdout and stores only its salted hash.",
  },
  list: {
    spec: { tokens: TOKENS, help: HELP } as Record<string, OptionSpec>,
    synopsis: "token list",
    about: "Prints each principal's name and role (never hashes).",
  },
  remove: {
    spec: { tokens: TOKENS, help: HELP } as Record<string, OptionSpec>,
    synopsis: "token remove NAME",
    about: "Removes NAME's token; a server reading the file drops it and ends NAME's open calls.",
  },
} as const;
type Sub = keyof typeof SPECS;

/** Every token subcommand's options together (for the CLI's shell completion). */
export const TOKEN_OPTION_SPECS: Readonly<Record<string, OptionSpec>> = Object.assign({}, ...Object.values(SPECS).map((s) => s.spec));

const HEADER =
  "# vmm-debug bearer tokens: one principal per line, NAME ROLE sha256:SALT:DIGEST\n" +
  "# (salted hashes, never the tokens). Managed by `vmm-debug token add|list|remove`.\n";

function topUsage(): string {
  return (
    "usage: vmm-debug token add NAME --role ROLE [--tokens FILE] [--replace]\n" +
    "       vmm-debug token list [--tokens FILE]\n" +
    "       vmm-debug token remove NAME [--tokens FILE]\n" +
    `The token file defaults to $VMM_DEBUG_TOKENS, else ./${DEFAULT_TOKENS_FILE}; it is created with mode 0600.\n` +
    "A running `serve --tokens FILE` re-reads it when it changes and on SIGHUP.\n" +
    "`vmm-debug token SUBCOMMAND --help` for each subcommand's options."
  );
}

function subUsage(sub: Sub): string {
  const { spec, synopsis, about } = SPECS[sub];
  const options = usage(synopsis, spec).split("\n").slice(1).join("\n");
  return `usage: vmm-debug ${synopsis} [options]\n${about}\n${options}`;
}

/** Reads and checks the file; undefined if it does not exist. */
function readTokens(file: string): { text: string; mode: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  parseTokenFile(text, file); // refuse to edit a file a server would refuse to load
  return { text, mode: statSync(file).mode & 0o777 };
}

/** Writes `text` to a temporary file beside `file`, flushed, and renames it over `file`. */
function replaceFile(file: string, text: string, mode: number): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

/** Runs `edit` holding FILE.lock, so two concurrent `token add`s do not lose one another's line. */
async function withLock<T>(file: string, edit: () => T): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      closeSync(openSync(lock, "wx", 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue; // released just now
      }
      if (age > 30_000) {
        unlinkSync(lock); // left by a process that died while editing
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lock} is held by another vmm-debug token command (remove it if none is running)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return edit();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // already gone
    }
  }
}

function oneName(rest: string[], sub: Sub): string {
  if (rest.length === 0) throw new UsageError(`token ${sub} needs a NAME; see vmm-debug token ${sub} --help`);
  if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}"`);
  const name = rest[0];
  if (!isTokenName(name)) throw new UsageError(`token name "${name}" must be 1 to 64 of A-Z a-z 0-9 . _ @ -`);
  return name;
}

/** The lines of `text` without line `line` (1-based), keeping a trailing newline. */
function withoutLine(text: string, line: number, replacement?: string): string {
  const lines = text.split("\n");
  if (replacement === undefined) lines.splice(line - 1, 1);
  else lines[line - 1] = replacement;
  return lines.join("\n");
}

export async function tokenCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const [sub, ...args] = argv;
  if (sub === undefined || sub === "--help" || sub === "help") {
    if (sub === undefined) throw new UsageError(`token needs a subcommand: add, list or remove\n${topUsage()}`);
    process.stdout.write(topUsage() + "\n");
    return;
  }
  if (!Object.hasOwn(SPECS, sub)) throw new UsageError(`unknown token subcommand "${sub}"; subcommands: add, list, remove`);
  const s = sub as Sub;
  const { options, rest } = parseArgs(args, SPECS[s].spec);
  if (options.help) {
    process.stdout.write(subUsage(s) + "\n");
    return;
  }
  if (options.tokens === "") throw new UsageError("--tokens needs a file name");
  const file = resolve((options.tokens as string | undefined) ?? (env.VMM_DEBUG_TOKENS || DEFAULT_TOKENS_FILE));

  if (s === "list") {
    if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
    const existing = readTokens(file);
    if (!existing) throw new Error(`${file}: no such token file (vmm-debug token add creates it)`);
    const entries = parseTokenFile(existing.text, file);
    const width = Math.max(0, ...entries.map((e) => e.name.length));
    process.stdout.write(entries.map((e) => `${e.name.padEnd(width)}  ${e.role}\n`).join(""));
    return;
  }

  const name = oneName(rest, s);
  if (s === "add") {
    const role = options.role;
    if (role === undefined) throw new UsageError(`token add needs --role (${ROLES.join(", ")})`);
    if (typeof role !== "string" || !isRole(role)) throw new UsageError(`--role must be one of ${ROLES.join(", ")}, got "${String(role)}"`);
    const token = newToken();
    const line = tokenLine(name, role, token);
    const replaced = await withLock(file, () => {
      const existing = readTokens(file);
      const text = existing?.text ?? HEADER;
      const entry = existing ? parseTokenFile(existing.text, file).find((e) => e.name === name) : undefined;
      if (entry && !options.replace) throw new Error(`${file}:${entry.line}: "${name}" already has a token; --replace to rotate it`);
      const next = entry ? withoutLine(text, entry.line, line) : `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}${line}\n`;
      replaceFile(file, next, existing ? existing.mode & ~0o022 : 0o600);
      return entry !== undefined;
    });
    process.stdout.write(`${token}\n`);
    process.stderr.write(
      `vmm-debug token: ${replaced ? "replaced the token of" : "added"} "${name}" (${role}) in ${file}; ` +
        `the token above is shown only once (the file keeps only its salted hash)\n`,
    );
    return;
  }

  // remove
  if (!existsSync(file)) throw new Error(`${file}: no such token file`);
  await withLock(file, () => {
    const existing = readTokens(file);
    if (!existing) throw new Error(`${file}: no such token file`);
    const entry = parseTokenFile(existing.text, file).find((e) => e.name === name);
    if (!entry) throw new Error(`${file}: no token named "${name}"`);
    replaceFile(file, withoutLine(existing.text, entry.line), existing.mode & ~0o022);
  });
  process.stderr.write(`vmm-debug token: removed "${name}" from ${file}; a server reading it drops the token and ends "${name}"'s open calls\n`);
}
