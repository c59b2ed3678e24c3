// A QEMU VM's guest memory: RAM read straight from the shared backing file, everything else (and
// every write) through the gdbstub in physical-memory mode, GVAs walked over the VP's page tables.
import { closeSync, openSync, readSync } from "node:fs";
import {
  Code,
  type GuestAddress,
  type GvaTranslation,
  type MemoryRegion,
  type PageTranslation,
  type PartialRead,
  PartialReadBuilder,
  VmmError,
  errors,
  hex,
  translateRange,
  translateRangePartial,
  walkAarch64,
  walkAarch64Detailed,
  walkX86,
  walkX86Detailed,
} from "../core";
import { type QemuMemoryMap, isMapped, splitByMapped, splitByRam } from "./memory-map";
import type { QemuRegisters } from "./registers";
import type { RspClient } from "./rsp-client";

/** Most rounds of fetching page-table entries a walk may take (it needs at most 5 levels). */
const MAX_WALK_ROUNDS = 64;

interface MemoryTarget {
  readonly id: string;
  readonly rsp: RspClient;
}

export class QemuMemory {
  /** Whether GPA reads inside RAM use the shared RAM file (when there is one). */
  fastMemory: boolean;
  readonly regions: readonly MemoryRegion[];
  /** Our descriptor of the RAM file; undefined without one, or once closed. */
  private ramFd: number | undefined;

  constructor(
    private readonly target: MemoryTarget,
    private readonly map: QemuMemoryMap,
    private readonly registers: QemuRegisters,
    /** A gdbstub failure as the VmmError callers get (see RunLoop.refusal). */
    private readonly refusal: (e: unknown, what: string) => VmmError,
    options: { ramFile?: string; fastMemory?: boolean },
  ) {
    this.regions = map.ram.map(({ gpa, size }) => ({ gpa, size, name: "ram" }));
    if (options.ramFile) this.ramFd = openSync(options.ramFile, "r");
    this.fastMemory = options.fastMemory ?? true;
  }

  /** A GPA read served from the RAM file without touching the VM, or undefined when it cannot be. */
  readFromFile(address: GuestAddress, length: number): Uint8Array | undefined {
    if (address.kind !== "gpa" || !this.fileReads) return undefined;
    const pieces = splitByRam(this.map.ram, address.gpa, length);
    return pieces.every((p) => p.fileOffset !== undefined) ? this.readFile(pieces) : undefined;
  }

  /** Reads guest memory; the VM is stopped (or paused) and the gdbstub is ours. */
  async read(address: GuestAddress, length: number): Promise<Uint8Array> {
    const pieces = await this.physicalPieces(address, length);
    for (const p of pieces) this.checkMapped(p.gpa, p.length);
    const out = new Uint8Array(length);
    let o = 0;
    for (const piece of pieces) {
      out.set(await this.readPhysical(piece.gpa, piece.length), o);
      o += piece.length;
    }
    return out;
  }

  /**
   * Reads what can be read; the VM is stopped (or paused). Unmapped GVA pages, non-canonical
   * GVAs and GPAs outside every range QEMU maps (or that its gdbstub refuses) read as zero and
   * are listed.
   */
  async readPartial(address: GuestAddress, length: number): Promise<PartialRead> {
    const out = new PartialReadBuilder(length);
    const pieces =
      address.kind === "gpa"
        ? [{ gpa: address.gpa, length }]
        : await this.walking(address.vp, address.gva, (walk) => translateRangePartial(address.vp, address.gva, length, walk));
    for (const piece of pieces) {
      if ("error" in piece) {
        out.skip(piece.length, piece.error);
        continue;
      }
      for (const part of splitByMapped(this.map.mapped, piece.gpa, piece.length)) {
        if (!part.mapped) {
          out.skipGpa(part.gpa, part.length);
          continue;
        }
        try {
          out.put(await this.readPhysical(part.gpa, part.length));
        } catch (e) {
          if (!(e instanceof VmmError && e.reason === "GPA_UNMAPPED")) throw e;
          out.skipGpa(part.gpa, part.length);
        }
      }
    }
    return out.result();
  }

  /** Translates `gva` with VP `vp`'s registers and page tables, every level recorded (the walk GVA accesses use). */
  async translate(vp: number, gva: bigint): Promise<GvaTranslation> {
    const paging = await this.registers.pagingRegs(vp);
    return this.settle(gva, (readEntry) =>
      paging.arch === "x86_64" ? walkX86Detailed(paging, gva, readEntry) : walkAarch64Detailed(paging, gva, readEntry),
    );
  }

