// Software breakpoints as the interpreter checks them at instruction fetch: constant-time lookups
// by linear address (one VP's or every VP's) and by physical address, and a generation number
// that tells decoded blocks when the matches they cached are stale.

/** One armed software breakpoint, as the worker holds it. */
export interface SwBreakpointSpec {
  /** The id the server gave it (1 up, below 2^32: the step channel carries it in one word). */
  id: number;
  kind: "gva" | "gpa";
  /** With kind "gva": the linear address (low and high words, signed). */
  lo: number;
  hi: number;
  /** With kind "gva": the only VP it stops, or -1 for every VP. */
  vp: number;
  /** With kind "gpa": the physical address (guest RAM, so below 2^53). */
  gpa: number;
  /** Removed when it fires. */
  oneShot: boolean;
}

export class SwBreakpointSet {
  /** Armed breakpoints; while 0 the run loops check nothing. */
  count = 0;
  /** Changes whenever the set does: a block whose `swGen` differs looks its matches up again. */
  gen = 0;
  private readonly byId = new Map<number, SwBreakpointSpec>();
  /** GVA breakpoints by the low word of their address (then matched on the high word and VP). */
  private readonly byLo = new Map<number, SwBreakpointSpec[]>();
  private readonly byGpa = new Map<number, SwBreakpointSpec>();

  /** Arms `spec`, replacing the breakpoint with the same id if there is one. */
  add(spec: SwBreakpointSpec): void {
    this.remove(spec.id);
    const s = { ...spec };
    this.byId.set(s.id, s);
    if (s.kind === "gpa") this.byGpa.set(s.gpa, s);
    else {
      const list = this.byLo.get(s.lo);
      if (list) list.push(s);
      else this.byLo.set(s.lo, [s]);
    }
    this.changed();
  }

  remove(id: number): void {
    const s = this.byId.get(id);
    if (!s) return;
    this.byId.delete(id);
    if (s.kind === "gpa") this.byGpa.delete(s.gpa);
    else {
      const list = this.byLo.get(s.lo)!.filter((x) => x !== s);
      if (list.length > 0) this.byLo.set(s.lo, list);
      else this.byLo.delete(s.lo);
    }
    this.changed();
  }

  clear(): void {
    this.byId.clear();
    this.byLo.clear();
    this.byGpa.clear();
    this.changed();
  }

  /**
   * The id of the breakpoint that stops VP `vp` fetching the instruction at linear lo:hi, physical
   * `gpa`, or 0. Several may match; the stop names one: this VP's, then every VP's, then by GPA.
   */
  match(vp: number, lo: number, hi: number, gpa: number): number {
    let any = 0;
    const list = this.byLo.get(lo);
    if (list !== undefined) {
      for (const s of list) {
        if (s.hi !== hi) continue;
        if (s.vp === vp) return s.id;
        if (s.vp < 0) any = s.id;
      }
      if (any !== 0) return any;
    }
    const p = this.byGpa.get(gpa);
    return p === undefined ? 0 : p.id;
  }

  /** Breakpoint `id` fired: a one-shot one is gone from now on. */
  hit(id: number): void {
    if (this.byId.get(id)?.oneShot) this.remove(id);
  }

  private changed(): void {
    this.count = this.byId.size;
    this.gen++;
  }
}
