// Converts between a VP's shared register words and the domain's X86VpState (bigint).
import type { SegmentRegister, X86VpState } from "../core";
import * as L from "./x86_64/vp-layout";

const SREGS = ["es", "cs", "ss", "ds", "fs", "gs"] as const;

function get64(w: Uint32Array, i: number): bigint {
  return (BigInt(w[i + 1]) << 32n) | BigInt(w[i]);
}

function set64(w: Uint32Array, i: number, v: bigint): void {
  w[i] = Number(v & 0xffff_ffffn);
  w[i + 1] = Number((v >> 32n) & 0xffff_ffffn);
}

export function readX86VpState(regs: Uint32Array, vp: number): X86VpState {
  const b = vp * L.VP_WORDS;
  const seg = (s: number): SegmentRegister => ({
    base: get64(regs, b + L.segWord(s, L.SEG_BASE)),
    limit: regs[b + L.segWord(s, L.SEG_LIMIT)],
    selector: regs[b + L.segWord(s, L.SEG_SELECTOR)] & 0xffff,
    attributes: regs[b + L.segWord(s, L.SEG_ATTRIBUTES)] & 0xffff,
  });
  return {
    gp: Array.from({ length: 16 }, (_, n) => get64(regs, b + L.GP + 2 * n)),
    rip: get64(regs, b + L.RIP),
    rflags: get64(regs, b + L.RFLAGS) | 2n,
    cr0: get64(regs, b + L.CR0),
    cr2: get64(regs, b + L.CR2),
    cr3: get64(regs, b + L.CR3),
    cr4: get64(regs, b + L.CR4),
    cr8: get64(regs, b + L.CR8),
    efer: get64(regs, b + L.EFER),
    kernelGsBase: get64(regs, b + L.KERNEL_GS_BASE),
    es: seg(L.SREG_ES),
    cs: seg(L.SREG_CS),
    ss: seg(L.SREG_SS),
    ds: seg(L.SREG_DS),
    fs: seg(L.SREG_FS),
    gs: seg(L.SREG_GS),
  };
}

/** Writes every field; RFLAGS bit 1 is forced on and CR8 keeps its 4 defined bits. */
export function writeX86VpState(regs: Uint32Array, vp: number, s: X86VpState): void {
  const b = vp * L.VP_WORDS;
  s.gp.forEach((v, n) => set64(regs, b + L.GP + 2 * n, v));
  set64(regs, b + L.RIP, s.rip);
  set64(regs, b + L.RFLAGS, (s.rflags & 0xffff_ffffn) | 2n);
  set64(regs, b + L.CR0, s.cr0);
  set64(regs, b + L.CR2, s.cr2);
  set64(regs, b + L.CR3, s.cr3);
  set64(regs, b + L.CR4, s.cr4);
  set64(regs, b + L.CR8, s.cr8 & 0xfn);
  set64(regs, b + L.EFER, s.efer);
  set64(regs, b + L.KERNEL_GS_BASE, s.kernelGsBase);
  SREGS.forEach((name, sreg) => {
    const seg = s[name];
    set64(regs, b + L.segWord(sreg, L.SEG_BASE), seg.base);
    regs[b + L.segWord(sreg, L.SEG_LIMIT)] = seg.limit >>> 0;
    regs[b + L.segWord(sreg, L.SEG_SELECTOR)] = seg.selector & 0xffff;
    regs[b + L.segWord(sreg, L.SEG_ATTRIBUTES)] = seg.attributes & 0xffff;
  });
}

/** The registers a GVA translation depends on. */
export function readX86PagingRegs(regs: Uint32Array, vp: number) {
  const b = vp * L.VP_WORDS;
  return {
    cr0: get64(regs, b + L.CR0),
    cr3: get64(regs, b + L.CR3),
    cr4: get64(regs, b + L.CR4),
    efer: get64(regs, b + L.EFER),
  };
}
