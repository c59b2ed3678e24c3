// `monitor …` (qRcmd) commands of the gdb bridge. Each prints to gdb's console and answers OK,
// or prints why not and answers an error. They use only the SDK, like the rest of the bridge.
import type { Session, Translation, VmInfo } from "../client";

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
  translate GVA            the guest-physical address of GVA on the current thread's VP, with every level of the walk
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
 * Translates through the server's TranslateGva (the walk GVA reads use) and prints where the
 * address leads, then every entry the walk read and what it decided.
 */
async function translate(ctx: MonitorContext, gva: bigint): Promise<void> {
  const t = await ctx.session.translateGva(ctx.vp, gva);
  ctx.print(translationText(ctx.vp, t));
}

/** The monitor's text for one translation: a summary line, then one line per level. */
export function translationText(vp: number, t: Translation): string {
  const mode = t.pagingMode === "off" ? "paging off" : `${t.pagingMode} paging, root table at GPA ${h(t.rootGpa)}`;
  let out: string;
  if (t.mapped) {
    const size = t.pageSize ?? 4096n;
    const gpa = t.gpa ?? 0n;
    const perms = [t.writable ? "writable" : "read-only", t.user ? "user" : "supervisor", t.executable ? "executable" : "no-execute"].join(", ");
    out = `VP ${vp}: GVA ${h(t.gva)} -> GPA ${h(gpa)} (${pageSizeText(size)} page at GPA ${h(gpa - (t.gva & (size - 1n)))}; ${mode}; ${perms})\n`;
  } else {
    out = `VP ${vp}: GVA ${h(t.gva)} is not mapped: ${t.faultDetail ?? t.fault} (${mode})\n`;
  }
  for (const l of t.levels) {
    out += `  ${l.name.padEnd(5)} (level ${l.level}) at GPA ${h(l.entryGpa)} = ${h(l.entry)}: ${DECISIONS[l.decision]}\n`;
  }
  return out;
}

const DECISIONS: Record<Translation["levels"][number]["decision"], string> = {
  table: "next table",
  page: "maps the page",
  notPresent: "not present",
  reserved: "reserved bits set",
};

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
