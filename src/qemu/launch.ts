// Starts QEMU for the QEMU backend: stopped (-S), gdbstub and QMP on private unix sockets, guest
// RAM in a shared memfd (no name anywhere), and a guard so QEMU never outlives this process.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { StringDecoder } from "node:string_decoder";
import type { Arch } from "../core";
import type { QemuSocketAddress } from "./rsp-socket";

export interface QemuLaunchOptions {
  arch: Arch;
  /** Arguments for QEMU after ours (machine, cpu, -m, -kernel, devices …). */
  args: readonly string[];
  /** The QEMU binary; default qemu-system-x86_64 / qemu-system-aarch64 from PATH. */
  binary?: string;
  /**
   * Put guest RAM in a shared memfd (default true) so it can be read directly: it has no name in
   * any filesystem, and goes away with the last process that holds it, however that one ends.
   */
  sharedMemory?: boolean;
  /** Guest console output (QEMU's stdout and stderr), line by line. */
  onOutput?: (line: string) => void;
  /** QEMU's stdout as raw bytes (the guest console its arguments put on stdio), as they come. */
  onStdout?: (data: Uint8Array) => void;
  /** QEMU's stdout has ended (QEMU and its guard exited): no more onStdout. */
  onStdoutEnd?: () => void;
  /**
   * Where the gdbstub listens: a private unix socket (default), or a loopback TCP port for a
   * client such as gdb itself (port 0 picks a free one).
   */
  gdbTcp?: { host: "127.0.0.1" | "::1"; port: number };
  /** Start with the VM stopped (-S, default true), or let it run at once. */
  paused?: boolean;
}

export interface LaunchedQemu {
  readonly pid: number;
  /** The gdbstub: the private unix socket, or the loopback TCP endpoint asked for. */
  readonly gdb: QemuSocketAddress;
  readonly qmpSocket: string;
  /**
   * Guest RAM, when sharedMemory is on: `/proc/<QEMU's pid>/fd/<n>`, QEMU's memfd. Opening it
   * gives our own descriptor of the same memory; the path lives only as long as QEMU.
   */
  readonly ramFile?: string;
  /** Guest RAM size in bytes (from -m; QEMU's default 128 MiB). */
  readonly ramBytes: number;
  /** Resolves with QEMU's exit code (or signal) when it exits. */
  readonly exited: Promise<number | string>;
  /** Stops QEMU (SIGTERM, then SIGKILL after 2 s) and removes its files. */
  kill(): Promise<void>;
  /**
   * Removes the private socket directory (gdb.sock, qmp.sock) once the caller holds its
   * connections and will not connect again: then a crash that kills the guard too leaves no name
   * behind. QEMU keeps serving the connections already open.
   */
  removeSocketNames(): void;
}

// The argument allowlist and its error live in argument-policy.ts; callers import them from here.
import { QemuArgumentError, checkUserArguments } from "./argument-policy";
export { QemuArgumentError, checkUserArguments };

export function defaultQemuBinary(arch: Arch): string {
  return arch === "x86_64" ? "qemu-system-x86_64" : "qemu-system-aarch64";
}

/** The Debian package that provides the QEMU binary for `arch`. */
export function qemuPackage(arch: Arch): string {
  return arch === "x86_64" ? "qemu-system-x86" : "qemu-system-arm";
}

/** Whether `binary` is on PATH (or is an existing path). */
export function hasExecutable(binary: string): boolean {
  if (binary.includes("/")) return existsSync(binary);
  return (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(join(dir, binary)));
}

/** Guest RAM size from -m ("128", "128M", "1G", "size=256M"); QEMU's default is 128 MiB. */
export function ramSizeFromArgs(args: readonly string[]): number {
  const i = args.lastIndexOf("-m");
  if (i === -1 || i + 1 >= args.length) return 128 * 1024 * 1024;
  const spec = args[i + 1].split(",").find((p) => !p.includes("=") || p.startsWith("size=")) ?? "";
  const m = /^(?:size=)?(\d+)([kKmMgGtT]?)$/.exec(spec);
  if (!m) throw new QemuArgumentError(`cannot read the RAM size from -m ${args[i + 1]}`);
  const unit = { "": 1024 * 1024, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase()]!;
  return Number(m[1]) * unit;
}

/**
 * Runs QEMU under /bin/sh as a guard that watches our pipe: when this process goes away (even
 * by SIGKILL) the pipe closes and the guard kills QEMU, then removes its socket directory.
 * QEMU's own PID comes from -pidfile. A SIGKILL of our whole process group kills the guard and
 * QEMU together, and nothing is left to clean: guest RAM is a memfd (it has no name), and
 * launchQemuVm removes the socket names once it is connected (removeSocketNames).
 */
const GUARD = `
exec 3<&0
"$@" </dev/null 3<&- &
q=$!
( cat <&3 >/dev/null; kill $q 2>/dev/null ) &
w=$!
exec 3<&-
wait $q
code=$?
kill $w 2>/dev/null
rm -rf "$VMM_DEBUG_DIR"
exit $code
`;

