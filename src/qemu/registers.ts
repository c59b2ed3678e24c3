// A QEMU VM's registers: QEMU's gdbstub registers (by target.xml name) mapped to and from the
// domain's VP states, read and written per VP (`Hg`), with what a stopped VM lets us cache.
import {
  type Aarch64PagingRegs,
  type Aarch64VpState,
  type Arch,
  Code,
  type DebuggerVpState,
  type SegmentRegister,
  VmmError,
  type X86PagingRegs,
  type X86FpState,
  type X86VpState,
  flattenVpState,
  x86Fp,
  hex,
  vpStateFieldNames,
} from "../core";
import { type StopReply, type ThreadId, leHexToBigint, sameThread } from "../rsp";
import type { QmpClient } from "./qmp-client";
import type { RspClient } from "./rsp-client";
import { SEGMENT_NAMES, type SegmentName, parseInfoRegistersAbridgedTag, parseInfoRegistersSegments } from "./x86-segments";

/** gdb names of the x86 general-purpose registers in x86 encoding order (the order of X86VpState.gp). */
export const X86_GP_NAMES = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/** X86VpState scalar fields and the gdb register behind each (all writable through P on QEMU 7.2). */
export const X86_SCALARS = [
  ["rip", "rip"],
  ["rflags", "eflags"],
  ["cr0", "cr0"],
  ["cr2", "cr2"],
  ["cr3", "cr3"],
  ["cr4", "cr4"],
  ["cr8", "cr8"],
  ["efer", "efer"],
  ["kernelGsBase", "k_gs_base"],
] as const;

function need(regs: ReadonlyMap<string, bigint>, name: string): bigint {
  const v = regs.get(name);
  if (v === undefined) throw new Error(`QEMU's register set has no ${name}`);
  return v;
}

/**
 * The VP-state fields writeVpState writes (Capabilities.setVpStateFields): every register the
 * gdbstub sets, segment selectors (QEMU reloads the hidden part from the descriptor table, which
 * must then match what was sent) and the FS/GS bases (MSRs); not the other segment descriptor
 * caches nor aarch64's EL1 system registers, which the gdbstub only reads. Of sp_el0 and sp_el1
 * only the stack pointer the new cpsr selects is written (as `sp`); the other must keep its value.
 */
export function qemuWritableFields(arch: Arch): string[] {
  if (arch === "aarch64") return ["x", "sp_el0", "sp_el1", "pc", "cpsr"];
  return vpStateFieldNames("x86_64").filter(
    (f) => !f.includes(".") || f.endsWith(".selector") || f === "fs.base" || f === "gs.base" || (QEMU_FP_WRITABLE as readonly string[]).includes(f),
  );
}

/**
 * The FP fields QEMU 7.2's gdbstub writes. It reads ftag, fiseg, fioff, foseg, fooff and fop as 0
 * and ignores writes to them (the tags come from the monitor's abridged FTW); XCR0 it lacks.
 */
const QEMU_FP_WRITABLE = ["fp.xmm", "fp.mxcsr", "fp.st", "fp.fcw", "fp.fsw"] as const;

/**
 * The FP state from the `g` registers and the monitor's abridged tag. QEMU's st0–st7 are the
 * physical registers R0–R7 (not ST(i): measured, TOP = 6 after two loads puts them in st6 and
 * st7), so they are rotated by TOP here; fop, fip and fdp read 0; xcr0 is left unset.
 */
export function x86FpFromQemu(regs: ReadonlyMap<string, bigint>, abridgedTag: number): X86FpState {
  const physical = Array.from({ length: x86Fp.ST_COUNT }, (_, i) => x86Fp.bigintToBytes(need(regs, `st${i}`), x86Fp.ST_BYTES));
  const fsw = Number(need(regs, "fstat") & 0xffffn);
  return {
    xmm: Array.from({ length: x86Fp.XMM_COUNT }, (_, n) => x86Fp.bigintToBytes(need(regs, `xmm${n}`), x86Fp.XMM_BYTES)),
    mxcsr: Number(need(regs, "mxcsr") & 0xffff_ffffn),
    st: x86Fp.physicalToStack(physical, fsw),
    fcw: Number(need(regs, "fctrl") & 0xffffn),
    fsw,
    ftw: x86Fp.fullTagWord(physical, (i) => ((abridgedTag >> i) & 1) === 0),
    fop: 0,
    fip: 0n,
    fdp: 0n,
  };
}

