// The edges of the contract, run the same way on every backend: zero-length accesses (checked
// as a one-byte access at the same address, answering no bytes) and SetVpState of states the
// architecture forbids (refused with VP_STATE_INVALID, the VP left as it was).
import { VmmDebugError, type GuestAddress, type Session, type VmmDebugClient, type X86VpState } from "../../src/client";

export interface EdgeTarget {
  vm: string;
  arch: "x86_64" | "aarch64";
  vpCount: number;
  /** Guest data (the counter) by GVA (VP 0) and GPA. */
  data: { gva: bigint; gpa: bigint };
  /** A GPA nothing maps. */
  unmappedGpa: bigint;
  /** A canonical GVA the guest does not map. */
  unmappedGva: bigint;
}

export const LAST_GPA = 0xffff_ffff_ffff_ffffn;
/** Bit 47 set, bits 63:48 clear: outside every 4-level x86 range and outside both aarch64 TTBR ranges. */
export const NON_CANONICAL_GVA = 0x0000_8000_0000_0000n;

/** The addresses every zero-length rule is checked at, with the outcome a one-byte access has there. */
export function edgeAddresses(t: EdgeTarget): { name: string; address: GuestAddress; expect: string }[] {
  return [
    { name: "mapped GPA", address: { gpa: t.data.gpa }, expect: "ok" },
    { name: "mapped GVA", address: { gva: t.data.gva, vp: 0 }, expect: "ok" },
    { name: "unmapped GPA", address: { gpa: t.unmappedGpa }, expect: "OUT_OF_RANGE/GPA_UNMAPPED" },
    { name: "GPA 2^64-1", address: { gpa: LAST_GPA }, expect: "OUT_OF_RANGE/GPA_UNMAPPED" },
    {
      name: "non-canonical GVA",
      address: { gva: NON_CANONICAL_GVA, vp: 0 },
      // aarch64 has no "canonical": the address is outside both translation ranges.
      expect: t.arch === "x86_64" ? "INVALID_ARGUMENT/GVA_NON_CANONICAL" : "FAILED_PRECONDITION/GVA_NOT_MAPPED",
    },
    { name: "unmapped GVA", address: { gva: t.unmappedGva, vp: 0 }, expect: "FAILED_PRECONDITION/GVA_NOT_MAPPED" },
    { name: "VP out of range", address: { gva: t.data.gva, vp: t.vpCount }, expect: "INVALID_ARGUMENT/VP_OUT_OF_RANGE" },
  ];
}

/** "ok:<bytes>" for a result (a write's is 0), "CODE/REASON" for a refusal. */
export async function outcome(call: Promise<Uint8Array | void>): Promise<string> {
  try {
    const v = await call;
    return `ok:${v ? v.length : 0}`;
  } catch (e) {
    if (e instanceof VmmDebugError) return `${e.codeName}/${e.reason}`;
    throw e;
  }
}

/** "ok" for any success, else the refusal. */
export const kind = (o: string) => (o.startsWith("ok:") ? "ok" : o);

/**
 * For every edge address: the outcome of a one-byte read, and of a zero-length ReadMemory,
 * ReadMemoryStream, ReadMemoryMany range, Session read, and WriteMemory with no data. The session
 * must hold the VM stopped (a write is attempted only where a one-byte write-back is harmless).
 */
export async function zeroLengthOutcomes(client: VmmDebugClient, session: Session, t: EdgeTarget) {
  const rows: Record<string, string>[] = [];
  for (const { name, address, expect } of edgeAddresses(t)) {
    const oneByte = await outcome(client.readMemory(t.vm, address, 1));
    const [many] = await client.readMany(t.vm, [{ address, length: 0 }]);
    rows.push({
      name,
      expect,
      oneByte: kind(oneByte),
      readMemory: await outcome(client.readMemory(t.vm, address, 0)),
      readMemoryStream: await outcome(client.readMemoryStream(t.vm, address, 0)),
      readMemoryMany: "data" in many ? `ok:${many.data.length}` : `${many.error.codeName}/${many.error.reason}`,
      sessionRead: await outcome(session.readMemory(address, 0)),
      write: await outcome(session.writeMemory(address, new Uint8Array(0))),
      // Where a one-byte read works, write the same byte back; elsewhere the write is refused.
      oneByteWrite: kind(await outcome(oneByte.startsWith("ok") ? rewriteByte(session, address) : session.writeMemory(address, new Uint8Array(1)))),
    });
  }
  return rows;
}

