// What the gdb bridge has learnt at one stop, so that gdb's packets between two runs do not each
// cost a round trip to the server: each VP's registers (read once, or carried through a step by
// that step's register trace) and the guest memory read at this stop, plus a read of the code at
// a stepped VP's new PC that is sent while gdb reads the stop reply.
//
// Valid only while the VM stays stopped and nothing is written: the connection calls forget()
// before every resume and step, every register or memory write and every breakpoint change. The
// VM cannot change behind it meanwhile: the bridge's session holds it, and only the attached
// session runs the VM or writes to it.
import type { DebuggerVpState, Session } from "../client";

/** Reads kept per stop (each at most one `m` reply's worth). */
const MAX_READS = 64;
/** Bytes read ahead at a stepped VP's PC (gdb reads the instruction there after every step). */
const CODE_AHEAD = 16;

interface Read {
  vp: number;
  address: bigint;
  data: Uint8Array;
}

export class StopCache {
  private readonly registers = new Map<number, DebuggerVpState>();
  private reads: Read[] = [];
  private ahead: { vp: number; address: bigint; length: number; data: Promise<Uint8Array | undefined> } | undefined;

  /** Everything learnt at this stop goes: the VM is about to run, or something is written. */
  forget(): void {
    this.registers.clear();
    this.reads = [];
    this.ahead = undefined;
  }

  registersOf(vp: number): DebuggerVpState | undefined {
    return this.registers.get(vp);
  }

  keepRegisters(vp: number, state: DebuggerVpState): void {
    this.registers.set(vp, state);
  }

  /** Bytes this stop has read already (or read ahead), or undefined: then read them and keep() them. */
  async memory(vp: number, address: bigint, length: number): Promise<Uint8Array | undefined> {
    const kept = this.find(vp, address, length);
    if (kept) return kept;
    const ahead = this.ahead;
    if (!ahead || ahead.vp !== vp || address < ahead.address || address + BigInt(length) > ahead.address + BigInt(ahead.length)) return undefined;
    const data = await ahead.data;
    // Forgotten meanwhile (cannot happen between two packets, but a stale answer is never used).
    if (!data || this.ahead !== ahead) return undefined;
    this.keep(vp, ahead.address, data);
    return this.find(vp, address, length);
  }

  keep(vp: number, address: bigint, data: Uint8Array): void {
    if (this.reads.length < MAX_READS) this.reads.push({ vp, address, data });
  }

  /**
   * Starts reading the code at `pc` (up to CODE_AHEAD bytes, not past its 4 KiB page, so the read
   * fails or succeeds as a read of the first byte would). A failure is dropped: gdb's own read
   * then goes to the server and answers as it would have.
   */
  readAhead(session: Session, vp: number, pc: bigint): void {
    const length = Math.min(CODE_AHEAD, Number(0x1000n - (pc & 0xfffn)));
    const data = session.readMemory({ gva: pc, vp }, length).then(
      (d) => (d.length === length ? d : undefined),
      () => undefined,
    );
    this.ahead = { vp, address: pc, length, data };
  }

  private find(vp: number, address: bigint, length: number): Uint8Array | undefined {
    const end = address + BigInt(length);
    for (const r of this.reads) {
      if (r.vp === vp && address >= r.address && end <= r.address + BigInt(r.data.length)) {
        const at = Number(address - r.address);
        return r.data.subarray(at, at + length);
      }
    }
    return undefined;
  }
}
