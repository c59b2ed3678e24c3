// Server reflection (grpc.reflection.v1 and v1alpha) from the generated file descriptors, built at
// run time so it can never drift from the code that serves the RPCs.
import { create, toBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { Server } from "nice-grpc";
import { ServerReflection, ServerReflectionService } from "nice-grpc-server-reflection";
import { file_vmm_debug_v1_debug_service } from "../../gen/vmm/debug/v1/debug_service_pb";
import { file_vmm_debug_v1_vm_service } from "../../gen/vmm/debug/v1/vm_service_pb";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb";
import { file_google_rpc_status } from "../../gen/google/rpc/status_pb";

/** Fully-qualified names of the services reflection lists. */
export const REFLECTED_SERVICES = ["vmm.debug.v1.DebugService", "vmm.debug.v1.VmService", "grpc.health.v1.Health"] as const;

const ROOT_FILES: DescFile[] = [
  file_vmm_debug_v1_debug_service,
  file_vmm_debug_v1_vm_service,
  file_grpc_health_v1_health,
  // Not needed by any RPC signature, but lets reflection clients decode the error details.
  file_google_rpc_status,
  file_google_rpc_error_details,
];

/** Serialized google.protobuf.FileDescriptorSet of `roots` and all their dependencies, dependencies first. */
export function buildFileDescriptorSet(roots: readonly DescFile[] = ROOT_FILES): Uint8Array {
  const ordered: DescFile[] = [];
  const seen = new Set<string>();
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    seen.add(file.name);
    for (const dep of file.dependencies) visit(dep);
    ordered.push(file);
  };
  roots.forEach(visit);
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: ordered.map((f) => f.proto) }));
}

const V1ALPHA_PATH = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/** Mounts reflection under v1 and, with the same implementation (same wire format), v1alpha. */
export function addReflection(server: Server): void {
  const impl = ServerReflection(buildFileDescriptorSet(), REFLECTED_SERVICES);
  server.add(ServerReflectionService, impl);
  const v1alpha = {
    serverReflectionInfo: { ...ServerReflectionService.serverReflectionInfo, path: V1ALPHA_PATH },
  } as unknown as typeof ServerReflectionService;
  server.add(v1alpha, impl);
}
