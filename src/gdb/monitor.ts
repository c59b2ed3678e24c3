// `monitor …` (qRcmd) commands of the gdb bridge. Each prints to gdb's console and answers OK,
// or prints why not and answers an error. They use only the SDK, like the rest of the bridge.
import type { DebuggerVpState, Session, VmInfo } from "../client";
import { walkAarch64 } from "../core/aarch64/page-walk";
import { walkX86, x86PagingMode } from "../core/x86/page-walk";

export interface MonitorContext {
  session: Session;
  vmInfo(): Promise<VmInfo>;
  /** The VP gdb's commands apply to (Hg). */
  vp: number;
  print(text: string): void;
}

/** A monitor command refused for bad input: printed, then answered with `E16`. */
export class MonitorUsage extends Error {}

const HELP = `vmm-debug monitor commands (thread N is VP N-1):
  vps                      each VP with its pc, stack pointer, flags and translation root
  vm                       the VM's id, architecture, VPs, backend and run state
  capabilities             what this VM's backend can do (slots, watchpoints, software breakpoints, …)
  translate GVA            the guest-physical address of GVA on the current thread's VP
  gpa read ADDR LEN        hexdump LEN bytes (up to 4096) at guest-physical ADDR
`;

const MAX_GPA_READ = 4096;

export async function runMonitor(command: string, ctx: MonitorContext): Promise<void> {
  const words = command.split(/\s+/).filter((w) => w !== "");
  switch (words[0]) {
    case undefined:
    case "help":
      ctx.print(HELP);
      return;
    case "vps":
      return vps(ctx);
    case "vm": {
      const info = await ctx.vmInfo();
      ctx.print(`VM "${info.id}": ${info.arch}, ${info.vpCount} VP(s), ${info.backend} backend, ${info.runState}\n`);
      return;
    }
    case "capabilities":
    case "caps":
      return capabilities(ctx);
    case "translate": {
      if (words.length !== 2) throw new MonitorUsage("usage: monitor translate GVA");
      return translate(ctx, parseAddress(words[1], "GVA"));
    }
    case "gpa": {
      if (words[1] !== "read" || words.length !== 4) throw new MonitorUsage("usage: monitor gpa read ADDR LEN");
      const address = parseAddress(words[2], "ADDR");
      const length = Number(parseAddress(words[3], "LEN"));
      if (length < 1 || length > MAX_GPA_READ) throw new MonitorUsage(`LEN must be 1 to ${MAX_GPA_READ}`);
      const bytes = await ctx.session.readMemory({ gpa: address }, length);
      ctx.print(hexdump(address, bytes));
      return;
    }
    default:
      throw new MonitorUsage(`unknown monitor command "${words[0]}" (try "monitor help")`);
  }
}

/** Hex (0x…) or decimal, as gdb users type addresses. */
function parseAddress(text: string, what: string): bigint {
  if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text)) throw new MonitorUsage(`${what} must be a number (0x… hex or decimal), got "${text}"`);
  const v = BigInt(text);
  if (v > 0xffff_ffff_ffff_ffffn) throw new MonitorUsage(`${what} ${text} does not fit in 64 bits`);
  return v;
}

const h = (v: bigint) => "0x" + v.toString(16);

async function vps(ctx: MonitorContext): Promise<void> {
  for (const { vp, state } of await ctx.session.getVpStates()) {
    if (state.arch === "x86_64") {
      const s = state.state;
      ctx.print(`VP ${vp} (thread ${vp + 1}): rip ${h(s.rip)} rsp ${h(s.gp[4])} rflags ${h(s.rflags)} cr3 ${h(s.cr3)}\n`);
    } else {
      const s = state.state;
      ctx.print(`VP ${vp} (thread ${vp + 1}): pc ${h(s.pc)} sp_el0 ${h(s.spEl0)} sp_el1 ${h(s.spEl1)} cpsr ${h(s.cpsr)} ttbr0_el1 ${h(s.ttbr0El1)} ttbr1_el1 ${h(s.ttbr1El1)}\n`);
    }
  }
}

