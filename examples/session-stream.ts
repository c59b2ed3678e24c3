// A Session stream and the event feed: an observer sees every event while the debugger pipelines
// reads, steps in a batch, and closes its stream (which detaches: breakpoints gone, VM running).
// Run against `npm start` with: npx tsx examples/session-stream.ts
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../src/client"; // in another project: import { connect } from "vmm-debug";

const manifest = JSON.parse(readFileSync(join(__dirname, "../guests/build/demo-x86_64.json"), "utf8"));
const tick = BigInt(manifest.symbols.tick.gva);
const counter = BigInt(manifest.symbols.counter.gpa);
const address = process.env.VMM_DEBUG_ADDRESS ?? "127.0.0.1:50051";

async function main(): Promise<void> {
  const client = connect(address);

  // An observer needs no session; any number may watch. Wait until the server has subscribed it.
  const stopWatching = new AbortController();
  let subscribed!: () => void;
  const ready = new Promise<void>((resolve) => (subscribed = resolve));
  const observer = (async () => {
    for await (const e of client.watchEvents("demo", { signal: stopWatching.signal, onSubscribed: subscribed })) {
      const detail = e.event.kind === "stopped" ? ` ${e.event.reason.kind}` : e.event.kind === "detached" ? ` ${e.event.cause}` : "";
      console.log(`  event #${e.sequence}: ${e.event.kind}${detail}`);
      if (e.event.kind === "detached") break; // this example's session is over
    }
  })();
  await ready;

  const session = await client.attach("demo"); // one Session stream: the stream is the session
  await session.break();
  console.log("stop:", await session.resume()); // the Break's stop, pushed on the stream

  // Pipelined: the three requests go out at once and are answered by id.
  const [regs, count, ranges] = await Promise.all([
    session.getVpState(0),
    session.readMemory({ gpa: counter }, 8),
    session.readMany([
      { address: { gpa: counter }, length: 8 },
      { address: { gpa: 1n << 46n }, length: 8 }, // nothing there: this range alone fails
    ]),
  ]);
  if (regs.arch === "x86_64") console.log(`rip=0x${regs.state.rip.toString(16)}`);
  console.log("counter =", Buffer.from(count).readBigUInt64LE(0));
  console.log("ranges:", ranges.map((r) => ("data" in r ? `${r.data.length} bytes` : r.error.reason)).join(", "));

  await session.setBreakpoint(0, tick);
  console.log("stop:", (await session.resume()).kind); // hwBreakpoint at tick

  // One Step message runs up to 1,000 instructions; the breakpoint at tick ends it early.
  const batch = await session.step(0, { count: 1000, trace: "pc" });
  const last = batch.pcs[batch.pcs.length - 1];
  console.log(`step: ${batch.executed} instructions, last pc 0x${last.toString(16)}, stop ${batch.stop?.kind ?? "none"}`);

  await session.close(); // the server detaches at once: breakpoints cleared, the VM runs again
  const vm = await client.getVm("demo");
  console.log("after close:", vm.runState, vm.attached ? "attached" : "detached");
  const giveUp = setTimeout(() => stopWatching.abort(), 10_000);
  await observer; // until it has seen the session's `detached` (or 10 s have passed)
  clearTimeout(giveUp);
  client.close();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