/** X86VpState from the `g`/`p` registers plus the segment descriptors (and x87 tags, for `fp`) from `info registers`. */
export function x86StateFromQemu(regs: ReadonlyMap<string, bigint>, segs: Record<SegmentName, SegmentRegister>, abridgedTag?: number): X86VpState {
  const state = {
    gp: X86_GP_NAMES.map((n) => need(regs, n)),
    es: segs.es,
    cs: segs.cs,
    ss: segs.ss,
    ds: segs.ds,
    // In 64-bit mode the FS/GS bases are the MSRs the gdbstub reports exactly.
    fs: { ...segs.fs, base: regs.get("fs_base") ?? segs.fs.base },
    gs: { ...segs.gs, base: regs.get("gs_base") ?? segs.gs.base },
  } as Partial<X86VpState>;
  for (const [field, name] of X86_SCALARS) (state as Record<string, unknown>)[field] = need(regs, name);
  state.rflags = (state.rflags ?? 0n) | 2n;
  if (abridgedTag !== undefined) state.fp = x86FpFromQemu(regs, abridgedTag);
  return state as X86VpState;
}

/**
 * The gdbstub writes that turn FP state `have` into `want` (physical st registers by the new
 * TOP), and the fields QEMU cannot set that would change: which registers are empty (the tag
 * word's classes follow the contents, as on the embedded machine), fop, fip, fdp, and xcr0 (which
 * QEMU does not report: any value is refused).
 */
function fpWrites(want: X86FpState, have: X86FpState, writes: [string, bigint, string][], refused: string[]): void {
  if (want.fsw !== have.fsw) writes.push(["fstat", BigInt(want.fsw), "fp.fsw"]);
  if (want.fcw !== have.fcw) writes.push(["fctrl", BigInt(want.fcw), "fp.fcw"]);
  if (want.mxcsr !== have.mxcsr) writes.push(["mxcsr", BigInt(want.mxcsr), "fp.mxcsr"]);
  want.xmm.forEach((b, n) => !x86Fp.sameBytes(b, have.xmm[n]) && writes.push([`xmm${n}`, x86Fp.bytesToBigint(b), `fp.xmm[${n}]`]));
  const wantPhysical = x86Fp.stackToPhysical(want.st, want.fsw);
  const havePhysical = x86Fp.stackToPhysical(have.st, have.fsw);
  wantPhysical.forEach((b, i) => !x86Fp.sameBytes(b, havePhysical[i]) && writes.push([`st${i}`, x86Fp.bytesToBigint(b), `fp.st (R${i})`]));
  if (x86Fp.abridgedTag(want.ftw) !== x86Fp.abridgedTag(have.ftw)) refused.push("fp.ftw (which registers are empty)");
  if (want.fop !== have.fop) refused.push("fp.fop");
  if (want.fip !== have.fip) refused.push("fp.fip");
  if (want.fdp !== have.fdp) refused.push("fp.fdp");
  if (want.xcr0 !== undefined) refused.push("fp.xcr0 (QEMU does not report it: leave it unset)");
}

/** aarch64 system registers as QEMU 7.2 names them in org.qemu.gdb.arm.sys.regs. */
export const AARCH64_SYSREGS = {
  sctlrEl1: "SCTLR",
  tcrEl1: "TCR_EL1",
  ttbr0El1: "TTBR0_EL1",
  ttbr1El1: "TTBR1_EL1",
  spEl0: "SP_EL0",
  spEl1: "SP_EL1",
} as const;

/** Which banked stack pointer the `sp` register is, from PSTATE.M: EL1h uses SP_EL1, EL0/EL1t SP_EL0. */
export function currentSpField(cpsr: bigint): "spEl0" | "spEl1" {
  return (cpsr & 0xfn) === 0x5n ? "spEl1" : "spEl0";
}

/**
 * Aarch64VpState from the core registers and the system registers. The live stack pointer is
 * `sp`; QEMU refreshes the banked copy of the current one only on exception-level changes.
 */
