// GDB remote serial protocol codec: framing, encoding and packet parsers, free of any transport.
export { RspFramer, createFramer } from "./framer";
export type { FrameEvent, FramerOptions } from "./framer";
export {
  ACK,
  INTERRUPT,
  NACK,
  checksum,
  encodeNotification,
  encodePacket,
  escapeBinary,
  escapedLength,
  fitEscaped,
  needsEscape,
  unescapeBinary,
} from "./encode";
export type { EncodeOptions } from "./encode";
export {
  bigintToLeBytes,
  bigintToLeHex,
  bytesToHex,
  bytesToLatin1,
  formatHex,
  hexDigit,
  hexToBytes,
  hexToText,
  latin1ToBytes,
  leBytesToBigint,
  leHexToBigint,
  parseHexInt,
  parseHexNumber,
  textToHex,
} from "./hex";
export {
  ChecksumMismatch,
  MalformedChecksum,
  MalformedEscape,
  MalformedRle,
  PacketTooLarge,
  RspFrameError,
  RspParseError,
  UnterminatedPacket,
} from "./errors";
export type { RspFrameErrorKind } from "./errors";
export { formatStopReply, isStopReply, parseStopReply } from "./stop-reply";
export type { StopReason, StopReply } from "./stop-reply";
export { formatThreadId, formatThreadList, parseThreadId, parseThreadList, sameThread } from "./thread-id";
export type { ThreadId, ThreadIdPart, ThreadListReply } from "./thread-id";
export { formatSupported, packetSizeOf, parseSupported, parseVContActions } from "./supported";
export type { FeatureValue } from "./supported";
export {
  formatErrorReply,
  formatXferRead,
  isConsoleOutput,
  parseConsoleOutput,
  parseErrorReply,
  parseXferReply,
} from "./replies";
export type { ErrorReply, XferChunk } from "./replies";
export { buildTargetDescription, loadTargetDescription, parseTargetXml } from "./target-description";
export type {
  RawRegister,
  TargetDescription,
  TargetFeature,
  TargetRegister,
  TargetXmlDocument,
  TargetXmlItem,
} from "./target-description";