/** Writes back the byte that is there (the VM is stopped): a one-byte write with no effect. */
async function rewriteByte(session: Session, address: GuestAddress): Promise<void> {
  const byte = await session.readMemory(address, 1);
  await session.writeMemory(address, byte);
}

/** What every row must show: each zero-length access fails exactly as a one-byte access does, or answers nothing. */
export function expectedZeroLengthRow(row: { name: string; expect: string }) {
  const zero = row.expect === "ok" ? "ok:0" : row.expect;
  return {
    name: row.name,
    expect: row.expect,
    oneByte: row.expect,
    readMemory: zero,
    readMemoryStream: zero,
    readMemoryMany: zero,
    sessionRead: zero,
    write: zero,
    oneByteWrite: row.expect,
  };
}

const CR0_PE = 1n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER_LMA = 1n << 10n;

/** Edits of a 64-bit long-mode state into states the architecture forbids, and the field each is refused for. */
export function forbiddenX86Edits(s: X86VpState): { name: string; state: X86VpState; field: string }[] {
  const f = (register: string) => `state.x86_64.${register}`;
  return [
    { name: "CR0 = 0 (paging off while EFER.LMA = 1)", state: { ...s, cr0: 0n }, field: f("cr0") },
    // EFER.LMA = 0 leaves 64-bit mode, where RIP has 32 bits: a higher-half RIP is the first thing wrong.
    { name: "EFER = 0", state: { ...s, efer: 0n }, field: s.rip > 0xffff_ffffn ? f("rip") : f("efer") },
    { name: "CR0.PG without CR0.PE", state: { ...s, cr0: s.cr0 & ~CR0_PE }, field: f("cr0") },
    { name: "CR0.PG cleared in long mode", state: { ...s, cr0: s.cr0 & ~CR0_PG }, field: f("cr0") },
    { name: "EFER.LMA cleared while CR0.PG and EFER.LME are set", state: { ...s, efer: s.efer & ~EFER_LMA }, field: f("efer") },
    { name: "CR4.PAE cleared in long mode", state: { ...s, cr4: s.cr4 & ~CR4_PAE }, field: f("cr4") },
    { name: "non-canonical RIP", state: { ...s, rip: NON_CANONICAL_GVA }, field: f("rip") },
    { name: "CS.L and CS.D both set", state: { ...s, cs: { ...s.cs, attributes: s.cs.attributes | 0x6000 } }, field: f("cs.attributes") },
    { name: "RFLAGS bit 1 clear", state: { ...s, rflags: s.rflags & ~2n }, field: f("rflags") },
    { name: "RFLAGS reserved bit 3 set", state: { ...s, rflags: s.rflags | 8n }, field: f("rflags") },
    { name: "CR0 bit 32 set", state: { ...s, cr0: s.cr0 | (1n << 32n) }, field: f("cr0") },
  ];
}

/** Each forbidden edit of VP 0's state: its refusal ("CODE/REASON field") and whether the VP kept its registers. */
export async function refuseForbiddenX86(session: Session) {
  const before = await session.getVpState(0);
  if (before.arch !== "x86_64") throw new Error("not an x86-64 VM");
  const rows: { name: string; refusal: string; unchanged: boolean }[] = [];
  for (const edit of forbiddenX86Edits(before.state)) {
    let refusal = "accepted";
    try {
      await session.setVpState(0, { arch: "x86_64", state: edit.state });
    } catch (e) {
      if (!(e instanceof VmmDebugError)) throw e;
      refusal = `${e.codeName}/${e.reason} ${e.metadata.field}`;
    }
    rows.push({ name: edit.name, refusal, unchanged: JSON.stringify(await session.getVpState(0), big) === JSON.stringify(before, big) });
  }
  return { before: before.state, rows };
}

export function expectedRefusals(s: X86VpState) {
  return forbiddenX86Edits(s).map((e) => ({ name: e.name, refusal: `INVALID_ARGUMENT/VP_STATE_INVALID ${e.field}`, unchanged: true }));
}

const big = (_: string, v: unknown) => (typeof v === "bigint" ? v.toString(16) : v);
