// QEMU arguments that boot a committed guest image, from the `qemu` section of its manifest.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Arch } from "../core";

interface QemuSection {
  kernel: string;
  args: string[];
  console: { chardev: string; args: string[] };
}

/** The arguments that boot `manifestPath`'s guest with its console on QEMU's stdout, and its arch. */
export function qemuArgsForGuest(manifestPath: string, smp?: number): { arch: Arch; args: string[] } {
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { arch: Arch; qemu?: QemuSection };
  const q = manifest.qemu;
  if (!q) throw new Error(`${manifestPath} has no qemu section: this guest does not boot on QEMU`);
  const args = [...q.args];
  if (smp !== undefined) {
    const i = args.indexOf("-smp");
    if (i >= 0) args[i + 1] = String(smp);
    else args.push("-smp", String(smp));
  }
  return {
    arch: manifest.arch,
    args: [
      ...args,
      "-kernel",
      resolve(dirname(manifestPath), q.kernel),
      "-display",
      "none",
      "-nodefaults",
      "-chardev",
      `stdio,id=${q.console.chardev}`,
      ...q.console.args,
    ],
  };
}
