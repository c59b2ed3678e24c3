// Mutations of encoded protobuf requests, at two levels: the wire fields (parsed with the message's
// schema, so values can be set past their type's range, oneof cases swapped, repeated fields
// overfilled, unknown fields added) and the raw bytes (bit flips, truncation, splices).
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { Random } from "./random";

/** One field on the wire. A length-delimited field of a message type is parsed into `children`. */
export type WireEntry =
  | { no: number; wt: 0 | 1; value: bigint; field?: DescField }
  | { no: number; wt: 5; value: number; field?: DescField }
  | { no: number; wt: 2; bytes: Uint8Array; field?: DescField }
  | { no: number; wt: 2; children: WireEntry[]; schema: DescMessage; field?: DescField }
  | { no: number; wt: 2; packed: bigint[]; field?: DescField }
  /** Bytes written as they are (a field whose wire type was changed to nonsense). */
  | { no: number; wt: "raw"; raw: Uint8Array; field?: DescField };

/** What the mutator may put in strings and addresses: the names and numbers this server knows. */
export interface MutationContext {
  vmIds: readonly string[];
  sessions: readonly string[];
  addresses: readonly bigint[];
  /** Longest `vm` / `session_id` to send (the server echoes them into its error trailers). */
  maxNameLength: number;
}

const U64_MAX = (1n << 64n) - 1n;
/** Bytes a repeated field may grow a request by. */
const MAX_GROWTH = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Wire format.

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw new Error("truncated varint");
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result & U64_MAX;
    }
    throw new Error("varint too long");
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new Error("truncated field");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function isVarintScalar(t: ScalarType | undefined): boolean {
  return (
    t === ScalarType.INT32 ||
    t === ScalarType.INT64 ||
    t === ScalarType.UINT32 ||
    t === ScalarType.UINT64 ||
    t === ScalarType.SINT32 ||
    t === ScalarType.SINT64 ||
    t === ScalarType.BOOL
  );
}

/** Parses well-formed bytes of `schema` into wire entries (unknown fields stay raw). */
export function parseWire(bytes: Uint8Array, schema: DescMessage): WireEntry[] {
  const r = new Reader(bytes);
  const out: WireEntry[] = [];
  while (!r.done) {
    const tag = Number(r.varint());
    const no = tag >>> 3;
    const wt = tag & 7;
    const field = schema.fields.find((f) => f.number === no);
    switch (wt) {
      case 0:
        out.push({ no, wt: 0, value: r.varint(), field });
        break;
      case 1: {
        const b = r.take(8);
        out.push({ no, wt: 1, value: new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true), field });
        break;
      }
      case 5: {
        const b = r.take(4);
        out.push({ no, wt: 5, value: new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true), field });
        break;
      }
      case 2: {
        const body = r.take(Number(r.varint()));
        const sub = field?.message;
        if (sub && (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message"))) {
          out.push({ no, wt: 2, children: parseWire(body, sub), schema: sub, field });
        } else if (field?.fieldKind === "list" && (field.listKind === "enum" || isVarintScalar(field.scalar))) {
          const pr = new Reader(body);
          const packed: bigint[] = [];
          while (!pr.done) packed.push(pr.varint());
          out.push({ no, wt: 2, packed, field });
        } else {
          out.push({ no, wt: 2, bytes: body, field });
        }
        break;
      }
      default:
        throw new Error(`wire type ${wt} in a well-formed message`);
    }
  }
  return out;
}

