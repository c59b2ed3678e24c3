// Writes recorder.c from ops.txt: one inline-asm case per operation, the same bytes the test runs.
import { readFileSync, writeFileSync } from "node:fs";
const dir = new URL(".", import.meta.url).pathname;
const ops = readFileSync(dir + "ops.txt", "utf8").trim().split("\n").map((l) => l.split(/\s+/));
const cases = ops.map(([name, hex], i) => {
  const bytes = hex.match(/../g).map((b) => "0x" + b).join(",");
  return `    case ${i}: RUN("${bytes}"); break; /* ${name} */`;
}).join("\n");
const src = readFileSync(dir + "recorder.c.in", "utf8").replace("@CASES@", cases).replace("@NOPS@", String(ops.length));
writeFileSync(dir + "recorder.c", src);
