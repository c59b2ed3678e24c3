// The QEMU backend: QEMU (x86-64, aarch64) as a VMM core through its gdbstub and QMP.
import { type Arch, ConsoleLog } from "../core";
import { launchQemu } from "./launch";
import { createQemuVm, type QemuVm } from "./qemu-vm";

export { createQemuVm, QemuVm } from "./qemu-vm";
export type { QemuVmOptions } from "./qemu-vm";
export { checkUserArguments, hasExecutable, launchQemu, qemuPackage, defaultQemuBinary, QemuArgumentError } from "./launch";
export type { LaunchedQemu, QemuLaunchOptions } from "./launch";
export { qemuArgsForGuest } from "./guest-args";
export { parseSocketAddress, formatSocketAddress } from "./rsp-socket";
export type { QemuSocketAddress } from "./rsp-socket";

export interface LaunchQemuVmOptions {
  id: string;
  arch: Arch;
  /** QEMU arguments (machine, cpu, -m, -kernel …); our -S, gdbstub, QMP and RAM backend are added. */
  args: readonly string[];
  binary?: string;
  /** Guest RAM in a shared file read directly (default true). */
  sharedMemory?: boolean;
  startRunning?: boolean;
  /** QEMU's output (the guest console when it goes to stdio), line by line. */
  onOutput?: (line: string) => void;
  /** Bytes of QEMU's stdout held for WatchConsole (the VM's `console`). Default 1 MiB. */
  consoleHistoryBytes?: number;
  log?: (message: string) => void;
}

/** Launches QEMU and connects to it; the VM's close() stops that QEMU. */
export async function launchQemuVm(options: LaunchQemuVmOptions): Promise<QemuVm> {
  // QEMU's stdout is the guest console its arguments put on stdio; it ends when QEMU has exited.
  const consoleLog = new ConsoleLog({ capacityBytes: options.consoleHistoryBytes });
  let vm: QemuVm | undefined;
  const launched = await launchQemu({
    arch: options.arch,
    args: options.args,
    binary: options.binary,
    sharedMemory: options.sharedMemory,
    onOutput: options.onOutput,
    onStdout: (data) => consoleLog.append("qemuStdio", data),
    onStdoutEnd: () => endConsoleWhenSettled(consoleLog, vm),
  });
  try {
    vm = await createQemuVm({
      id: options.id,
      console: consoleLog,
      gdb: launched.gdb,
      qmp: { path: launched.qmpSocket },
      ramFile: launched.ramFile,
      launched,
      startRunning: options.startRunning,
      log: options.log,
    });
    // The VM holds its gdbstub and QMP connections for good (neither client reconnects), and has
    // its own descriptor of guest RAM: no name needs to outlive this moment, whatever kills us.
    launched.removeSocketNames();
    return vm;
  } catch (e) {
    await launched.kill();
    throw e;
  }
}

/**
 * QEMU's stdout closed (QEMU exited): every byte is in. The VM learns how QEMU ended through QMP,
 * which may come a moment later (a SHUTDOWN drained first): the output ends as the VM settles,
 * powered off or gone, and at the latest after a few seconds.
 */
function endConsoleWhenSettled(log: ConsoleLog, vm: QemuVm | undefined): void {
  const settled = () => {
    const state = vm?.runState();
    if (state === "poweredOff") log.end("poweredOff");
    else if (state === "gone" || vm === undefined) log.end("backendLost");
    return log.ended !== undefined;
  };
  if (settled() || !vm) return;
  const offStop = vm.onStop(() => settled() && done());
  const offGone = vm.onGone(() => settled() && done());
  const timer = setTimeout(() => {
    if (!settled()) log.end("backendLost");
    done();
  }, 5000);
  timer.unref();
  function done(): void {
    clearTimeout(timer);
    offStop();
    offGone();
  }
}