class Writer {
  private chunks: Uint8Array[] = [];
  private length = 0;
  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  varint(v: bigint): void {
    const out = new Uint8Array(10);
    let n = 0;
    let x = v & U64_MAX;
    if (x <= 0xffff_ffffn) {
      // The common case, in numbers (bigint shifts are slow).
      let y = Number(x);
      while (y > 0x7f) {
        out[n++] = (y & 0x7f) | 0x80;
        y = Math.floor(y / 128);
      }
      out[n++] = y;
    } else {
      do {
        let b = Number(x & 0x7fn);
        x >>= 7n;
        if (x !== 0n) b |= 0x80;
        out[n++] = b;
      } while (x !== 0n);
    }
    this.bytes(out.subarray(0, n));
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

export function serializeWire(entries: readonly WireEntry[]): Uint8Array {
  const w = new Writer();
  for (const e of entries) {
    if (e.wt === "raw") {
      w.bytes(e.raw);
      continue;
    }
    w.varint(BigInt((e.no << 3) | e.wt) & 0xffff_ffffn);
    if (e.wt === 0) w.varint(e.value);
    else if (e.wt === 1) {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, e.value & U64_MAX, true);
      w.bytes(b);
    } else if (e.wt === 5) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, e.value >>> 0, true);
      w.bytes(b);
    } else {
      let body: Uint8Array;
      if ("children" in e) body = serializeWire(e.children);
      else if ("packed" in e) {
        const pw = new Writer();
        for (const v of e.packed) pw.varint(v);
        body = pw.finish();
      } else body = (e as { bytes: Uint8Array }).bytes;
      w.varint(BigInt(body.length));
      w.bytes(body);
    }
  }
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Interesting values, by field name and type.

const U32_EDGES = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 63, 64, 255, 256, 0xffff, 0x10000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
const U64_EDGES = [
  0n,
  1n,
  2n,
  7n,
  8n,
  0xffn,
  0x1000n,
  0xffff_ffffn,
  0x1_0000_0000n,
  0x7fff_ffff_ffffn,
  0x8000_0000_0000n,
  0x0000_7fff_ffff_ffffn,
  0xffff_8000_0000_0000n,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  U64_MAX - 8n,
  U64_MAX - 7n,
  U64_MAX - 1n,
  U64_MAX,
];

/** A u64 for a varint field: small, an edge, past the type's range, random, or near a known address. */
function interestingVarint(rng: Random, name: string, ctx: MutationContext): bigint {
  switch (name) {
    case "vp":
    case "vps":
      return rng.weighted<bigint>([
        [4, BigInt(rng.below(4))],
        [3, BigInt(rng.pick(U32_EDGES))],
        [1, rng.pick(U64_EDGES)],
      ]);
    case "count":
      // A step count that gets through runs that many instructions with the VM's lock held: the
      // largest valid counts (1,000,000) take seconds here, so they stay out; past them is cheap.
      return rng.weighted<bigint>([
        [4, BigInt(rng.between(0, 20))],
        [1, BigInt(rng.pick([1000, 4096]))],
        [2, BigInt(rng.pick([1_000_001, 1_000_002, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]))],
        [1, rng.pick(U64_EDGES.filter((v) => v === 0n || v > 1_000_000n))],
      ]);
    case "length":
      return rng.weighted<bigint>([
        [4, BigInt(rng.between(0, 4096))],
        [2, BigInt(rng.pick([4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 8 * 1024 * 1024, 8 * 1024 * 1024 + 1, 65536]))],
        [2, rng.pick(U64_EDGES)],
      ]);
    case "gpa":
    case "gva":
    case "address":
    case "base":
    case "rip":
    case "cr3":
    case "ttbr0El1":
    case "ttbr1El1":
      return rng.weighted<bigint>([
        [3, rng.pick(ctx.addresses) + BigInt(rng.between(-16, 16))],
        [3, rng.pick(U64_EDGES)],
        [1, rng.u64()],
        [1, rng.pick(ctx.addresses) ^ (1n << BigInt(rng.below(64)))],
      ]) & U64_MAX;
    case "type":
    case "size":
    case "trace":
    case "arch":
      return rng.weighted<bigint>([
        [4, BigInt(rng.below(6))],
        [2, BigInt(rng.pick(U32_EDGES))],
        [1, U64_MAX], // -1 as an int32 enum
      ]);
    case "singleStep":
    case "more":
      return rng.pick([0n, 1n, 2n, 0x100n, U64_MAX]);
    default:
      return rng.weighted<bigint>([
        [3, BigInt(rng.pick(U32_EDGES))],
        [3, rng.pick(U64_EDGES)],
        [1, rng.u64()],
      ]);
  }
}

