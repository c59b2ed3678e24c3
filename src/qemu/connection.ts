// A QEMU VM's two connections (gdbstub and QMP): the connect sequence, the owner marker, noticing
// that QEMU went away, and leaving (detach, or kill a QEMU we launched).
import type { Arch, ConsoleLog } from "../core";
import type { ThreadId } from "../rsp";
import type { LaunchedQemu } from "./launch";
import { type QemuMemoryMap, memoryMapOf, parseFlatView } from "./memory-map";
import { type QmpClient, type QmpEvent, createQmpClient } from "./qmp-client";
import { type RspClient, createRspClient } from "./rsp-client";
import type { QemuSocketAddress } from "./rsp-socket";
import { qemuArchOf } from "./target-xml";

export interface QemuVmOptions {
  id: string;
  /** QEMU's gdbstub and QMP endpoints. */
  gdb: QemuSocketAddress;
  qmp: QemuSocketAddress;
  /** The shared RAM backend file, read directly for GPA reads inside RAM. */
  ramFile?: string;
  /** Read RAM through `ramFile` (default true when there is one); false reads everything through the gdbstub. */
  fastMemory?: boolean;
  /** The QEMU process, when we launched it: killed by close(). */
  launched?: LaunchedQemu;
  /** The guest console output the launcher captures (QEMU's stdout), when it does. */
  console?: ConsoleLog;
  /**
   * Let the VM run once connected. Default: run if we launched it, if it was running before we
   * connected, or if a debugger that is gone left it stopped (see createQemuVm); a VM paused on
   * purpose stays paused.
   */
  startRunning?: boolean;
  log?: (message: string) => void;
}

/**
 * The QOM object an attached QEMU carries while a vmm-debug server has let it run: found at
 * connect, it says the server before us ended without closing (a clean close deletes it).
 */
export const OWNER_MARKER_ID = "vmm-debug-owner";

/** How long a lost connection waits for QMP to deliver what it still has (a SHUTDOWN) before settling. */
const QMP_DRAIN_MS = 2000;

/** What the VM does with what its connections report. Neither may throw (see QemuConnection.watch). */
export interface ConnectionHandlers {
  /** Every QMP event, after the connection took note of the ones it keeps (SHUTDOWN). */
  event(e: QmpEvent): void;
  /** QEMU is gone (its sockets closed, or it exited), settled once QMP has drained. */
  lost(detail: string): void;
}

/** A connected QEMU, ready to be driven (see connectQemu). */
export interface ConnectedQemu {
  connection: QemuConnection;
  map: QemuMemoryMap;
  /** Whether the VM should run once set up (QemuVmOptions.startRunning and what QEMU was left as). */
  run: boolean;
}

/**
 * Connects to a QEMU (launched by us or already running).
 *
 * A debugger that ended without detaching (a server killed by SIGKILL, gdb killed) leaves QEMU
 * with its breakpoints and watchpoints armed, and usually stopped. QEMU serves one gdbstub client,
 * so once we are connected that debugger is gone: we send `?` (QEMU 7.2's handler takes it for a
 * fresh gdb connection and removes every breakpoint and watchpoint), and we let the VM run when
 * it was left stopped by that debugger: QMP status `debug` (a gdbstub stop: breakpoint,
 * watchpoint, step), or `paused` while OWNER_MARKER_ID is present (a vmm-debug server let it run
 * and died; its Break, or a read's brief pause, pauses with `paused`). Any other stopped status —
 * `paused` without the marker (a QMP or monitor `stop`), `prelaunch` (-S), `shutdown`,
 * `guest-panicked` … — is somebody's intent and stays as it is.
 */
export async function connectQemu(options: QemuVmOptions): Promise<ConnectedQemu> {
  const qmp = await createQmpClient(options.qmp);
  let rsp: RspClient | undefined;
  try {
    const status = await qmp.queryStatus();
    const marked = options.launched ? false : await hasOwnerMarker(qmp);
    rsp = await createRspClient(options.gdb); // connecting pauses a running VM (and keeps `debug` as it is)
    await rsp.stopReason(); // removes whatever breakpoints and watchpoints a previous client left armed
    const abandoned = !status.running && (status.status === "debug" || (status.status === "paused" && marked));
    if (abandoned) {
      options.log?.(
        `[qemu ${options.id}] QEMU was left ${status.status === "debug" ? "stopped by a gdbstub client" : "paused by a vmm-debug server"} that is gone: ` +
          `its breakpoints were removed${options.startRunning === false ? "" : " and the VM runs on"}`,
      );
    }
    const desc = rsp.targetDescription!;
    const arch = qemuArchOf(desc);
    if (!arch) throw new Error(`QEMU's target is "${desc.architecture ?? "unknown"}"; only x86-64 and aarch64 are supported`);
    const threads = await rsp.listThreads();
    await rsp.setPhysicalMemoryMode(true);
    const map = memoryMapOf(parseFlatView(await qmp.humanMonitorCommand("info mtree -f")));
    const connection = new QemuConnection(options, qmp, rsp, arch, threads, marked);
    return { connection, map, run: options.startRunning ?? (options.launched !== undefined || status.running || abandoned) };
  } catch (e) {
    await rsp?.close(); // close() never rejects
    await qmp.close();
    throw e;
  }
}

export class QemuConnection {
  readonly id: string;
  readonly launched: LaunchedQemu | undefined;
  /** QMP said the guest powered off (SHUTDOWN, guest: true): QEMU ending now is a power-off. */
  guestPoweredOff = false;
  /**
   * Whether OWNER_MARKER_ID is in the attached QEMU (ours from now on): settled at connect when it
   * was there, else added once at the first run (markOwner). Never rejects.
   */
  private ownerMark: Promise<boolean> | undefined;
  /** Set once the loss of QEMU, or our own close, was noticed: later socket closes change nothing. */
  private ending = false;
  /** Who hears about events and the loss (see watch). */
  private handlers: ConnectionHandlers | undefined;

