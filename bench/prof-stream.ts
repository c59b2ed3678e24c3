// Profiling aid (not part of `npm run bench`): many stream GetVpState calls against a server at argv[2].
import { connect } from "../src/client";
async function main() {
  const client = connect(process.argv[2]);
  const s = await client.attach("demo");
  if ((await client.getVm("demo")).runState === "running") {
    await s.break();
    await s.resume(); // collects the Break's stop
  }
  const t0 = process.hrtime.bigint();
  const n = Number(process.argv[3] ?? 20000);
  for (let i = 0; i < n; i++) await s.getVpState(0);
  console.log("us/op", Number(process.hrtime.bigint() - t0) / 1000 / n);
  await s.detach();
  client.close();
}
main();