/** Bytes for a length-delimited field: names, ids, sizes, invalid UTF-8, garbage. */
function interestingBytes(rng: Random, name: string, ctx: MutationContext): Uint8Array {
  const text = (s: string) => new TextEncoder().encode(s);
  switch (name) {
    case "vm":
      return rng.weighted<() => Uint8Array>([
        [3, () => text(rng.pick(ctx.vmIds))],
        [2, () => text("")],
        [2, () => text(rng.pick(["nope", "FUZZ", "fuzz\u0000", " fuzz", "fuzz/../stream", "ﬀ", "😀"]))],
        [1, () => text("v".repeat(Math.min(ctx.maxNameLength, rng.pick([256, 4096, 16384, 65536]))))],
        [1, () => rng.bytes(rng.between(1, 12))],
      ])();
    case "sessionId": {
      const real = rng.pick(ctx.sessions);
      return rng.weighted<() => Uint8Array>([
        [3, () => text(real)],
        [2, () => text("")],
        [2, () => text(hex(rng.bytes(16)))],
        [1, () => text(real.slice(0, 8))],
        [1, () => text(real + "0")],
        [1, () => text(real.toUpperCase())],
        [1, () => text(real.slice(0, 31) + (real[31] === "0" ? "1" : "0"))],
        [1, () => text("s".repeat(Math.min(ctx.maxNameLength, rng.pick([33, 1024, 16384, 65536]))))],
        [1, () => rng.bytes(32)],
      ])();
    }
    case "data":
      return rng.weighted<() => Uint8Array>([
        [3, () => rng.bytes(rng.between(0, 64))],
        [2, () => new Uint8Array(0)],
        [2, () => rng.bytes(rng.pick([4095, 4096, 4097, 65536]))],
        [1, () => new Uint8Array(rng.pick([1024 * 1024, 4 * 1024 * 1024 - 64]))],
        [0.1, () => new Uint8Array(6 * 1024 * 1024)], // over the server's message size limit
      ])();
    default:
      return rng.weighted<() => Uint8Array>([
        [2, () => new Uint8Array(0)],
        [2, () => rng.bytes(rng.between(1, 40))],
        [1, () => Uint8Array.from([0xff, 0xfe, 0xc0, 0x80])], // invalid UTF-8
        [1, () => rng.bytes(rng.between(100, 2000))],
      ])();
  }
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** A value of `field`'s wire type (for inserting a field the request did not carry). */
function freshEntry(rng: Random, field: DescField, ctx: MutationContext): WireEntry {
  const name = field.localName;
  if (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) {
    const sub = field.message!;
    const children: WireEntry[] = [];
    for (const f of sub.fields) if (rng.chance(0.5)) children.push(freshEntry(rng, f, ctx));
    return { no: field.number, wt: 2, children, schema: sub, field };
  }
  if (field.fieldKind === "list") {
    const n = rng.pick([0, 1, 15, 16, 17, 30, 31, 32, 100]);
    return { no: field.number, wt: 2, packed: Array.from({ length: n }, () => interestingVarint(rng, name, ctx)), field };
  }
  const scalar = field.fieldKind === "scalar" ? field.scalar : undefined;
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) return { no: field.number, wt: 2, bytes: interestingBytes(rng, name, ctx), field };
  if (scalar === ScalarType.FIXED64 || scalar === ScalarType.SFIXED64 || scalar === ScalarType.DOUBLE) return { no: field.number, wt: 1, value: rng.u64(), field };
  if (scalar === ScalarType.FIXED32 || scalar === ScalarType.SFIXED32 || scalar === ScalarType.FLOAT) return { no: field.number, wt: 5, value: rng.u32(), field };
  return { no: field.number, wt: 0, value: interestingVarint(rng, name, ctx), field };
}

// ---------------------------------------------------------------------------------------------
// Field-level mutations.

