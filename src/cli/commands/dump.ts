// `vmm-debug dump FILE`: an ELF core file of the VM, with progress; Ctrl-C leaves no file behind.
import { existsSync } from "node:fs";
import { writeCoreFile } from "../../client";
import { type Context, interrupt, withStoppedVm } from "../context";
import { CliError, EXIT } from "../exit-codes";
import { printJson } from "../format";

export async function dumpCommand(ctx: Context, file: string, opts: { quiet?: boolean; force?: boolean }): Promise<void> {
  if (existsSync(file) && !opts.force) throw new CliError(`${file} exists: --force replaces it`, EXIT.usage);
  await withStoppedVm(ctx, "dump", async (_access, info) => {
    const tty = process.stderr.isTTY === true && !opts.quiet && !ctx.json;
    let bar: import("cli-progress").SingleBar | undefined;
    let lastPercent = -10;
    const started = Date.now();
    const onProgress = (done: bigint, total: bigint) => {
      if (opts.quiet || ctx.json) return;
      if (tty) {
        if (!bar) {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { SingleBar, Presets } = require("cli-progress") as typeof import("cli-progress");
          bar = new SingleBar({ format: "dump [{bar}] {percentage}% | {done} of {all} | {eta_formatted} left", stream: process.stderr, hideCursor: true }, Presets.shades_classic);
          bar.start(Number(total), 0, { done: mib(0n), all: mib(total) });
        }
        bar.update(Number(done), { done: mib(done), all: mib(total) });
        return;
      }
      const percent = total === 0n ? 100 : Number((done * 100n) / total);
      if (Math.floor(percent / 10) > Math.floor(lastPercent / 10) || (done === total && percent !== lastPercent)) {
        lastPercent = percent;
        process.stderr.write(`vmm-debug: dump ${percent}% (${mib(done)} of ${mib(total)})\n`);
      }
    };
    let bytes: bigint;
    try {
      bytes = await writeCoreFile(ctx.client, info.id, file, { signal: interrupt.signal, onProgress });
    } catch (e) {
      if (interrupt.signal.aborted) throw new CliError(`dump interrupted: ${file} not written`, EXIT.interrupted);
      throw e;
    } finally {
      bar?.stop();
    }
    const seconds = (Date.now() - started) / 1000;
    if (ctx.json) printJson({ vm: info.id, file, bytes, seconds });
    else process.stdout.write(`wrote ${file}: ELF core of VM "${info.id}" (${info.vpCount} VP${info.vpCount === 1 ? "" : "s"}), ${bytes} bytes in ${seconds.toFixed(1)} s\n`);
  });
}

function mib(n: bigint): string {
  return `${(Number(n) / 1048576).toFixed(1)} MiB`;
}
