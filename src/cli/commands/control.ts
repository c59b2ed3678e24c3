// Commands that control: attach, detach, interrupt, break, continue, step, watch.
import type { DebugStopReason, HardwareBreakpoint, Session, VmInfo } from "../../client";
import { UsageError } from "../args";
import { hex, parseAddress, parseCount, symbolize } from "../address";
import {
  type Context,
  SESSION_ENV,
  type SessionFile,
  interrupt,
  readSessionFile,
  removeSessionFile,
  slotsOf,
  stopVm,
  writeSessionFile,
} from "../context";
import { CliError, EXIT } from "../exit-codes";
import { describeStop, pcOf, printJson, table } from "../format";
import { alignRange, splitRange, type SlotRange } from "../watch-range";
import { vpOption } from "./read";

function needSession(ctx: Context, what: string): void {
  if (!ctx.sessionId) {
    throw new CliError(
      `${what} needs a session that outlives this command: run \`eval "$(vmm-debug attach)"\` first (or pass --session ID)`,
      EXIT.refused,
      "NOT_ATTACHED",
    );
  }
}

export async function attachCommand(ctx: Context, opts: { stop?: boolean; takeOver?: boolean }): Promise<void> {
  const info = await ctx.vm();
  const session = await ctx.client.attach(info.id, { transport: "unary", takeOver: opts.takeOver === true, deadlineMs: 15_000 });
  let stopped = false;
  try {
    if (opts.stop !== false && info.runState === "running") {
      await stopVm(session);
      stopped = true;
    }
  } catch (e) {
    await session.detach().catch(() => undefined);
    throw e;
  }
  writeSessionFile(session.id, { vm: info.id, server: ctx.server, leaseMs: session.lease, slots: {} });
  const runState = stopped ? "stopped" : info.runState;
  if (ctx.json) {
    printJson({ sessionId: session.id, vm: info.id, leaseMs: session.lease, runState });
    return;
  }
  process.stdout.write(`export ${SESSION_ENV}=${session.id}\n`);
  process.stderr.write(
    `vmm-debug: attached to VM "${info.id}" as session ${session.id} (VM ${runState}${stopped ? " by this attach" : ""}; ` +
      `the session ends after ${Math.round(session.lease / 1000)} s without a command, or at \`vmm-debug detach\`). ` +
      `Use it with --session ${session.id}, or eval this command's output to set $${SESSION_ENV}.\n`,
  );
}

export async function detachCommand(ctx: Context, opts: { force?: boolean }): Promise<void> {
  if (opts.force) {
    const info = await ctx.vm();
    await ctx.client.forceDetach(info.id);
    if (ctx.sessionId) removeSessionFile(ctx.sessionId);
    const after = await ctx.vm();
    if (ctx.json) printJson({ vm: info.id, forced: true, runState: after.runState });
    else process.stdout.write(`ended whatever session held VM "${info.id}"; it is ${after.runState}\n`);
    return;
  }
  needSession(ctx, "detach");
  const session = (await ctx.namedSession())!;
  try {
    await session.detach();
  } finally {
    removeSessionFile(session.id);
  }
  const after = await ctx.vm();
  if (ctx.json) printJson({ vm: after.id, sessionId: session.id, runState: after.runState });
  else {
    process.stdout.write(`detached from VM "${after.id}" (session ${session.id.slice(0, 8)}…); it is ${after.runState}\n`);
    if (process.env[SESSION_ENV] === session.id) process.stderr.write(`vmm-debug: the session is over: unset ${SESSION_ENV}\n`);
  }
}

/** Where a stop left the VP it names (VP 0 for a VM-wide stop): pc and symbol, if the VP can be read. */
async function stopReport(ctx: Context, session: Session, info: VmInfo, reason: DebugStopReason): Promise<{ reason: DebugStopReason; vp?: number; pc?: bigint; symbol?: string; text: string }> {
  const vp = "vp" in reason ? reason.vp : 0;
  let pc: bigint | undefined;
  if (reason.kind !== "powerOff") {
    try {
      pc = pcOf(await session.getVpState(vp));
    } catch {
      pc = undefined;
    }
  }
  const symbol = pc === undefined ? undefined : symbolize(pc, ctx.symbols);
  const text = `stopped: ${describeStop(reason)}${pc === undefined ? "" : `; VP ${vp} pc ${hex(pc)}${symbol ? ` <${symbol}>` : ""}`}`;
  return { reason, ...("vp" in reason ? { vp } : {}), ...(pc === undefined ? {} : { pc, vpOfPc: vp }), ...(symbol ? { symbol } : {}), text };
}

