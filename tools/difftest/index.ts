// The differential test harness (npm run difftest): the C corpus on the embedded machine and QEMU.
export { qemuAvailable, startEmu, startQemu } from "./backends";
export type { Backend } from "./backends";
export { runToCompletion, describeRun, isFinalLine } from "./completion";
export type { CompletionRun } from "./completion";
export { corpusNames, loadCorpusGuest, selectGuests, symbolize } from "./corpus";
export type { CorpusGuest } from "./corpus";
export { diffGuest, compareCompletion } from "./difftest";
export type { GuestOptions, GuestResult } from "./difftest";
export { ImageDecoder } from "./disasm";
export { KnownDifferences } from "./known";
export { Lockstep } from "./lockstep";
export type { Divergence, LockstepOptions, LockstepResult } from "./lockstep";