export async function launchQemu(options: QemuLaunchOptions): Promise<LaunchedQemu> {
  checkUserArguments(options.args);
  const binary = options.binary ?? defaultQemuBinary(options.arch);
  if (!hasExecutable(binary)) {
    throw new QemuArgumentError(`${binary} not found: install the Debian package ${qemuPackage(options.arch)}`);
  }
  const ramBytes = ramSizeFromArgs(options.args);
  const dir = mkdtempSync(join(tmpdir(), "vmm-debug-qemu-"));
  const gdbSocket = join(dir, "gdb.sock");
  const qmpSocket = join(dir, "qmp.sock");
  const pidFile = join(dir, "qemu.pid");
  const shared = (options.sharedMemory ?? true) && !options.args.some((a) => /memory-backend/.test(a));
  const gdb: QemuSocketAddress = options.gdbTcp
    ? { host: options.gdbTcp.host, port: options.gdbTcp.port || (await freeLoopbackPort(options.gdbTcp.host)) }
    : { path: gdbSocket };
  const gdbHost = "host" in gdb && gdb.host.includes(":") ? `[${gdb.host}]` : "host" in gdb ? gdb.host : "";
  const ours = [
    ...(options.paused ?? true ? ["-S"] : []),
    "-gdb",
    "path" in gdb ? `unix:${gdb.path},server=on,wait=off` : `tcp:${gdbHost}:${gdb.port}`,
    "-qmp",
    `unix:${qmpSocket},server=on,wait=off`,
    "-pidfile",
    pidFile,
    ...(shared
      ? ["-object", `memory-backend-memfd,id=vmmdebug-ram,size=${ramBytes},share=on`, "-machine", "memory-backend=vmmdebug-ram"]
      : []),
    // Without a display option QEMU opens a window, or on a machine without one a VNC server on
    // 127.0.0.1:5900 that (without -nodefaults) carries QEMU's monitor: no display unless asked.
    ...(options.args.some((a) => /^--?(display|nographic|vnc)$/.test(a)) ? [] : ["-display", "none"]),
  ];
  const child: ChildProcess = spawn("/bin/sh", ["-c", GUARD, "qemu-guard", binary, ...ours, ...options.args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, VMM_DEBUG_DIR: dir },
  });
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  let tail = "";
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffer = "";
    // Bytes, not text: stdout's raw bytes are the guest console (onStdout); lines are decoded here.
    const decoder = new StringDecoder("utf8");
    const raw = stream === child.stdout ? options.onStdout : undefined;
    if (stream === child.stdout && options.onStdoutEnd) {
      const onEnd = options.onStdoutEnd;
      stream.once("close", () => {
        try {
          onEnd();
        } catch {
          // the consumer's failure is its own (see below)
        }
      });
    }
    stream.on("data", (bytes: Buffer) => {
      if (raw) {
        try {
          raw(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
        } catch {
          // the consumer's failure is its own (see below)
        }
      }
      const chunk = decoder.write(bytes);
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        tail = (tail + line + "\n").slice(-2000);
        try {
          options.onOutput?.(line.replace(/\r$/, ""));
        } catch {
          // The consumer's failure is its own (this runs on a pipe event): the line is dropped,
          // and the pipe is still read so that QEMU never blocks writing to it.
        }
      }
    });
  }
  const cleanup = () => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Only a broken host fails here (force ignores a missing path; the directory is our own
      // mkdtemp), and the guard removes it as QEMU exits too. Thrown, it would be an unhandled
      // rejection in the server process.
    }
  };
  void exited.then(cleanup); // `exited` never rejects, and cleanup() does not throw

  // Wait (bounded) for QEMU to create its sockets, pid file and guest-RAM memfd.
  const deadline = Date.now() + 15_000;
  let exitCode: number | string | undefined;
  void exited.then((c) => (exitCode = c));
  let pid: number | undefined;
  // The memfd's path through /proc, "" once we know it cannot be had (another uid: -runas).
  let ramFile: string | undefined = shared ? undefined : "";
  while (pid === undefined || ramFile === undefined) {
    if (pid === undefined && existsSync(pidFile) && ("host" in gdb || existsSync(gdbSocket)) && existsSync(qmpSocket)) {
      pid = Number(readFileSync(pidFile, "utf8").trim());
      rmSync(pidFile, { force: true }); // nothing reads it again
    }
    if (pid !== undefined && ramFile === undefined) ramFile = findRamMemfd(pid, ramBytes);
    if (pid !== undefined && ramFile !== undefined) break;
    if (exitCode !== undefined) {
      throw new QemuArgumentError(`QEMU exited (${exitCode}) before it was ready:\n${tail.trim()}`);
    }
    if (Date.now() > deadline) {
      // The guard's watcher sees its pipe close, stops QEMU and removes the directory.
      child.stdin!.end();
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      throw new QemuArgumentError(
        pid === undefined ? `QEMU did not open its sockets within 15 s:\n${tail.trim()}` : `QEMU (pid ${pid}) did not create its guest-RAM memfd within 15 s`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }

  return {
    pid,
    gdb,
    qmpSocket,
    ramFile: ramFile || undefined,
    ramBytes,
    exited,
    async kill() {
      if (exitCode !== undefined) return;
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 2000);
      await exited;
      clearTimeout(timer);
    },
    removeSocketNames() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * QEMU's guest-RAM memfd as `/proc/<pid>/fd/<n>` (its link reads `/memfd:memory-backend-memfd
 * (deleted)` and its size is guest RAM's), checked by opening it; undefined while it is not there
 * yet, "" when QEMU's descriptors cannot be opened (it runs as another user).
 */
function findRamMemfd(pid: number, ramBytes: number): string | undefined {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EACCES" || (e as NodeJS.ErrnoException).code === "EPERM" ? "" : undefined;
  }
  for (const n of names) {
    const path = `/proc/${pid}/fd/${n}`;
    let link: string;
    try {
      link = readlinkSync(path);
    } catch {
      continue;
    }
    if (!link.startsWith("/memfd:memory-backend-memfd")) continue;
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EACCES" || (e as NodeJS.ErrnoException).code === "EPERM") return "";
      continue;
    }
    try {
      if (fstatSync(fd).size === ramBytes) return path;
    } finally {
      closeSync(fd);
    }
  }
  return undefined;
}

/** A free TCP port on a loopback address (bound and released; QEMU binds it next). */
function freeLoopbackPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
