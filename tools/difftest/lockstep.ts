// Lockstep: both machines from the same instruction, one instruction at a time (in batches of
// traced steps), comparing RIP, the general registers, RFLAGS (defined bits) and, where both
// cores expose them, XMM0-15 and MXCSR.
import { BreakpointSize, BreakpointType, flattenVpState, type DebugState, type DebugStopReason, type DebuggerVpState, type StepResult, type X86FpState } from "../../src/core";
import type { Backend } from "./backends";
import { hex, symbolize, type CorpusGuest } from "./corpus";
import { flagNames, type DecodedInsn, type ImageDecoder } from "./disasm";
import { GP_NAMES, type KnownDifferences } from "./known";

const RIP = 16;
const RFLAGS = 17;
/** The status flags (CF PF AF ZF SF OF): unknown after a free run, defined again as instructions write them. */
const STATUS_FLAGS = 0x8d5;
const VECTOR_NAMES: Record<number, string> = { 0: "#DE", 1: "#DB", 3: "#BP", 6: "#UD", 7: "#NM", 8: "#DF", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 19: "#XM" };

export interface LockstepOptions {
  /** Instructions compared from the entry (the first segment). */
  steps: number;
  /** Instructions per traced batch. */
  batch: number;
  /** After the first segment: windows of this many instructions at each instruction family (0: none). */
  window: number;
  /** Bound for one batch or one run to a window (ms). */
  timeoutMs: number;
  /** Fresh machine pairs allowed for windows the guest ran past (default 3). */
  maxRestarts: number;
  log?: (line: string) => void;
}

export interface Divergence {
  guest: string;
  step: number;
  pc: string;
  instruction: string;
  what: string;
  report: string;
}

export interface LockstepResult {
  guest: string;
  stepsCompared: number;
  windows: { family: string; at: string; steps: number }[];
  familiesNotReached: string[];
  familiesCovered: string[];
  end: "steps" | "powerOff" | "divergence" | "stopped" | "known";
  divergence?: Divergence;
  /** Instructions per second inside each backend's step calls. */
  emuStepsPerSec: number;
  qemuStepsPerSec: number;
  /** Masked (undefined / known) flag differences seen, per mnemonic. */
  maskedFlagDiffs: Record<string, number>;
  /** Batch-end comparisons that included XMM/MXCSR. */
  fpComparisons: number;
  notes: string[];
  restarts: number;
  /** Exception deliveries one machine stepped separately (known difference delivery-split). */
  realigned: number;
}

/** Lockstep cannot go on past a known difference (the machines part for a listed reason). */
class KnownEnd extends Error {}

class Divergent extends Error {
  constructor(readonly divergence: Divergence) {
    super(divergence.what);
  }
}

function fmtState(flat: readonly bigint[]): string {
  const parts = [`rip=${hex(flat[RIP])}`, `rflags=${hex(flat[RFLAGS])}`];
  for (let i = 0; i < 16; i++) parts.push(`${GP_NAMES[i]}=${hex(flat[i])}`);
  const lines: string[] = [];
  for (let i = 0; i < parts.length; i += 6) lines.push(parts.slice(i, i + 6).join(" "));
  return lines.join("\n      ");
}

function fpDiff(a: X86FpState | undefined, b: X86FpState | undefined): string[] {
  if (!a || !b) return [];
  const out: string[] = [];
  const xmmHex = (x: Uint8Array) => Buffer.from(x).reverse().toString("hex");
  for (let i = 0; i < 16; i++) {
    if (Buffer.compare(Buffer.from(a.xmm[i]), Buffer.from(b.xmm[i])) !== 0) out.push(`xmm${i} emu=0x${xmmHex(a.xmm[i])} qemu=0x${xmmHex(b.xmm[i])}`);
  }
  if (a.mxcsr !== b.mxcsr) out.push(`mxcsr emu=${hex(a.mxcsr)} qemu=${hex(b.mxcsr)}`);
  return out;
}