function printStop(ctx: Context, info: VmInfo, report: Awaited<ReturnType<typeof stopReport>>, extra: object = {}): void {
  const { text, ...rest } = report;
  if (ctx.json) printJson({ vm: info.id, ...rest, ...extra });
  else process.stdout.write(text + "\n");
}

export async function interruptCommand(ctx: Context): Promise<void> {
  needSession(ctx, "interrupt");
  await ctx.withSession("interrupt", false, async (session, info) => {
    if (info.runState !== "running") {
      if (ctx.json) printJson({ vm: info.id, runState: info.runState, alreadyStopped: true });
      else process.stdout.write(`VM "${info.id}" is already ${info.runState}\n`);
      return;
    }
    const reason = await stopVm(session);
    printStop(ctx, info, await stopReport(ctx, session, info, reason));
  });
}

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--timeout must be a duration such as 10s, 500ms or 2m, got "${text}"`);
  const n = Number(m[1]);
  return Math.round(m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000);
}

export async function continueCommand(ctx: Context, opts: { timeout?: string }): Promise<void> {
  needSession(ctx, "continue");
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
  await ctx.withSession("continue", false, async (session, info) => {
    let why: "timeout" | "interrupted" | undefined;
    const stopIt = (cause: "timeout" | "interrupted") => {
      if (why) return;
      why = cause;
      session.break().catch(() => undefined);
    };
    const onInterrupt = () => stopIt("interrupted");
    interrupt.signal.addEventListener("abort", onInterrupt, { once: true });
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => stopIt("timeout"), timeoutMs);
    let reason: DebugStopReason;
    try {
      reason = await session.resume();
    } finally {
      if (timer) clearTimeout(timer);
      interrupt.signal.removeEventListener("abort", onInterrupt);
    }
    printStop(ctx, info, await stopReport(ctx, session, info, reason), why ? { stoppedBecause: why } : {});
    if (why === "timeout") throw new CliError(`no stop within ${opts.timeout}: stopped the VM (it stays stopped in the session)`, EXIT.timeout);
    if (why === "interrupted") throw new CliError("interrupted: stopped the VM (it stays stopped in the session)", EXIT.interrupted);
  });
}

export async function stepCommand(ctx: Context, opts: { vp?: string; count?: string; summary?: boolean }): Promise<void> {
  const count = opts.count === undefined ? 1 : parseCount(opts.count, "--count", 1, 1_000_000);
  await ctx.withSession("step", true, async (session, info) => {
    const vp = vpOption(opts.vp, info);
    const caps = info.capabilities?.batchedStepping;
    let executed = 0;
    let halted = false;
    let stop: DebugStopReason | undefined;
    let pcs: bigint[] = [];
    if (caps && caps.traces.includes("pc") && count <= caps.maxCount) {
      const r = await session.step(vp, { count, trace: "pc" });
      executed = r.executed;
      halted = r.halted;
      stop = r.stop;
      pcs = Array.from(r.pcs);
    } else {
      // One single-step at a time (a backend without batched traces); the session's slots are kept.
      const file = ctx.sessionId ? readSessionFile(ctx.sessionId) : undefined;
      const slots = slotsOf(file, vp, info.capabilities?.hardwareSlotsPerVp ?? 4);
      await session.setDebugState(vp, slots);
      try {
        for (let i = 0; i < count; i++) {
          if (interrupt.signal.aborted) break;
          const r = await session.step(vp);
          if (r.kind !== "singleStep") {
            stop = r;
            break;
          }
          executed++;
          pcs.push(pcOf(await session.getVpState(vp)));
        }
      } finally {
        await session.setDebugState(vp, slots);
      }
    }
    const pc = pcOf(await session.getVpState(vp));
    const sym = (a: bigint) => {
      const s = symbolize(a, ctx.symbols);
      return s ? ` <${s}>` : "";
    };
    if (ctx.json) {
      printJson({ vm: info.id, vp, executed, halted, ...(stop ? { stop } : {}), pcs, pc, ...(symbolize(pc, ctx.symbols) ? { symbol: symbolize(pc, ctx.symbols) } : {}) });
    } else {
      let out = "";
      if (!opts.summary) for (const p of pcs) out += `${hex(p)}${sym(p)}\n`;
      out += `VP ${vp}: ${executed} instruction${executed === 1 ? "" : "s"} executed; pc ${hex(pc)}${sym(pc)}${halted ? "; halted (HLT)" : ""}${stop ? `; stopped early: ${describeStop(stop)}` : ""}\n`;
      process.stdout.write(out);
    }
    if (interrupt.signal.aborted) throw new CliError("interrupted", EXIT.interrupted);
  });
}

// --- hardware slots, kept in the session file ---

function sessionFileFor(ctx: Context, info: VmInfo): SessionFile {
  return readSessionFile(ctx.sessionId!) ?? { vm: info.id, server: ctx.server, leaseMs: 0, slots: {} };
}

function targetVps(vpText: string | undefined, info: VmInfo): number[] {
  return vpText === undefined ? Array.from({ length: info.vpCount }, (_, i) => i) : [vpOption(vpText, info)];
}

/** Arms `bps` in slots free on every VP of `vps`; returns the slot of each. */
async function armSlots(ctx: Context, session: Session, info: VmInfo, vps: number[], bps: HardwareBreakpoint[]): Promise<number[]> {
  const file = sessionFileFor(ctx, info);
  const count = info.capabilities?.hardwareSlotsPerVp ?? 4;
  const free: number[] = [];
  for (let slot = 0; slot < count; slot++) if (vps.every((vp) => slotsOf(file, vp, count).breakpoints[slot] === null)) free.push(slot);
  if (free.length < bps.length) {
    throw new CliError(
      `${bps.length === 1 ? "no hardware slot is" : `only ${free.length} hardware slot${free.length === 1 ? " is" : "s are"}`} free on ${vps.length === 1 ? `VP ${vps[0]}` : "every VP"} (${count} per VP${bps.length > 1 ? `, ${bps.length} needed` : ""}): vmm-debug break list shows them, break delete hwN frees one`,
      EXIT.refused,
      "TOO_MANY_BREAKPOINTS",
    );
  }
  const slots = free.slice(0, bps.length);
  for (const vp of vps) {
    const state = slotsOf(file, vp, count);
    slots.forEach((slot, i) => (state.breakpoints[slot] = bps[i]));
    await session.setDebugState(vp, state);
    file.slots[String(vp)] = state.breakpoints;
  }
  writeSessionFile(ctx.sessionId!, file);
  return slots;
}

export async function breakCommand(ctx: Context, addrText: string, opts: { vp?: string; gpa?: boolean; once?: boolean; hw?: boolean }): Promise<void> {
  needSession(ctx, "break");
  const address = parseAddress(addrText, ctx.symbols, opts.gpa === true, "ADDR");
  if (opts.hw && opts.gpa) throw new UsageError("--hw takes a virtual address (hardware slots watch GVAs): drop --gpa");
  if (opts.hw && opts.once) throw new UsageError("--once is for software breakpoints (a hardware slot stays until break delete)");
  const sym = symbolize(address, ctx.symbols, opts.gpa === true);
  const at = `${opts.gpa ? "GPA " : ""}${hex(address)}${sym ? ` <${sym}>` : ""}`;
  await ctx.withSession("break", true, async (session, info) => {
    if (opts.hw) {
      const vps = targetVps(opts.vp, info);
      const [slot] = await armSlots(ctx, session, info, vps, [{ address, type: "execute", size: 1 }]);
      if (ctx.json) printJson({ vm: info.id, id: `hw${slot}`, kind: "hardware", address, vps, slot });
      else process.stdout.write(`hardware breakpoint hw${slot} at ${at} on ${vps.length === 1 ? `VP ${vps[0]}` : "every VP"} (slot ${slot})\n`);
      return;
    }
    const vp = opts.vp === undefined ? undefined : vpOption(opts.vp, info);
    const where = opts.gpa ? { gpa: address } : vp === undefined ? { gva: address } : { gva: address, vp };
    const { id, existing } = await session.insertSoftwareBreakpoint(where, { oneShot: opts.once === true });
    if (ctx.json) printJson({ vm: info.id, id, kind: "software", address, space: opts.gpa ? "gpa" : "gva", ...(vp === undefined ? {} : { vp }), oneShot: opts.once === true, existing });
    else process.stdout.write(`${existing ? "already had " : ""}breakpoint ${id} at ${at}${vp === undefined ? (opts.gpa ? "" : " (every VP)") : ` (VP ${vp})`}${opts.once ? ", once" : ""}\n`);
  });
}

export async function breakListCommand(ctx: Context): Promise<void> {
  needSession(ctx, "break list");
  await ctx.withSession("break list", false, async (session, info) => {
    const software = await session.listSoftwareBreakpoints();
    const file = sessionFileFor(ctx, info);
    const count = info.capabilities?.hardwareSlotsPerVp ?? 4;
    const hardware: { id: string; slot: number; breakpoint: HardwareBreakpoint; vps: number[] }[] = [];
    for (let slot = 0; slot < count; slot++) {
      const byKey = new Map<string, { bp: HardwareBreakpoint; vps: number[] }>();
      for (let vp = 0; vp < info.vpCount; vp++) {
        const bp = slotsOf(file, vp, count).breakpoints[slot];
        if (!bp) continue;
        const key = `${bp.address}/${bp.type}/${bp.size}`;
        const entry = byKey.get(key) ?? { bp, vps: [] };
        entry.vps.push(vp);
        byKey.set(key, entry);
      }
      for (const { bp, vps } of byKey.values()) hardware.push({ id: `hw${slot}`, slot, breakpoint: bp, vps });
    }
    if (ctx.json) return printJson({ vm: info.id, software, hardware });
    const rows = [
      ...software.map((b) => {
        const a = "gpa" in b.address ? b.address.gpa : b.address.gva;
        const s = symbolize(a, ctx.symbols, "gpa" in b.address);
        return [
          String(b.id),
          b.oneShot ? "software, once" : "software",
          `${"gpa" in b.address ? "GPA " : ""}${hex(a)}${s ? ` <${s}>` : ""}`,
          "gpa" in b.address ? "-" : b.address.vp === undefined ? "all" : String(b.address.vp),
          String(b.hitCount),
        ];
      }),
      ...hardware.map((h) => {
        const s = symbolize(h.breakpoint.address, ctx.symbols);
        const what = h.breakpoint.type === "execute" ? "hw execute" : `hw ${h.breakpoint.type === "write" ? "write" : "read/write"} ${h.breakpoint.size}`;
        return [h.id, what, `${hex(h.breakpoint.address)}${s ? ` <${s}>` : ""}`, h.vps.length === info.vpCount ? "all" : h.vps.join(","), "-"];
      }),
    ];
    if (rows.length === 0) process.stdout.write("no breakpoints or watchpoints\n");
    else process.stdout.write(table(["ID", "TYPE", "ADDRESS", "VPS", "HITS"], rows));
  });
}

export async function breakDeleteCommand(ctx: Context, idText: string, opts: { gpa?: boolean } = {}): Promise<void> {
  needSession(ctx, "break delete");
  await ctx.withSession("break delete", true, async (session, info) => {
    const hw = /^hw(\d)$/i.exec(idText.trim());
    if (hw) {
      const slot = Number(hw[1]);
      const file = sessionFileFor(ctx, info);
      const count = info.capabilities?.hardwareSlotsPerVp ?? 4;
      let cleared = 0;
      for (let vp = 0; vp < info.vpCount; vp++) {
        const state = slotsOf(file, vp, count);
        if (!state.breakpoints[slot]) continue;
        state.breakpoints[slot] = null;
        await session.setDebugState(vp, state);
        file.slots[String(vp)] = state.breakpoints;
        cleared++;
      }
      if (cleared === 0) throw new CliError(`no hardware breakpoint or watchpoint hw${slot} in this session (vmm-debug break list)`, EXIT.notFound);
      writeSessionFile(ctx.sessionId!, file);
      if (ctx.json) printJson({ vm: info.id, deleted: `hw${slot}`, vps: cleared });
      else process.stdout.write(`deleted hw${slot} (on ${cleared} VP${cleared === 1 ? "" : "s"})\n`);
      return;
    }
    let ids: number[];
    if (/^\d+$/.test(idText.trim())) ids = [parseCount(idText, "ID", 1, Number.MAX_SAFE_INTEGER)];
    else {
      // An address or symbol: every software breakpoint there (by GVA or, with --gpa, by GPA).
      const address = parseAddress(idText, ctx.symbols, opts.gpa === true, "ID");
      const all = await session.listSoftwareBreakpoints();
      ids = all.filter((b) => (opts.gpa ? "gpa" in b.address && b.address.gpa === address : "gva" in b.address && b.address.gva === address)).map((b) => b.id);
      if (ids.length === 0) throw new CliError(`no software breakpoint at ${hex(address)} in this session (vmm-debug break list)`, EXIT.notFound, "SOFTWARE_BREAKPOINT_NOT_FOUND");
    }
    for (const id of ids) await session.removeSoftwareBreakpoint(id);
    if (ctx.json) printJson({ vm: info.id, deleted: ids.length === 1 ? ids[0] : ids });
    else process.stdout.write(`deleted breakpoint${ids.length === 1 ? "" : "s"} ${ids.join(", ")}\n`);
  });
}

const WATCH_TYPES: Record<string, "write" | "readWrite"> = { write: "write", rw: "readWrite", readwrite: "readWrite" };

export async function watchCommand(ctx: Context, addrText: string, opts: { size?: string; type?: string; vp?: string }): Promise<void> {
  needSession(ctx, "watch");
  const address = parseAddress(addrText, ctx.symbols, false, "ADDR");
  const length = parseCount(opts.size ?? "8", "--size", 1, 64);
  const type = WATCH_TYPES[(opts.type ?? "write").toLowerCase()];
  if (!type) throw new UsageError(`--type must be write or rw, got "${opts.type}"`);
  await ctx.withSession("watch", true, async (session, info) => {
    const caps = info.capabilities;
    if (caps && !caps.watchpointTypes.includes(type)) throw new CliError(`VM "${info.id}" (${info.backend}) has no ${type} watchpoints (it has: ${caps.watchpointTypes.join(", ") || "none"})`, EXIT.refused, "BREAKPOINT_INVALID_TYPE");
    const sizes = caps?.watchpointSizes ?? [1, 2, 4, 8];
    const one = alignRange(address, length, sizes);
    const pieces: SlotRange[] = one ? [one] : splitRange(address, length, sizes);
    if (pieces.length === 0) throw new CliError(`no combination of ${sizes.join(", ")}-byte slots covers ${hex(address)}+${length}`, EXIT.usage, "BREAKPOINT_MISALIGNED");
    const vps = targetVps(opts.vp, info);
    const slots = await armSlots(ctx, session, info, vps, pieces.map((p) => ({ address: p.address, type, size: p.size })));
    const covered = { from: pieces[0].address, to: pieces[pieces.length - 1].address + BigInt(pieces[pieces.length - 1].size) };
    const asked = { from: address, to: address + BigInt(length) };
    if (ctx.json) {
      printJson({ vm: info.id, ids: slots.map((s) => `hw${s}`), type, vps, asked, covered, slots: pieces.map((p, i) => ({ slot: slots[i], address: p.address, size: p.size })) });
      return;
    }
    const s = symbolize(address, ctx.symbols);
    const range = (r: { from: bigint; to: bigint }) => `${hex(r.from)}..${hex(r.to)} (${r.to - r.from} bytes)`;
    let out = `watchpoint ${slots.map((x) => `hw${x}`).join(", ")}: ${type === "write" ? "writes to" : "reads or writes of"} ${hex(address)}${s ? ` <${s}>` : ""}+${length} on ${vps.length === 1 ? `VP ${vps[0]}` : "every VP"}\n`;
    if (pieces.length > 1) out += `  no single slot covers ${range(asked)}: it takes ${pieces.length} slots (${pieces.map((p, i) => `hw${slots[i]} ${hex(p.address)}/${p.size}`).join(", ")})\n`;
    else if (covered.from !== asked.from || covered.to !== asked.to) out += `  covers the aligned range ${range(covered)}, more than the ${range(asked)} asked: a slot watches 1, 2, 4 or 8 bytes aligned to its size\n`;
    else out += `  covers ${range(covered)}\n`;
    process.stdout.write(out);
  });
}
