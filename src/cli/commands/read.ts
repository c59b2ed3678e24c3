// Commands that look: vms, vm, regs, mem read, translate, disasm (and mem write, its neighbour).
import { writeFileSync } from "node:fs";
import type * as Iced from "iced-x86";
import { type GuestAddress, type VmInfo, VmmDebugError } from "../../client";
import { UsageError } from "../args";
import { hex, parseAddress, parseCount, symbolize } from "../address";
import { type Context, withReads, withStoppedVm } from "../context";
import { CliError, EXIT } from "../exit-codes";
import { formatRegisters, hexdump, pcOf, printJson, registersJson, size, table } from "../format";

export async function vmsCommand(ctx: Context): Promise<void> {
  const vms = await ctx.client.listVms({ deadlineMs: 15_000 });
  if (ctx.json) return printJson(vms);
  process.stdout.write(
    table(
      ["ID", "ARCH", "VPS", "STATE", "BACKEND", "ATTACHED"],
      vms.map((v) => [v.id, v.arch, String(v.vpCount), v.runState, v.backend, v.attached ? `by ${v.attached.holder}` : "-"]),
    ),
  );
}

export async function vmCommand(ctx: Context, id: string | undefined): Promise<void> {
  const info: VmInfo = id !== undefined ? await ctx.client.getVm(id, { deadlineMs: 15_000 }) : await ctx.vm();
  if (ctx.json) return printJson(info);
  const lines = [
    `id:        ${info.id}`,
    `arch:      ${info.arch}`,
    `VPs:       ${info.vpCount}`,
    `state:     ${info.runState}`,
    `backend:   ${info.backend}`,
    `attached:  ${info.attached ? `by ${info.attached.holder} since ${info.attached.attachedAt.toISOString()} (lease until ${info.attached.leaseExpiresAt.toISOString()})` : "no"}`,
    "memory:",
    ...info.memoryRegions.map((r) => `  ${hex(r.gpa).padEnd(14)}- ${hex(r.gpa + r.size).padEnd(14)} ${size(r.size).padEnd(9)} ${r.name}`),
  ];
  const c = info.capabilities;
  if (c) {
    lines.push(
      "capabilities:",
      `  hardware slots per VP:       ${c.hardwareSlotsPerVp}`,
      `  watchpoint types, sizes:     ${c.watchpointTypes.join(", ") || "-"}; ${c.watchpointSizes.join(", ") || "-"} bytes`,
      `  software breakpoints:        ${Object.entries(c.softwareBreakpoints).filter(([, v]) => v).map(([k]) => (k === "perVp" ? "per-VP GVA" : k.toUpperCase())).join(", ") || "none"}`,
      `  memory reads while running:  ${c.memoryReadsWhileRunning}`,
      `  batched stepping:            up to ${c.batchedStepping.maxCount} instructions${c.batchedStepping.traces.length ? `, traces ${c.batchedStepping.traces.join(", ")}` : ""}`,
      `  settable registers:          ${c.setVpStateFields.length} fields`,
    );
  }
  process.stdout.write(lines.join("\n") + "\n");
}

export function vpOption(text: string | undefined, info: VmInfo): number {
  if (text === undefined) return 0;
  const vp = parseCount(text, "--vp", 0, 0xffff);
  if (vp >= info.vpCount) throw new CliError(`VM "${info.id}" has no VP ${vp} (it has ${info.vpCount}: 0..${info.vpCount - 1})`, EXIT.notFound, "VP_OUT_OF_RANGE");
  return vp;
}

export async function regsCommand(ctx: Context, opts: { vp?: string; fp?: boolean }): Promise<void> {
  await withStoppedVm(ctx, "regs", async (access, info) => {
    const vp = vpOption(opts.vp, info);
    if (opts.fp && info.arch !== "x86_64") {
      throw new CliError(`--fp shows the x87 and SSE registers of x86-64 VPs; VM "${info.id}" is ${info.arch}`, EXIT.usage, "ARCH_MISMATCH");
    }
    const state = await access.getVpState(vp);
    if (ctx.json) printJson(registersJson(info.id, vp, state, opts.fp === true));
    else process.stdout.write(formatRegisters(state, ctx.symbols, opts.fp === true));
  });
}

function guestAddress(address: bigint, gpa: boolean | undefined, vp: number): GuestAddress {
  return gpa ? { gpa: address } : { gva: address, vp };
}

const MAX_READ = 64 * 1024 * 1024;