export class Lockstep {
  private flatE: bigint[] = [];
  private flatQ: bigint[] = [];
  private undefMask = 0;
  /** Flags the last applied instruction left undefined (or a known rule ignores). */
  private lastIgnored = 0;
  private stepsCompared = 0;
  private history: bigint[] = [];
  private emuMs = 0;
  private qemuMs = 0;
  private emuSteps = 0;
  private qemuSteps = 0;
  private readonly maskedFlagDiffs: Record<string, number> = {};
  private fpComparisons = 0;
  private readonly syncAddresses: bigint[];
  private emu!: Backend;
  private qemu!: Backend;
  /** Fresh machine pairs started after the guest powered off with families left to visit. */
  private restarts = 0;
  /** Steps where one machine took a step of its own for an exception delivery (delivery-split). */
  private realigned = 0;
  private readonly vectors?: bigint;

  constructor(
    private readonly guest: CorpusGuest,
    /** Starts a fresh pair of machines (stopped at their first instruction). */
    private readonly start: () => Promise<[Backend, Backend]>,
    private readonly dec: ImageDecoder,
    private readonly known: KnownDifferences,
    private readonly options: LockstepOptions,
  ) {
    const sync = known.syncMnemonics();
    this.syncAddresses = dec
      .scan()
      .filter((d) => sync.has(d.mnemonic))
      .map((d) => d.address)
      .slice(0, 4);
    this.vectors = guest.functions.find((f) => f.name === "crt0_vectors")?.address;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  /** Runs QEMU through its firmware and the Multiboot entry to the image's entry, where the embedded machine starts. */
  async arriveAtEntry(): Promise<void> {
    const entry = this.guest.image.entry;
    this.phase = "running QEMU to the entry";
    await this.qemu.core.setDebugState(0, this.debugState([entry]));
    const stopped = this.qemu.nextStop(this.options.timeoutMs);
    await this.qemu.core.resume();
    const stop = await stopped;
    if (typeof stop === "string" || stop.kind !== "hwBreakpoint") throw new Error(`QEMU did not reach the entry ${hex(entry)}: ${JSON.stringify(stop)}`);
    await Promise.all([this.emu.core.setDebugState(0, this.debugState([])), this.qemu.core.setDebugState(0, this.debugState([]))]);
    await this.loadStates("at the entry", 0);
  }

  private debugState(addresses: bigint[]): DebugState {
    const breakpoints: DebugState["breakpoints"] = [null, null, null, null];
    addresses.slice(0, 4).forEach((address, i) => (breakpoints[i] = { address, type: BreakpointType.Execute, size: BreakpointSize.Byte }));
    return { singleStep: false, breakpoints };
  }

  /** Reads both states and compares them (status flags masked by `mask`). */
  private async loadStates(where: string, mask: number): Promise<{ e: DebuggerVpState; q: DebuggerVpState }> {
    const [e, q] = await Promise.all([this.emu.core.getVpState(0), this.qemu.core.getVpState(0)]);
    this.flatE = flattenVpState(e);
    this.flatQ = flattenVpState(q);
    this.undefMask = mask;
    this.compareFlat(where, undefined);
    this.compareFp(e, q, where);
    return { e, q };
  }

  private compareFp(e: DebuggerVpState, q: DebuggerVpState, where: string): void {
    if (e.arch !== "x86_64" || q.arch !== "x86_64" || !e.state.fp || !q.state.fp) return;
    this.fpComparisons++;
    const diffs = fpDiff(e.state.fp, q.state.fp);
    if (diffs.length) {
      const recent = this.history.slice(-Math.min(this.history.length, this.options.batch));
      const fpInsns = recent.map((pc) => this.dec.at(pc)).filter((d): d is DecodedInsn => !!d && /xmm|mxcsr/i.test(d.text));
      throw new Divergent({
        guest: this.guest.name,
        step: this.stepsCompared,
        pc: hex(this.flatE[RIP]),
        instruction: fpInsns.length ? fpInsns[fpInsns.length - 1].text : "",
        what: `XMM/MXCSR differ ${where}`,
        report: [
          `XMM/MXCSR differ ${where} (step ${this.stepsCompared}; compared at batch ends, so the instruction is one of the last ${recent.length})`,
          ...diffs.map((d) => "  " + d),
          `  SSE instructions among them (last ${Math.min(12, fpInsns.length)}):`,
          ...fpInsns.slice(-12).map((d) => `    ${hex(d.address)} <${symbolize(this.guest, d.address)}>  ${d.text}`),
        ].join("\n"),
      });
    }
  }

  /** Compares RIP, gp and RFLAGS of the two flat states; throws Divergent. */
  private compareFlat(where: string, insn: DecodedInsn | undefined): void {
    const diffs: string[] = [];
    for (let i = 0; i < 16; i++) if (this.flatE[i] !== this.flatQ[i]) diffs.push(`${GP_NAMES[i]} emu=${hex(this.flatE[i])} qemu=${hex(this.flatQ[i])}`);
    if (this.flatE[RIP] !== this.flatQ[RIP]) diffs.push(`rip emu=${hex(this.flatE[RIP])} <${symbolize(this.guest, this.flatE[RIP])}> qemu=${hex(this.flatQ[RIP])} <${symbolize(this.guest, this.flatQ[RIP])}>`);
    const fx = Number((this.flatE[RFLAGS] ^ this.flatQ[RFLAGS]) & 0xffffffffn);
    const masked = fx & this.undefMask;
    const real = fx & ~this.undefMask;
    // Counted against the instruction that left the flags undefined, not those that carry them on.
    if (masked & this.lastIgnored && insn) this.maskedFlagDiffs[insn.mnemonic] = (this.maskedFlagDiffs[insn.mnemonic] ?? 0) + 1;
    if (real) diffs.push(`rflags emu=${hex(this.flatE[RFLAGS])} qemu=${hex(this.flatQ[RFLAGS])} differ in ${flagNames(real)} (not compared now: ${flagNames(this.undefMask)})`);
    if (diffs.length === 0) return;
    const pc = this.history.length ? this.history[this.history.length - 1] : this.flatE[RIP];
    const lines = [`${where}: ${diffs.length} difference(s) after step ${this.stepsCompared}`, ...diffs.map((d) => "  " + d)];
    if (this.vectors !== undefined) {
      for (const [who, flat] of [["the embedded machine", this.flatE], ["QEMU", this.flatQ]] as const) {
        const off = flat[RIP] - this.vectors;
        if (off >= 0n && off < 32n * 16n && off % 16n === 0n) {
          const v = Number(off / 16n);
          lines.push(`  ${who} delivered exception vector ${v} ${VECTOR_NAMES[v] ?? ""} at ${hex(pc)} <${symbolize(this.guest, pc)}>: ${this.dec.text(pc)}`);
        }
      }
    }
    lines.push(`  emu : ${fmtState(this.flatE)}`, `  qemu: ${fmtState(this.flatQ)}`, "  last instructions (the last one is where they part):");
    for (const a of this.history.slice(-8)) lines.push(`    ${hex(a)} <${symbolize(this.guest, a)}>  ${this.dec.text(a)}`);
    throw new Divergent({ guest: this.guest.name, step: this.stepsCompared, pc: hex(pc), instruction: this.dec.text(pc), what: diffs.join("; "), report: lines.join("\n") });
  }

  private async timed(b: Backend, count: number): Promise<StepResult> {
    const t0 = performance.now();
    const r = await b.core.step(0, count, "registers");
    const ms = performance.now() - t0;
    if (b.name === "emu") {
      this.emuMs += ms;
      this.emuSteps += r.executed;
    } else {
      this.qemuMs += ms;
      this.qemuSteps += r.executed;
    }
    return r;
  }

  /**
   * Applies the embedded machine's delta iE and QEMU's delta iQ and compares. When they differ
   * because one machine delivered an exception in the step that led to it and the other takes a
   * step of its own for the delivery (known difference `delivery-split`), the lagging machine's
   * next delta is applied too and which one advanced is returned.
   */
  private applyOne(re: StepResult, rq: StepResult, iE: number, iQ: number = iE): { insn: DecodedInsn | undefined; advanced?: "emu" | "qemu" } {
    const pcBefore = this.flatE[RIP];
    const insn = this.dec.at(pcBefore);
    this.history.push(pcBefore);
    this.allPcsSeen.add(pcBefore);
    if (this.history.length > 64) this.history.splice(0, this.history.length - 32);
    const apply = (flat: bigint[], r: StepResult, i: number) => {
      const d = r.deltas![i];
      for (let k = 0; k < d.registers.length; k++) flat[d.registers[k]] = d.values[k];
    };
    apply(this.flatE, re, iE);
    apply(this.flatQ, rq, iQ);
    this.stepsCompared++;
    // Registers a known difference syncs (CPUID's answer): QEMU takes the embedded machine's.
    for (const g of this.syncAfter(insn)) this.flatQ[g] = this.flatE[g];
    const maskBefore = this.undefMask;
    this.lastIgnored = 0;
    if (insn) {
      const ignored = this.known.ignoredFlags(insn);
      this.undefMask = (this.undefMask & ~insn.definedFlags) | ignored.bits;
      this.lastIgnored = ignored.bits;
    }
    try {
      this.compareFlat("lockstep", insn);
      return { insn };
    } catch (e) {
      if (!(e instanceof Divergent)) throw e;
      for (const lagging of ["emu", "qemu"] as const) {
        const [lagFlat, leadFlat, r, i] = lagging === "emu" ? [this.flatE, this.flatQ, re, iE] : [this.flatQ, this.flatE, rq, iQ];
        const rule = this.known.deliverySplit(symbolize(this.guest, leadFlat[RIP]));
        if (!rule || i + 1 >= r.executed) continue;
        const copy = [...lagFlat];
        apply(copy, r, i + 1);
        if (copy.slice(0, RFLAGS).every((v, k) => v === leadFlat[k]) && Number((copy[RFLAGS] ^ leadFlat[RFLAGS]) & 0xffffffffn & ~BigInt(maskBefore | this.undefMask)) === 0) {
          for (let k = 0; k < copy.length; k++) lagFlat[k] = copy[k];
          this.realigned++;
          this.log(`    ${rule}: ${lagging} took a step of its own to reach ${symbolize(this.guest, leadFlat[RIP])} after ${this.dec.text(pcBefore)}`);
          return { insn, advanced: lagging };
        }
      }
      // QEMU's gdbstub single-step does not honour RF for a guest's execute breakpoint: after an
      // IRETQ that set RF it delivers the same #DB again (known difference qemu-step-ignores-rf).
      const rfRule = this.known.endRule("qemu-step-ignores-rf");
      if (rfRule && insn?.mnemonic === "iretq" && (this.flatE[RFLAGS] & 0x10000n) !== 0n && this.known.deliverySplit(symbolize(this.guest, this.flatQ[RIP]))) {
        throw new KnownEnd(`${rfRule}: after ${insn.text} with RF set QEMU delivered the #DB again at ${symbolize(this.guest, this.flatE[RIP])}; the machines part here by a known difference`);
      }
      // A guest may isolate what QEMU gets wrong in functions of its own (an end-lockstep rule's
      // `functions`): parting at an instruction in one of them is that known difference.
      const fnRule = this.known.endAtFunction(symbolize(this.guest, pcBefore));
      if (fnRule) {
        throw new KnownEnd(`${fnRule}: the machines part at ${hex(pcBefore)} <${symbolize(this.guest, pcBefore)}> ${this.dec.text(pcBefore)} (${e.divergence.what.split(";")[0]}); a known difference`);
      }
      throw e;
    }
  }

  private syncAfter(insn: DecodedInsn | undefined): number[] {
    return insn ? this.known.syncRegisters(insn) : [];
  }

  /**
   * `count` instructions in lockstep from where both stand. Returns how the segment ended.
   * Throws Divergent at the first difference.
   */
  async segment(count: number): Promise<"steps" | "powerOff" | "stopped" | "known"> {
    try {
      return await this.segmentInner(count);
    } catch (e) {
      if (!(e instanceof KnownEnd)) throw e;
      this.notes.push(e.message);
      this.log(`    ${e.message}`);
      return "known";
    }
  }

  private async segmentInner(count: number): Promise<"steps" | "powerOff" | "stopped"> {
    const armSync = this.syncAddresses.length > 0;
    if (armSync) {
      await Promise.all([this.emu.core.setDebugState(0, this.debugState(this.syncAddresses)), this.qemu.core.setDebugState(0, this.debugState(this.syncAddresses))]);
    }
    let remaining = count;
    this.phase = `stepping a segment of ${count}`;
    try {
      while (remaining > 0) {
        if (this.syncAddresses.includes(this.flatE[RIP])) {
          // Standing on an instruction whose result is synced (a batch stops before it): step it alone.
          const e1 = await this.timed(this.emu, 1);
          const q1 = await this.timed(this.qemu, 1);
          if (e1.executed !== 1 || q1.executed !== 1) return "stopped";
          const { insn } = this.applyOne(e1, q1, 0);
          await this.sync(this.syncAfter(insn));
          remaining -= 1;
          continue;
        }
        const n = Math.min(remaining, this.options.batch);
        // One after the other, so that each backend's rate is its own.
        const [pe] = await Promise.allSettled([this.timed(this.emu, n)]);
        const [pq] = await Promise.allSettled([this.timed(this.qemu, n)]);
        if (pe.status === "rejected") throw pe.reason;
        if (pq.status === "rejected") {
          // QEMU exits when the guest powers off; a batch that steps the power-off may then lose
          // its gdbstub before it reports the stop. The embedded machine tells where it ended.
          if (pe.value.stop?.kind === "powerOff" && this.qemu.core.runState() !== "running") {
            this.stepsCompared += pe.value.executed;
            this.notes.push(`QEMU's gdbstub closed while a batch stepped the power-off (${(pq.reason as Error).message.split("\n")[0]}); the embedded machine powered off after ${pe.value.executed} more steps, not compared`);
            return "powerOff";
          }
          throw pq.reason;
        }
        let re = pe.value, rq = pq.value;
        let iE = 0, iQ = 0, k = 0;
        const pairUp = () => {
          while (iE < re.executed && iQ < rq.executed) {
            const { insn, advanced } = this.applyOne(re, rq, iE, iQ);
            if (this.syncAfter(insn).length) throw new Error(`internal: ${insn!.text} ran inside a batch (its breakpoint was not armed)`);
            iE++;
            iQ++;
            k++;
            if (advanced === "emu") iE++;
            else if (advanced === "qemu") iQ++;
          }
        };
        pairUp();
        // After a realignment one machine is a step behind: step it to catch up.
        while ((iE < re.executed || iQ < rq.executed) && !re.stop && !rq.stop) {
          if (iQ < rq.executed) {
            re = await this.timed(this.emu, rq.executed - iQ);
            iE = 0;
          } else {
            rq = await this.timed(this.qemu, re.executed - iE);
            iQ = 0;
          }
          pairUp();
        }
        remaining -= k;
        const se = stopKind(re.stop), sq = stopKind(rq.stop);
        if (se === "powerOff" && sq === "powerOff" && Math.abs(re.executed - rq.executed) === 1) {
          // Known: the OUT that powers the machine off retires on the embedded machine (a step
          // that ends with powerOff); QEMU exits inside it, and its gdbstub reports one step less.
          this.stepsCompared += Math.min(re.executed, rq.executed);
          this.notes.push(`power-off step counted by the embedded machine only (emu ${re.executed}, qemu ${rq.executed} steps in the last batch): known difference`);
          return "powerOff";
        }
        if (re.executed !== rq.executed || se !== sq) {
          this.compareFlat(`the machines stopped differently (emu ${se} after ${re.executed}, qemu ${sq} after ${rq.executed} of ${n})`, undefined);
          throw new Divergent({
            guest: this.guest.name,
            step: this.stepsCompared,
            pc: hex(this.flatE[RIP]),
            instruction: this.dec.text(this.flatE[RIP]),
            what: `stopped differently: emu ${se} after ${re.executed}, qemu ${sq} after ${rq.executed}`,
            report: `the machines stopped differently: emu ${se} after ${re.executed} steps, qemu ${sq} after ${rq.executed} (batch of ${n}) at ${hex(this.flatE[RIP])} <${symbolize(this.guest, this.flatE[RIP])}>  ${this.dec.text(this.flatE[RIP])}`,
          });
        }
        if (se === "powerOff") return "powerOff";
        if (re.halted || rq.halted) return "stopped";
        if (se === "hwBreakpoint" && !this.syncAddresses.includes(this.flatE[RIP])) return "stopped";
        if (se !== "none" && se !== "hwBreakpoint") return "stopped";
        // Batch end: the real states (catches anything the traces miss) and XMM/MXCSR.
        const [e, q] = await Promise.all([this.emu.core.getVpState(0), this.qemu.core.getVpState(0)]);
        const fe = flattenVpState(e), fq = flattenVpState(q);
        for (let i = 0; i <= RFLAGS; i++) {
          this.flatE[i] = fe[i];
          this.flatQ[i] = fq[i];
        }
        this.compareFlat("batch end (full state)", undefined);
        this.compareFp(e, q, `after step ${this.stepsCompared}`);
      }
      return "steps";
    } finally {
      if (armSync && this.emu.core.runState() === "stopped" && this.qemu.core.runState() === "stopped") {
        await Promise.all([this.emu.core.setDebugState(0, this.debugState([])), this.qemu.core.setDebugState(0, this.debugState([]))]);
      }
    }
  }

  /** The QEMU VP takes the embedded machine's values of `gps`. */
  private async sync(gps: number[]): Promise<void> {
    if (!gps.length) return;
    const q = await this.qemu.core.getVpState(0);
    if (q.arch !== "x86_64") return;
    const gp = [...q.state.gp];
    for (const g of gps) {
      gp[g] = this.flatE[g];
      this.flatQ[g] = this.flatE[g];
    }
    await this.qemu.core.setVpState(0, { arch: "x86_64", state: { ...q.state, gp, fp: undefined } });
    this.log(`    synced ${gps.map((g) => GP_NAMES[g]).join(",")} after ${this.dec.text(this.history[this.history.length - 1])}`);
  }

  /**
   * Runs both machines freely to the first of `addresses` (execute breakpoints); both must stop
   * at the same one with the same registers (status flags not compared: undefined ones may
   * differ after a free run). Returns the address, or the stop that ended the run instead.
   */
  async runTo(addresses: bigint[]): Promise<bigint | "powerOff" | "timeout"> {
    this.phase = `running to ${addresses.map((a) => hex(a)).join(" ")}`;
    const ds = this.debugState(addresses);
    await Promise.all([this.emu.core.setDebugState(0, ds), this.qemu.core.setDebugState(0, ds)]);
    const pe = this.emu.nextStop(this.options.timeoutMs), pq = this.qemu.nextStop(this.options.timeoutMs);
    await Promise.all([this.emu.core.resume(), this.qemu.core.resume()]);
    const [se, sq] = await Promise.all([pe, pq]);
    if (se === "gone" || sq === "gone") throw new Error(`a machine was lost while running to ${targetsText(addresses)}`);
    if (se === "timeout" || sq === "timeout") {
      for (const b of [this.emu, this.qemu]) if (b.core.runState() === "running") await b.core.halt();
      return "timeout";
    }
    if (se.kind === "powerOff" && sq.kind === "powerOff") return "powerOff";
    if (se.kind !== "hwBreakpoint" || sq.kind !== "hwBreakpoint" || se.breakpoint.address !== sq.breakpoint.address) {
      const where = (s: DebugStopReason) => (s.kind === "hwBreakpoint" ? `breakpoint ${hex(s.breakpoint.address)} <${symbolize(this.guest, s.breakpoint.address)}>` : s.kind);
      throw new Divergent({
        guest: this.guest.name,
        step: this.stepsCompared,
        pc: "",
        instruction: "",
        what: `running to the next window: emu stopped at ${where(se)}, qemu at ${where(sq)}`,
        report: `running freely to the next window the machines stopped differently: emu at ${where(se)}, qemu at ${where(sq)} (console so far — emu: ${JSON.stringify(this.emu.console.slice(-2))}, qemu: ${JSON.stringify(this.qemu.console.slice(-2))})`,
      });
    }
    await Promise.all([this.emu.core.setDebugState(0, this.debugState([])), this.qemu.core.setDebugState(0, this.debugState([]))]);
    this.history.push(se.breakpoint.address);
    await this.loadStates(`arriving at ${hex(se.breakpoint.address)} <${symbolize(this.guest, se.breakpoint.address)}>`, STATUS_FLAGS);
    this.history.pop();
    return se.breakpoint.address;
  }

  /** Every family of the image's instructions with up to two addresses to break at. */
  familyCandidates(): Map<string, bigint[]> {
    const byFamily = new Map<string, bigint[]>();
    const boot = new Set(["crt0_start64", "_start", "entry64", "crt0_exception", "crt0_vectors", "crt0_power_off", "crt0_park", "crt0_puts", "crt0_put_hex", "crt0_build_idt"]);
    for (const d of this.dec.scan()) {
      const fn = symbolize(this.guest, d.address).replace(/\+.*/, "");
      if (boot.has(fn) || /nop/.test(d.family) || d.mnemonic === "nop") continue;
      const list = byFamily.get(d.family) ?? [];
      if (list.length < 2 && !list.some((a) => symbolize(this.guest, a).replace(/\+.*/, "") === fn)) list.push(d.address);
      byFamily.set(d.family, list);
    }
    return byFamily;
  }

  private async closeMachines(): Promise<void> {
    const pair = [this.emu, this.qemu].filter((b) => b !== undefined);
    await Promise.allSettled(pair.map((b) => b.close()));
  }

  private async freshMachines(): Promise<void> {
    await this.closeMachines();
    [this.emu, this.qemu] = await this.start();
    this.history = [];
  }

  async run(): Promise<LockstepResult> {
    const o = this.options;
    const windows: LockstepResult["windows"] = [];
    const covered = new Set<string>();
    let end: LockstepResult["end"] = "steps";
    let divergence: Divergence | undefined;
    const candidates = this.familyCandidates();
    /** Addresses armed in a run that ended in power-off: not executed after that point. */
    const missed = new Set<bigint>();
    try {
      await this.freshMachines();
      await this.arriveAtEntry();
      end = await this.segment(o.steps);
      for (const pc of this.allPcsSeen) covered.add(this.dec.at(pc)?.family ?? "");
      this.log(`    ${this.stepsCompared} steps from the entry agree (${end})`);
      while (o.window > 0 && (end === "steps" || end === "powerOff" || end === "known")) {
        const pending = [...candidates.entries()].filter(([f]) => !covered.has(f));
        const targets = pending.flatMap(([, a]) => a).filter((a) => !missed.has(a)).slice(0, 4);
        if (targets.length === 0) break;
        if (end === "powerOff" || end === "known") {
          // The guest ended (or the machines parted by a known difference) with families left:
          // start again and run freely to them.
          if (this.restarts >= o.maxRestarts) break;
          this.restarts++;
          this.log(`    restarting both machines for ${targets.length} more window address(es)`);
          await this.freshMachines();
          await this.arriveAtEntry();
          end = "steps";
        }
        const at = await this.runTo(targets);
        if (at === "powerOff") {
          for (const a of targets) missed.add(a);
          end = "powerOff";
          continue;
        }
        if (at === "timeout") {
          end = "stopped";
          break;
        }
        const family = this.dec.at(at)?.family ?? "?";
        const before = this.stepsCompared;
        this.allPcsSeen.clear();
        const e = await this.segment(o.window);
        covered.add(family);
        for (const pc of this.allPcsSeen) covered.add(this.dec.at(pc)?.family ?? "");
        windows.push({ family, at: `${hex(at)} <${symbolize(this.guest, at)}>`, steps: this.stepsCompared - before });
        this.log(`    window ${family} at ${hex(at)} <${symbolize(this.guest, at)}>: ${this.stepsCompared - before} steps agree`);
        if (e !== "steps" && e !== "powerOff" && e !== "known") {
          end = e;
          break;
        }
        end = e;
      }
    } catch (e) {
      if (!(e instanceof Divergent)) {
        (e as Error).message = `${(e as Error).message} (lockstep ${this.phase}, after ${this.stepsCompared} steps)`;
        throw e;
      }
      divergence = e.divergence;
      end = "divergence";
    } finally {
      await this.closeMachines();
    }
    covered.delete("");
    const familiesNotReached = [...candidates.keys()].filter((f) => !covered.has(f)).sort();
    return {
      guest: this.guest.name,
      stepsCompared: this.stepsCompared,
      windows,
      familiesCovered: [...covered].sort(),
      familiesNotReached: end === "divergence" ? [] : familiesNotReached,
      end,
      divergence,
      emuStepsPerSec: this.emuMs > 0 ? Math.round((this.emuSteps * 1000) / this.emuMs) : 0,
      qemuStepsPerSec: this.qemuMs > 0 ? Math.round((this.qemuSteps * 1000) / this.qemuMs) : 0,
      maskedFlagDiffs: this.maskedFlagDiffs,
      fpComparisons: this.fpComparisons,
      notes: this.notes,
      restarts: this.restarts,
      realigned: this.realigned,
    };
  }

  /** Every PC stepped (for family coverage); cleared per window. */
  private readonly allPcsSeen = new Set<bigint>();
  /** Things worth knowing about the run that are not divergences. */
  readonly notes: string[] = [];
  /** What the harness was doing (for errors). */
  private phase = "starting";
}

function targetsText(addresses: bigint[]): string {
  return addresses.map((a) => hex(a)).join(" ");
}

function stopKind(s: DebugStopReason | undefined): string {
  return s ? s.kind : "none";
}
