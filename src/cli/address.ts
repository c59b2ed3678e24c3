// Addresses as a person types them: hex (0x…), decimal, or a symbol of a guest manifest with an
// optional offset (`counter`, `counter+8`, `tick+0x10`), and the way back (`<tick+4>`).
import { readFileSync } from "node:fs";
import { UsageError } from "./args";

/** Environment variable naming the guest manifest when --symbols is not given. */
export const SYMBOLS_ENV = "VMM_DEBUG_SYMBOLS";

export interface SymbolTable {
  /** The manifest file. */
  file: string;
  /** name → { gva, gpa } */
  symbols: Map<string, { gva: bigint; gpa: bigint }>;
}

/** Reads a guest manifest ({symbols: {name: {gva, gpa}}}); a file that is not one is a usage error. */
export function loadSymbols(file: string): SymbolTable {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--symbols ${file}: cannot read it (${code === "ENOENT" ? "no such file" : (code ?? String(e))})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`--symbols ${file}: not JSON (a guest manifest such as guests/build/demo-x86_64.json)`);
  }
  const raw = (json as { symbols?: unknown } | null)?.symbols;
  if (typeof raw !== "object" || raw === null) throw new UsageError(`--symbols ${file}: no "symbols" object (want {symbols: {name: {gva, gpa}}})`);
  const symbols = new Map<string, { gva: bigint; gpa: bigint }>();
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const v = value as { gva?: unknown; gpa?: unknown } | null;
    try {
      symbols.set(name, { gva: BigInt(String(v?.gva)), gpa: BigInt(String(v?.gpa)) });
    } catch {
      throw new UsageError(`--symbols ${file}: symbol "${name}" has no numeric gva and gpa`);
    }
  }
  return { file, symbols };
}

const U64_MAX = (1n << 64n) - 1n;

function number(text: string, what: string): bigint {
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(text)) throw new UsageError(`${what}: "${text}" is not a number (hex 0x…, or decimal)`);
  return BigInt(text);
}

/**
 * Parses ADDR: a number, or SYMBOL[+|-OFFSET] with --symbols (the symbol's GVA, or its GPA when
 * `physical`). Out-of-range values are usage errors.
 */
export function parseAddress(text: string, symbols: SymbolTable | undefined, physical: boolean, what = "address"): bigint {
  const t = text.trim();
  if (t === "") throw new UsageError(`${what}: empty`);
  let value: bigint;
  if (/^(0x[0-9a-f]+|[0-9]+)$/i.test(t)) {
    value = BigInt(t);
  } else {
    const m = /^([A-Za-z_.$][\w.$]*)\s*(?:([+-])\s*(0x[0-9a-fA-F]+|[0-9]+))?$/.exec(t);
    if (!m) throw new UsageError(`${what}: "${text}" is not an address (hex 0x…, decimal, or SYMBOL[+OFFSET] with --symbols)`);
    if (!symbols) throw new UsageError(`${what}: "${m[1]}" is a symbol, but no guest manifest was given (--symbols FILE or $${SYMBOLS_ENV})`);
    const s = symbols.symbols.get(m[1]);
    if (!s) {
      const near = [...symbols.symbols.keys()].filter((n) => n.includes(m[1]) || m[1].includes(n)).slice(0, 5);
      throw new UsageError(`${what}: no symbol "${m[1]}" in ${symbols.file}${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}`);
    }
    const base = physical ? s.gpa : s.gva;
    const offset = m[3] === undefined ? 0n : number(m[3], what);
    value = m[2] === "-" ? base - offset : base + offset;
  }
  if (value < 0n || value > U64_MAX) throw new UsageError(`${what}: "${text}" is outside 0..0xffffffffffffffff`);
  return value;
}

/** A non-negative integer argument (LEN, COUNT, --vp …). */
export function parseCount(text: string, what: string, min: number, max: number): number {
  const t = text.trim();
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(t)) throw new UsageError(`${what}: "${text}" is not a whole number`);
  const n = Number(BigInt(t));
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${what} must be in ${min}..${max}, got ${text}`);
  return n;
}

/** `<name+0x4>` for an address at or after a symbol (within 64 KiB), else undefined. */
export function symbolize(address: bigint, symbols: SymbolTable | undefined, physical = false): string | undefined {
  if (!symbols) return undefined;
  let best: { name: string; at: bigint } | undefined;
  for (const [name, s] of symbols.symbols) {
    const at = physical ? s.gpa : s.gva;
    if (at <= address && address - at < 0x10000n && (!best || at > best.at)) best = { name, at };
  }
  if (!best) return undefined;
  const off = address - best.at;
  return off === 0n ? best.name : `${best.name}+0x${off.toString(16)}`;
}

export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}
