// The usermode corpus guest (guests/c/usermode.c): CPL 3 on a kernel of its own. On the embedded
// machine alone: it passes its self-check, prints the checksum QEMU prints, and its
// known-difference lines carry the SDM's values (where QEMU 7.2 differs). With QEMU (Debian:
// qemu-system-x86; skipped with that message when absent): the same completion, and a lockstep
// sample without divergences (the end-lockstep rules' `functions` end a run where QEMU differs).
import { diffGuest, ImageDecoder, KnownDifferences, loadCorpusGuest, runToCompletion, startEmu } from "../../tools/difftest";
import { describeWithQemu } from "./qemu-harness";

const GUEST = "c-usermode-O2";
/** What every variant prints on both machines (the values QEMU gets wrong are not in it). */
const CHECKSUM = "0x66f0d2e7d037cfba";

describe("the usermode guest on the embedded machine", () => {
  jest.setTimeout(120_000);

  test(`${GUEST}: self-check ok, the shared checksum, and the SDM's values where QEMU 7.2 differs`, async () => {
    const guest = loadCorpusGuest(GUEST);
    const dec = new ImageDecoder(guest);
    const emu = await startEmu(guest);
    try {
      const r = await runToCompletion(guest, emu, dec, new KnownDifferences(), 60_000);
      expect(r.stop).toBe("powerOff");
      expect(r.exception).toBeUndefined();
      expect(r.console).toContain("self-check ok");
      expect(r.exitCode).toBe("0x0000000000000000");
      expect(r.checksum).toBe(CHECKSUM);
      // The I/O bitmap is read a word at a time: with the TSS limit at port 0x80's byte, #GP.
      expect(r.console).toContain("  tss limit at port 0x80's byte: in 0x80: 0x0000000000fa17ed");
      expect(r.console).toContain("  tss limit one byte further: in 0x80: 0x00000000000000ff");
      // The line written at CPL 3 through port 0xE9 with IOPL 3.
      expect(r.console).toContain("usermode: this line is written at CPL 3 with IOPL 3");
      // Those lines are left out of the compared console (usermode-known-lines): read them raw.
      expect(r.console.some((l) => l.startsWith("  known-difference: "))).toBe(false);
      const known = emu.console.filter((l) => l.startsWith("  known-difference: event "));
      expect(known).toHaveLength(9);
      // INT 0x81 through a DPL-0 gate at CPL 3: #GP(0x81 * 8 + 2), RF = 1 in the frame (a fault).
      expect(known[0]).toMatch(/vec 0d err 040a cs 23 ss 1b .* stack 1-00 ss-now 0000 rf 1$/);
      // INT 0x82 through a not-present DPL-3 gate: #NP(0x412).
      expect(known[1]).toMatch(/vec 0b err 0412 cs 23 /);
      // Non-canonical RBP and RSP at CPL 3: #SS(0), on IST1 (the #SS gate's stack).
      expect(known[2]).toMatch(/vec 0c err 0000 cs 23 .* stack 2-00 /);
      expect(known[3]).toMatch(/vec 0c err 0000 cs 23 ss 1b rsp 0x0000800000000010 .* stack 2-00 /);
      // The "done" INT 0x80: a trap, RF 0.
      expect(known[4]).toMatch(/vec 80 err 0000 cs 23 .* rf 0$/);
      // #UD at CPL 0 on IST1: no CPL change, so SS keeps the kernel's selector.
      expect(known[5]).toMatch(/vec 06 err 0000 cs 08 ss 10 .* stack 2-00 ss-now 0010 rf 1$/);
      // A PUSH with a non-canonical RSP at CPL 0: #SS(0) on IST1 (not #GP, not #DF); RBP-based too.
      expect(known[6]).toMatch(/vec 0c err 0000 cs 08 ss 10 rsp 0x0000800000000010 .* stack 2-00 ss-now 0010/);
      expect(known[7]).toMatch(/vec 0c err 0000 cs 08 ss 10 .* stack 2-00 ss-now 0010/);
      // INT 0x81 at CPL 0 (allowed), on the current stack.
      expect(known[8]).toMatch(/vec 81 err 0000 cs 08 ss 10 .* stack 0-08 ss-now 0010 rf 0$/);
    } finally {
      await emu.close();
      dec.free();
    }
  });

  test("end-lockstep rules name the functions that isolate QEMU's differences", () => {
    const known = new KnownDifferences();
    expect(known.endAtFunction("p_noncanon_push+0x1c")).toBe("qemu-noncanonical-stack-gp");
    expect(known.endAtFunction("p_noncanon_rbp")).toBe("qemu-noncanonical-stack-gp");
    expect(known.endAtFunction("known_load_err")).toBe("qemu-idt-error-code");
    expect(known.endAtFunction("known_load_rf")).toBe("qemu-fault-rf");
    expect(known.endAtFunction("known_rd_ss+0x2")).toBe("qemu-ist-null-ss");
    expect(known.endAtFunction("trap_handler+0x10")).toBeUndefined();
    expect(known.endAtFunction("p_noncanon_read")).toBeUndefined(); // #GP(0) on both
    expect(known.consoleIgnored("  known-difference: event vec 0c")).toBe(true);
    expect(known.consoleIgnored("  event vec 0c")).toBe(false);
  });
});

describeWithQemu("x86_64")("the usermode guest on the embedded machine and QEMU", () => {
  jest.setTimeout(300_000);

  test(`${GUEST}: the same console and checksum, and a lockstep sample with no divergence`, async () => {
    const r = await diffGuest(GUEST, {
      completion: true,
      lockstep: true,
      timeoutMs: 180_000,
      known: new KnownDifferences(),
      lockstepOptions: { steps: 2000, window: 200, batch: 1000, timeoutMs: 120_000, maxRestarts: 2 },
    });
    expect(r.error).toBeUndefined();
    expect(r.completionDifference).toBeUndefined();
    expect(r.sameCompletion).toBe(true);
    expect(r.qemu!.checksum).toBe(CHECKSUM);
    const l = r.lockstep!;
    expect(l.divergence).toBeUndefined();
    expect(l.stepsCompared).toBeGreaterThanOrEqual(2000);
    expect(l.windows.length).toBeGreaterThanOrEqual(3);
  });
});
