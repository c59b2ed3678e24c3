// `npm start`: serve the x86-64 demo guest (2 VPs, embedded machine) on 127.0.0.1:50051.
import { runCli } from "./cli";

runCli(["serve", ...process.argv.slice(2)]).catch((e: unknown) => {
  process.stderr.write(`vmm-debug: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
