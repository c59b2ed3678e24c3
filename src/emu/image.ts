// Guest images: the manifest next to a prebuilt image, and how the embedded machine boots it.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Arch } from "../core";
import type { GuestMemory } from "./memory";
import { x86BootState } from "./x86_64";
import { GDTR, GP, VP_WORDS } from "./x86_64/vp-layout";

/** A symbol of a guest image, by virtual and physical address. */
export interface GuestSymbol {
  gva: bigint;
  gpa: bigint;
}

/** A prebuilt guest image with its manifest (guests/build/*.json). */
export interface GuestImage {
  name: string;
  arch: Arch;
  /** The flat image, loaded at loadGpa. */
  bytes: Uint8Array;
  loadGpa: bigint;
  /** Where VPs start (identity-mapped at boot, so also a GPA). */
  entry: bigint;
  symbols: Record<string, GuestSymbol>;
}

interface ManifestJson {
  name: string;
  arch: Arch;
  image: string;
  load_gpa: string;
  entry: string;
  symbols: Record<string, { gva: string; gpa: string }>;
}

/** Reads a manifest (e.g. guests/build/demo-x86_64.json) and the image file it names. */
export function loadGuestImage(manifestPath: string): GuestImage {
  const json = JSON.parse(readFileSync(manifestPath, "utf8")) as ManifestJson;
  const bytes = new Uint8Array(readFileSync(resolve(dirname(manifestPath), json.image)));
  const symbols: Record<string, GuestSymbol> = {};
  for (const [name, s] of Object.entries(json.symbols)) symbols[name] = { gva: BigInt(s.gva), gpa: BigInt(s.gpa) };
  return { name: json.name, arch: json.arch, bytes, loadGpa: BigInt(json.load_gpa), entry: BigInt(json.entry), symbols };
}

/** Where the x86 loader puts its GDT and boot page tables (below the image at 1 MiB). */
export const X86_BOOT_GDT = 0x500;
export const X86_BOOT_GDT_LIMIT = 0x17;
export const X86_BOOT_PML4 = 0x1000;
const X86_BOOT_PDPT = 0x2000;
const X86_BOOT_PD = 0x3000;

/**
 * Loads `image` into guest RAM and, for x86-64, writes the boot GDT (null, 64-bit code 0x08,
 * flat data 0x10) and boot page tables identity-mapping the first 1 GiB with 2 MiB pages.
 * VPs then start in long mode at the entry (see x86BootState).
 */
export function loadImageIntoMemory(memory: GuestMemory, image: GuestImage): void {
  memory.write(image.loadGpa, image.bytes);
  if (image.arch !== "x86_64") return;
  const gdt = new DataView(new ArrayBuffer(24));
  gdt.setBigUint64(8, 0x00af9b000000ffffn, true);
  gdt.setBigUint64(16, 0x00cf93000000ffffn, true);
  memory.write(BigInt(X86_BOOT_GDT), new Uint8Array(gdt.buffer));
  const tables = new DataView(new ArrayBuffer(0x3000));
  tables.setBigUint64(0, BigInt(X86_BOOT_PDPT) | 0x3n, true); // PML4[0] → PDPT, present|writable
  tables.setBigUint64(0x1000, BigInt(X86_BOOT_PD) | 0x3n, true); // PDPT[0] → PD
  for (let i = 0; i < 512; i++) {
    tables.setBigUint64(0x2000 + i * 8, (BigInt(i) << 21n) | 0x83n, true); // 2 MiB, present|writable|PS
  }
  memory.write(BigInt(X86_BOOT_PML4), new Uint8Array(tables.buffer));
}

/** Power-on or reset: load the image and put every VP in its boot state (RDI = VP index, RSI = VP count). */
export function bootMachine(memory: GuestMemory, regs: Uint32Array, image: GuestImage, vpCount: number): void {
  loadImageIntoMemory(memory, image);
  for (let vp = 0; vp < vpCount; vp++) {
    const base = vp * VP_WORDS;
    regs.fill(0, base, base + VP_WORDS);
    regs[base + GDTR] = X86_BOOT_GDT;
    regs[base + GDTR + 2] = X86_BOOT_GDT_LIMIT;
    x86BootState(regs, vp, Number(image.entry & 0xffff_ffffn), Number(image.entry >> 32n), X86_BOOT_PML4);
    regs[base + GP + 2 * 6] = vpCount; // RSI
  }
}
