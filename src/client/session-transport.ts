// What a Session needs from its transport (internal): the Session stream or unary RPCs behind one interface.
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type * as ds from "../../gen/vmm/debug/v1/debug_service_pb";
import type { CallOptions, DebugStopReason, PartialRead, SessionStop, Transport } from "./types";

/**
 * The operations that are one request and one answer on both transports, by the names the unary
 * methods and the stream's oneof share; each with its request schema and its response.
 */
export interface Operations {
  break: [typeof ds.BreakRequestSchema, ds.BreakResponse];
  setDebugState: [typeof ds.SetDebugStateRequestSchema, ds.SetDebugStateResponse];
  getVpState: [typeof ds.GetVpStateRequestSchema, ds.GetVpStateResponse];
  setVpState: [typeof ds.SetVpStateRequestSchema, ds.SetVpStateResponse];
  readMemory: [typeof ds.ReadMemoryRequestSchema, ds.ReadMemoryResponse];
  writeMemory: [typeof ds.WriteMemoryRequestSchema, ds.WriteMemoryResponse];
  step: [typeof ds.StepRequestSchema, ds.StepResponse];
  readMemoryMany: [typeof ds.ReadMemoryManyRequestSchema, ds.ReadMemoryManyResponse];
  getVpStates: [typeof ds.GetVpStatesRequestSchema, ds.GetVpStatesResponse];
  insertSoftwareBreakpoint: [typeof ds.InsertSoftwareBreakpointRequestSchema, ds.InsertSoftwareBreakpointResponse];
  removeSoftwareBreakpoint: [typeof ds.RemoveSoftwareBreakpointRequestSchema, ds.RemoveSoftwareBreakpointResponse];
  listSoftwareBreakpoints: [typeof ds.ListSoftwareBreakpointsRequestSchema, ds.ListSoftwareBreakpointsResponse];
  translateGva: [typeof ds.TranslateGvaRequestSchema, ds.TranslateGvaResponse];
}
export type OperationName = keyof Operations;

/** A request without `vm` and `session_id`: the transport fills them in (or, on the stream, leaves them empty). */
export type OperationRequest<K extends OperationName> = Omit<
  MessageInitShape<Operations[K][0] & DescMessage>,
  "vm" | "sessionId" | "$typeName"
>;
export type OperationResponse<K extends OperationName> = Operations[K][1];

export interface SessionTransport {
  readonly kind: Transport;
  /** The VM's id. */
  readonly vm: string;
  /** The session id. */
  readonly id: string;
  /** Lease in ms (0 on the stream: the stream is the lease). */
  readonly lease: number;
  /** One operation, one answer; rejects with the operation's VmmDebugError. */
  call<K extends OperationName>(name: K, request: OperationRequest<K>, opts: CallOptions): Promise<OperationResponse<K>>;
  /** A read of any length through the streamed read, as one array. */
  readMemoryStream(request: OperationRequest<"readMemory">, length: number, opts: CallOptions): Promise<Uint8Array>;
  /** As readMemoryStream, with allow_partial: the bytes and the unreadable ranges. */
  readMemoryStreamPartial(request: OperationRequest<"readMemory">, length: number, opts: CallOptions): Promise<PartialRead>;
  /** Runs the VM and answers the next stop (at once if one is unreported). */
  resume(opts: CallOptions): Promise<DebugStopReason>;
  /** Single-steps one VP (the VM stays stopped or stops again) and answers the stop. */
  stepOnce(vp: number, opts: CallOptions): Promise<DebugStopReason>;
  /** The session's stops from now on. */
  stops(): AsyncIterableIterator<SessionStop>;
  /** Ends the session (Detach) and, on the stream, waits for the stream to end. */
  detach(opts: CallOptions): Promise<void>;
  /** Lets go of the session without waiting for an answer (the server detaches). */
  close(): Promise<void>;
}
