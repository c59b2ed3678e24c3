// The QEMU argument allowlist: what it refuses (with the option named), what it accepts, how it
// reads QEMU's option syntax, and — against a real QEMU — that accepted endpoints are loopback.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isLoopbackHost, readJsonObject, readKeyval, readQemuOpts } from "../../../src/qemu/argument-policy";
import { QemuArgumentError, checkUserArguments, hasExecutable } from "../../../src/qemu/launch";
import { qemuArgsForGuest } from "../../../src/qemu/guest-args";

const GUESTS = join(__dirname, "../../../guests/build");

/** The error checkUserArguments throws for `args` (fails the test if it throws none). */
function refusal(args: string[]): QemuArgumentError {
  try {
    checkUserArguments(args);
  } catch (e) {
    expect(e).toBeInstanceOf(QemuArgumentError);
    return e as QemuArgumentError;
  }
  throw new Error(`${JSON.stringify(args)} was accepted`);
}

/** [what, args, why (matched against the message)]; the refused option is the first argument. */
type Refused = [string, string[], RegExp];

const BYPASSES_OF_THE_OLD_DENYLIST: Refused[] = [
  ["a socket netdev listening on every interface (empty host)", ["-netdev", "socket,id=n,listen=:1234"], /listen= host is empty, which means every interface/],
  ["a stream netdev on 0.0.0.0", ["-netdev", "stream,id=n,server=on,addr.type=inet,addr.host=0.0.0.0,addr.port=1234"], /addr.host 0.0.0.0 is not loopback/],
  ["VNC through -display", ["-display", "vnc=0.0.0.0:0"], /VNC listens on the network/],
  ["a legacy tcp: serial whose later host= overrides the loopback one", ["-serial", "tcp:127.0.0.1:5555,server=on,wait=off,host=0.0.0.0"], /host 0.0.0.0 is not loopback/],
  ["a fake host=127.0.0.1 inside another value", ["-chardev", "socket,id=c,host=0.0.0.0,port=5000,server=on,logfile=/tmp/host=127.0.0.1"], /host 0.0.0.0/],
  ["a fake host=127.0.0.1 behind an escaped comma", ["-chardev", "socket,id=c,host=0.0.0.0,port=5000,server=on,logfile=/tmp/x,,host=127.0.0.1"], /host 0.0.0.0/],
  ["a real host= after an escaped comma in path", ["-chardev", "socket,id=c,path=/tmp/a,,b,host=0.0.0.0,port=5000,server=on"], /host 0.0.0.0/],
  ["a second host= (QEMU takes the last)", ["-chardev", "socket,id=c,host=127.0.0.1,host=0.0.0.0,port=5000,server=on"], /host 0.0.0.0/],
  ["a socket chardev connecting off the machine", ["-chardev", "socket,id=c,host=192.0.2.1,port=5000"], /host 192.0.2.1 is not loopback/],
  ["a UDP chardev to another host", ["-chardev", "udp,id=c,host=192.0.2.1,port=9"], /host 192.0.2.1/],
  ["telnet through -serial on 0.0.0.0", ["-serial", "telnet:0.0.0.0:4444,server=on,wait=off"], /host 0.0.0.0/],
  ["websocket through -serial to another host", ["-serial", "websocket:192.0.2.1:80"], /host 192.0.2.1/],
  ["a hostfwd whose second rule has no host address", ["-netdev", "user,id=n,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp::2223-:22"], /no host address, which means every interface/],
  ["--monitor (double dash)", ["--monitor", "tcp:0.0.0.0:4444,server=on"], /monitor/],
  ["an incoming migration waiting for a monitor", ["-incoming", "defer"], /migration/],
];

