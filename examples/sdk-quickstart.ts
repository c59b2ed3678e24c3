// Attach to the demo VM, catch the guest's write to `counter`, single-step, detach.
// Run against `npm start` with: npx tsx examples/sdk-quickstart.ts
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../src/client"; // in another project: import { connect } from "vmm-debug";

const manifest = JSON.parse(readFileSync(join(__dirname, "../guests/build/demo-x86_64.json"), "utf8"));
const counter = BigInt(manifest.symbols.counter.gva); // a guest virtual address (higher half)
const address = process.env.VMM_DEBUG_ADDRESS ?? "127.0.0.1:50051";

async function main(): Promise<void> {
  const client = connect(address);
  const session = await client.attach("demo");
  try {
    await session.break();
    console.log("stop:", await session.resume()); // the Break we asked for: { kind: 'break' }

    const slot = await session.setWatchpoint(0, { address: counter, type: "write", size: 8 });
    const hit = await session.resume(); // runs until VP 0 writes the counter
    console.log("stop:", hit.kind, "on vp", "vp" in hit ? hit.vp : "-", "slot", slot);

    const regs = await session.getVpState(0);
    if (regs.arch === "x86_64") console.log(`rip=0x${regs.state.rip.toString(16)} rax=${regs.state.gp[0]}`);
    const bytes = await session.readMemory({ gva: counter, vp: 0 }, 8);
    console.log("counter =", Buffer.from(bytes).readBigUInt64LE(0));

    await session.clearBreakpoint(0, slot);
    console.log("step:", await session.step(0)); // { kind: 'singleStep', vp: 0 }
  } finally {
    await session.detach(); // clears breakpoints and lets the VM run again
    client.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
