// The C corpus (guests/build/c-*.json): which images to run, their bytes and symbols.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadGuestImage, type GuestImage } from "../../src/emu";

export const BUILD_DIR = resolve(__dirname, "../../guests/build");

export interface CorpusGuest {
  /** e.g. c-crc32-O2 */
  name: string;
  /** e.g. crc32 */
  program: string;
  /** O0, O2, Os, v3 */
  variant: string;
  manifestPath: string;
  image: GuestImage;
  /** Function symbols by address, sorted, for naming PCs. */
  functions: { address: bigint; name: string }[];
}

/** Every corpus manifest's name, sorted. */
export function corpusNames(dir = BUILD_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => /^c-.+\.json$/.test(f))
    .map((f) => f.replace(/\.json$/, ""))
    .sort();
}

/**
 * The guests that `selectors` name: an exact name (c-crc32-O2), a program (crc32: its variants),
 * a variant (O2: every program's), or program-variant (crc32-O2). None: the whole corpus.
 */
export function selectGuests(selectors: readonly string[], dir = BUILD_DIR): string[] {
  const all = corpusNames(dir);
  if (selectors.length === 0) return all;
  const picked = new Set<string>();
  for (const sel of selectors) {
    const s = sel.replace(/\.json$/, "").replace(/^.*\//, "");
    const matches = all.filter((n) => {
      const [, program, variant] = /^c-(.+)-([^-]+)$/.exec(n) ?? [];
      return n === s || `c-${s}` === n || program === s || variant === s;
    });
    if (matches.length === 0) throw new Error(`no corpus guest matches "${sel}" (have: ${all.join(", ")})`);
    for (const m of matches) picked.add(m);
  }
  return all.filter((n) => picked.has(n));
}

export function loadCorpusGuest(name: string, dir = BUILD_DIR): CorpusGuest {
  const manifestPath = join(dir, `${name}.json`);
  const image = loadGuestImage(manifestPath);
  const [, program = name, variant = ""] = /^c-(.+)-([^-]+)$/.exec(name) ?? [];
  const json = JSON.parse(readFileSync(manifestPath, "utf8")) as { symbols: Record<string, { gva: string }> };
  const functions = Object.entries(json.symbols)
    .map(([n, s]) => ({ name: n, address: BigInt(s.gva) }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { name, program, variant, manifestPath, image, functions };
}

/** "main+0x1c" for an address inside the image, else the bare hex. */
export function symbolize(guest: CorpusGuest, address: bigint): string {
  let best: { address: bigint; name: string } | undefined;
  for (const f of guest.functions) {
    if (f.address <= address) best = f;
    else break;
  }
  const end = guest.image.loadGpa + BigInt(guest.image.bytes.length);
  if (!best || address >= end + 0x100000n) return hex(address);
  const off = address - best.address;
  return off === 0n ? best.name : `${best.name}+0x${off.toString(16)}`;
}

export function hex(v: bigint | number, width = 0): string {
  return "0x" + BigInt(v).toString(16).padStart(width, "0");
}