  constructor(
    private readonly options: QemuVmOptions,
    readonly qmp: QmpClient,
    readonly rsp: RspClient,
    readonly arch: Arch,
    /** The gdbstub's threads, one per VP, in VP order. */
    readonly threads: readonly ThreadId[],
    marked: boolean,
  ) {
    this.id = options.id;
    this.launched = options.launched;
    if (marked) this.ownerMark = Promise.resolve(true);
  }

  log(message: string): void {
    this.options.log?.(`[qemu ${this.id}] ${message}`);
  }

  /**
   * Starts telling `handlers` what the connections report. Every listener here runs on a socket
   * or process event, where a throw would reach the process: a throw is logged and costs this VM
   * its connections (it goes gone), nothing more.
   */
  watch(handlers: ConnectionHandlers): void {
    this.handlers = handlers;
    this.qmp.onEvent("*", (e) => this.guard(`QMP event ${e.event}`, () => this.onQmpEvent(e, handlers)));
    this.qmp.on("closed", () => this.guard("QMP close", () => this.lose("QEMU's QMP connection closed")));
    this.rsp.on("close", () => this.guard("gdbstub close", () => this.lose("QEMU's gdbstub connection closed")));
    this.launched?.exited.then((code) => this.guard("QEMU exit", () => this.lose(`QEMU exited (${code})`)));
  }

  /**
   * QEMU went away. Its sockets close in no set order as it exits, so first let QMP deliver what
   * it still has (a SHUTDOWN event makes this a power-off), then settle. Only the first call counts.
   */
  lose(detail: string): void {
    const handlers = this.handlers;
    if (this.ending || !handlers) return;
    this.ending = true;
    const qmpDone = this.qmp.isClosed ? Promise.resolve() : new Promise<void>((r) => this.qmp.once("closed", () => r()));
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((r) => (timer = setTimeout(r, QMP_DRAIN_MS)));
    void Promise.race([qmpDone, waited]).then(() => {
      clearTimeout(timer);
      try {
        handlers.lost(detail);
      } catch (e) {
        this.log(`settling the loss of QEMU failed: ${(e as Error).message}`); // its connections are gone already
      }
    });
  }

  /** Marks an attached QEMU as run by this server, once (see connectQemu); a QEMU we launched is not marked. */
  markOwner(): Promise<boolean> {
    return (this.ownerMark ??= this.launched ? Promise.resolve(false) : this.addOwnerMarker());
  }

  /**
   * Leaves QEMU. One we launched is stopped. One we attached to keeps running without us: the
   * owner marker is deleted and we detach (`D;1` resumes it); the caller removed its breakpoints.
   */
  async close(): Promise<void> {
    this.ending = true;
    if (this.launched) {
      await this.disconnect();
      await this.launched.kill();
      return;
    }
    if (await (this.ownerMark ?? false)) {
      await this.qmp.execute("object-del", { id: OWNER_MARKER_ID }).catch((e: Error) => {
        // Left behind, it makes the next server let this VM run if it finds it paused.
        this.log(`could not remove the owner marker ${OWNER_MARKER_ID}: ${e.message}`);
      });
    }
    await this.rsp.detach().catch(async (e: Error) => {
      // Without D;1 QEMU keeps the VM as it is (paused if it was stopped) until the next client's `?`.
      this.log(`could not detach from the gdbstub (${e.message}); closing the connection without it`);
      await this.rsp.close();
    });
    await this.qmp.close();
  }

  /** Closes both connections as they are (no detach): QEMU keeps the VM as it is. */
  async disconnect(): Promise<void> {
    await this.rsp.close(); // close() never rejects
    await this.qmp.close();
  }

  /**
   * Ends this VM's connections because handling one of their events failed (a bug on our side):
   * the loss is settled with `detail` as soon as QMP has closed.
   */
  private fail(detail: string): void {
    this.lose(detail);
    void this.disconnect(); // never rejects
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log(`handling the ${what} failed: ${(e as Error).message}; dropping the connection to QEMU`);
      this.fail(`internal error handling the ${what}: ${(e as Error).message}`);
    }
  }

  private onQmpEvent(e: QmpEvent, handlers: ConnectionHandlers): void {
    if (e.event === "SHUTDOWN" && e.data.guest === true) this.guestPoweredOff = true;
    if (e.event === "GUEST_PANICKED") this.log(`guest panicked: ${JSON.stringify(e.data)}`);
    handlers.event(e);
  }

  /** Adds OWNER_MARKER_ID. A refusal only costs what the marker is for, so it is logged, not thrown. */
  private async addOwnerMarker(): Promise<boolean> {
    try {
      await this.qmp.execute("object-add", { "qom-type": "authz-simple", id: OWNER_MARKER_ID, identity: `vmm-debug server pid ${process.pid}` });
      return true;
    } catch (e) {
      // Already there (a refusal for a duplicate id) counts as marked; failing to look is not.
      if (await hasOwnerMarker(this.qmp).catch(() => false)) return true;
      this.log(`could not mark QEMU as run by this server: ${(e as Error).message}`);
      return false;
    }
  }
}

/** Whether the attached QEMU carries OWNER_MARKER_ID. */
async function hasOwnerMarker(qmp: QmpClient): Promise<boolean> {
  const objects = await qmp.execute<{ name: string }[]>("qom-list", { path: "/objects" });
  return objects.some((o) => o.name === OWNER_MARKER_ID);
}
