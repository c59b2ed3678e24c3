// Which QEMU arguments vmm-debug passes on from a user: an allowlist of options, each value read
// the way QEMU 7.2 reads it, and every endpoint held to loopback or a unix socket.

/** A QEMU launch refused or failed; `option` names the refused option as the user spelt it. */
export class QemuArgumentError extends Error {
  override name = "QemuArgumentError";
  readonly option?: string;

  constructor(message: string, option?: string) {
    super(message);
    this.option = option;
  }
}

import { type Entries, SyntaxProblem, readJsonObject, readJsonOr, readKeyval, readQemuOpts, span } from "./qemu-opts";

export { readJsonObject, readKeyval, readQemuOpts } from "./qemu-opts";

/** Why a value is refused, or undefined when it is fine. */
type Verdict = string | undefined;

/** An option QEMU accepts from us: whether it takes the next argument as its value, and how it is vetted. */
interface AllowedOption {
  value: boolean;
  vet?: (value: string) => Verdict;
}

/**
 * Throws QemuArgumentError unless every argument is on the allowlist below, with values that
 * keep QEMU off the network (loopback and unix endpoints only), leave what vmm-debug owns
 * (gdbstub, QMP, -S, -pidfile, QEMU's lifetime) alone, and run no other program.
 */
export function checkUserArguments(args: readonly string[]): void {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    // QEMU reads any argument that does not start with "-" as a disk image (-hda).
    if (!arg.startsWith("-")) {
      const why = vetImageName(arg);
      if (why) throw new QemuArgumentError(`QEMU argument ${arg} (a disk image) is not allowed: ${why}`, arg);
      continue;
    }
    // QEMU treats --name as -name; there is no -name=value or --name=value form.
    const name = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    if (name.includes("=")) {
      const [option] = name.split("=", 1);
      throw new QemuArgumentError(
        `QEMU argument ${arg} is not allowed: QEMU has no -${option}=VALUE form (it would read "${name}" as the option's name); give the value as the next argument`,
        arg,
      );
    }
    const refused = REFUSED.get(name);
    if (refused) throw new QemuArgumentError(`QEMU argument ${arg} is not allowed: ${refused}`, arg);
    const allowed = ALLOWED.get(name);
    if (!allowed) {
      throw new QemuArgumentError(`QEMU argument ${arg} is not allowed: it is not among the QEMU options vmm-debug has vetted`, arg);
    }
    if (!allowed.value) continue;
    if (i + 1 >= args.length) throw new QemuArgumentError(`QEMU argument ${arg} needs a value`, arg);
    const value = args[++i];
    const why = allowed.vet?.(value);
    if (why) throw new QemuArgumentError(`QEMU argument ${arg} ${value} is not allowed: ${why}`, arg);
  }
}


/** Runs a check on entries read from `text`, refusing what cannot be read as QEMU would. */
function vetRead(read: () => Entries, check: (entries: Entries) => Verdict): Verdict {
  let entries: Entries;
  try {
    entries = read();
  } catch (e) {
    if (e instanceof SyntaxProblem) return `cannot read it as QEMU would (${e.message})`;
    throw e;
  }
  return check(entries);
}


const leafOf = (key: string) => key.slice(key.lastIndexOf(".") + 1);
/** Every value of `key`, including list items (`key.0`, `key.0.str` in JSON or keyval). */
const all = (entries: Entries, key: string) =>
  entries.filter(([k]) => k === key || (k.startsWith(`${key}.`) && /^\.\d+(\.str)?$/.test(k.slice(key.length)))).map(([, v]) => v);
/** QEMU uses the last of a repeated key. */
const last = (entries: Entries, key: string) => all(entries, key).at(-1);

/** Keys that hand QEMU a file descriptor (fd, fds, vhostfd, sock_fd …): vmm-debug passes none. */
function vetNoFd(entries: Entries): Verdict {
  const fd = entries.find(([k]) => /fds?$/.test(leafOf(k)));
  return fd ? `${fd[0]}= passes QEMU a file descriptor, and vmm-debug passes it none` : undefined;
}