const CHARDEVS: Refused[] = [
  ["a socket chardev with no host (QEMU would not bind loopback)", ["-chardev", "socket,id=c,port=5000,server=on"], /needs path= \(unix\) or a loopback host=/],
  ["a socket chardev with an empty host", ["-chardev", "socket,id=c,host=,port=5000,server=on"], /host is empty, which means every interface/],
  ["host 0 (INADDR_ANY to getaddrinfo)", ["-chardev", "socket,id=c,host=0,port=5000,server=on"], /host 0 is not loopback/],
  ["host 127.1 (only the plain dotted form is accepted)", ["-chardev", "socket,id=c,host=127.1,port=5000,server=on"], /host 127.1 is not loopback/],
  ["a socket chardev given a file descriptor", ["-chardev", "socket,id=c,fd=3"], /fd= passes QEMU a file descriptor/],
  ["a UDP chardev bound on every interface", ["-chardev", "udp,id=c,port=9,localport=7000"], /binds every interface/],
  ["a UDP chardev bound on another address", ["-chardev", "udp,id=c,port=9,localaddr=192.0.2.1,localport=7000"], /localaddr 192.0.2.1/],
  ["a host serial line", ["-chardev", "serial,id=c,path=/dev/ttyS0"], /host serial line/],
  ["a SPICE channel", ["-chardev", "spicevmc,id=c,name=vdagent"], /SPICE/],
  ["an unknown backend", ["-chardev", "bogus,id=c"], /"bogus" is not a chardev backend/],
  ["an escaped comma in the backend name", ["-chardev", "socket,,host=0.0.0.0,id=c"], /"socket,host=0.0.0.0" is not a chardev backend/],
  ["tcp: with an empty host in -serial", ["-serial", "tcp::5555,server"], /host is empty/],
  ["udp: bound on every interface in -serial", ["-serial", "udp::9@:7000"], /binds every interface/],
  ["udp: to another host in -serial", ["-serial", "udp:192.0.2.1:9"], /host 192.0.2.1/],
  ["unix: with a host= in -serial", ["-serial", "unix:/tmp/s.sock,host=0.0.0.0,port=1"], /host 0.0.0.0/],
  ["a monitor muxed onto stdio", ["-serial", "mon:stdio"], /mon: puts a QEMU monitor on it/],
  ["a monitor muxed onto a loopback socket", ["-serial", "mon:tcp:127.0.0.1:4444,server=on,wait=off"], /mon:/],
  ["a host tty in -serial", ["-serial", "/dev/ttyS0"], /host serial line/],
  ["a host parallel port", ["-parallel", "/dev/parport0"], /parallel port/],
  ["tcp: in -parallel", ["-parallel", "tcp::5555,server=on"], /host is empty/],
  ["telnet: in -debugcon", ["-debugcon", "telnet:0.0.0.0:4444,server=on"], /host 0.0.0.0/],
  ["a string QEMU does not know", ["-serial", "bogus"], /cannot read it as QEMU would/],
];

