// The differential test harness (tools/difftest) on the real cores: a small corpus guest to
// completion on the embedded machine and on QEMU (same console, same checksum), one lockstep run
// with a window, and the comparator catching a difference planted in the embedded machine's RAM.
// Needs qemu-system-x86_64 (Debian: qemu-system-x86); skipped with that message when absent.
import {
  compareCompletion,
  diffGuest,
  ImageDecoder,
  KnownDifferences,
  loadCorpusGuest,
  Lockstep,
  selectGuests,
  startEmu,
  startQemu,
  type Backend,
} from "../../tools/difftest";
import { describeWithQemu } from "./qemu-harness";

// Under a loaded CI machine the embedded machine runs this guest in a few seconds.
const GUEST = "c-recurse-O0";
const CHECKSUM = "0x31c8f32011495b58"; // what QEMU and hardware print for every variant of recurse

describe("difftest corpus selection", () => {
  test("a program names its four variants, a variant every program's, and nonsense is refused", () => {
    expect(selectGuests(["crc32"])).toEqual(["c-crc32-O0", "c-crc32-O2", "c-crc32-Os", "c-crc32-v3"]);
    const o2 = selectGuests(["O2"]);
    expect(o2.length).toBeGreaterThanOrEqual(10);
    expect(o2.every((n) => n.endsWith("-O2"))).toBe(true);
    expect(selectGuests(["sha256-Os", "c-crc32-v3"])).toEqual(["c-crc32-v3", "c-sha256-Os"]);
    expect(() => selectGuests(["no-such-program"])).toThrow(/no corpus guest matches "no-such-program"/);
  });

  test("the known-differences file loads and every rule has a reason", () => {
    const known = new KnownDifferences();
    expect(known.rules.length).toBeGreaterThanOrEqual(4);
    expect(known.masksUndefinedFlags).toBe(true);
    expect(known.syncMnemonics().has("cpuid")).toBe(true);
    for (const r of known.rules) expect(r.reason.length).toBeGreaterThan(20);
  });

  test("the decoder names families and the flags the SDM leaves undefined", () => {
    const guest = loadCorpusGuest("c-muldiv-O0");
    const dec = new ImageDecoder(guest);
    try {
      const insns = dec.scan();
      const families = new Set(insns.map((d) => d.family));
      expect(families.has("muldiv")).toBe(true);
      expect(families.has("system")).toBe(true); // crt0's OUT, LIDT, CPUID …
      const mul = insns.find((d) => d.mnemonic === "mul" || d.mnemonic === "imul");
      expect(mul).toBeDefined();
      expect(mul!.undefinedFlags & 0x40).toBe(0x40); // ZF is undefined after MUL/IMUL
    } finally {
      dec.free();
    }
  });
});

describeWithQemu("x86_64")("difftest on the embedded machine and QEMU", () => {
  jest.setTimeout(240_000);

  test(`${GUEST} runs to completion on both with the same console and checksum`, async () => {
    const r = await diffGuest(GUEST, {
      completion: true,
      lockstep: false,
      timeoutMs: 180_000,
      lockstepOptions: { steps: 0, window: 0, batch: 1000, timeoutMs: 60_000, maxRestarts: 0 },
    });
    expect(r.error).toBeUndefined();
    expect(r.completionDifference).toBeUndefined();
    expect(r.sameCompletion).toBe(true);
    expect(r.emu!.stop).toBe("powerOff");
    expect(r.qemu!.stop).toBe("powerOff");
    expect(r.emu!.checksum).toBe(CHECKSUM);
    expect(r.qemu!.checksum).toBe(CHECKSUM);
    expect(r.emu!.console).toContain("self-check ok");
    expect(r.emu!.exitCode).toBe("0x0000000000000000");
    // The comparison itself tells a changed line.
    expect(compareCompletion(r.emu!, { ...r.qemu!, console: r.qemu!.console.map((l) => l.replace("ok", "KO")) })).toMatch(/console line \d+ differs/);
  });

  test(`${GUEST}: lockstep from the entry and one window agree`, async () => {
    const r = await diffGuest(GUEST, {
      completion: false,
      lockstep: true,
      timeoutMs: 180_000,
      lockstepOptions: { steps: 1500, window: 150, batch: 500, timeoutMs: 120_000, maxRestarts: 1 },
    });
    expect(r.error).toBeUndefined();
    const l = r.lockstep!;
    expect(l.divergence).toBeUndefined();
    expect(l.stepsCompared).toBeGreaterThanOrEqual(1500);
    expect(l.windows.length).toBeGreaterThanOrEqual(1);
    expect(l.windows[0].steps).toBeGreaterThan(0);
    expect(l.emuStepsPerSec).toBeGreaterThan(0);
    expect(l.qemuStepsPerSec).toBeGreaterThan(0);
  });

  test("a byte planted in the embedded machine's copy of a string is found at the load that reads it", async () => {
    const guest = loadCorpusGuest("c-crc32-O0");
    const text = Buffer.from(guest.image.bytes).indexOf("crc32: table-driven");
    expect(text).toBeGreaterThan(0);
    const gpa = guest.image.loadGpa + BigInt(text);
    const dec = new ImageDecoder(guest);
    const start = async (): Promise<[Backend, Backend]> => {
      const [emu, qemu] = await Promise.all([startEmu(guest), startQemu(guest)]);
      await emu.core.writeMemory({ kind: "gpa", gpa }, Uint8Array.of(0x43)); // 'c' -> 'C'
      return [emu, qemu];
    };
    try {
      const l = await new Lockstep(guest, start, dec, new KnownDifferences(), { steps: 5000, window: 0, batch: 1000, timeoutMs: 120_000, maxRestarts: 0 }).run();
      expect(l.end).toBe("divergence");
      const d = l.divergence!;
      expect(d.what).toMatch(/^r[a-z0-9]+ emu=0x43 qemu=0x63/); // the loaded byte, in whichever register
      expect(d.report).toContain("last instructions");
      expect(d.report).toContain("<con_puts");
      expect(d.instruction).toMatch(/mov/);
    } finally {
      dec.free();
    }
  });
});
