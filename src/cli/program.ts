// The `vmm-debug` command tree (commander): the debugger commands that talk to a running server,
// and `serve`, `gdb`, `token`, whose own parsers get their arguments as they are.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { type OptionSpec, UsageError } from "./args";
import { CLIENT_OPTION_SPEC, TOKEN_ENV } from "./client-options";
import { SYMBOLS_ENV } from "./address";
import { attachCommand, breakCommand, breakDeleteCommand, breakListCommand, continueCommand, detachCommand, interruptCommand, stepCommand, watchCommand } from "./commands/control";
import { type ConsoleOptions, consoleCommand } from "./commands/console";
import { dumpCommand } from "./commands/dump";
import { disasmCommand, memReadCommand, memWriteCommand, regsCommand, translateCommand, vmCommand, vmsCommand } from "./commands/read";
import { completionScript } from "./completion";
import { type ClientOptions, Context, DEFAULT_SERVER, SERVER_ENV, SESSION_ENV, installSigint } from "./context";
import { exitTableText } from "./exit-codes";

/** The package's version (package.json sits above src/cli, or above dist/src/cli when built). */
function packageVersion(): string {
  for (const p of [join(__dirname, "../../package.json"), join(__dirname, "../../../package.json")]) {
    if (existsSync(p)) return (JSON.parse(readFileSync(p, "utf8")) as { version?: string }).version ?? "0.0.0";
  }
  return "0.0.0";
}

/** Options a passed-through command parses itself (listed for completion only, loaded on demand). */
type WithExtra = Command & { extraOptions?: () => { flag: string; description: string }[] };
type Run = (argv: readonly string[]) => Promise<void>;

function addClientOptions(cmd: Command, json = true): Command {
  cmd.optionsGroup("Connection options:");
  cmd.option("--server <host:port>", `vmm-debug server (default $${SERVER_ENV}, else ${DEFAULT_SERVER})`);
  cmd.option("--vm <id>", "VM id (default: the session's VM, else the server's only VM)");
  cmd.option("--session <id>", `session from \`vmm-debug attach\` (default $${SESSION_ENV}); without one, a command that needs a session attaches for itself and detaches`);
  cmd.option("--symbols <file>", `guest manifest whose symbols addresses may name (default $${SYMBOLS_ENV}), e.g. guests/build/demo-x86_64.json`);
  for (const [name, spec] of Object.entries(CLIENT_OPTION_SPEC)) {
    const help = name === "token" ? `bearer token for a server with --tokens (default $${TOKEN_ENV}; prefer it: a command line is visible to other users)` : spec.help;
    cmd.option(spec.flag ? `--${name}` : `--${name} <${name === "token" ? "token" : "file"}>`.replace("<file>", name === "tls-server-name" ? "<name>" : "<file>"), help);
  }
  cmd.optionsGroup("Options:");
  if (json) cmd.option("--json", "machine-readable output (numbers above 2^53 and addresses as \"0x…\" strings)");
  return cmd;
}

/** Wraps a command's action: a Context from its options, closed after (the session, if any, lives on). */
function action<A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const opts = cmd.optsWithGlobals() as ClientOptions;
    const ctx = new Context(opts);
    installSigint();
    try {
      await fn(ctx, ...(args.slice(0, -1) as A));
    } finally {
      ctx.close();
    }
  };
}

/**
 * A command whose own parser takes its arguments (serve, gdb, token). Its module is loaded only
 * when it runs (the server side is heavy; a debugger command starts faster without it).
 */
function passThrough(program: Command, name: string, description: string, load: () => Run, extra: () => Record<string, OptionSpec> = () => ({})): Command {
  const cmd = program
    .command(name)
    .description(description)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument("[args...]", `${name}'s own arguments (vmm-debug ${name} --help lists them)`)
    .action(async (args: string[]) => {
      await load()(args);
    }) as WithExtra;
  cmd.extraOptions = () => Object.entries(extra()).map(([n, s]) => ({ flag: `--${n}`, description: s.help }));
  (cmd as Command & { passThroughRun?: () => Run }).passThroughRun = load;
  return cmd;
}

