// gdb's view of the x87 and SSE registers through the bridge, on the embedded machine and on
// QEMU: `info registers xmm0`, `p $xmm0.uint128`, `p $st0`, `info float`, `p $mxcsr`, and
// `set $xmm1…` / `set $st1` / `set $mxcsr` reaching the VP (checked through the SDK while gdb
// holds the VM stopped).
import { createGdbBridge, type GdbBridge } from "../../src/gdb";
import {
  x87FromNumber,
  x87ToNumber,
  xmmFromBigint,
  xmmToBigint,
  type DebuggerVpState,
  type VmmDebugClient,
  type X86FpState,
  type X86VpState,
} from "../../src/client";
import { hasExecutable, defaultQemuBinary, qemuPackage } from "../../src/qemu";
import { startHarness } from "../integration/harness";
import { between, haveBinary, startGdb, startTestHook } from "./gdb-session";
import { startQemuHarness } from "./qemu-harness";

const GDB = "gdb";
const haveGdb = haveBinary(GDB);
if (!haveGdb) console.warn("gdb FP register tests skipped: gdb is not installed (install the Debian package `gdb`)");
const haveQemu = hasExecutable(defaultQemuBinary("x86_64"));
if (haveGdb && !haveQemu) {
  console.warn(`gdb FP register tests on QEMU skipped: ${defaultQemuBinary("x86_64")} not found (install the Debian package ${qemuPackage("x86_64")})`);
}

const XMM0 = 0x0f0e0d0c_0b0a0908_07060504_03020100n;
const XMM1 = 0x1122334455667788n;

function fpOf(s: DebuggerVpState): X86FpState {
  if (s.arch !== "x86_64" || !s.state.fp) throw new Error("no x86 FP state");
  return s.state.fp;
}

interface Backend {
  name: string;
  available: boolean;
  /** x87 tags are writable (QEMU keeps its own: the stack stays as the guest left it). */
  tags: boolean;
  start(): Promise<{ client: VmmDebugClient; vm: string; close(): Promise<void> }>;
}

const BACKENDS: Backend[] = [
  {
    name: "the embedded machine",
    available: haveGdb,
    tags: true,
    async start() {
      const h = await startHarness({ vpCount: 1 });
      return { client: h.client, vm: "demo", close: () => h.close() };
    },
  },
  {
    name: "QEMU",
    available: haveGdb && haveQemu,
    tags: false,
    async start() {
      const h = await startQemuHarness("x86_64", { id: "qemu-gdb-fp" });
      return { client: h.client, vm: "qemu-gdb-fp", close: () => h.close() };
    },
  },
];

for (const backend of BACKENDS) {
  (backend.available ? describe : describe.skip)(`gdb's x87 and SSE registers through the bridge (${backend.name})`, () => {
    let env: Awaited<ReturnType<Backend["start"]>>;
    let bridge: GdbBridge;
    let port: number;

    beforeAll(async () => {
      env = await backend.start();
      // Known FP values, set through the SDK before gdb comes: XMM0, MXCSR and (where tags are
      // writable) a stack of two values with TOP = 6.
      const s = await env.client.attach(env.vm);
      await s.break();
      const state = await s.getVpState(0);
      const x = { ...(state.state as X86VpState) };
      const fp = { ...fpOf(state), xmm: [...fpOf(state).xmm], st: [...fpOf(state).st] };
      fp.xmm[0] = xmmFromBigint(XMM0);
      if (backend.tags) {
        fp.fsw = 6 << 11;
        fp.st = [1.5, -2.25, 0, 0, 0, 0, 0, 0].map(x87FromNumber);
        fp.ftw = 0x0fff;
      }
      x.fp = fp;
      await s.setVpState(0, { arch: "x86_64", state: x });
      await s.detach();
      bridge = createGdbBridge({ client: env.client, vm: env.vm });
      ({ port } = await bridge.listen("127.0.0.1", 0));
    }, 60_000);
    afterAll(async () => {
      await bridge?.close();
      await env?.close();
    });

    it("shows xmm0, st0, mxcsr and info float, and writes xmm1, st1 and mxcsr into the VP", async () => {
      const hook = await startTestHook(async () => fpOf(await env.client.getVpState(env.vm, 0)));
      try {
        const { output } = await startGdb(
          GDB,
          port,
          [
            "echo <xmm0>\\n",
            "info registers xmm0",
            "echo </xmm0>\\n<u128>\\n",
            "p/x $xmm0.uint128",
            "echo </u128>\\n<st>\\n",
            "p $st0",
            "p $st1",
            "echo </st>\\n<mxcsr>\\n",
            "p $mxcsr",
            "echo </mxcsr>\\n<float>\\n",
            "info float",
            "echo </float>\\n",
            `set $xmm1.v2_int64[0] = ${"0x" + XMM1.toString(16)}`,
            "set $st1 = 42",
            "set $mxcsr = 0x9f80",
            hook.command("written"),
            // After a step (whose register trace carries no FP state) the FP registers are read again.
            "stepi",
            "echo <after>\\n",
            "p/x $xmm1.v2_int64",
            "p $st1",
            "p/x $mxcsr",
            "echo </after>\\n",
            "detach",
          ],
          60_000,
        ).result;
        const xmm0 = between(output, "<xmm0>\n", "</xmm0>");
        expect(xmm0).toMatch(/^xmm0\s+\{/);
        expect(xmm0).toMatch(/uint128 = 0xf0e0d0c0b0a09080706050403020100/);
        expect(between(output, "<u128>\n", "</u128>")).toMatch(/= 0xf0e0d0c0b0a09080706050403020100/);
        expect(between(output, "<mxcsr>\n", "</mxcsr>")).toMatch(/= \[ IM DM ZM OM UM PM \]/);
        const float = between(output, "<float>\n", "</float>");
        expect(float).toMatch(/Control Word:\s+0x037f/);
        if (backend.tags) {
          expect(between(output, "<st>\n", "</st>")).toMatch(/= 1\.5\n.*= -2\.25/);
          expect(float).toMatch(/=>R6: Valid\s+0x3fffc000000000000000 \+1\.5/);
          expect(float).toMatch(/R7: Valid\s+0xc0009000000000000000 -2\.25/);
          expect(float).toMatch(/R0: Empty/);
          expect(float).toMatch(/TOP: 6/);
          expect(float).toMatch(/Tag Word:\s+0x0fff/);
        } else {
          expect(float).toMatch(/Tag Word:\s+0xffff/);
          expect(float).toMatch(/R0: Empty/);
        }

        const written = hook.results.get("written");
        expect(hook.errors.get("written")).toBeUndefined();
        expect(written).toBeDefined();
        expect(xmmToBigint(written!.xmm[1]) & ((1n << 64n) - 1n)).toBe(XMM1);
        expect(xmmToBigint(written!.xmm[0])).toBe(XMM0);
        expect(x87ToNumber(written!.st[1])).toBe(42);
        expect(written!.mxcsr).toBe(0x9f80);
        const after = between(output, "<after>\n", "</after>");
        expect(after).toMatch(/0x1122334455667788/);
        expect(after).toMatch(/= 42\n/);
        expect(after).toMatch(/= 0x9f80/);
      } finally {
        hook.close();
      }
    }, 90_000);
  });
}
