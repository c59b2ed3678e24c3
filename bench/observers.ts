// Bench helper process: N observers of one VM's event feed (VmService.WatchEvents through the
// SDK), as other programs would be. Prints "ready" once every observer has seen an event, and on
// stdin's end prints {"stopped": [per observer count], "gaps": n} and exits.
import { connect } from "../src/client";

async function main(): Promise<void> {
  const [address, vm, countText] = process.argv.slice(2);
  const count = Number(countText);
  const controller = new AbortController();
  const stopped = new Array<number>(count).fill(0);
  const seen = new Array<boolean>(count).fill(false);
  let gaps = 0;
  let ready = false;
  const clients = Array.from({ length: count }, () => connect(address));
  const watching = clients.map(async (client, i) => {
    try {
      for await (const e of client.watchEvents(vm, { signal: controller.signal })) {
        if (e.event.kind === "stopped") stopped[i]++;
        if (e.event.kind === "gap") gaps++;
        if (!seen[i]) {
          seen[i] = true;
          if (!ready && seen.every(Boolean)) {
            ready = true;
            process.stdout.write("ready\n");
          }
        }
      }
    } catch {
      // Ended by the abort below.
    }
  });
  process.stdin.resume();
  process.stdin.on("end", async () => {
    controller.abort();
    await Promise.all(watching);
    for (const c of clients) c.close();
    process.stdout.write(JSON.stringify({ stopped, gaps }) + "\n");
    process.exit(0);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