export function buildProgram(): Command {
  const program = new Command("vmm-debug");
  program
    .description(
      "Debug virtual machines served by a vmm-debug server: serve them, look at them (registers, memory, " +
        "page walks, disassembly, core dumps) and control them (breakpoints, watchpoints, continue, step).",
    )
    .usage("COMMAND [options]")
    .version(packageVersion(), "--version", "show the version")
    .helpCommand(false)
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .addHelpText(
      "after",
      `
Commands that talk to a server take --server HOST:PORT (default $${SERVER_ENV}, else ${DEFAULT_SERVER}),
--vm ID, --session ID (default $${SESSION_ENV}), --symbols FILE (default $${SYMBOLS_ENV}) and the TLS/token
options; "vmm-debug help COMMAND [SUB]" or "vmm-debug COMMAND --help" shows a command's options.

Exit codes:
${exitTableText()}
`,
    );

  program.commandsGroup("Serving and bridges:");
  /* eslint-disable @typescript-eslint/no-require-imports */
  passThrough(program, "serve", "serve VMs (the embedded demo machine by default, or QEMU) over gRPC", () => (argv) => (require("./serve") as typeof import("./serve")).serve(argv));
  passThrough(
    program,
    "gdb",
    "let gdb or lldb debug a served VM (a GDB remote protocol bridge)",
    () => (require("../gdb/command") as typeof import("../gdb/command")).gdbCommand,
    () => (require("../gdb/command") as typeof import("../gdb/command")).GDB_OPTION_SPEC,
  );
  passThrough(
    program,
    "token",
    "add, list or remove bearer tokens in a tokens file (token add|list|remove)",
    () => (argv) => (require("./token") as typeof import("./token")).tokenCommand(argv),
    () => (require("./token") as typeof import("./token")).TOKEN_OPTION_SPECS,
  );
  /* eslint-enable @typescript-eslint/no-require-imports */

  program.commandsGroup("Looking:");
  addClientOptions(program.command("vms").description("list the served VMs: id, arch, VPs, run state, backend, attached")).action(action((ctx) => vmsCommand(ctx)));
  addClientOptions(
    program
      .command("vm")
      .description("one VM in detail: memory regions, capabilities, who is attached")
      .argument("[id]", "VM id (default --vm, else the only VM)"),
  ).action(action((ctx, id: string | undefined) => vmCommand(ctx, id)));
  addClientOptions(
    program
      .command("regs")
      .description("a VP's registers, like gdb's info registers (a running VM without a session is stopped for the read and resumed)")
      .option("--vp <n>", "VP index (default 0)")
      .option("--fp", "also the x87 and SSE registers (x86-64): st0-st7, fctrl, fstat, ftag, fop, xmm0-xmm15, mxcsr"),
  ).action(action((ctx, opts: { vp?: string; fp?: boolean }) => regsCommand(ctx, opts)));

  const mem = program.command("mem").description("read or write guest memory").usage("read|write ...");
  mem.helpCommand(false);
  addClientOptions(
    mem
      .command("read")
      .description("read LEN bytes at ADDR (a GVA as --vp translates it, or a GPA with --gpa); an xxd-style hexdump")
      .argument("<addr>", "address: 0x…, decimal, or SYMBOL[+OFFSET] with --symbols")
      .argument("<len>", "bytes to read")
      .option("--vp <n>", "VP whose page tables translate a GVA (default 0)")
      .option("--gpa", "ADDR is a guest physical address")
      .option("--out <file>", "write the raw bytes to FILE instead")
      .option("--partial", "read what can be read; unreadable bytes show as ?? (and are zero in --out/--json)"),
  ).action(action((ctx, addr: string, len: string, opts: { vp?: string; gpa?: boolean; out?: string; partial?: boolean }) => memReadCommand(ctx, addr, len, opts)));
  addClientOptions(
    mem
      .command("write")
      .description("write bytes at ADDR (through the session, or one attached for this write)")
      .argument("<addr>", "address: 0x…, decimal, or SYMBOL[+OFFSET] with --symbols")
      .argument("<hex>", 'the bytes in hex: 2a00000000000000, or "2a 00 00 00"')
      .option("--vp <n>", "VP whose page tables translate a GVA (default 0)")
      .option("--gpa", "ADDR is a guest physical address"),
  ).action(action((ctx, addr: string, hexText: string, opts: { vp?: string; gpa?: boolean }) => memWriteCommand(ctx, addr, hexText, opts)));

  addClientOptions(
    program
      .command("translate")
      .description("walk a VP's page tables for GVA: every level's entry and decision, then the GPA, page size and W/U/X")
      .argument("<gva>", "guest virtual address: 0x…, decimal, or SYMBOL[+OFFSET]")
      .option("--vp <n>", "VP index (default 0)"),
  ).action(action((ctx, gva: string, opts: { vp?: string }) => translateCommand(ctx, gva, opts)));
  addClientOptions(
    program
      .command("disasm")
      .description("disassemble COUNT instructions at ADDR (or pc); => marks the VP's pc when the VM is stopped")
      .argument("<addr>", "address: 0x…, decimal, SYMBOL[+OFFSET], or pc")
      .argument("[count]", "instructions (default 10)")
      .option("--vp <n>", "VP whose page tables and pc are used (default 0)")
      .option("--gpa", "ADDR is a guest physical address")
      .addOption(new Option("--syntax <syntax>", "x86-64 syntax").choices(["intel", "att", "nasm", "masm"]).default("intel")),
  ).action(action((ctx, addr: string, count: string | undefined, opts: { vp?: string; gpa?: boolean; syntax?: string }) => disasmCommand(ctx, addr, count, opts)));
  addClientOptions(
    program
      .command("dump")
      .description("write an ELF core file of the VM (gdb -c FILE, readelf); Ctrl-C leaves no file and the VM as found")
      .argument("<file>", "the core file to write")
      .option("--quiet", "no progress")
      .option("--force", "replace FILE if it exists"),
  ).action(action((ctx, file: string, opts: { quiet?: boolean; force?: boolean }) => dumpCommand(ctx, file, opts)));

  addClientOptions(
    program
      .command("console")
      .description("the guest's console output as raw bytes (debug console 0xE9, COM1 UART 0x3F8, a launched QEMU's stdout): what the server holds, then with --follow until the guest powers off")
      .option("-f, --follow", "keep printing new output until the VM powers off (or Ctrl-C)")
      .option("--new", "only output from now on (implies --follow)")
      .option("--from <offset>", "start at this byte offset of the VM's console output (default 0: all the server holds)")
      .option("--source <list>", "only these devices: debugcon, com1, qemu (comma-separated)"),
  ).action(action((ctx, opts: ConsoleOptions) => consoleCommand(ctx, opts)));

  program.commandsGroup("Controlling (in a session):");
  addClientOptions(
    program
      .command("attach")
      .description(`open a session that outlives this command and print its id (as export ${SESSION_ENV}=…); stops the VM`)
      .option("--no-stop", "leave the VM running")
      .option("--take-over", "admin: end the session that holds the VM and attach in its place"),
  ).action(action((ctx, opts: { stop?: boolean; takeOver?: boolean }) => attachCommand(ctx, opts)));
  addClientOptions(
    program
      .command("detach")
      .description("end the session: its breakpoints and watchpoints go, and a VM it stopped runs again")
      .option("--force", "admin: end whatever session holds the VM"),
  ).action(action((ctx, opts: { force?: boolean }) => detachCommand(ctx, opts)));
  addClientOptions(program.command("interrupt").description("stop the session's running VM and print where")).action(action((ctx) => interruptCommand(ctx)));

  const brk = program
    .command("break")
    .description("software breakpoints (any number; guest memory is not patched) or, with --hw, a hardware execute slot")
    .usage("ADDR [options] | break list | break delete ID")
    .argument("[addr]", "address: 0x…, decimal, or SYMBOL[+OFFSET] with --symbols")
    .option("--vp <n>", "only this VP (default every VP)")
    .option("--gpa", "ADDR is a guest physical address")
    .option("--once", "remove it when it fires (run to here)")
    .option("--hw", "a hardware execute slot instead");
  brk.helpCommand(false);
  addClientOptions(brk).action(
    action(async (ctx, addr: string | undefined, opts: { vp?: string; gpa?: boolean; once?: boolean; hw?: boolean }) => {
      if (addr === undefined) {
        brk.outputHelp();
        return;
      }
      await breakCommand(ctx, addr, opts);
    }),
  );
  addClientOptions(brk.command("list").description("the session's breakpoints and watchpoints with their hit counts")).action(action((ctx) => breakListCommand(ctx)));
  addClientOptions(
    brk
      .command("delete")
      .description("delete a software breakpoint (by number, or every one at an address) or a hardware slot (hwN, watchpoints too)")
      .argument("<id>", "breakpoint number, hwN, or the breakpoint's address (0x…, SYMBOL[+OFFSET])")
      .option("--gpa", "the address is a guest physical address"),
  ).action(action((ctx, id: string, opts: { gpa?: boolean }) => breakDeleteCommand(ctx, id, opts)));
  addClientOptions(
    program
      .command("continue")
      .description("run the VM until it stops and print why: reason, VP, pc (and symbol)")
      .option("--timeout <duration>", "stop the VM after this long (10s, 500ms, 2m) and exit 8"),
  ).action(action((ctx, opts: { timeout?: string }) => continueCommand(ctx, opts)));
  addClientOptions(
    program
      .command("step")
      .description("single-step one VP, printing each new pc (without a session: attach, stop, step, detach)")
      .option("--vp <n>", "VP index (default 0)")
      .option("--count <n>", "instructions (default 1)")
      .option("--summary", "print only the final pc"),
  ).action(action((ctx, opts: { vp?: string; count?: string; summary?: boolean }) => stepCommand(ctx, opts)));
  addClientOptions(
    program
      .command("watch")
      .description("a data watchpoint in a hardware slot; a range no slot covers as it is gets the smallest aligned slot around it (printed), or several slots")
      .argument("<addr>", "address: 0x…, decimal, or SYMBOL[+OFFSET] with --symbols")
      .option("--size <n>", "bytes to watch (default 8)")
      .addOption(new Option("--type <type>", "what fires it").choices(["write", "rw"]).default("write"))
      .option("--vp <n>", "only this VP (default every VP)"),
  ).action(action((ctx, addr: string, opts: { size?: string; type?: string; vp?: string }) => watchCommand(ctx, addr, opts)));

  program.commandsGroup("Shell:");
  program
    .command("completion")
    .description("print a completion script: bash, zsh or fish")
    .argument("<shell>", "bash, zsh or fish")
    .addHelpText("after", "\nInstall (bash): vmm-debug completion bash > ~/.local/share/bash-completion/completions/vmm-debug")
    .action((shell: string) => {
      process.stdout.write(completionScript(program, shell));
    });
  program
    .command("help")
    .description("show help for a command: vmm-debug help mem read")
    .argument("[command...]", "the command path")
    .action((path: string[]) => helpFor(program, path));
  return program;
}

/** `vmm-debug help A B`: commander's help of that command, or a passed-through command's own --help. */
async function helpFor(program: Command, path: string[]): Promise<void> {
  let cmd: Command = program;
  for (let i = 0; i < path.length; i++) {
    const next = cmd.commands.find((c) => c.name() === path[i] || c.aliases().includes(path[i]));
    if (!next) {
      throw new UsageError(`unknown command "${path.slice(0, i + 1).join(" ")}"; commands: ${cmd.commands.map((c) => c.name()).join(", ")}`);
    }
    cmd = next;
    const load = (cmd as Command & { passThroughRun?: () => Run }).passThroughRun;
    if (load) {
      await load()([...path.slice(i + 1), "--help"]);
      return;
    }
  }
  cmd.outputHelp();
}
