// vmm.debug.v1.VmService: the served VMs, their run state and who is attached.
import type { ServiceImplementation } from "nice-grpc";
import type { VmServiceDefinition } from "../client";
import { vmInfoToWire } from "./convert";
import type { VmRegistry } from "./registry";

export function createVmService(registry: VmRegistry): ServiceImplementation<VmServiceDefinition> {
  return {
    async listVms() {
      return { vms: registry.list().map((d) => vmInfoToWire(d.core, d.attachment())) };
    },
    async getVm(req) {
      const d = registry.resolve(req.vm);
      return { vm: vmInfoToWire(d.core, d.attachment()) };
    },
  };
}