export async function memReadCommand(
  ctx: Context,
  addrText: string,
  lenText: string,
  opts: { vp?: string; gpa?: boolean; out?: string; partial?: boolean },
): Promise<void> {
  const address = parseAddress(addrText, ctx.symbols, opts.gpa === true, "ADDR");
  const length = parseCount(lenText, "LEN", 1, MAX_READ);
  await withReads(ctx, async (access, info) => {
    const vp = vpOption(opts.vp, info);
    const where = guestAddress(address, opts.gpa, vp);
    const signal = undefined;
    const { data, unreadable } = opts.partial ? await access.readMemoryPartial(where, length, signal) : { data: await access.readMemory(where, length, signal), unreadable: [] };
    if (opts.out !== undefined) {
      writeFileSync(opts.out, data);
      process.stderr.write(`vmm-debug: wrote ${length} bytes from ${opts.gpa ? "GPA" : "GVA"} ${hex(address)} to ${opts.out}${unreadable.length ? ` (${unreadable.reduce((n, r) => n + r.length, 0)} unreadable bytes written as zero)` : ""}\n`);
      return;
    }
    if (ctx.json) {
      printJson({ vm: info.id, address, space: opts.gpa ? "gpa" : "gva", ...(opts.gpa ? {} : { vp }), length, data, ...(opts.partial ? { unreadable } : {}) });
      return;
    }
    process.stdout.write(hexdump(address, data, unreadable));
    for (const r of unreadable) {
      process.stderr.write(`vmm-debug: ${hex(address + BigInt(r.offset))}..${hex(address + BigInt(r.offset + r.length))} (${r.length} bytes) unreadable: ${r.reason}\n`);
    }
  });
}

/** Hex bytes: "deadbeef", "de ad be ef", "0xdeadbeef", "de:ad". */
export function parseHexBytes(text: string): Uint8Array {
  const t = text.replace(/^0x/i, "").replace(/[\s:_,]/g, "");
  if (t === "" || !/^[0-9a-f]*$/i.test(t) || t.length % 2 !== 0) throw new UsageError(`HEX: "${text}" is not hex bytes (e.g. 2a00000000000000, or "2a 00 00 00")`);
  return Uint8Array.from(Buffer.from(t, "hex"));
}

export async function memWriteCommand(ctx: Context, addrText: string, hexText: string, opts: { vp?: string; gpa?: boolean }): Promise<void> {
  const address = parseAddress(addrText, ctx.symbols, opts.gpa === true, "ADDR");
  const data = parseHexBytes(hexText);
  // WriteMemory needs the session (it is a control operation), not a stopped VM.
  await ctx.withSession("mem write", false, async (session, info) => {
    const vp = vpOption(opts.vp, info);
    await session.writeMemory(guestAddress(address, opts.gpa, vp), data);
    if (ctx.json) printJson({ vm: info.id, address, space: opts.gpa ? "gpa" : "gva", length: data.length });
    else process.stdout.write(`wrote ${data.length} byte${data.length === 1 ? "" : "s"} at ${opts.gpa ? "GPA" : "GVA"} ${hex(address)}\n`);
  });
}

export async function translateCommand(ctx: Context, gvaText: string, opts: { vp?: string }): Promise<void> {
  const gva = parseAddress(gvaText, ctx.symbols, false, "GVA");
  await withStoppedVm(ctx, "translate", async (access, info) => {
    const vp = vpOption(opts.vp, info);
    const t = await access.translateGva(vp, gva);
    if (ctx.json) return printJson({ vm: info.id, vp, ...t });
    const out: string[] = [`GVA ${hex(gva)} on VP ${vp}: paging ${t.pagingMode}, root table at GPA ${hex(t.rootGpa)}`];
    if (t.levels.length) {
      out.push(
        table(
          ["LEVEL", "NAME", "ENTRY GPA", "ENTRY", "DECISION"],
          t.levels.map((l) => [String(l.level), l.name, hex(l.entryGpa), `0x${l.entry.toString(16).padStart(16, "0")}`, l.decision]),
        ).trimEnd(),
      );
    }
    if (t.mapped) {
      const perms = `${t.writable ? "W" : "-"}${t.user ? "U" : "-"}${t.executable ? "X" : "-"}`;
      out.push(`-> GPA ${hex(t.gpa!)}  page ${size(t.pageSize!)}  ${perms} (writable ${t.writable}, user ${t.user}, executable ${t.executable})`);
    } else {
      out.push(`-> not mapped: ${t.fault}${t.faultLevel !== undefined ? ` at level ${t.faultLevel}` : ""}${t.faultDetail ? `: ${t.faultDetail}` : ""}`);
    }
    process.stdout.write(out.join("\n") + "\n");
    if (!t.mapped) throw new CliError(`GVA ${hex(gva)} is not mapped on VP ${vp}`, EXIT.unmapped, "GVA_NOT_MAPPED");
  });
}

export interface DisasmLine {
  address: bigint;
  bytes: string;
  text: string;
  symbol?: string;
  current: boolean;
}

/** x86-64 with iced-x86's formatter (loaded on first use: it is WebAssembly). */
export function disasmX86(bytes: Uint8Array, address: bigint, count: number, syntax = "intel"): { address: bigint; length: number; text: string }[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Decoder, DecoderOptions, Formatter, FormatterSyntax } = require("iced-x86") as typeof Iced;
  const SYNTAX: Record<string, Iced.FormatterSyntax> = { intel: FormatterSyntax.Intel, att: FormatterSyntax.Gas, gas: FormatterSyntax.Gas, nasm: FormatterSyntax.Nasm, masm: FormatterSyntax.Masm };
  const s = SYNTAX[syntax];
  if (s === undefined) throw new UsageError(`--syntax must be one of ${Object.keys(SYNTAX).join(", ")}, got "${syntax}"`);
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = address;
  const formatter = new Formatter(s);
  const out: { address: bigint; length: number; text: string }[] = [];
  try {
    while (out.length < count && decoder.canDecode) {
      const insn = decoder.decode();
      try {
        out.push({ address: insn.ip, length: insn.length, text: insn.isInvalid ? "(bad)" : formatter.format(insn) });
      } finally {
        insn.free();
      }
    }
  } finally {
    decoder.free();
    formatter.free();
  }
  return out;
}

