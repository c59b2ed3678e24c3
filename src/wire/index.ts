// What the server and the SDK both need on the wire: nice-grpc service definitions adapted from
// the generated descriptors, and the google.rpc.Status / ErrorInfo codec.
export {
  createServiceDefinition,
  DebugServiceDefinition,
  HealthServiceDefinition,
  VmServiceDefinition,
} from "./definitions";
export type { NiceMessageType, NiceMethodDefinition, NiceServiceDefinition } from "./definitions";
export {
  ERROR_DOMAIN,
  STATUS_DETAILS_KEY,
  decodeStatusDetails,
  encodeStatusDetails,
  statusFromWire,
  statusToWire,
} from "./status-details";
export type { ErrorDetails } from "./status-details";
