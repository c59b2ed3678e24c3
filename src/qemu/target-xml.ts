// QEMU's target description: target.xml and its includes over qXfer, and which register is which.
import { type TargetDescription, type TargetRegister, loadTargetDescription } from "../rsp";

/** The architectures this backend drives. */
export type QemuArch = "x86_64" | "aarch64";

/**
 * Loads target.xml and its includes through `readXfer` (qXfer:features:read of one annex).
 * QEMU numbers aarch64 system registers differently from one build or CPU model to the next,
 * so callers load the description on every connection and never hard-code those numbers.
 */
export function loadQemuTargetDescription(readXfer: (annex: string) => Promise<Uint8Array>): Promise<TargetDescription> {
  const decoder = new TextDecoder();
  return loadTargetDescription(async (annex) => decoder.decode(await readXfer(annex)));
}

/** "i386:x86-64" → x86_64, "aarch64" → aarch64, anything else undefined. */
export function qemuArchOf(desc: TargetDescription): QemuArch | undefined {
  const arch = desc.architecture ?? "";
  if (arch === "i386:x86-64") return "x86_64";
  if (arch === "aarch64") return "aarch64";
  if (desc.byName.has("rip")) return "x86_64";
  if (desc.byName.has("x30") && desc.byName.has("pc")) return "aarch64";
  return undefined;
}

/** The program counter: `rip` on x86-64, `pc` on aarch64 (and most other GDB targets). */
export function programCounterOf(desc: TargetDescription): TargetRegister | undefined {
  return desc.byName.get("rip") ?? desc.byName.get("pc") ?? desc.byName.get("eip");
}

/** A register by name, or undefined. Names are case-sensitive as QEMU writes them (`SCTLR`, `TTBR0_EL1`). */
export function registerNamed(desc: TargetDescription, name: string): TargetRegister | undefined {
  return desc.byName.get(name);
}