// ---------------------------------------------------------------------------------------------
// Endpoints

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const LOOPBACK_V4 = new RegExp(`^127\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** @internal 127.0.0.0/8 in plain dotted form, ::1, or localhost; nothing else (no "0", no "127.1"). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_V4.test(host) || host === "::1" || host === "[::1]" || host === "localhost";
}

function vetHost(what: string, host: string): Verdict {
  if (host === "") return `${what} is empty, which means every interface; use 127.0.0.1, ::1 or a unix socket`;
  return isLoopbackHost(host) ? undefined : `${what} ${host} is not loopback; use 127.0.0.1, ::1 or a unix socket`;
}

/** QEMU's parse_host_port ("host:port", split at the first colon; an empty host is INADDR_ANY). */
function vetHostPort(what: string, address: string): Verdict {
  const colon = address.indexOf(":");
  if (colon < 0) return `${what}=${address} has no host:port`;
  return vetHost(`${what}= host`, address.slice(0, colon));
}

/** A QAPI SocketAddress under `prefix` (`addr`, `local`, `remote`): inet on loopback, or unix. */
function vetSocketAddress(entries: Entries, prefix: string): Verdict {
  const type = last(entries, `${prefix}.type`);
  for (const host of all(entries, `${prefix}.host`)) {
    const why = vetHost(`${prefix}.host`, host);
    if (why) return why;
  }
  if (type === "unix") return undefined;
  if (type === "inet") return all(entries, `${prefix}.host`).length ? undefined : `${prefix}.host is missing`;
  if (type === "fd") return `${prefix}.type=fd passes QEMU a file descriptor, and vmm-debug passes it none`;
  if (type === "vsock") return `${prefix}.type=vsock reaches other VMs on this host; use inet on loopback or unix`;
  return `${prefix}.type must be inet (on loopback) or unix`;
}

// ---------------------------------------------------------------------------------------------
// Character devices: -chardev, and the legacy strings of -serial, -parallel, -debugcon, guestfwd.

const CHARDEV_BACKENDS_REFUSED = new Map([
  ["serial", "a host serial line leads off this machine"],
  ["tty", "a host serial line leads off this machine"],
  ["parallel", "a host parallel port leads off this machine"],
  ["parport", "a host parallel port leads off this machine"],
  ["braille", "BrlAPI may reach a braille daemon over the network"],
  ["spicevmc", "SPICE listens on the network"],
  ["spiceport", "SPICE listens on the network"],
  ["qemu-vdagent", "the agent serves a SPICE or D-Bus display"],
  ["dbus", "a D-Bus chardev is served on a D-Bus address, which may be TCP"],
]);
const CHARDEV_BACKENDS_PLAIN = new Set(["null", "stdio", "file", "pipe", "pty", "ringbuf", "memory", "msmouse", "wctablet", "testdev", "vc", "mux"]);

function vetChardevEntries(entries: Entries): Verdict {
  const backend = last(entries, "backend") ?? "";
  const fd = vetNoFd(entries);
  if (fd) return fd;
  if (backend === "socket") {
    const hosts = all(entries, "host");
    for (const host of hosts) {
      const why = vetHost("host", host);
      if (why) return why;
    }
    if (!hosts.length && !all(entries, "path").length) return "a socket chardev needs path= (unix) or a loopback host=";
    return undefined;
  }
  if (backend === "udp") {
    // An empty remote host is localhost; a local port without a local address binds every interface.
    for (const host of all(entries, "host")) {
      const why = host === "" ? undefined : vetHost("host", host);
      if (why) return why;
    }
    const localaddrs = all(entries, "localaddr").filter((a) => a !== "");
    for (const addr of localaddrs) {
      const why = vetHost("localaddr", addr);
      if (why) return why;
    }
    if (!localaddrs.length && all(entries, "localport").some((port) => port !== "")) {
      return "localport= without a loopback localaddr= binds every interface";
    }
    return undefined;
  }
  if (CHARDEV_BACKENDS_PLAIN.has(backend)) return undefined;
  return CHARDEV_BACKENDS_REFUSED.get(backend) ?? `"${backend}" is not a chardev backend vmm-debug has vetted`;
}

/** scanf("%N[^stop]") from `p`: at least one character, at most `max`. */
function scan(text: string, p: number, max: number, stop: string): string | undefined {
  const len = Math.min(span(text, p, stop), max);
  return len > 0 ? text.slice(p, p + len) : undefined;
}

/** scanf("%64[^:]:%32[^,]%n"), or ":%32[^,]%n" for an empty host, as qemu_chr_parse_compat does. */
function scanHostPort(text: string, p: number, portStop: string): { host: string; port: string; end: number } | undefined {
  const host = scan(text, p, 64, ":");
  if (host !== undefined && text[p + host.length] === ":") {
    const port = scan(text, p + host.length + 1, 32, portStop);
    if (port !== undefined) return { host, port, end: p + host.length + 1 + port.length };
  }
  if (text[p] !== ":") return undefined;
  const port = scan(text, p + 1, 32, portStop);
  return port === undefined ? undefined : { host: "", port, end: p + 1 + port.length };
}

/** A legacy chardev string (qemu_chr_parse_compat) read into -chardev entries. */
function readChardevString(spec: string): Entries {
  const prefix = /^(tcp|telnet|tn3270|websocket|udp|unix|file|pipe|pty):/.exec(spec)?.[1];
  if (["null", "pty", "msmouse", "wctablet", "braille", "testdev", "stdio"].includes(spec)) return [["backend", spec]];
  if (spec.startsWith("vc")) return [["backend", "vc"]];
  if (spec === "con:") return [["backend", "console"]];
  if (spec.startsWith("COM") || spec.startsWith("/dev/")) {
    return [["backend", /^\/dev\/(parport|ppi)/.test(spec) ? "parallel" : "serial"]];
  }
  if (prefix === "file" || prefix === "pipe" || prefix === "pty") return [["backend", prefix], ["path", spec.slice(prefix.length + 1)]];
  if (prefix === "unix") return [["backend", "socket"], ...readQemuOpts(spec.slice(5), "path")];
  if (prefix === "udp") {
    const remote = scanHostPort(spec, 4, "@,");
    if (!remote) throw new SyntaxProblem(`"${spec}" is not a udp:[host]:port[@[localaddr]:localport] string`);
    const entries: [string, string][] = [["backend", "udp"], ["host", remote.host], ["port", remote.port]];
    if (spec[remote.end] === "@") {
      const local = scanHostPort(spec, remote.end + 1, ",");
      if (!local) throw new SyntaxProblem(`"${spec}" has no [localaddr]:localport after "@"`);
      entries.push(["localaddr", local.host], ["localport", local.port]);
    }
    return entries;
  }
  if (prefix) {
    // tcp:, telnet:, tn3270:, websocket: — later options (host= too) override the ones before.
    const at = scanHostPort(spec, prefix.length + 1, ",");
    if (!at) throw new SyntaxProblem(`"${spec}" is not a ${prefix}:[host]:port string`);
    const rest = spec[at.end] === "," ? readQemuOpts(spec.slice(at.end + 1)) : [];
    return [["backend", "socket"], ["host", at.host], ["port", at.port], ...rest];
  }
  throw new SyntaxProblem(`"${spec}" is not a QEMU character device`);
}

/** -serial, -parallel, -debugcon and guestfwd devices. */
function vetChardevString(spec: string, options: { none: boolean }): Verdict {
  if (options.none && spec === "none") return undefined;
  if (spec.startsWith("chardev:")) return undefined; // a -chardev, vetted where it is defined
  if (spec.startsWith("mon:")) {
    return "mon: puts a QEMU monitor on it, which can open listeners (gdbserver, migrate) and resume the VM behind vmm-debug's back";
  }
  return vetRead(() => readChardevString(spec), vetChardevEntries);
}

// ---------------------------------------------------------------------------------------------
// Networks: -netdev, -nic, -net

const NETDEVS_REFUSED = new Map([
  ["tap", "tap needs host network privileges and runs ifup/ifdown scripts"],
  ["bridge", "bridge runs qemu-bridge-helper to join a host bridge"],
  ["l2tpv3", "l2tpv3 tunnels the guest's frames to another host"],
  ["vde", "vde joins a VDE switch, which can reach off this machine"],
  ["vhost-user", "vhost-user hands the guest's traffic to another process, beyond what vmm-debug can vet"],
  ["vhost-vdpa", "vhost-vdpa attaches a host network device"],
  ["netmap", "netmap attaches a host network device"],
  ["af-xdp", "af-xdp attaches a host network device"],
  ["vmnet-host", "vmnet attaches a host network"],
  ["vmnet-shared", "vmnet attaches a host network"],
  ["vmnet-bridged", "vmnet attaches a host network"],
]);

/** slirp's get_str_sep: the text before `sep`, and the rest after it. */
function splitAt(text: string, sep: string): [string, string] | undefined {
  const at = text.indexOf(sep);
  return at < 0 ? undefined : [text.slice(0, at), text.slice(at + 1)];
}

/** hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport; an empty hostaddr is every interface. */
function vetHostfwd(rule: string): Verdict {
  const addr = splitAt(splitAt(rule, ":")?.[1] ?? "", ":")?.[0];
  if (addr === undefined) return `hostfwd=${rule} is not [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`;
  if (addr === "") return `hostfwd=${rule} has no host address, which means every interface; give 127.0.0.1`;
  // slirp reads the host address with inet_aton: IPv4 only.
  return LOOPBACK_V4.test(addr) ? undefined : `hostfwd=${rule} listens on ${addr}, which is not loopback; give 127.0.0.1`;
}

/** guestfwd=[tcp]:server:port-dev: dev is a chardev string, or cmd:COMMAND, which QEMU runs. */
function vetGuestfwd(rule: string): Verdict {
  const head = splitAt(rule, ":");
  const server = head && splitAt(head[1], ":");
  const dev = server && splitAt(server[1], "-")?.[1];
  if (dev === undefined) return `guestfwd=${rule} is not [tcp]:server:port-dev`;
  if (dev.startsWith("cmd:")) return `guestfwd=${rule} runs a host command for each connection`;
  const why = vetChardevString(dev, { none: false });
  return why && `guestfwd=${rule}: ${why}`;
}

/** A network backend (or -nic/-net front end) read into entries with its `type`. */
function vetNetworkEntries(entries: Entries): Verdict {
  const type = last(entries, "type") ?? "";
  const fd = vetNoFd(entries);
  if (fd) return fd;
  switch (type) {
    case "user": {
      if (all(entries, "smb").length) return "smb= runs smbd, a host program";
      for (const rule of all(entries, "hostfwd")) {
        const why = vetHostfwd(rule);
        if (why) return why;
      }
      for (const rule of all(entries, "guestfwd")) {
        const why = vetGuestfwd(rule);
        if (why) return why;
      }
      return undefined;
    }
    case "socket": {
      if (all(entries, "mcast").length) return "mcast= sends to a multicast group on the network, never loopback";
      const ends = (["listen", "connect", "udp", "localaddr"] as const).flatMap((k) => all(entries, k).map((v) => [k, v] as const));
      for (const [key, address] of ends) {
        const why = vetHostPort(key, address);
        if (why) return why;
      }
      return ends.some(([k]) => k !== "localaddr") ? undefined : "a socket netdev needs listen=, connect= or udp= on loopback";
    }
    case "stream":
      return vetSocketAddress(entries, "addr");
    case "dgram": {
      const prefixes = ["local", "remote"].filter((p) => entries.some(([k]) => k.startsWith(`${p}.`)));
      if (!prefixes.length) return "a dgram netdev needs local= or remote=";
      for (const prefix of prefixes) {
        const why = vetSocketAddress(entries, prefix);
        if (why) return why;
      }
      return undefined;
    }
    case "hubport":
    case "none": // -nic none, -net none
    case "nic": // -net nic: a front end
      return undefined;
    default:
      return NETDEVS_REFUSED.get(type) ?? `"${type}" is not a network backend vmm-debug has vetted`;
  }
}

function vetNetdev(value: string): Verdict {
  if (value.startsWith("{")) return vetRead(() => readJsonObject(value), vetNetworkEntries);
  // QEMU reads stream and dgram with keyval, the older types with QemuOpts (netdev_is_modern).
  const type = last(readQemuOpts(value, "type"), "type");
  const modern = type === "stream" || type === "dgram";
  return vetRead(() => (modern ? readKeyval(value, "type") : readQemuOpts(value, "type")), vetNetworkEntries);
}

// ---------------------------------------------------------------------------------------------
// Storage: -drive, -blockdev, -hda … and bare disk-image arguments

/** Block drivers that read and write files on this machine (no nbd, iscsi, curl, ssh, rbd …). */
const BLOCK_DRIVERS = new Set([
  "file",
  "host_device",
  "host_cdrom",
  "raw",
  "qcow2",
  "qcow",
  "qed",
  "vdi",
  "vhdx",
  "vmdk",
  "vpc",
  "vvfat",
  "dmg",
  "parallels",
  "bochs",
  "cloop",
  "luks",
  "null-co",
  "null-aio",
  "throttle",
  "copy-on-read",
  "compress",
  "preallocate",
  "quorum",
]);

/**
 * A disk image name: QEMU reads "PROTOCOL:…" (a colon before any slash) as a protocol such as
 * nbd: or http:; only plain paths, file:, fat: (vvfat, a host directory) and json: with local
 * drivers are accepted.
 */
function vetImageName(name: string): Verdict {
  const cut = span(name, 0, ":/");
  if (name[cut] !== ":") return undefined;
  const protocol = name.slice(0, cut);
  if (protocol === "file" || protocol === "fat") return undefined;
  if (protocol === "json") return vetRead(() => readJsonObject(name.slice(5)), (e) => vetBlockEntries(e, { drive: true }));
  return `"${protocol}:" is not a local file; vmm-debug accepts disk images on this machine only`;
}

/** Every driver (at any depth) local, and every file name a local one. */
function vetBlockEntries(entries: Entries, options: { drive: boolean }): Verdict {
  for (const [key, value] of entries) {
    const leaf = leafOf(key);
    if (leaf === "driver" || (options.drive && key === "format")) {
      if (!BLOCK_DRIVERS.has(value)) return `block driver "${value}" is not one that keeps to files on this machine`;
    }
    if (leaf === "filename" || (options.drive && key === "file")) {
      const why = vetImageName(value);
      if (why) return why;
    }
  }
  return vetNoFd(entries);
}

// ---------------------------------------------------------------------------------------------
// Devices, objects, globals

/** Device types that open their own connections rather than through a vetted chardev or netdev. */
const DEVICES_REFUSED = new Map([
  ["x-pci-proxy-dev", "it connects to a device process through a passed file descriptor"],
  ["vfio-user-pci", "it connects to a vfio-user server socket"],
]);

function vetDeviceEntries(entries: Entries): Verdict {
  for (const driver of all(entries, "driver")) {
    const why = DEVICES_REFUSED.get(driver);
    if (why) return `device ${driver}: ${why}`;
  }
  return vetNoFd(entries);
}

/** -global driver.property=value, or driver=…,property=…,value=… (qemu_global_option). */
function vetGlobal(value: string): Verdict {
  const short = /^([^.=]{1,63})\.([^=]{1,63})=/.exec(value);
  if (short) return vetDeviceEntries([["driver", short[1]], [short[2], ""]]);
  // The property's name is what a device check looks at: make it a key.
  return vetDeviceEntries(readQemuOpts(value).map(([k, v]) => (k === "property" ? [v, ""] : [k, v])));
}

/** Object types that hold memory, threads, entropy, secrets, TLS credentials or net filters. */
const OBJECT_TYPES = new Set([
  "memory-backend-ram",
  "memory-backend-file",
  "memory-backend-memfd",
  "iothread",
  "main-loop",
  "throttle-group",
  "rng-random",
  "rng-builtin",
  "rng-egd",
  "secret",
  "tls-creds-anon",
  "tls-creds-psk",
  "tls-creds-x509",
  "tls-cipher-suites",
  "filter-buffer",
  "filter-dump",
  "filter-mirror",
  "filter-redirector",
  "filter-rewriter",
  "cryptodev-backend-builtin",
]);
const OBJECTS_REFUSED = new Map([
  ["dbus-vmstate", "it connects to a D-Bus address, which may be TCP"],
  ["x-remote-object", "it serves a device to another process"],
  ["vfio-user-server", "it serves a device on a socket"],
  ["input-linux", "it grabs a host input device"],
  ["can-host-socketcan", "it joins a host CAN bus"],
  ["cryptodev-vhost-user", "it hands requests to another process"],
  ["pr-manager-helper", "it talks to a privileged helper"],
]);

function vetObjectEntries(entries: Entries): Verdict {
  const type = last(entries, "qom-type") ?? "";
  if (!OBJECT_TYPES.has(type)) {
    const why = OBJECTS_REFUSED.get(type);
    return why ? `object ${type}: ${why}` : `object type "${type}" is not one vmm-debug has vetted (memory backends, iothreads, rng, secrets, TLS credentials, net filters, throttle groups)`;
  }
  return vetNoFd(entries);
}

// ---------------------------------------------------------------------------------------------
// Display, accelerator, and the rest

const HEADLESS = "vmm-debug runs QEMU headless: use -display none (or -nographic)";
const DISPLAYS_REFUSED = new Map([
  ["spice-app", "spice-app starts a SPICE server and launches a viewer program"],
  ["dbus", "a D-Bus display is served on a D-Bus address, which may be TCP"],
  ["curses", `curses takes over the terminal that carries the guest console; ${HEADLESS}`],
]);

function vetDisplay(value: string): Verdict {
  // parse_display: anything starting with "vnc" is VNC.
  if (value.startsWith("vnc")) return "VNC listens on the network; use -display none";
  return vetRead(
    () => readJsonOr(value, () => readKeyval(value, "type")),
    (entries) => {
      const type = last(entries, "type") ?? "";
      if (type === "none") return undefined;
      return DISPLAYS_REFUSED.get(type) ?? `a ${type} window has no place on a server, and with default devices it carries QEMU's own monitor; ${HEADLESS}`;
    },
  );
}

