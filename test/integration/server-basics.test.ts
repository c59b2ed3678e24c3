// The server without VMs: listening rules, health, reflection (v1 and v1alpha), error details.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { createChannel, createClient, Status, type Channel } from "nice-grpc";
import { ServerReflectionService } from "nice-grpc-server-reflection";
import {
  ServerReflectionRequest,
  type ServerReflectionResponse,
} from "nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb";
import { HealthServiceDefinition, VmmDebugError, connect, decodeStatusDetails, STATUS_DETAILS_KEY } from "../../src/client";
import { createVmmDebugServer, silentLogger, type VmmDebugServer } from "../../src/server";

describe("a server with no VMs", () => {
  let server: VmmDebugServer;
  let address: string;
  let channel: Channel;

  beforeAll(async () => {
    server = createVmmDebugServer({ vms: [], logger: silentLogger });
    const { port } = await server.listen("127.0.0.1:0");
    address = `127.0.0.1:${port}`;
    channel = createChannel(address);
  });
  afterAll(async () => {
    channel.close();
    await server.close();
  });

  it("answers Health Check SERVING for the server and both services", async () => {
    const health = createClient(HealthServiceDefinition, channel);
    for (const service of ["", "vmm.debug.v1.DebugService", "vmm.debug.v1.VmService"]) {
      const res = await health.check({ service });
      expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
  });

  it("lists the services through reflection v1 and v1alpha", async () => {
    for (const path of [
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]) {
      const responses = await reflect(channel, path, [
        new ServerReflectionRequest().setListServices("*"),
        new ServerReflectionRequest().setFileContainingSymbol("vmm.debug.v1.DebugService"),
      ]);
      const names = responses[0].getListServicesResponse()!.getServiceList().map((s) => s.getName());
      expect(names.sort()).toEqual(["grpc.health.v1.Health", "vmm.debug.v1.DebugService", "vmm.debug.v1.VmService"]);
      const files = responses[1].getFileDescriptorResponse()!.getFileDescriptorProtoList_asU8();
      const file = fromBinary(FileDescriptorProtoSchema, files[0]);
      expect(file.name).toBe("vmm/debug/v1/debug_service.proto");
      expect(file.dependency).toEqual([
        "google/protobuf/duration.proto",
        "google/rpc/error_details.proto",
        "google/rpc/status.proto",
        "vmm/debug/v1/types.proto",
        "vmm/debug/v1/vm_service.proto",
      ]);
    }
  });

  it("reports an unknown VM as NOT_FOUND with a VM_NOT_FOUND ErrorInfo", async () => {
    const client = connect(address);
    try {
      const err = await client.getVm("nope").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VmmDebugError);
      expect(err).toMatchObject({ code: Status.NOT_FOUND, reason: "VM_NOT_FOUND", metadata: { vm: "nope" } });
      expect((err as VmmDebugError).message).toContain("serves no VMs");
      expect(await client.listVms()).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("sends the details trailer to plain grpc-js clients too", async () => {
    const Ctor = grpc.makeGenericClientConstructor({}, "VmService");
    const raw = new Ctor(address, grpc.credentials.createInsecure());
    try {
      const status = await new Promise<grpc.StatusObject>((resolve) => {
        const call = raw.makeUnaryRequest(
          "/vmm.debug.v1.VmService/GetVm",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x0a, 0x01, 0x78]), // GetVmRequest { vm: "x" }
          () => undefined,
        );
        call.on("status", resolve);
      });
      expect(status.code).toBe(grpc.status.NOT_FOUND);
      const bytes = status.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer;
      expect(decodeStatusDetails(new Uint8Array(bytes))).toMatchObject({
        code: grpc.status.NOT_FOUND,
        reason: "VM_NOT_FOUND",
        domain: "vmm.debug",
        metadata: { vm: "x" },
      });
    } finally {
      raw.close();
    }
  });

  const buf = join(__dirname, "../../node_modules/.bin/buf");
  (existsSync(buf) ? it : it.skip)("lets buf curl call Health through reflection", async () => {
    const run = promisify(execFile);
    const base = `http://${address}`;
    const list = await run(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", base]);
    expect(list.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "grpc.health.v1.Health",
      "vmm.debug.v1.DebugService",
      "vmm.debug.v1.VmService",
    ]);
    const check = await run(buf, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--reflect-protocol",
      "grpc-v1alpha",
      "-d",
      '{"service": "vmm.debug.v1.DebugService"}',
      `${base}/grpc.health.v1.Health/Check`,
    ]);
    expect(JSON.parse(check.stdout)).toEqual({ status: "SERVING" });
  });
});

describe("listen", () => {
  it("accepts an IPv6 loopback address", async () => {
    const server = createVmmDebugServer({ vms: [], logger: silentLogger });
    try {
      const bound = await server.listen("[::1]:0");
      expect(bound.host).toBe("::1");
      expect(bound.port).toBeGreaterThan(0);
      const client = connect(`[::1]:${bound.port}`);
      expect(await client.listVms()).toEqual([]);
      client.close();
    } finally {
      await server.close();
    }
  });

  it("refuses a non-loopback address unless allowed, naming the CLI flags that make it safe or accept the risk", async () => {
    const server = createVmmDebugServer({ vms: [], logger: silentLogger });
    try {
      await expect(server.listen("0.0.0.0:0")).rejects.toThrow(/not a loopback address.*--tls-cert, --tls-key.*--client-ca and\/or --tokens.*--insecure-non-loopback/);
    } finally {
      await server.close();
    }
    const open = createVmmDebugServer({ vms: [], logger: silentLogger, insecureNonLoopback: true });
    try {
      await expect(open.listen("0.0.0.0:0")).resolves.toMatchObject({ host: "0.0.0.0" });
    } finally {
      await open.close();
    }
  });
});

async function reflect(channel: Channel, path: string, requests: ServerReflectionRequest[]): Promise<ServerReflectionResponse[]> {
  const definition = { serverReflectionInfo: { ...ServerReflectionService.serverReflectionInfo, path } };
  const client = createClient(definition as unknown as typeof ServerReflectionService, channel);
  const out: ServerReflectionResponse[] = [];
  async function* send() {
    yield* requests;
  }
  for await (const res of client.serverReflectionInfo(send())) {
    out.push(res);
    if (out.length === requests.length) break;
  }
  return out;
}
