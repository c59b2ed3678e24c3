// GDB target descriptions (target.xml and its xi:include files): registers with numbers and features.
import { RspParseError } from "./errors";

/** One `<reg>` of a target description, with its number resolved. */
export interface TargetRegister {
  name: string;
  bitsize: number;
  /** Number used by `p`/`P` and the `g` layout. */
  regnum: number;
  /** The `<feature name=…>` it belongs to. */
  feature: string;
  type?: string;
  group?: string;
}

export interface TargetFeature {
  name: string;
  registers: TargetRegister[];
}

export interface TargetDescription {
  /** `<architecture>`: "i386:x86-64", "aarch64"… */
  architecture?: string;
  features: TargetFeature[];
  /** Every register, in regnum order. */
  registers: TargetRegister[];
  byName: ReadonlyMap<string, TargetRegister>;
  byNumber: ReadonlyMap<number, TargetRegister>;
}

/** One parsed XML document before includes are resolved, in document order. */
export interface TargetXmlDocument {
  architecture?: string;
  items: TargetXmlItem[];
}

export type TargetXmlItem =
  | { kind: "include"; href: string }
  | { kind: "feature"; name: string; registers: RawRegister[] };

/** A `<reg>` as written (regnum may be absent: it then follows the previous register). */
export interface RawRegister {
  name: string;
  bitsize: number;
  regnum?: number;
  type?: string;
  group?: string;
}

/** Parses one target description document (root `<target>` or `<feature>`). Throws RspParseError. */
export function parseTargetXml(xml: string): TargetXmlDocument {
  const root = parseXml(xml);
  const doc: TargetXmlDocument = { items: [] };
  if (root.name === "feature") {
    doc.items.push(featureOf(root, xml));
    return doc;
  }
  if (root.name !== "target") throw new RspParseError("target description root element", root.name);
  for (const child of root.children) {
    if (child.name === "architecture") doc.architecture = child.text.trim();
    else if (child.name === "xi:include") {
      const href = child.attrs.get("href");
      if (!href) throw new RspParseError("xi:include without href", xml);
      doc.items.push({ kind: "include", href });
    } else if (child.name === "feature") doc.items.push(featureOf(child, xml));
  }
  return doc;
}

function featureOf(el: XmlElement, xml: string): TargetXmlItem {
  const name = el.attrs.get("name");
  if (!name) throw new RspParseError("feature without a name", xml.slice(0, 200));
  const registers: RawRegister[] = [];
  for (const child of el.children) {
    if (child.name !== "reg") continue; // vector, flags, union, struct: types, not registers
    const regName = child.attrs.get("name");
    const bitsize = Number(child.attrs.get("bitsize"));
    if (!regName || !Number.isInteger(bitsize) || bitsize <= 0) {
      throw new RspParseError("reg element", `${regName} bitsize=${child.attrs.get("bitsize")}`);
    }
    const reg: RawRegister = { name: regName, bitsize };
    const regnum = child.attrs.get("regnum");
    if (regnum !== undefined) {
      const n = Number(regnum);
      if (!Number.isInteger(n) || n < 0) throw new RspParseError("reg regnum", regnum);
      reg.regnum = n;
    }
    const type = child.attrs.get("type");
    if (type !== undefined) reg.type = type;
    const group = child.attrs.get("group");
    if (group !== undefined) reg.group = group;
    registers.push(reg);
  }
  return { kind: "feature", name, registers };
}

/**
 * Fetches `root` and every document it includes (through `fetch`, e.g. qXfer:features:read),
 * splicing includes in place, and numbers the registers the way GDB does: a register without
 * `regnum` takes the previous register's number plus one, across features and includes, from 0.
 */
export async function loadTargetDescription(
  fetch: (annex: string) => Promise<string>,
  root = "target.xml",
): Promise<TargetDescription> {
  const features: { name: string; registers: RawRegister[] }[] = [];
  let architecture: string | undefined;
  const seen = new Set<string>();
  const visit = async (annex: string): Promise<void> => {
    if (seen.has(annex)) throw new RspParseError("target description (include cycle)", annex);
    seen.add(annex);
    const doc = parseTargetXml(await fetch(annex));
    architecture ??= doc.architecture;
    for (const item of doc.items) {
      if (item.kind === "include") await visit(item.href);
      else features.push(item);
    }
  };
  await visit(root);
  return buildTargetDescription(features, architecture);
}

