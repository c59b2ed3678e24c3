// QEMU 7.2's option syntax, read as QEMU reads it: QemuOpts (`,,` escapes, an implied first key),
// keyval (dotted keys), and JSON values. argument-policy.ts decides what to allow; this file only
// reads. Every reader keeps each key=value in order (QEMU uses the
// last of a repeated key, and lists such as hostfwd collect them all), so a check can look at
// every occurrence; nesting is a dotted key (`addr.host`, `hostfwd.0.str`).

export type Entries = ReadonlyArray<readonly [key: string, value: string]>;

/** A value that cannot be read the way QEMU would read it; refused. */
export class SyntaxProblem extends Error {}

/** @internal QemuOpts (util/qemu-option.c): `,,` is a literal comma, `flag` is flag=on, `noflag` is flag=off. */
export function readQemuOpts(text: string, impliedKey?: string): Entries {
  const entries: [string, string][] = [];
  let implied = impliedKey;
  let p = 0;
  while (p < text.length) {
    const len = span(text, p, "=,");
    let key: string;
    let value: string;
    if (text[p + len] === "=") {
      key = text.slice(p, p + len);
      [value, p] = readOptValue(text, p + len + 1);
    } else if (implied !== undefined) {
      // Only the first element can be the implied key, and its value also honours ",,".
      key = implied;
      [value, p] = readOptValue(text, p);
    } else {
      const flag = text.slice(p, p + len);
      p += len;
      [key, value] = flag.startsWith("no") ? [flag.slice(2), "off"] : [flag, "on"];
    }
    if (text[p] === ",") p++;
    implied = undefined;
    entries.push([key, value]);
  }
  return entries;
}

/** QEMU's get_opt_value: up to the next single comma, each ",," read as ",". */
function readOptValue(text: string, start: number): [string, number] {
  let value = "";
  let p = start;
  for (;;) {
    const comma = text.indexOf(",", p);
    if (comma < 0) return [value + text.slice(p), text.length];
    if (text[comma + 1] !== ",") return [value + text.slice(p, comma), comma];
    value += text.slice(p, comma + 1);
    p = comma + 2;
  }
}

/** @internal keyval (util/keyval.c): dotted keys, `,,` a literal comma; the implied key's value is raw. */
export function readKeyval(text: string, impliedKey?: string): Entries {
  const entries: [string, string][] = [];
  let implied = impliedKey;
  let p = 0;
  while (p < text.length) {
    const len = span(text, p, "=,");
    if (len > 0 && text[p + len] !== "=") {
      if (implied === undefined) throw new SyntaxProblem(`expected "=" after "${text.slice(p, p + len)}"`);
      entries.push([implied, text.slice(p, p + len)]);
      p += len;
    } else {
      const key = text.slice(p, p + len);
      const fragments = key.split(".");
      if (!fragments.every((f, i) => /^[A-Za-z][A-Za-z0-9_-]*$/.test(f) || (i > 0 && /^\d+$/.test(f)))) {
        throw new SyntaxProblem(`invalid parameter "${key}"`);
      }
      if (text[p + len] !== "=") throw new SyntaxProblem(`expected "=" after "${key}"`);
      let value = "";
      p += len + 1;
      while (p < text.length) {
        if (text[p] === ",") {
          if (text[p + 1] !== ",") break;
          p++;
        }
        value += text[p++];
      }
      entries.push([key, value]);
    }
    if (text[p] === ",") p++;
    implied = undefined;
  }
  return entries;
}

/**
 * @internal QEMU's JSON (qobject/json-parser.c): also single-quoted strings; a repeated key is an error.
 * The object is flattened to dotted keys, array items by index.
 */
export function readJsonObject(text: string): Entries {
  const entries: [string, string][] = [];
  let p = 0;
  const fail = (what: string): never => {
    throw new SyntaxProblem(`JSON: ${what} at offset ${p}`);
  };
  const skipSpace = () => {
    while (p < text.length && " \t\r\n".includes(text[p])) p++;
  };
  const readString = (): string => {
    const quote = text[p++];
    let out = "";
    for (;;) {
      if (p >= text.length) fail("unterminated string");
      const c = text[p++];
      if (c === quote) return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[p++];
      const simple: Record<string, string> = { '"': '"', "'": "'", "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(p, p + 4))) {
        out += String.fromCharCode(parseInt(text.slice(p, p + 4), 16));
        p += 4;
      } else if (e !== undefined && Object.hasOwn(simple, e)) {
        out += simple[e];
      } else {
        fail("bad escape");
      }
    }
  };
  const readValue = (path: string): void => {
    skipSpace();
    const c = text[p];
    if (c === "{") {
      p++;
      const seen = new Set<string>();
      skipSpace();
      if (text[p] === "}") {
        p++;
        return;
      }
      for (;;) {
        skipSpace();
        if (text[p] !== '"' && text[p] !== "'") fail("expected a key");
        const key = readString();
        if (seen.has(key)) fail(`duplicate key "${key}"`);
        seen.add(key);
        skipSpace();
        if (text[p++] !== ":") fail('expected ":"');
        readValue(path ? `${path}.${key}` : key);
        skipSpace();
        const next = text[p++];
        if (next === "}") return;
        if (next !== ",") fail('expected "," or "}"');
      }
    }
    if (c === "[") {
      p++;
      skipSpace();
      if (text[p] === "]") {
        p++;
        return;
      }
      for (let i = 0; ; i++) {
        readValue(`${path}.${i}`);
        skipSpace();
        const next = text[p++];
        if (next === "]") return;
        if (next !== ",") fail('expected "," or "]"');
      }
    }
    if (c === '"' || c === "'") {
      entries.push([path, readString()]);
      return;
    }
    const scalar = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(p));
    if (!scalar) fail("expected a value");
    entries.push([path, scalar![0]]);
    p += scalar![0].length;
  };
  skipSpace();
  if (text[p] !== "{") fail("expected an object");
  readValue("");
  skipSpace();
  if (p < text.length) fail("trailing text");
  return entries;
}

/** -device, -object, -netdev, -blockdev, -display and -audiodev take JSON when the value starts with "{". */
export function readJsonOr(text: string, read: () => Entries): Entries {
  return text.startsWith("{") ? readJsonObject(text) : read();
}

export function span(text: string, start: number, stop: string): number {
  let p = start;
  while (p < text.length && !stop.includes(text[p])) p++;
  return p - start;
}
