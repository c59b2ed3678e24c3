// Writes a guest manifest (JSON) from `nm` output: every picked symbol with its GVA and GPA.
//   --name --arch --image --load-gpa --entry --kernel-vma --symbols <nm output> --pick a,b,c
//   --boot <text>                       how the embedded machine (or any loader) enters `entry`
//   --console-port <port> | --console-mmio <gpa>
//   --qemu <json file>                  the `qemu` section; "${sym:NAME}" strings become NAME's GPA
"use strict";
const { readFileSync } = require("node:fs");

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const kernelVma = BigInt(args["kernel-vma"]);
const table = new Map();
for (const line of readFileSync(args.symbols, "utf8").split("\n")) {
  const m = /^([0-9a-f]+) \w (\S+)$/.exec(line.trim());
  if (m) table.set(m[2], BigInt("0x" + m[1]));
}
const hex = (v) => "0x" + v.toString(16);
function lookup(name) {
  const gva = table.get(name);
  if (gva === undefined) throw new Error(`symbol ${name} not found`);
  const gpa = gva >= kernelVma ? gva - kernelVma : gva; // boot code is identity-mapped
  return { gva: hex(gva), gpa: hex(gpa) };
}
const symbols = {};
for (const name of args.pick.split(",")) symbols[name] = lookup(name);

function resolve(value) {
  if (typeof value === "string") return value.replace(/\$\{sym:([A-Za-z0-9_.]+)\}/g, (_, name) => lookup(name).gpa);
  if (Array.isArray(value)) return value.map(resolve);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  return value;
}

const manifest = {
  name: args.name,
  arch: args.arch,
  image: args.image,
  load_gpa: args["load-gpa"],
  entry: args.entry,
  boot: args.boot ?? "long mode, first 1 GiB identity-mapped with 2 MiB pages, RDI = VP index, RSI = VP count",
};
if (args["console-mmio"]) manifest.console_mmio = args["console-mmio"];
else manifest.console_port = args["console-port"] ?? "0xe9";
manifest.symbols = symbols;
if (args.qemu) manifest.qemu = resolve(JSON.parse(readFileSync(args.qemu, "utf8")));
process.stdout.write(JSON.stringify(manifest, null, 2) + "\n");