const MONITORS_AND_OURS: Refused[] = [
  ["a monitor on stdio", ["-monitor", "stdio"], /vmm-debug owns the monitor/],
  ["a monitor on a unix socket", ["-monitor", "unix:/tmp/m.sock,server=on,wait=off"], /vmm-debug owns the monitor/],
  ["-mon", ["-mon", "chardev=c,mode=control"], /vmm-debug owns the monitor/],
  ["-qmp", ["-qmp", "unix:/tmp/q.sock,server=on,wait=off"], /its own QMP/],
  ["-qmp-pretty", ["-qmp-pretty", "tcp:127.0.0.1:4444,server=on"], /its own QMP/],
  ["-gdb on a loopback port", ["-gdb", "tcp:127.0.0.1:1234"], /its own gdbstub/],
  ["-gdb on a unix socket", ["-gdb", "unix:/tmp/g.sock,server=on"], /its own gdbstub/],
  ["-s", ["-s"], /its own gdbstub/],
  ["-S", ["-S"], /starts QEMU stopped itself/],
  ["-daemonize", ["-daemonize"], /QEMU never outlives it/],
  ["-pidfile", ["-pidfile", "/tmp/q.pid"], /sets QEMU's -pidfile itself/],
  ["-runas", ["-runas", "nobody"], /as its own user/],
  ["-chroot", ["-chroot", "/var/empty"], /reaching QEMU's sockets/],
  ["-readconfig", ["-readconfig", "/tmp/q.cfg"], /cannot be vetted/],
  ["-writeconfig", ["-writeconfig", "/tmp/q.cfg"], /writes QEMU's configuration/],
  ["-add-fd", ["-add-fd", "fd=3,set=1"], /no file descriptors/],
  ["-set (edits options after vetting)", ["-set", "chardev.c.host=0.0.0.0"], /after they have been vetted/],
  ["a TCG plugin", ["-plugin", "/tmp/libinsn.so"], /arbitrary code/],
  ["-semihosting", ["-semihosting"], /run host commands/],
  ["-semihosting-config switched on", ["-semihosting-config", "enable=on,target=native"], /run host commands/],
  ["-semihosting-config (on by default)", ["-semihosting-config", "target=native"], /run host commands/],
  ["-enable-kvm", ["-enable-kvm"], /only TCG/],
  ["-accel kvm", ["-accel", "kvm"], /accelerator kvm: only TCG/],
  ["-accel with a fallback list", ["-accel", "kvm:tcg"], /only TCG/],
  ["-machine accel=kvm", ["-machine", "q35,accel=kvm"], /only TCG/],
  ["-qtest", ["-qtest", "unix:/tmp/qt.sock"], /test-control/],
  ["-preconfig", ["-preconfig"], /QMP commands/],
  ["-mem-path (fights our RAM backend)", ["-mem-path", "/dev/hugepages"], /memory-backend-file/],
  ["-iscsi", ["-iscsi", "initiator-name=iqn.x"], /network/],
];

const MIGRATION_AND_DISPLAYS: Refused[] = [
  ["-incoming tcp", ["-incoming", "tcp:0:4444"], /migration/],
  ["-incoming on loopback", ["-incoming", "tcp:127.0.0.1:4444"], /migration/],
  ["-incoming unix", ["-incoming", "unix:/tmp/mig.sock"], /migration/],
  ["-incoming exec (runs a command)", ["-incoming", "exec:cat /tmp/state"], /runs a command/],
  ["SPICE, even on loopback", ["-spice", "port=5900,addr=127.0.0.1"], /SPICE/],
  ["SPICE on a unix socket", ["-spice", "unix=on,addr=/tmp/spice.sock"], /SPICE/],
  ["-vnc :0", ["-vnc", ":0"], /VNC listens on the network/],
  ["-vnc on loopback", ["-vnc", "127.0.0.1:0"], /VNC/],
  ["-vnc on a unix socket", ["-vnc", "unix:/tmp/vnc.sock"], /VNC/],
  ["-vnc with websockets", ["-vnc", "0.0.0.0:0,websocket=on"], /VNC/],
  ["-display vnc on loopback", ["-display", "vnc=127.0.0.1:0"], /VNC/],
  ["-display vnc without an address", ["-display", "vnc"], /VNC/],
  ["-display spice-app", ["-display", "spice-app"], /SPICE server and launches a viewer/],
  ["-display dbus", ["-display", "dbus,p2p=yes"], /D-Bus/],
  ["-display gtk", ["-display", "gtk"], /headless/],
  ["-display sdl", ["-display", "sdl,gl=off"], /headless/],
  ["-display curses", ["-display", "curses"], /guest console/],
  ["-display gtk as JSON", ["-display", '{"type":"gtk"}'], /headless/],
];

const NETWORKS: Refused[] = [
  ["a socket netdev on 0.0.0.0", ["-netdev", "socket,id=n,listen=0.0.0.0:1234"], /listen= host 0.0.0.0 is not loopback/],
  ["a socket netdev connecting off the machine", ["-netdev", "socket,id=n,connect=192.0.2.1:1234"], /connect= host 192.0.2.1/],
  ["a multicast socket netdev", ["-netdev", "socket,id=n,mcast=230.0.0.1:1234"], /multicast/],
  ["a multicast socket netdev on the loopback interface", ["-netdev", "socket,id=n,mcast=230.0.0.1:1234,localaddr=127.0.0.1"], /multicast/],
  ["a UDP socket netdev to another host", ["-netdev", "socket,id=n,udp=192.0.2.1:1234,localaddr=127.0.0.1:1235"], /udp= host 192.0.2.1/],
  ["a UDP socket netdev bound on every interface", ["-netdev", "socket,id=n,udp=127.0.0.1:1234,localaddr=:1235"], /localaddr= host is empty/],
  ["a socket netdev given a file descriptor", ["-netdev", "socket,id=n,fd=3"], /file descriptor/],
  ["a stream netdev with an empty host", ["-netdev", "stream,id=n,server=on,addr.type=inet,addr.host=,addr.port=1234"], /addr.host is empty/],
  ["a stream netdev whose second addr.host is 0.0.0.0", ["-netdev", "stream,id=n,addr.type=inet,addr.host=127.0.0.1,addr.port=1,addr.host=0.0.0.0"], /addr.host 0.0.0.0/],
  ["a stream netdev on a file descriptor", ["-netdev", "stream,id=n,addr.type=fd,addr.str=3"], /file descriptor/],
  ["a stream netdev on vsock", ["-netdev", "stream,id=n,addr.type=vsock,addr.cid=2,addr.port=1234"], /vsock/],
  ["a stream netdev as JSON on 0.0.0.0", ["-netdev", '{"type":"stream","id":"n","server":true,"addr":{"type":"inet","host":"0.0.0.0","port":"1234"}}'], /addr.host 0.0.0.0/],
  ["a stream netdev as single-quoted JSON", ["-netdev", "{'type':'stream','id':'n','server':true,'addr':{'type':'inet','host':'0.0.0.0','port':'1234'}}"], /addr.host 0.0.0.0/],
  ["JSON with a repeated key (QEMU refuses it; so do we)", ["-netdev", '{"type":"stream","id":"n","addr":{"type":"inet","host":"0.0.0.0","host":"127.0.0.1","port":"1"}}'], /duplicate key "host"/],
  ["JSON with trailing text", ["-netdev", '{"type":"user","id":"n"} x'], /trailing text/],
  ["a dgram netdev bound on 0.0.0.0", ["-netdev", "dgram,id=n,local.type=inet,local.host=0.0.0.0,local.port=1234"], /local.host 0.0.0.0/],
  ["a dgram netdev to a multicast group", ["-netdev", "dgram,id=n,remote.type=inet,remote.host=230.0.0.1,remote.port=1234"], /remote.host 230.0.0.1/],
  ["a dgram netdev to another host", ["-netdev", "dgram,id=n,local.type=inet,local.host=127.0.0.1,local.port=1,remote.type=inet,remote.host=192.0.2.1,remote.port=2"], /remote.host 192.0.2.1/],
  ["hostfwd with an empty host address", ["-netdev", "user,id=n,hostfwd=tcp::2222-:22"], /no host address, which means every interface/],
  ["hostfwd on 0.0.0.0", ["-netdev", "user,id=n,hostfwd=tcp:0.0.0.0:2222-:22"], /listens on 0.0.0.0/],
  ["hostfwd on another address", ["-netdev", "user,id=n,hostfwd=udp:192.0.2.1:53-:53"], /listens on 192.0.2.1/],
  ["hostfwd in JSON with no host address", ["-netdev", '{"type":"user","id":"n","hostfwd":[{"str":"tcp::2222-:22"}]}'], /every interface/],
  ["guestfwd to a command", ["-netdev", "user,id=n,guestfwd=tcp:10.0.2.100:1234-cmd:netcat 192.0.2.1 80"], /runs a host command/],
  ["guestfwd to a listener on 0.0.0.0", ["-netdev", "user,id=n,guestfwd=tcp:10.0.2.100:1234-tcp:0.0.0.0:4321,,server=on"], /host 0.0.0.0/],
  ["guestfwd to a monitor", ["-netdev", "user,id=n,guestfwd=tcp:10.0.2.100:1234-mon:stdio"], /monitor/],
  ["slirp's smb= (runs smbd)", ["-netdev", "user,id=n,smb=/tmp"], /smbd/],
  ["tap", ["-netdev", "tap,id=n,ifname=tap0,script=/tmp/up"], /host network privileges/],
  ["bridge", ["-netdev", "bridge,id=n,br=br0"], /bridge-helper/],
  ["l2tpv3", ["-netdev", "l2tpv3,id=n,src=127.0.0.1,dst=192.0.2.1"], /another host/],
  ["vde", ["-netdev", "vde,id=n,sock=/tmp/vde"], /VDE switch/],
  ["vhost-user", ["-netdev", "vhost-user,id=n,chardev=c"], /another process/],
  ["vhost-vdpa", ["-netdev", "vhost-vdpa,id=n,vhostdev=/dev/vhost-vdpa-0"], /host network device/],
  ["an unknown netdev type", ["-netdev", "bogus,id=n"], /"bogus" is not a network backend/],
  ["-nic with a forward on every interface", ["-nic", "user,model=virtio-net-pci,hostfwd=tcp::2222-:22"], /every interface/],
  ["-nic tap", ["-nic", "tap,ifname=tap0"], /privileges/],
  ["-net user with a forward on every interface", ["-net", "user,hostfwd=tcp::2222-:22"], /every interface/],
  ["-net socket on every interface", ["-net", "socket,listen=:1234"], /every interface/],
];

const STORAGE_DEVICES_OBJECTS: Refused[] = [
  ["an NBD URL in -drive", ["-drive", "file=nbd://192.0.2.1/disk,format=raw"], /"nbd:" is not a local file/],
  ["an NBD legacy name in -drive", ["-drive", "file=nbd:0.0.0.0:10809"], /"nbd:" is not a local file/],
  ["an HTTP image", ["-drive", "file=http://192.0.2.1/disk.img"], /"http:" is not a local file/],
  ["the nbd driver in -drive", ["-drive", "driver=nbd,server.type=inet,server.host=192.0.2.1,server.port=10809"], /block driver "nbd"/],
  ["a nested nbd driver in -drive", ["-drive", "driver=qcow2,file.driver=nbd,file.server.type=inet,file.server.host=192.0.2.1"], /block driver "nbd"/],
  ["a json: image with an nbd driver (commas escaped)", ["-drive", 'file=json:{"driver":"nbd",,"server":{"type":"inet",,"host":"192.0.2.1",,"port":"10809"}}'], /block driver "nbd"/],
  ["a json: image whose commas are not escaped (QEMU cannot read it either)", ["-drive", 'file=json:{"driver":"nbd","server":{"type":"inet"}}'], /cannot read it as QEMU would/],
  ["a json: image with a nested NBD file name", ["-drive", 'file=json:{"driver":"qcow2",,"file":{"filename":"nbd://192.0.2.1/d"}}'], /"nbd:" is not a local file/],
  ["an ssh format in -drive", ["-drive", "file=/tmp/d.img,format=ssh"], /block driver "ssh"/],
  ["-blockdev nbd", ["-blockdev", "driver=nbd,node-name=n,server.type=inet,server.host=192.0.2.1,server.port=10809"], /block driver "nbd"/],
  ["-blockdev JSON with a nested http file", ["-blockdev", '{"driver":"qcow2","node-name":"q","file":{"driver":"http","url":"http://192.0.2.1/d"}}'], /block driver "http"/],
  ["-hda on NBD", ["-hda", "nbd:192.0.2.1:10809"], /not a local file/],
  ["-cdrom over HTTP", ["-cdrom", "http://192.0.2.1/x.iso"], /not a local file/],
  ["a device type that connects out by itself", ["-device", "x-pci-proxy-dev,fd=4"], /x-pci-proxy-dev/],
  ["a device given a vhost file descriptor", ["-device", "virtio-net-pci,netdev=n,vhostfd=3"], /vhostfd= passes QEMU a file descriptor/],
  ["a JSON device given a file descriptor", ["-device", '{"driver":"vhost-vsock-pci","vhostfd":"3"}'], /vhostfd=/],
  ["-global setting a file descriptor", ["-global", "virtio-net-pci.vhostfd=3"], /vhostfd=/],
  ["-global in long form on a refused device", ["-global", "driver=x-pci-proxy-dev,property=fd,value=3"], /x-pci-proxy-dev/],
  ["a host input device object", ["-object", "input-linux,id=i,evdev=/dev/input/event0"], /host input device/],
  ["a D-Bus vmstate object", ["-object", "dbus-vmstate,id=d,addr=tcp:host=0.0.0.0"], /D-Bus address/],
  ["a remote-device object as JSON", ["-object", '{"qom-type":"x-remote-object","id":"r","fd":"4","devid":"d"}'], /serves a device/],
  ["an unknown object type", ["-object", "bogus,id=b"], /"bogus" is not one vmm-debug has vetted/],
  ["a PulseAudio server on the network", ["-audiodev", "pa,id=a,server=tcp:192.0.2.1"], /audio backends/],
  ["the proxy fsdev driver", ["-fsdev", "proxy,id=f,socket=/tmp/p.sock"], /proxy talks to a helper/],
  ["a local virtfs given a socket descriptor", ["-virtfs", "local,path=/tmp,mount_tag=t,security_model=none,sock_fd=3"], /sock_fd=/],
];

const OPTION_NAMES: Refused[] = [
  ["--netdev with a bypass", ["--netdev", "socket,id=n,listen=:1234"], /every interface/],
  ["--netdev=VALUE (QEMU has no such form)", ["--netdev=socket,id=n,listen=:1234"], /no -netdev=VALUE form/],
  ["-display=none (QEMU has no such form)", ["-display=none"], /no -display=VALUE form/],
  ["three dashes", ["---gdb", "tcp::1234"], /not among the QEMU options vmm-debug has vetted/],
  ["a bare dash", ["-"], /not among/],
  ["an unknown option", ["-no-such-option"], /not among/],
  ["an option named after an Object property", ["-constructor"], /not among/],
  ["__proto__", ["-__proto__"], /not among/],
  ["toString", ["--toString"], /not among/],
  ["a bare argument QEMU would open as an NBD disk", ["nbd:192.0.2.1:10809"], /\(a disk image\) is not allowed/],
];

describe("QEMU argument allowlist", () => {
  describe.each([
    ["bypasses of the old denylist", BYPASSES_OF_THE_OLD_DENYLIST],
    ["character devices", CHARDEVS],
    ["monitors and what vmm-debug owns", MONITORS_AND_OURS],
    ["migration and displays", MIGRATION_AND_DISPLAYS],
    ["networks", NETWORKS],
    ["storage, devices and objects", STORAGE_DEVICES_OBJECTS],
    ["option names", OPTION_NAMES],
  ])("refuses %s", (_group, cases) => {
    it.each(cases)("refuses %s, naming the option", (_what, args, why) => {
      const err = refusal(args);
      expect(err.option).toBe(args[0]);
      expect(err.message).toContain(`QEMU argument ${args[0]}`);
      expect(err.message).toMatch(why);
    });
  });

  it("refuses an option that needs a value and has none", () => {
    const err = refusal(["-machine", "q35", "-m"]);
    expect(err.option).toBe("-m");
    expect(err.message).toBe("QEMU argument -m needs a value");
  });

  it("refuses at the first bad argument, after accepted ones", () => {
    expect(refusal(["-machine", "q35", "-nodefaults", "-vnc", ":1"]).option).toBe("-vnc");
  });

  const ACCEPTED: [string, string[]][] = [
    ["the launch test's arguments", ["-machine", "q35", "-m", "32", "-display", "none", "-nodefaults"]],
    ["the README's example", ["-machine", "q35", "-cpu", "max", "-m", "256M", "-kernel", "path/to/kernel.bin"]],
    ["double-dash option names", ["--machine", "q35", "--nodefaults", "--display", "none"]],
    ["machine, CPU and boot options", ["-M", "virt", "-cpu", "cortex-a57", "-smp", "2", "-m", "size=256M", "-kernel", "/tmp/k", "-initrd", "/tmp/i", "-dtb", "/tmp/d.dtb", "-bios", "/tmp/b.bin", "-L", "/usr/share/qemu"]],
    ["a kernel command line that reads like options", ["-append", "console=ttyS0 -gdb tcp::1234 -incoming defer"]],
    ["run control and clocks", ["-no-reboot", "-no-shutdown", "-rtc", "base=utc,clock=vm", "-boot", "order=c", "-name", "guest,debug-threads=on", "-icount", "shift=0,align=off,sleep=off"]],
    ["TCG", ["-accel", "tcg,thread=single", "-machine", "q35,accel=tcg"]],
    ["logging and tracing", ["-d", "int,cpu_reset", "-D", "/tmp/q.log", "-trace", "events=/tmp/ev"]],
    ["semihosting switched off", ["-semihosting-config", "enable=off"]],
    ["-sandbox", ["-sandbox", "on,spawn=deny"]],
    ["-display none as JSON, -nographic, -vnc none, -monitor none", ["-display", '{"type":"none"}', "-nographic", "-vnc", "none", "-monitor", "none"]],
    ["serial ports on loopback, unix and local backends", ["-serial", "tcp:127.0.0.1:5555,server=on,wait=off", "-serial", "tcp:localhost:5556,server", "-serial", "telnet:127.0.0.1:4444,server=on,wait=off", "-serial", "unix:/tmp/s.sock,server=on,wait=off"]],
    ["serial ports on stdio, files, ptys, chardevs, UDP on loopback", ["-serial", "stdio", "-serial", "none", "-serial", "null", "-serial", "file:/tmp/serial.log", "-serial", "pty", "-serial", "chardev:console", "-serial", "udp:127.0.0.1:9", "-serial", "udp::9", "-serial", "udp:127.0.0.1:9@127.0.0.1:7000", "-serial", "vc:80Cx24C"]],
    ["-parallel none and -debugcon to a file", ["-parallel", "none", "-debugcon", "file:/tmp/debugcon.log"]],
    ["socket chardevs on unix and loopback", ["-chardev", "socket,id=a,path=/tmp/x.sock,server=on", "-chardev", "socket,id=b,host=127.0.0.1,port=5000,server=on,wait=off", "-chardev", "socket,id=c,host=::1,port=5001,server=on,wait=off,ipv6=on", "-chardev", "socket,id=d,host=localhost,port=5002", "-chardev", "socket,id=e,host=127.0.0.1,port=5003,server=on,telnet=on", "-chardev", "socket,id=f,host=127.0.0.1,port=5004,server=on,websocket=on", "-chardev", "socket,id=g,path=x,abstract=on"]],
    ["a unix socket whose name contains ',host=0.0.0.0' (escaped comma)", ["-chardev", "socket,id=c,path=/tmp/a,,host=0.0.0.0,server=on"]],
    ["a loopback socket whose log file name contains 'host=0.0.0.0'", ["-chardev", "socket,id=c,host=127.0.0.1,port=5000,logfile=/tmp/x,,host=0.0.0.0"]],
    ["local chardevs", ["-chardev", "stdio,id=a", "-chardev", "file,id=b,path=/tmp/log", "-chardev", "ringbuf,id=c,size=64K", "-chardev", "null,id=d", "-chardev", "pty,id=e", "-chardev", "udp,id=f,host=127.0.0.1,port=9,localaddr=127.0.0.1,localport=7000"]],
    ["user networking with loopback forwards", ["-netdev", "user,id=a", "-netdev", "user,id=b,hostfwd=tcp:127.0.0.1:2222-:22", "-netdev", "user,id=c,hostfwd=udp:127.0.0.2:5353-:53,hostfwd=:127.0.0.1:2223-:22,restrict=on"]],
    ["guestfwd to a loopback port or a chardev", ["-netdev", "user,id=n,guestfwd=tcp:10.0.2.100:1234-tcp:127.0.0.1:4321", "-netdev", "user,id=m,guestfwd=tcp:10.0.2.101:1234-chardev:c"]],
    ["socket netdevs on loopback", ["-netdev", "socket,id=a,listen=127.0.0.1:1234", "-netdev", "socket,id=b,connect=localhost:1234", "-netdev", "socket,id=c,udp=127.0.0.1:1234,localaddr=127.0.0.1:1235"]],
    ["stream and dgram netdevs on loopback and unix", ["-netdev", "stream,id=a,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=1234", "-netdev", "stream,id=b,server=off,addr.type=unix,addr.path=/tmp/n.sock", "-netdev", "dgram,id=c,local.type=inet,local.host=127.0.0.1,local.port=1234,remote.type=inet,remote.host=127.0.0.1,remote.port=1235", "-netdev", "dgram,id=d,local.type=unix,local.path=/tmp/a,remote.type=unix,remote.path=/tmp/b"]],
    ["netdevs as JSON", ["-netdev", '{"type":"stream","id":"a","server":true,"addr":{"type":"inet","host":"127.0.0.1","port":"1234"}}', "-netdev", '{"type":"user","id":"b","hostfwd":[{"str":"tcp:127.0.0.1:2222-:22"}]}', "-netdev", "{'type':'stream','id':'c','addr':{'type':'unix','path':'/tmp/s'}}"]],
    ["hubports, -nic and -net", ["-netdev", "hubport,id=h,hubid=0", "-nic", "none", "-nic", "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:2222-:22", "-net", "nic,model=e1000", "-net", "user,hostfwd=tcp:127.0.0.1:2223-:22", "-net", "none"]],
    ["local disks", ["-drive", "file=/tmp/disk.qcow2,if=virtio,format=qcow2", "-drive", "file=disk.img,format=raw,if=none,id=d", "-drive", "file=fat:rw:/tmp/share,format=raw", "-drive", 'file=json:{"driver":"qcow2",,"file":{"driver":"file",,"filename":"/tmp/d.qcow2"}}', "-hda", "/tmp/disk.img", "-cdrom", "/tmp/x.iso", "-snapshot"]],
    ["-blockdev on local files", ["-blockdev", "driver=file,node-name=f,filename=/tmp/d.qcow2", "-blockdev", "driver=qcow2,node-name=q,file=f", "-blockdev", '{"driver":"qcow2","node-name":"r","file":{"driver":"file","filename":"/tmp/e.qcow2"}}']],
    ["bare disk images, with a colon after a slash", ["/tmp/disk.img", "./nbd:not-a-protocol.img"]],
    ["devices, globals and objects", ["-device", "virtio-net-pci,netdev=n", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-device", '{"driver":"isa-debugcon","iobase":233,"chardev":"console"}', "-global", "isa-debugcon.iobase=0xe9", "-object", "memory-backend-ram,id=ram0,size=256M", "-object", '{"qom-type":"memory-backend-file","id":"m","size":1048576,"mem-path":"/tmp/m","share":true}', "-object", "rng-random,id=rng0,filename=/dev/urandom", "-object", "iothread,id=io0"]],
    ["audio to nowhere or a file, and a local 9p share", ["-audiodev", "none,id=a", "-audiodev", "wav,id=b,path=/tmp/a.wav", "-fsdev", "local,id=f,path=/tmp,security_model=none", "-virtfs", "local,path=/tmp,mount_tag=t,security_model=none"]],
  ];

  it.each(ACCEPTED)("accepts %s", (_what, args) => {
    expect(() => checkUserArguments(args)).not.toThrow();
  });

  it.each(["x86_64", "aarch64"])("accepts the %s demo guest's arguments, with and without -smp", (arch) => {
    const manifest = join(GUESTS, `demo-${arch}.json`);
    expect(() => checkUserArguments(qemuArgsForGuest(manifest).args)).not.toThrow();
    expect(() => checkUserArguments(qemuArgsForGuest(manifest, 4).args)).not.toThrow();
  });
});

describe("reading QEMU's option syntax", () => {
  it("reads QemuOpts with an implied first key, escaped commas, flags and no-flags", () => {
    expect(readQemuOpts("socket,id=c,path=/tmp/a,,host=0.0.0.0,server,nowait", "backend")).toEqual([
      ["backend", "socket"],
      ["id", "c"],
      ["path", "/tmp/a,host=0.0.0.0"],
      ["server", "on"],
      ["wait", "off"],
    ]);
    // The implied value honours ",," too; a flag-looking first element is the implied value.
    expect(readQemuOpts("socket,,host=0.0.0.0,id=c", "backend")).toEqual([
      ["backend", "socket,host=0.0.0.0"],
      ["id", "c"],
    ]);
    // Only values honour ",,": a flag's name ends at the first comma, as in QEMU's get_opt_name.
    expect(readQemuOpts("a,,")).toEqual([
      ["a", "on"],
      ["", "on"],
    ]);
  });

  it("reads keyval with dotted keys; the implied value is raw and a flag is an error", () => {
    expect(readKeyval("stream,addr.type=inet,addr.host=127.0.0.1,x=a,,b", "type")).toEqual([
      ["type", "stream"],
      ["addr.type", "inet"],
      ["addr.host", "127.0.0.1"],
      ["x", "a,b"],
    ]);
    expect(() => readKeyval("stream,server", "type")).toThrow(/expected "="/);
    expect(() => readKeyval("stream,,x=1", "type")).toThrow(/invalid parameter/);
  });

  it("reads QEMU's JSON (single quotes too) into dotted keys, and refuses repeated keys", () => {
    expect(readJsonObject(`{"a":{"b":[{'str':'x'},2]},"c":true,"d":null}`)).toEqual([
      ["a.b.0.str", "x"],
      ["a.b.1", "2"],
      ["c", "true"],
      ["d", "null"],
    ]);
    expect(() => readJsonObject('{"a":1,"a":2}')).toThrow(/duplicate key "a"/);
    expect(() => readJsonObject('["a"]')).toThrow(/expected an object/);
  });

  it.each([
    ["127.0.0.1", true],
    ["127.255.0.9", true],
    ["::1", true],
    ["[::1]", true],
    ["localhost", true],
    ["0.0.0.0", false],
    ["0", false],
    ["127.1", false],
    ["127.0.0.01", false],
    ["127.0.0.256", false],
    ["::", false],
    ["::ffff:127.0.0.1", false],
    ["localhost.", false],
    ["", false],
  ] as const)("takes %j as loopback: %s", (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

// Differential check against the reference: QEMU itself, with each accepted endpoint form, must
// open sockets on loopback (or unix) only. Ports are 0, so nothing fixed is taken.
const hasQemu = hasExecutable("qemu-system-x86_64");
const describeIfQemu = hasQemu ? describe : describe.skip;

interface InetSocket {
  table: string;
  local: string;
  loopback: boolean;
}

/** QEMU's TCP listeners and UDP sockets, from /proc/<pid>/fd and /proc/<pid>/net. */
function inetSockets(pid: number): InetSocket[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((n) => {
      try {
        return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${n}`))?.[1] ?? ""];
      } catch {
        return [];
      }
    }),
  );
  return ["tcp", "tcp6", "udp", "udp6"].flatMap((table) =>
    readFileSync(`/proc/${pid}/net/${table}`, "utf8")
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f.length > 9 && inodes.has(f[9]) && (table.startsWith("udp") || f[3] === "0A"))
      .map((f) => {
        const address = f[1].split(":")[0];
        // IPv4 is one little-endian word (127.x ends in 7F); IPv6 ::1, or ::ffff:127.x.
        const loopback =
          address.length === 8 ? address.endsWith("7F") : address === "00000000000000000000000001000000" || /^0{16}FFFF0000[0-9A-F]{6}7F$/.test(address);
        return { table, local: f[1], loopback };
      }),
  );
}

describeIfQemu("accepted endpoints on a real QEMU", () => {
  let dir: string;
  let qemu: ChildProcess | undefined;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "vmm-debug-policy-"))));
  afterEach(async () => {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      const exited = new Promise((r) => qemu!.once("exit", r));
      qemu.kill("SIGKILL");
      await exited;
    }
    qemu = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts QEMU with `args` (after the policy accepts them) and waits until `ready` holds. */
  async function startQemu(args: string[], ready: (pid: number) => boolean): Promise<number> {
    checkUserArguments(args);
    let output = "";
    qemu = spawn("qemu-system-x86_64", ["-machine", "none", "-S", "-nodefaults", "-display", "none", "-monitor", "none", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    qemu.stdout!.on("data", (d) => (output += d));
    qemu.stderr!.on("data", (d) => (output += d));
    const pid = qemu.pid!;
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      if (qemu.exitCode !== null) throw new Error(`QEMU exited (${qemu.exitCode}): ${output}`);
      if (ready(pid)) return pid;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`QEMU with ${JSON.stringify(args)} opened no socket within 10 s: ${output}`);
  }

  it.each([
    ["-chardev", "socket,id=c,host=127.0.0.1,port=0,server=on,wait=off"],
    ["-chardev", "socket,id=c,host=localhost,port=0,server=on,wait=off"],
    ["-chardev", "socket,id=c,host=::1,port=0,server=on,wait=off"],
    ["-serial", "tcp:127.0.0.1:0,server=on,wait=off"],
    ["-serial", "telnet:localhost:0,server=on,wait=off"],
    ["-chardev", "udp,id=c,host=127.0.0.1,port=9,localaddr=127.0.0.1,localport=0"],
    ["-serial", "udp::9"],
    ["-netdev", "user,id=n,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=udp:127.0.0.2:0-:53"],
    ["-netdev", '{"type":"user","id":"n","hostfwd":[{"str":"tcp:127.0.0.1:0-:22"}]}'],
    ["-netdev", "socket,id=n,listen=127.0.0.1:0"],
    ["-netdev", "stream,id=n,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=0"],
    ["-netdev", "dgram,id=n,local.type=inet,local.host=127.0.0.1,local.port=0,remote.type=inet,remote.host=127.0.0.1,remote.port=9"],
  ])("QEMU given %s %s opens sockets on loopback only", async (option, value) => {
    const pid = await startQemu([option, value], (p) => inetSockets(p).length > 0);
    const sockets = inetSockets(pid);
    expect(sockets.filter((s) => !s.loopback)).toEqual([]);
  });

  it("QEMU reads path=/tmp/…/a,,host=0.0.0.0 as one unix socket name, as the policy does", async () => {
    const path = join(dir, "a,host=0.0.0.0");
    const pid = await startQemu(["-chardev", `socket,id=c,path=${join(dir, "a")},,host=0.0.0.0,server=on,wait=off`], () => existsSync(path));
    expect(inetSockets(pid)).toEqual([]);
  });
});