/** A deep copy (a later mutation of one copy must not change the others). */
function cloneEntry(e: WireEntry): WireEntry {
  if (e.wt === 2 && "children" in e) return { ...e, children: e.children.map(cloneEntry) };
  if (e.wt === 2 && "packed" in e) return { ...e, packed: [...e.packed] };
  return { ...e };
}

interface Slot {
  list: WireEntry[];
  index: number;
  schema: DescMessage;
}

function slots(entries: WireEntry[], schema: DescMessage, out: Slot[] = []): Slot[] {
  entries.forEach((e, index) => {
    out.push({ list: entries, index, schema });
    if (e.wt === 2 && "children" in e) slots(e.children, e.schema, out);
  });
  return out;
}

/** Messages (the top one and every nested one) where a field can be inserted. */
function containers(entries: WireEntry[], schema: DescMessage, out: { list: WireEntry[]; schema: DescMessage }[] = []) {
  out.push({ list: entries, schema });
  for (const e of entries) if (e.wt === 2 && "children" in e) containers(e.children, e.schema, out);
  return out;
}

/**
 * Applies one field-level mutation to `entries` (in place) and returns its description. The
 * session id is mutated less often than other fields, so most control requests still carry it.
 */
export function mutateFields(rng: Random, entries: WireEntry[], schema: DescMessage, ctx: MutationContext): string {
  const all = slots(entries, schema);
  const kind = all.length === 0 ? "insert" : rng.weighted<string>([
    [10, "value"],
    [3, "delete"],
    [3, "duplicate"],
    [2, "retag"],
    [1, "wiretype"],
    [4, "insert"],
    [2, "unknown"],
    [2, "packed"],
    [1, "empty"],
  ]);
  if (kind === "insert" || kind === "unknown") {
    const target = rng.pick(containers(entries, schema));
    const at = rng.below(target.list.length + 1);
    if (kind === "insert" && target.schema.fields.length > 0) {
      const field = rng.pick(target.schema.fields);
      target.list.splice(at, 0, freshEntry(rng, field, ctx));
      return `insert ${target.schema.name}.${field.localName}`;
    }
    const no = rng.pick([15, 16, 99, 1000, 19000, 536_870_911]);
    const wt = rng.pick([0, 1, 2, 5] as const);
    const entry: WireEntry =
      wt === 0 ? { no, wt, value: rng.u64() } : wt === 1 ? { no, wt, value: rng.u64() } : wt === 5 ? { no, wt, value: rng.u32() } : { no, wt, bytes: rng.bytes(rng.between(0, 16)) };
    target.list.splice(at, 0, entry);
    return `unknown field ${no}/${wt} in ${target.schema.name}`;
  }
  // Pick a slot; a session id only one time in four it is drawn.
  let slot = rng.pick(all);
  for (let i = 0; i < 3 && slot.list[slot.index].field?.localName === "sessionId" && !rng.chance(0.25); i++) slot = rng.pick(all);
  const e = slot.list[slot.index];
  const name = e.field?.localName ?? `#${e.no}`;
  const where = `${slot.schema.name}.${name}`;
  switch (kind) {
    case "value":
      if (e.wt === 0 || e.wt === 1) e.value = interestingVarint(rng, name, ctx);
      else if (e.wt === 5) e.value = rng.pick(U32_EDGES);
      else if (e.wt === 2 && "bytes" in e) e.bytes = interestingBytes(rng, name, ctx);
      else if (e.wt === 2 && "packed" in e && e.packed.length > 0) e.packed[rng.below(e.packed.length)] = interestingVarint(rng, name, ctx);
      else if (e.wt === 2 && "children" in e) return `${mutateFields(rng, e.children, e.schema, ctx)} (in ${where})`;
      return `value ${where}`;
    case "delete":
      slot.list.splice(slot.index, 1);
      return `delete ${where}`;
    case "duplicate": {
      // Up to 4096 copies, but at most about 1 MiB of them: a request is a request, not a flood.
      const size = serializeWire([e]).length;
      const n = Math.min(rng.pick([1, 3, 4, 16, 30, 100, 1000, 4096]), Math.max(1, Math.floor(MAX_GROWTH / size)));
      slot.list.splice(slot.index, 0, ...Array.from({ length: n }, () => cloneEntry(e)));
      return `repeat ${where} x${n + 1}`;
    }
    case "retag": {
      const others = slot.schema.fields.filter((f) => f.number !== e.no);
      const no = others.length > 0 && rng.chance(0.8) ? rng.pick(others).number : rng.pick([0, 15, 99, 1000, 536_870_911]);
      slot.list[slot.index] = { ...e, no, field: undefined } as WireEntry;
      return `retag ${where} as #${no}`;
    }
    case "wiretype": {
      const wt = rng.pick([0, 1, 2, 3, 4, 5, 6, 7]);
      const tag = new Writer();
      tag.varint(BigInt((e.no << 3) | wt));
      const raw = new Uint8Array([...tag.finish(), ...rng.bytes(rng.between(0, 10))]);
      slot.list[slot.index] = { no: e.no, wt: "raw", raw };
      return `wire type ${wt} for ${where}`;
    }
    case "packed":
      if (e.wt === 2 && "packed" in e) {
        const n = rng.pick([0, 1, 15, 16, 17, 30, 31, 32, 100, 1000]);
        e.packed = Array.from({ length: n }, (_, i) => e.packed[i % Math.max(1, e.packed.length)] ?? 0n);
        return `${where} with ${n} values`;
      }
      return mutateFields(rng, entries, schema, ctx);
    case "empty":
      if (e.wt === 2 && "children" in e) e.children = [];
      else if (e.wt === 2 && "bytes" in e) e.bytes = new Uint8Array(0);
      else if (e.wt === 0 || e.wt === 1) e.value = 0n;
      return `empty ${where}`;
    default:
      throw new Error(kind);
  }
}