interface CapstoneInsn {
  address: bigint | number;
  size: number;
  mnemonic: string;
  op_str: string;
}
interface CapstoneModule {
  ARCH_ARM64: number;
  MODE_ARM: number;
  Capstone: new (arch: number, mode: number) => { disasm(bytes: number[] | Uint8Array, address: number | bigint, count?: number): CapstoneInsn[]; close(): void };
}

/** aarch64 with capstone (WebAssembly, loaded on first use). */
export async function disasmAarch64(bytes: Uint8Array, address: bigint, count: number): Promise<{ address: bigint; length: number; text: string }[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cs = (await (require("@alexaltea/capstone-js") as () => Promise<CapstoneModule>)()) as CapstoneModule;
  const out: { address: bigint; length: number; text: string }[] = [];
  const c = new cs.Capstone(cs.ARCH_ARM64, cs.MODE_ARM);
  try {
    for (let off = 0; off + 4 <= bytes.length && out.length < count; off += 4) {
      const word = Array.from(bytes.subarray(off, off + 4));
      const [insn] = c.disasm(word, address + BigInt(off));
      out.push({ address: address + BigInt(off), length: 4, text: insn ? `${insn.mnemonic}${insn.op_str ? ` ${insn.op_str}` : ""}` : `.inst 0x${Buffer.from(word).readUInt32LE(0).toString(16).padStart(8, "0")}` });
    }
  } finally {
    c.close();
  }
  return out;
}

export async function disasmCommand(ctx: Context, addrText: string, countText: string | undefined, opts: { vp?: string; gpa?: boolean; syntax?: string }): Promise<void> {
  const count = countText === undefined ? 10 : parseCount(countText, "COUNT", 1, 10_000);
  await withReads(ctx, async (access, info) => {
    const vp = vpOption(opts.vp, info);
    // The current pc, when the VM is stopped (a running VM is not stopped just to mark it).
    let pc: bigint | undefined;
    if (info.runState === "stopped") pc = pcOf(await access.getVpState(vp));
    let address: bigint;
    if (/^\$?pc$/i.test(addrText.trim()) || /^\$?rip$/i.test(addrText.trim())) {
      if (pc === undefined) throw new CliError(`disasm pc: VM "${info.id}" is ${info.runState}, it has no current pc to show`, EXIT.refused, "VM_RUNNING");
      address = pc;
    } else {
      address = parseAddress(addrText, ctx.symbols, opts.gpa === true, "ADDR");
    }
    const want = info.arch === "x86_64" ? count * 15 : count * 4;
    const where = (len: number) => access.readMemory(opts.gpa ? { gpa: address } : { gva: address, vp }, len);
    let bytes: Uint8Array;
    try {
      bytes = await where(want);
    } catch (e) {
      // The read ran into an unmapped page: disassemble up to it.
      const toPageEnd = 4096 - Number(address & 0xfffn);
      if (!(e instanceof VmmDebugError && (e.reason === "GVA_NOT_MAPPED" || e.reason === "GPA_UNMAPPED")) || toPageEnd >= want) throw e;
      bytes = await where(toPageEnd);
    }
    const insns = info.arch === "x86_64" ? disasmX86(bytes, address, count, opts.syntax) : await disasmAarch64(bytes, address, count);
    const lines: DisasmLine[] = insns.map((i) => {
      const off = Number(i.address - address);
      return {
        address: i.address,
        bytes: Buffer.from(bytes.subarray(off, off + i.length)).toString("hex"),
        text: i.text,
        symbol: symbolize(i.address, ctx.symbols, opts.gpa === true),
        current: pc !== undefined && !opts.gpa && i.address === pc,
      };
    });
    if (ctx.json) return printJson({ vm: info.id, vp, arch: info.arch, pc, instructions: lines });
    let out = "";
    const head = (l: DisasmLine) => `${hex(l.address)}${l.symbol ? ` <${l.symbol}>` : ""}:`;
    const width = Math.max(...lines.map((l) => head(l).length));
    const bytesWidth = Math.max(...lines.map((l) => l.bytes.length));
    for (const l of lines) {
      if (l.symbol && !l.symbol.includes("+")) out += `${hex(l.address)} <${l.symbol}>:\n`;
      out += `${l.current ? "=> " : "   "}${head(l).padEnd(width)}  ${l.bytes.padEnd(bytesWidth)}  ${l.text}\n`;
    }
    process.stdout.write(out);
  });
}