const ONLY_TCG = "only TCG (-accel tcg) is accepted: it is what vmm-debug's QEMU backend is tested on, and other accelerators need host devices";

function vetAccelerators(accels: readonly string[]): Verdict {
  const other = accels.find((a) => a !== "tcg");
  return other === undefined ? undefined : `accelerator ${other}: ${ONLY_TCG}`;
}

const OFF = new Set(["off", "no", "false", "n"]);

const vetOne =
  (accepted: string, why: string) =>
  (value: string): Verdict =>
    value === accepted ? undefined : why;

const image: AllowedOption = { value: true, vet: vetImageName };
const machine: AllowedOption = { value: true, vet: (v) => vetRead(() => readQemuOpts(v, "type"), (e) => vetAccelerators(all(e, "accel"))) };
const fsdev: AllowedOption = {
  value: true,
  vet: (v) =>
    vetRead(
      () => readQemuOpts(v, "fsdriver"),
      (e) => (["local", "synth"].includes(last(e, "fsdriver") ?? "") ? vetNoFd(e) : "only the local and synth fsdev drivers are accepted (proxy talks to a helper through a socket)"),
    ),
};
const plain: AllowedOption = { value: true };
const flag: AllowedOption = { value: false };

/** Options refused outright, with why. */
const REFUSED = new Map<string, string>([
  ["gdb", "vmm-debug runs its own gdbstub on a private socket"],
  ["s", "vmm-debug runs its own gdbstub on a private socket"],
  ["qmp", "vmm-debug runs its own QMP on a private socket"],
  ["qmp-pretty", "vmm-debug runs its own QMP on a private socket"],
  ["mon", "a monitor can open listeners (gdbserver, migrate) and resume the VM behind vmm-debug's back; vmm-debug owns the monitor"],
  ["S", "vmm-debug starts QEMU stopped itself"],
  ["daemonize", "vmm-debug must stay QEMU's parent so QEMU never outlives it"],
  ["pidfile", "vmm-debug sets QEMU's -pidfile itself"],
  ["incoming", "incoming migration listens on the network (tcp:, rdma:), runs a command (exec:), or waits for a monitor (defer)"],
  ["spice", "SPICE listens on the network"],
  ["runas", "vmm-debug must keep reaching QEMU's sockets and guest memory as its own user"],
  ["chroot", "vmm-debug must keep reaching QEMU's sockets and guest memory"],
  ["readconfig", "the options in a config file cannot be vetted here"],
  ["writeconfig", "it writes QEMU's configuration, vmm-debug's private sockets included, to a file"],
  ["add-fd", "vmm-debug passes QEMU no file descriptors"],
  ["set", "-set changes options after they have been vetted"],
  ["plugin", "a TCG plugin is arbitrary code loaded into QEMU"],
  ["semihosting", "semihosting lets guest code open host files and run host commands (SYS_SYSTEM)"],
  ["enable-kvm", ONLY_TCG],
  ["qtest", "qtest opens a test-control channel into QEMU"],
  ["preconfig", "QEMU would wait for QMP commands vmm-debug does not send"],
  ["mem-path", "guest RAM is vmm-debug's shared memory backend; give -object memory-backend-file instead (it turns the shared backend off)"],
  ["iscsi", "iSCSI storage is on the network"],
  ["usbdevice", "use -device (its legacy forms are not vetted)"],
]);