// ---------------------------------------------------------------------------------------------
// Byte-level mutations.

/** Applies one byte-level mutation and returns the new bytes and its description. */
export function mutateBytes(rng: Random, bytes: Uint8Array): [Uint8Array, string] {
  const b = Uint8Array.from(bytes);
  const n = b.length;
  const kind = n === 0 ? "append" : rng.weighted<string>([
    [6, "flip"],
    [3, "truncate"],
    [2, "overwrite"],
    [2, "insert"],
    [2, "delete"],
    [1, "duplicate"],
    [1, "append"],
  ]);
  switch (kind) {
    case "flip": {
      const flips = rng.between(1, 8);
      for (let i = 0; i < flips; i++) b[rng.below(n)] ^= 1 << rng.below(8);
      return [b, `flip ${flips} bits`];
    }
    case "truncate": {
      const at = rng.below(n);
      return [b.subarray(0, at), `truncate at ${at}/${n}`];
    }
    case "overwrite": {
      const at = rng.below(n);
      const v = rng.pick([0x00, 0xff, 0x80, 0x7f, rng.below(256)]);
      b[at] = v;
      return [b, `byte ${at} = 0x${v.toString(16)}`];
    }
    case "insert": {
      const at = rng.below(n + 1);
      const add = rng.bytes(rng.between(1, 16));
      return [new Uint8Array([...b.subarray(0, at), ...add, ...b.subarray(at)]), `insert ${add.length} bytes at ${at}`];
    }
    case "delete": {
      const at = rng.below(n);
      const len = rng.between(1, Math.min(16, n - at));
      return [new Uint8Array([...b.subarray(0, at), ...b.subarray(at + len)]), `delete ${len} bytes at ${at}`];
    }
    case "duplicate": {
      const at = rng.below(n);
      const len = rng.between(1, n - at);
      return [new Uint8Array([...b.subarray(0, at + len), ...b.subarray(at, at + len), ...b.subarray(at + len)]), `duplicate ${len} bytes at ${at}`];
    }
    default: {
      const add = rng.bytes(rng.between(1, 24));
      return [new Uint8Array([...b, ...add]), `append ${add.length} bytes`];
    }
  }
}
