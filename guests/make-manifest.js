// Writes a guest manifest (JSON) from `nm` output: every picked symbol with its GVA and GPA.
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
const symbols = {};
for (const name of args.pick.split(",")) {
  const gva = table.get(name);
  if (gva === undefined) throw new Error(`symbol ${name} not found`);
  const gpa = gva >= kernelVma ? gva - kernelVma : gva; // boot code is identity-mapped
  symbols[name] = { gva: "0x" + gva.toString(16), gpa: "0x" + gpa.toString(16) };
}
const manifest = {
  name: args.name,
  arch: args.arch,
  image: args.image,
  load_gpa: args["load-gpa"],
  entry: args.entry,
  boot: "long mode, first 1 GiB identity-mapped with 2 MiB pages, RDI = VP index, RSI = VP count",
  console_port: "0xe9",
  symbols,
};
process.stdout.write(JSON.stringify(manifest, null, 2) + "\n");