  /**
   * Writes guest memory, all or nothing; the VM is stopped (or paused). Writes go through the
   * gdbstub even inside RAM: QEMU then drops translated code for the pages written, which a
   * write to the backing file would not.
   */
  async write(address: GuestAddress, data: Uint8Array): Promise<void> {
    const pieces = await this.physicalPieces(address, data.length);
    for (const p of pieces) this.checkMapped(p.gpa, p.length);
    let o = 0;
    for (const p of pieces) {
      await this.rspCall(() => this.target.rsp.writeMemory(p.gpa, data.subarray(o, o + p.length)), p.gpa, p.length);
      o += p.length;
    }
  }

  close(): void {
    if (this.ramFd !== undefined) closeSync(this.ramFd);
    this.ramFd = undefined;
  }

  /** Whether GPA reads inside RAM come from the RAM file (without touching the VM). */
  get fileReads(): boolean {
    return this.fastMemory && this.ramFd !== undefined;
  }

  private async physicalPieces(address: GuestAddress, length: number): Promise<{ gpa: bigint; length: number }[]> {
    if (address.kind === "gpa") return [{ gpa: address.gpa, length }];
    return this.walking(address.vp, address.gva, (walk) => translateRange(address.vp, address.gva, length, walk));
  }

  /** Runs `fn` with VP `vp`'s page walk (GVA accesses), its entries fetched from the VM. */
  private async walking<T>(vp: number, gva: bigint, fn: (walk: (gva: bigint) => PageTranslation) => T): Promise<T> {
    const paging = await this.registers.pagingRegs(vp);
    return this.settle(gva, (readEntry) =>
      fn((at) => (paging.arch === "x86_64" ? walkX86(paging, at, readEntry) : walkAarch64(paging, at, readEntry))),
    );
  }

  /**
   * The walkers read entries synchronously: `fn` runs with the entries fetched so far (a missing
   * one reads as 0, not present), and again once the missing ones are fetched (≤ 5 levels).
   */
  private async settle<T>(gva: bigint, fn: (readEntry: (gpa: bigint) => bigint | undefined) => T): Promise<T> {
    const entries = new Map<bigint, bigint | undefined>();
    const missing: bigint[] = [];
    const readEntry = (gpa: bigint) => {
      if (entries.has(gpa)) return entries.get(gpa);
      missing.push(gpa);
      return 0n; // looks not present; the walk is redone once it is fetched
    };
    for (let round = 0; round < MAX_WALK_ROUNDS; round++) {
      missing.length = 0;
      try {
        const result = fn(readEntry);
        if (missing.length === 0) return result;
      } catch (e) {
        if (missing.length === 0) throw e; // a real translation failure, not an entry still to fetch
      }
      for (const gpa of new Set(missing)) entries.set(gpa, await this.readEntry(gpa));
    }
    throw new VmmError(Code.Internal, "INTERNAL", `page walk of ${hex(gva)} did not settle`);
  }

  /** A translation-table entry (u64) at `gpa`, or undefined outside RAM. */
  private async readEntry(gpa: bigint): Promise<bigint | undefined> {
    const pieces = splitByRam(this.map.ram, gpa, 8);
    if (pieces.some((p) => p.fileOffset === undefined)) return undefined;
    const bytes = this.fileReads ? this.readFile(pieces) : await this.target.rsp.readMemory(gpa, 8);
    return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  }

  /** Reads physical memory: RAM from the backing file when there is one, the rest (and all without a file) through the gdbstub. */
  private async readPhysical(gpa: bigint, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let o = 0;
    for (const p of splitByRam(this.map.ram, gpa, length)) {
      if (p.fileOffset !== undefined && this.fileReads) out.set(this.readFile([p]), o);
      else out.set(await this.rspCall(() => this.target.rsp.readMemory(p.gpa, p.length), p.gpa, p.length), o);
      o += p.length;
    }
    return out;
  }

  private readFile(pieces: { length: number; fileOffset?: bigint }[]): Uint8Array {
    const total = pieces.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of pieces) {
      let done = 0;
      while (done < p.length) {
        const n = readSync(this.ramFd!, out, o + done, p.length - done, Number(p.fileOffset!) + done);
        if (n <= 0) throw errors.backendUnavailable(this.target.id, "the shared RAM file is shorter than guest RAM");
        done += n;
      }
      o += p.length;
    }
    return out;
  }

  /** Only what QEMU maps (RAM, ROM, MMIO) can be accessed; anything else is GPA_UNMAPPED. */
  private checkMapped(gpa: bigint, length: number): void {
    if (!isMapped(this.map.mapped, gpa, length)) throw errors.gpaUnmapped(gpa, BigInt(length));
  }

  /** Runs a gdbstub memory access, mapping QEMU's `E xx` to GPA_UNMAPPED. */
  private async rspCall<T>(fn: () => Promise<T>, gpa: bigint, length: number): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if ((e as { code?: string }).code === "error-reply") throw errors.gpaUnmapped(gpa, BigInt(length));
      throw this.refusal(e, "QEMU's gdbstub failed");
    }
  }
}