export function aarch64StateFromQemu(core: ReadonlyMap<string, bigint>, sys: ReadonlyMap<string, bigint>): Aarch64VpState {
  const cpsr = need(core, "cpsr");
  const state: Aarch64VpState = {
    x: Array.from({ length: 31 }, (_, i) => need(core, `x${i}`)),
    spEl0: need(sys, AARCH64_SYSREGS.spEl0),
    spEl1: need(sys, AARCH64_SYSREGS.spEl1),
    pc: need(core, "pc"),
    cpsr,
    sctlrEl1: need(sys, AARCH64_SYSREGS.sctlrEl1),
    tcrEl1: need(sys, AARCH64_SYSREGS.tcrEl1),
    ttbr0El1: need(sys, AARCH64_SYSREGS.ttbr0El1),
    ttbr1El1: need(sys, AARCH64_SYSREGS.ttbr1El1),
  };
  state[currentSpField(cpsr)] = need(core, "sp");
  return state;
}

export type PagingRegs = ({ arch: "x86_64" } & X86PagingRegs) | ({ arch: "aarch64" } & Aarch64PagingRegs);

/** Follows a VP's registers through a batch for the registers trace (see QemuVm.step). */
export interface RegisterTracer {
  /** The state after the latest step, given its `g` block. */
  next(g: string): Promise<bigint[]>;
  flat: bigint[];
}

/** What registers need of the VM: its connections, and whether it is stopped (what may be cached). */
export interface RegisterTarget {
  readonly rsp: RspClient;
  readonly qmp: QmpClient;
  readonly arch: Arch;
  readonly threads: readonly ThreadId[];
}

/**
 * The VPs' registers through the gdbstub. `g`/`p`/`P` read the thread `Hg` selected, so every read
 * selects its VP first (skipped when QEMU already points there: after a stop it points at the
 * thread that stopped). Per VP, what is costly and cannot change while the VM stays stopped
 * (segment caches, paging registers) is kept until it runs again.
 */
export class QemuRegisters {
  /** The thread QEMU's `g`/`p` currently read, when known. */
  private gThread: ThreadId | undefined;
  /** A VP's `g` block right after its last single step (compared with the next step's). */
  private stepG: { vp: number; text: string } | undefined;
  private readonly stoppedCache = new Map<number, { paging?: PagingRegs; segments?: string }>();
  /** Hex characters of the PC inside a `g` reply (undefined: `g` carries none). */
  private readonly pcInG: { at: number; chars: number } | undefined;

  constructor(
    private readonly target: RegisterTarget,
    /** Whether the VM is stopped now: only then is anything cached. */
    private readonly stopped: () => boolean,
  ) {
    const name = target.arch === "x86_64" ? "rip" : "pc";
    let at = 0;
    for (const reg of target.rsp.targetDescription!.registers) {
      const chars = Math.ceil(reg.bitsize / 8) * 2;
      if (reg.name === name) {
        this.pcInG = { at, chars };
        break;
      }
      at += chars;
    }
  }

  /** Points `g`/`p`/`P` at a VP's thread (`Hg`), unless QEMU already points there. */
  async select(vp: number): Promise<void> {
    const thread = this.target.threads[vp];
    if (this.gThread && sameThread(this.gThread, thread)) return;
    await this.target.rsp.setThread("g", thread);
    this.gThread = thread;
  }

  /** After a stop QEMU points `g` at the thread that stopped. */
  noteStop(stop: StopReply): void {
    this.gThread = stop.kind === "signal" ? stop.thread : undefined;
  }

  /** The VM is about to run: nothing cached for a stopped VM holds any more. */
  forgetStopped(): void {
    this.stoppedCache.clear();
  }

  /** Keeps a VP's `g` block after a single step, for the next step to compare with. */
  keepStepG(vp: number, text: string): void {
    this.stepG = { vp, text };
  }

  /** The `g` block kept for `vp` by its last single step, forgotten once taken. */
  takeStepG(vp: number): string | undefined {
    const kept = this.stepG;
    this.stepG = undefined;
    return kept?.vp === vp ? kept.text : undefined;
  }

  /** Forgets the kept `g` block: the VP runs, or its registers are written. */
  forgetStepG(): void {
    this.stepG = undefined;
  }

  /** The raw `g` register block of a VP. */
  async readG(vp: number): Promise<string> {
    await this.select(vp);
    return this.target.rsp.requestText("g");
  }

  /** The PC in a `g` reply. */
  pcOfG(g: string): bigint {
    if (!this.pcInG) throw new VmmError(Code.Internal, "INTERNAL", `QEMU's g packet carries no ${this.target.arch === "x86_64" ? "rip" : "pc"}`);
    const { at, chars } = this.pcInG;
    return leHexToBigint(g.slice(at, at + chars));
  }