/** Options accepted, with the vetting of their values. */
const ALLOWED = new Map<string, AllowedOption>([
  // Machine, CPU, memory and boot
  ["machine", machine],
  ["M", machine],
  ["accel", { value: true, vet: (v) => vetRead(() => readQemuOpts(v, "accel"), (e) => vetAccelerators(all(e, "accel"))) }],
  ["cpu", plain],
  ["smp", plain],
  ["m", plain],
  ["numa", plain],
  ["kernel", plain],
  ["initrd", plain],
  ["append", plain],
  ["dtb", plain],
  ["bios", plain],
  ["L", plain],
  ["boot", plain],
  ["rtc", plain],
  ["name", plain],
  ["uuid", plain],
  ["k", plain],
  ["icount", plain],
  ["option-rom", plain],
  ["fw_cfg", plain],
  ["smbios", plain],
  ["acpitable", plain],
  ["overcommit", plain],
  ["action", plain],
  ["watchdog-action", plain],
  ["compat", plain],
  ["sandbox", plain],
  ["msg", plain],
  ["mem-prealloc", flag],
  ["nodefaults", flag],
  ["no-user-config", flag],
  ["no-reboot", flag],
  ["no-shutdown", flag],
  ["no-acpi", flag],
  ["no-hpet", flag],
  ["usb", flag],
  ["snapshot", flag],
  // Logging and tracing (local files)
  ["d", plain],
  ["D", plain],
  ["dfilter", plain],
  ["trace", plain],
  // Semihosting only switched off: on, guest code opens host files and runs host commands.
  [
    "semihosting-config",
    {
      value: true,
      vet: (v) =>
        vetRead(
          () => readQemuOpts(v, "enable"),
          (e) => (all(e, "enable").length && all(e, "enable").every((x) => OFF.has(x)) ? undefined : REFUSED.get("semihosting")),
        ),
    },
  ],
  // Display: none only
  ["display", { value: true, vet: vetDisplay }],
  ["nographic", flag],
  ["vga", plain],
  ["vnc", { value: true, vet: vetOne("none", "VNC listens on the network; use -display none") }],
  ["monitor", { value: true, vet: vetOne("none", REFUSED.get("mon")!) }],
  // Character devices
  ["chardev", { value: true, vet: (v) => vetRead(() => readQemuOpts(v, "backend"), vetChardevEntries) }],
  ["serial", { value: true, vet: (v) => vetChardevString(v, { none: true }) }],
  ["parallel", { value: true, vet: (v) => vetChardevString(v, { none: true }) }],
  ["debugcon", { value: true, vet: (v) => vetChardevString(v, { none: true }) }],
  // Network
  ["netdev", { value: true, vet: vetNetdev }],
  ["nic", { value: true, vet: (v) => vetRead(() => readQemuOpts(v, "type"), vetNetworkEntries) }],
  ["net", { value: true, vet: (v) => vetRead(() => readQemuOpts(v, "type"), vetNetworkEntries) }],
  // Storage
  ["drive", { value: true, vet: (v) => vetRead(() => readQemuOpts(v), (e) => vetBlockEntries(e, { drive: true })) }],
  ["blockdev", { value: true, vet: (v) => vetRead(() => readJsonOr(v, () => readKeyval(v, "driver")), (e) => vetBlockEntries(e, { drive: false })) }],
  ...["hda", "hdb", "hdc", "hdd", "cdrom", "fda", "fdb", "sd", "pflash", "mtdblock"].map((o) => [o, image] as const),
  ["fsdev", fsdev],
  ["virtfs", fsdev],
  // Devices and objects
  ["device", { value: true, vet: (v) => vetRead(() => readJsonOr(v, () => readQemuOpts(v, "driver")), vetDeviceEntries) }],
  ["global", { value: true, vet: vetGlobal }],
  ["object", { value: true, vet: (v) => vetRead(() => readJsonOr(v, () => readQemuOpts(v, "qom-type")), vetObjectEntries) }],
  [
    "audiodev",
    {
      value: true,
      vet: (v) =>
        vetRead(
          () => readJsonOr(v, () => readKeyval(v, "driver")),
          (e) => (["none", "wav"].includes(last(e, "driver") ?? "") ? undefined : "only the none and wav audio backends are accepted (others reach sound servers)"),
        ),
    },
  ],
]);
