// One translation of a guest virtual address with the walk that led to it: what TranslateGva
// answers, and what the page walks (x86, aarch64) produce for GVA reads and writes as well.

/** What one paging-structure entry decided. */
export type WalkDecision = "table" | "page" | "notPresent" | "reserved";

/** One entry a walk read, from the top level down. */
export interface WalkStep {
  /** As the architecture numbers it: x86 5 (PML5E) down to 1 (PTE); aarch64 0 to 3. */
  level: number;
  /** PML5E, PML4E, PDPTE, PDE, PTE; L0..L3 on aarch64. */
  name: string;
  entryGpa: bigint;
  entry: bigint;
  decision: WalkDecision;
}

/** Why a walk did not map the address. */
export type TranslationFault = "nonCanonical" | "notPresent" | "reserved" | "tableOutsideRam" | "unsupported";

/** A translation of one GVA by one VP (see TranslateGvaResponse in the proto). */
export interface GvaTranslation {
  gva: bigint;
  /** x86: "off", "32-bit", "pae", "4-level", "5-level"; aarch64: "off", "4k-ttbr0", "4k-ttbr1" (or the granule it does not model). */
  pagingMode: string;
  /** The first table's physical address (0 with paging off). */
  rootGpa: bigint;
  levels: WalkStep[];
  mapped: boolean;
  /** When mapped. */
  gpa?: bigint;
  /** When mapped. */
  pageSize?: bigint;
  writable: boolean;
  user: boolean;
  executable: boolean;
  /** When not mapped. */
  fault?: TranslationFault;
  /** When not mapped: the level whose entry ended the walk (0 for a non-canonical address). */
  faultLevel?: number;
  /** When not mapped: the reason in words. */
  faultDetail?: string;
}

/** A walk's answer as GVA accesses use it (`translateRange`). */
export type PageTranslation =
  | { ok: true; gpa: bigint; pageSize: bigint }
  | { ok: false; detail: string; nonCanonical?: boolean };

export function summarizeTranslation(t: GvaTranslation): PageTranslation {
  if (t.mapped) return { ok: true, gpa: t.gpa!, pageSize: t.pageSize! };
  return t.fault === "nonCanonical" ? { ok: false, detail: t.faultDetail ?? "", nonCanonical: true } : { ok: false, detail: t.faultDetail ?? "" };
}