  /** The PC of the VP `select` pointed QEMU at. */
  readPc(): Promise<bigint> {
    return this.target.rsp.readRegister(this.target.arch === "x86_64" ? "rip" : "pc");
  }

  async readVpState(vp: number): Promise<DebuggerVpState> {
    const { rsp, qmp } = this.target;
    await this.select(vp);
    const regs = await rsp.readRegisters();
    if (this.target.arch === "x86_64") {
      for (const name of ["fs_base", "gs_base", "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"]) {
        if (!regs.has(name)) regs.set(name, await rsp.readRegister(name));
      }
      // The monitor is the only source of the segment caches, and the slowest call here (~0.8 ms).
      let text = this.stoppedCache.get(vp)?.segments;
      if (text === undefined) {
        text = await qmp.execute<string>("human-monitor-command", { "command-line": "info registers", "cpu-index": vp });
        if (this.stopped()) this.stoppedCache.set(vp, { ...this.stoppedCache.get(vp), segments: text });
      }
      return { arch: "x86_64", state: x86StateFromQemu(regs, parseInfoRegistersSegments(text), parseInfoRegistersAbridgedTag(text)) };
    }
    return { arch: "aarch64", state: aarch64StateFromQemu(regs, await this.readAarch64SystemRegisters()) };
  }

  /**
   * Writes every field that differs. Fields QEMU cannot set (segment descriptor caches, aarch64
   * system registers) are refused before anything is written; every write is read back.
   */
  async writeVpState(vp: number, target: DebuggerVpState): Promise<void> {
    const current = await this.readVpState(vp);
    const writes: [string, bigint, string][] = []; // gdb register, value, field for messages
    const refused: string[] = [];
    if (target.arch === "x86_64" && current.arch === "x86_64") {
      const want = target.state;
      const have = current.state;
      X86_GP_NAMES.forEach((name, i) => want.gp[i] !== have.gp[i] && writes.push([name, want.gp[i], `gp[${i}]`]));
      for (const [field, name] of X86_SCALARS) {
        const w = want[field] as bigint;
        if (w !== (have[field] as bigint)) writes.push([name, field === "rflags" ? w | 2n : w, field]);
      }
      for (const seg of SEGMENT_NAMES) {
        const w = want[seg];
        const h = have[seg];
        const selectorChanges = w.selector !== h.selector;
        if (selectorChanges) writes.push([seg, BigInt(w.selector), `${seg}.selector`]);
        if ((seg === "fs" || seg === "gs") && w.base !== h.base) writes.push([`${seg}_base`, w.base, `${seg}.base`]);
        const hiddenDiffers =
          (seg !== "fs" && seg !== "gs" && w.base !== h.base) || w.limit !== h.limit || w.attributes !== h.attributes;
        // A new selector reloads the hidden part from the GDT: checked after the write.
        if (hiddenDiffers && !selectorChanges) refused.push(`${seg}.base/limit/attributes`);
      }
      if (want.fp && have.fp) fpWrites(want.fp, have.fp, writes, refused);
    } else if (target.arch === "aarch64" && current.arch === "aarch64") {
      const want = target.state;
      const have = current.state;
      want.x.forEach((v, i) => v !== have.x[i] && writes.push([`x${i}`, v, `x[${i}]`]));
      if (want.pc !== have.pc) writes.push(["pc", want.pc, "pc"]);
      if (want.cpsr !== have.cpsr) writes.push(["cpsr", want.cpsr, "cpsr"]);
      const live = currentSpField(want.cpsr);
      if (want[live] !== have[live]) writes.push(["sp", want[live], live]);
      for (const field of ["sctlrEl1", "tcrEl1", "ttbr0El1", "ttbr1El1", "spEl0", "spEl1"] as const) {
        if (field !== live && want[field] !== have[field]) refused.push(field);
      }
    }
    if (refused.length) {
      throw new VmmError(
        Code.FailedPrecondition,
        "UNSUPPORTED_REGISTER",
        `QEMU's gdbstub cannot set ${refused.join(", ")} on VP ${vp}; nothing was written (send the current values of those fields)`,
        { vp: String(vp), fields: refused.join(",") },
      );
    }
    this.stoppedCache.delete(vp);
    this.stepG = undefined;
    await this.select(vp);
    const notApplied: string[] = [];
    for (const [name, value, field] of writes) {
      const check = await this.target.rsp.writeRegisterVerified(name, value, name === "cr8" ? 0xfn : undefined);
      if (!check.applied) notApplied.push(`${field} (wrote ${hex(value)}, reads ${hex(check.readBack)})`);
    }
    if (target.arch === "x86_64") {
      const after = await this.readVpState(vp);
      if (after.arch === "x86_64") {
        for (const seg of SEGMENT_NAMES) {
          const w = target.state[seg];
          const a = after.state[seg];
          if (w.limit !== a.limit || w.attributes !== a.attributes || (seg !== "fs" && seg !== "gs" && w.base !== a.base)) {
            notApplied.push(`${seg} (the GDT descriptor for selector ${hex(BigInt(w.selector))} gives base ${hex(a.base)} limit ${hex(BigInt(a.limit))} attributes ${hex(BigInt(a.attributes))})`);
          }
        }
      }
    }
    if (notApplied.length) {
      throw new VmmError(
        Code.FailedPrecondition,
        "UNSUPPORTED_REGISTER",
        `QEMU did not take these values on VP ${vp}: ${notApplied.join("; ")}; the other fields were written`,
        { vp: String(vp) },
      );
    }
  }

