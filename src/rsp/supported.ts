// qSupported feature lists (`PacketSize=1000;qXfer:features:read+;multiprocess+`) and vCont? replies.
import { RspParseError } from "./errors";
import { parseHexInt } from "./hex";

/** `name+` → true, `name-` → false, `name=value` → "value", `name?` → "?". */
export type FeatureValue = boolean | string;

/** Parses the `;`-separated list of a qSupported request (after `qSupported:`) or reply. */
export function parseSupported(payload: string): Map<string, FeatureValue> {
  const features = new Map<string, FeatureValue>();
  for (const item of payload.split(";")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq > 0) {
      features.set(item.slice(0, eq), item.slice(eq + 1));
      continue;
    }
    const last = item[item.length - 1];
    const name = item.slice(0, -1);
    if (name === "" || (last !== "+" && last !== "-" && last !== "?")) throw new RspParseError("qSupported feature", item);
    features.set(name, last === "?" ? "?" : last === "+");
  }
  return features;
}

/** The inverse of parseSupported. */
export function formatSupported(features: Iterable<readonly [string, FeatureValue]>): string {
  const items: string[] = [];
  for (const [name, value] of features) {
    if (value === true) items.push(`${name}+`);
    else if (value === false) items.push(`${name}-`);
    else if (value === "?") items.push(`${name}?`);
    else items.push(`${name}=${value}`);
  }
  return items.join(";");
}

/** The peer's PacketSize in bytes (the value is hex on the wire), if it announced one. */
export function packetSizeOf(features: ReadonlyMap<string, FeatureValue>): number | undefined {
  const v = features.get("PacketSize");
  if (typeof v !== "string") return undefined;
  const n = parseHexInt(v);
  if (n < 32) throw new RspParseError("PacketSize", v);
  return n;
}

/** `vCont;c;C;s;S` → {"c","C","s","S"}. An empty reply (vCont unsupported) gives an empty set. */
export function parseVContActions(payload: string): Set<string> {
  if (payload === "") return new Set();
  if (!payload.startsWith("vCont")) throw new RspParseError("vCont? reply", payload);
  return new Set(payload.slice(5).split(";").filter((a) => a !== ""));
}
