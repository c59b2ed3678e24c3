// Both machines for one corpus guest, through the project's VMM cores (no server in between).
import type { DebugStopReason, VmmCore } from "../../src/core";
import { createEmuMachine, type EmuMachine } from "../../src/emu";
import { defaultQemuBinary, hasExecutable, launchQemuVm, qemuArgsForGuest, qemuPackage } from "../../src/qemu";
import type { CorpusGuest } from "./corpus";

export type BackendName = "emu" | "qemu";

export interface Backend {
  name: BackendName;
  core: VmmCore;
  /** Console lines so far (the guest's port 0xE9 output, plus the backend's own notes). */
  console: string[];
  /** Resolves with the next stop (registered before anything runs). */
  nextStop(timeoutMs: number): Promise<DebugStopReason | "timeout" | "gone">;
  /** Resolves when a console line satisfies `pred` (or at the timeout, false). */
  waitConsole(pred: (line: string) => boolean, timeoutMs: number): Promise<boolean>;
  /** Guest instructions retired (emu only). */
  retired?(): number;
  close(): Promise<void>;
}

export function qemuAvailable(): { ok: boolean; why?: string } {
  const bin = defaultQemuBinary("x86_64");
  return hasExecutable(bin) ? { ok: true } : { ok: false, why: `${bin} not found (install the Debian package ${qemuPackage("x86_64")})` };
}

function consoleWaiters(consoleLines: string[]) {
  const waiters = new Set<() => void>();
  return {
    push(line: string) {
      consoleLines.push(line);
      for (const w of [...waiters]) w();
    },
    wait(pred: (line: string) => boolean, timeoutMs: number): Promise<boolean> {
      if (consoleLines.some(pred)) return Promise.resolve(true);
      return new Promise((resolve) => {
        const check = () => {
          if (consoleLines.some(pred)) done(true);
        };
        const timer = setTimeout(() => done(false), timeoutMs);
        const done = (v: boolean) => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(v);
        };
        waiters.add(check);
      });
    },
  };
}

function stopQueue(core: VmmCore) {
  const queue: (DebugStopReason | "gone")[] = [];
  let waiter: ((r: DebugStopReason | "gone") => void) | undefined;
  const deliver = (r: DebugStopReason | "gone") => {
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w(r);
    } else queue.push(r);
  };
  core.onStop(deliver);
  // A backend lost for good (the worker or QEMU died) ends any wait at once.
  core.onGone(() => deliver("gone"));
  return (timeoutMs: number): Promise<DebugStopReason | "timeout" | "gone"> => {
    const q = queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiter = undefined;
        resolve("timeout");
      }, timeoutMs);
      waiter = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  };
}

/** The embedded machine on `guest`, stopped at its entry (one VP). */
export async function startEmu(guest: CorpusGuest): Promise<Backend> {
  const consoleLines: string[] = [];
  const c = consoleWaiters(consoleLines);
  const m: EmuMachine = await createEmuMachine({ id: `emu-${guest.name}`, image: guest.image, onConsole: (line) => c.push(line), startRunning: false });
  const nextStop = stopQueue(m);
  return {
    name: "emu",
    core: m,
    console: consoleLines,
    nextStop,
    waitConsole: c.wait,
    retired: () => m.instructionsRetired(),
    close: () => m.close(),
  };
}

/** QEMU (TCG) on `guest`, stopped before its firmware runs. */
export async function startQemu(guest: CorpusGuest): Promise<Backend> {
  const consoleLines: string[] = [];
  const c = consoleWaiters(consoleLines);
  const { args } = qemuArgsForGuest(guest.manifestPath);
  const vm = await launchQemuVm({ id: `qemu-${guest.name}`, arch: "x86_64", args, startRunning: false, sharedMemory: true, onOutput: (line) => c.push(line) });
  const nextStop = stopQueue(vm);
  return { name: "qemu", core: vm, console: consoleLines, nextStop, waitConsole: c.wait, close: () => vm.close() };
}
