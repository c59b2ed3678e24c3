// GDB remote-protocol bridge: serves gdb on loopback and drives a VM through the client SDK.
export { createGdbBridge, isLoopbackHost } from "./bridge";
export type { GdbBridge, GdbBridgeOptions } from "./bridge";
export { PACKET_SIZE, serveGdbConnection } from "./connection";
export type { ConnectionOptions } from "./connection";
export { gdbCommand } from "./command";
export { X86_REGISTERS, X86_REGISTER_FILE, x86TargetXml } from "./x86-registers";
export { AARCH64_REGISTERS, AARCH64_REGISTER_FILE } from "./aarch64-registers";
export type { GdbRegister, RegisterFile } from "./registers";
export { hexdump } from "./monitor";