  /** The registers that decide how VP `vp` translates addresses. */
  async pagingRegs(vp: number): Promise<PagingRegs> {
    const cached = this.stoppedCache.get(vp)?.paging;
    if (cached) return cached;
    await this.select(vp);
    const read = (name: string) => this.target.rsp.readRegister(name);
    const regs: PagingRegs =
      this.target.arch === "x86_64"
        ? { arch: "x86_64", cr0: await read("cr0"), cr3: await read("cr3"), cr4: await read("cr4"), efer: await read("efer") }
        : {
            arch: "aarch64",
            sctlrEl1: await read(AARCH64_SYSREGS.sctlrEl1),
            tcrEl1: await read(AARCH64_SYSREGS.tcrEl1),
            ttbr0El1: await read(AARCH64_SYSREGS.ttbr0El1),
            ttbr1El1: await read(AARCH64_SYSREGS.ttbr1El1),
          };
    if (this.stopped()) this.stoppedCache.set(vp, { ...this.stoppedCache.get(vp), paging: regs });
    return regs;
  }

  /**
   * Follows VP `vp`'s flattened state through a batch, starting from a full read. x86 segment
   * descriptor caches are re-read from the monitor when a selector changes (a reload of an
   * unchanged selector goes unseen); aarch64 system registers are read after every instruction.
   */
  async createTracer(vp: number): Promise<RegisterTracer> {
    const start = await this.readVpState(vp);
    const { rsp, qmp } = this.target;
    if (start.arch === "x86_64") {
      const segs = Object.fromEntries(SEGMENT_NAMES.map((n) => [n, start.state[n]])) as Record<SegmentName, SegmentRegister>;
      const tracer: RegisterTracer = {
        flat: flattenVpState(start),
        next: async (g) => {
          const regs = rsp.parseRegisters(g);
          // The descriptor caches come only from the monitor: read them again when a selector moved.
          if (SEGMENT_NAMES.some((n) => regs.get(n) !== undefined && regs.get(n) !== BigInt(segs[n].selector))) {
            const text = await qmp.execute<string>("human-monitor-command", { "command-line": "info registers", "cpu-index": vp });
            Object.assign(segs, parseInfoRegistersSegments(text));
          }
          tracer.flat = flattenVpState({ arch: "x86_64", state: x86StateFromQemu(regs, segs) });
          return tracer.flat;
        },
      };
      return tracer;
    }
    const tracer: RegisterTracer = {
      flat: flattenVpState(start),
      next: async (g) => {
        const core = rsp.parseRegisters(g);
        tracer.flat = flattenVpState({ arch: "aarch64", state: aarch64StateFromQemu(core, await this.readAarch64SystemRegisters()) });
        return tracer.flat;
      },
    };
    return tracer;
  }

  private async readAarch64SystemRegisters(): Promise<Map<string, bigint>> {
    const sys = new Map<string, bigint>();
    for (const name of Object.values(AARCH64_SYSREGS)) sys.set(name, await this.target.rsp.readRegister(name));
    return sys;
  }
}