/** Numbers the registers of already-parsed features (in document order). */
export function buildTargetDescription(
  features: ReadonlyArray<{ name: string; registers: readonly RawRegister[] }>,
  architecture?: string,
): TargetDescription {
  let next = 0;
  const out: TargetFeature[] = [];
  const all: TargetRegister[] = [];
  const byName = new Map<string, TargetRegister>();
  const byNumber = new Map<number, TargetRegister>();
  for (const f of features) {
    const regs: TargetRegister[] = [];
    for (const r of f.registers) {
      const regnum = r.regnum ?? next;
      next = regnum + 1;
      const reg: TargetRegister = { name: r.name, bitsize: r.bitsize, regnum, feature: f.name };
      if (r.type !== undefined) reg.type = r.type;
      if (r.group !== undefined) reg.group = r.group;
      if (byNumber.has(regnum)) throw new RspParseError("target description (duplicate regnum)", `${r.name} #${regnum}`);
      regs.push(reg);
      all.push(reg);
      byNumber.set(regnum, reg);
      if (!byName.has(r.name)) byName.set(r.name, reg);
    }
    out.push({ name: f.name, registers: regs });
  }
  all.sort((a, b) => a.regnum - b.regnum);
  const desc: TargetDescription = { features: out, registers: all, byName, byNumber };
  if (architecture !== undefined) desc.architecture = architecture;
  return desc;
}

// --- A minimal XML reader: elements, attributes, text; skips prolog, comments, DOCTYPE, PIs. ---

interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: XmlElement[];
  text: string;
}

function parseXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let i = 0;
  const fail = (what: string): never => {
    throw new RspParseError(`target description XML (${what})`, xml.slice(Math.max(0, i - 40), i + 40));
  };
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    if (lt < 0) {
      if (stack.length) stack[stack.length - 1].text += decodeEntities(xml.slice(i));
      break;
    }
    if (lt > i && stack.length) stack[stack.length - 1].text += decodeEntities(xml.slice(i, lt));
    i = lt;
    if (xml.startsWith("<!--", i)) {
      const end = xml.indexOf("-->", i + 4);
      if (end < 0) fail("unterminated comment");
      i = end + 3;
    } else if (xml.startsWith("<?", i)) {
      const end = xml.indexOf("?>", i + 2);
      if (end < 0) fail("unterminated processing instruction");
      i = end + 2;
    } else if (xml.startsWith("<![CDATA[", i)) {
      const end = xml.indexOf("]]>", i + 9);
      if (end < 0) fail("unterminated CDATA");
      if (stack.length) stack[stack.length - 1].text += xml.slice(i + 9, end);
      i = end + 3;
    } else if (xml.startsWith("<!", i)) {
      let depth = 0; // DOCTYPE may carry an internal subset in brackets
      let j = i + 2;
      for (; j < xml.length; j++) {
        if (xml[j] === "[") depth++;
        else if (xml[j] === "]") depth--;
        else if (xml[j] === ">" && depth <= 0) break;
      }
      if (j >= xml.length) fail("unterminated declaration");
      i = j + 1;
    } else if (xml.startsWith("</", i)) {
      const end = xml.indexOf(">", i);
      if (end < 0) fail("unterminated end tag");
      const name = xml.slice(i + 2, end).trim();
      const open = stack.pop();
      if (!open || open.name !== name) fail(`unexpected </${name}>`);
      i = end + 1;
    } else {
      const m = /^<([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(xml.slice(i, i + 4096));
      if (!m) fail("malformed tag");
      const el: XmlElement = { name: m![1], attrs: new Map(), children: [], text: "" };
      const attrRe = /([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
      for (let a = attrRe.exec(m![2]); a; a = attrRe.exec(m![2])) el.attrs.set(a[1], decodeEntities(a[2] ?? a[3]));
      if (stack.length) stack[stack.length - 1].children.push(el);
      else if (root) fail("second root element");
      else root = el;
      if (m![3] !== "/") stack.push(el);
      i += m![0].length;
    }
  }
  if (!root) throw new RspParseError("target description XML (no root element)", xml.slice(0, 80));
  if (stack.length) throw new RspParseError(`target description XML (<${stack[stack.length - 1].name}> not closed)`, xml.slice(0, 80));
  return root;
}

function decodeEntities(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case "lt": return "<";
      case "gt": return ">";
      case "amp": return "&";
      case "quot": return '"';
      case "apos": return "'";
      default: return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}