async function capabilities(ctx: MonitorContext): Promise<void> {
  const info = await ctx.vmInfo();
  const c = info.capabilities;
  if (!c) {
    ctx.print("the server does not report capabilities (it predates them)\n");
    return;
  }
  const sw = c.softwareBreakpoints;
  const swText = !sw.gva && !sw.gpa ? "none" : [sw.gva ? `by GVA${sw.perVp ? " (all VPs or one)" : ""}` : "", sw.gpa ? "by GPA" : ""].filter(Boolean).join(", ");
  ctx.print(
    `VM "${info.id}" (${info.backend}, ${info.arch}):\n` +
      `  hardware slots per VP: ${c.hardwareSlotsPerVp}\n` +
      `  watchpoints: ${c.watchpointTypes.join(", ") || "none"}; sizes ${c.watchpointSizes.join(", ") || "none"}\n` +
      `  software breakpoints: ${swText}\n` +
      `  register writes: ${c.setVpStateFields.join(", ")}\n` +
      `  memory reads while running: ${c.memoryReadsWhileRunning}\n` +
      `  batched stepping: up to ${c.batchedStepping.maxCount} instructions, traces ${c.batchedStepping.traces.join(", ") || "none"}\n`,
  );
}

/**
 * Translates with the core's own page walks (the ones the server uses for GVA reads), fed by
 * GPA reads through the session: the walk runs synchronously, so each table entry it asks for
 * that is not yet read ends that pass; the entry is read and the walk runs again (at most one
 * pass per paging level).
 */
async function translate(ctx: MonitorContext, gva: bigint): Promise<void> {
  const state = await ctx.session.getVpState(ctx.vp);
  const entries = new Map<bigint, bigint | undefined>();
  class NeedEntry {
    constructor(readonly gpa: bigint) {}
  }
  const readEntry = (gpa: bigint): bigint | undefined => {
    if (!entries.has(gpa)) throw new NeedEntry(gpa);
    return entries.get(gpa);
  };
  for (let pass = 0; pass <= 6; pass++) {
    try {
      const result = walk(state, gva, readEntry);
      if (result.ok) {
        const offset = gva & (result.pageSize - 1n);
        ctx.print(`VP ${ctx.vp}: GVA ${h(gva)} -> GPA ${h(result.gpa)} (${pageSizeText(result.pageSize)} page at GPA ${h(result.gpa - offset)}; ${modeText(state)})\n`);
      } else {
        ctx.print(`VP ${ctx.vp}: GVA ${h(gva)} is not mapped: ${result.detail} (${modeText(state)})\n`);
      }
      return;
    } catch (e) {
      if (!(e instanceof NeedEntry)) throw e;
      entries.set(e.gpa, await readEntryAt(ctx.session, e.gpa));
    }
  }
  throw new Error("the page walk did not finish within 6 levels");
}

function walk(state: DebuggerVpState, gva: bigint, readEntry: (gpa: bigint) => bigint | undefined) {
  return state.arch === "x86_64" ? walkX86(state.state, gva, readEntry) : walkAarch64(state.state, gva, readEntry);
}

/** One little-endian u64 table entry by GPA; undefined where the GPA is not RAM. */
async function readEntryAt(session: Session, gpa: bigint): Promise<bigint | undefined> {
  try {
    const b = await session.readMemory({ gpa }, 8);
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  } catch (e) {
    if ((e as { reason?: string }).reason === "GPA_UNMAPPED") return undefined;
    throw e;
  }
}

function modeText(state: DebuggerVpState): string {
  if (state.arch === "x86_64") return `${x86PagingMode(state.state)} paging, cr3 ${h(state.state.cr3)}`;
  return (state.state.sctlrEl1 & 1n) === 0n ? "MMU off" : `stage 1, ttbr0_el1 ${h(state.state.ttbr0El1)} ttbr1_el1 ${h(state.state.ttbr1El1)}`;
}

function pageSizeText(size: bigint): string {
  if (size >= 1n << 30n) return `${size >> 30n} GiB`;
  if (size >= 1n << 20n) return `${size >> 20n} MiB`;
  return `${size >> 10n} KiB`;
}

/** 16 bytes a line: address, hex, printable ASCII. */
export function hexdump(address: bigint, bytes: Uint8Array): string {
  let out = "";
  for (let at = 0; at < bytes.length; at += 16) {
    const line = bytes.subarray(at, at + 16);
    const hexPart = Array.from(line, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const text = Array.from(line, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    out += `${(address + BigInt(at)).toString(16).padStart(16, "0")}  ${hexPart.padEnd(47)}  ${text}\n`;
  }
  return out;
}
