// connect()'s `token` and `tls` options against a tiny nice-grpc server that records what each
// call carried: the bearer token on unary and streaming calls over plaintext loopback (where
// grpc-js call credentials are refused) and over mutual TLS, and the option checks.
import { ServerCredentials } from "@grpc/grpc-js";
import { ChannelCredentials, createServer, type CallContext, type Server } from "nice-grpc";
import { connect, type VmmDebugClient } from "../../../src/client";
import { VmServiceDefinition } from "../../../src/wire";
import { createCertFactory, haveOpenssl, type Ca, type CertFactory } from "../../shared/certs";

interface Seen {
  rpc: string;
  authorization: string | undefined;
}

async function startServer(credentials?: ServerCredentials): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const note = (rpc: string, ctx: CallContext) => seen.push({ rpc, authorization: ctx.metadata.get("authorization") });
  const server = createServer();
  server.add(VmServiceDefinition, {
    async listVms(_req, ctx) {
      note("ListVms", ctx);
      return { vms: [] };
    },
    async getVm(_req, ctx) {
      note("GetVm", ctx);
      return {};
    },
    async *watchEvents(_req, ctx) {
      note("WatchEvents", ctx);
      yield { sequence: 1n };
    },
    async *watchConsole(_req, ctx) {
      note("WatchConsole", ctx);
      yield {};
    },
  });
  const port = await server.listen("127.0.0.1:0", credentials);
  return { server, port, seen };
}

describe("connect({ token })", () => {
  let s: Awaited<ReturnType<typeof startServer>>;
  let client: VmmDebugClient | undefined;
  beforeAll(async () => {
    s = await startServer();
  });
  afterEach(() => {
    client?.close();
    client = undefined;
    s.seen.length = 0;
  });
  afterAll(() => s.server.forceShutdown());

  it("sends authorization: Bearer <token> on unary and streaming calls over a plaintext loopback channel", async () => {
    client = connect(`127.0.0.1:${s.port}`, { token: "vmmd_abc.DEF-123" });
    await client.listVms();
    await client.rpc.vm.getVm({ vm: "x" });
    for await (const ev of client.rpc.vm.watchEvents({ vm: "x" })) expect(ev.sequence).toBe(1n);
    expect(s.seen).toEqual([
      { rpc: "ListVms", authorization: "Bearer vmmd_abc.DEF-123" },
      { rpc: "GetVm", authorization: "Bearer vmmd_abc.DEF-123" },
      { rpc: "WatchEvents", authorization: "Bearer vmmd_abc.DEF-123" },
    ]);
  });

  it("sends no authorization without a token", async () => {
    client = connect(`127.0.0.1:${s.port}`);
    await client.listVms();
    expect(s.seen).toEqual([{ rpc: "ListVms", authorization: undefined }]);
  });

  it("refuses options that cannot work", () => {
    expect(() => connect("127.0.0.1:1", { token: "" })).toThrow(TypeError);
    expect(() => connect("127.0.0.1:1", { token: "two words" })).toThrow(/without spaces/);
    expect(() => connect("127.0.0.1:1", { token: "line\nbreak" })).toThrow(TypeError);
    expect(() => connect("127.0.0.1:1", { tls: {}, credentials: ChannelCredentials.createInsecure() })).toThrow(/either tls or credentials/);
    expect(() => connect("127.0.0.1:1", { tls: { cert: "x" } })).toThrow(/go together/);
  });
});

const d = haveOpenssl() ? describe : describe.skip;
if (!haveOpenssl()) console.warn("skipping connect({ tls }) tests: the openssl command is missing (Debian package openssl)");

d("connect({ tls })", () => {
  let certs: CertFactory;
  let ca: Ca;
  beforeAll(() => {
    certs = createCertFactory();
    ca = certs.ca("ca");
  });
  afterAll(() => certs?.cleanup());

  it("connects with mutual TLS (PEM strings or Buffers) and a token; refuses a plaintext client and a missing client certificate", async () => {
    const server = certs.server(ca);
    const s = await startServer(ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }], true));
    const clients: VmmDebugClient[] = [];
    const open = (c: VmmDebugClient) => (clients.push(c), c);
    try {
      const alice = certs.client(ca, "alice");
      const fresh = { "grpc.use_local_subchannel_pool": 1 };
      await open(connect(`localhost:${s.port}`, { tls: { ca: ca.certPem, cert: alice.certPem, key: alice.keyPem }, token: "t0k", channelOptions: fresh })).listVms();
      await open(
        connect(`127.0.0.1:${s.port}`, { tls: { ca: Buffer.from(ca.certPem), cert: Buffer.from(alice.certPem), key: new Uint8Array(Buffer.from(alice.keyPem)) }, channelOptions: fresh }),
      ).listVms();
      expect(s.seen).toEqual([
        { rpc: "ListVms", authorization: "Bearer t0k" },
        { rpc: "ListVms", authorization: undefined },
      ]);
      await expect(open(connect(`127.0.0.1:${s.port}`, { channelOptions: fresh })).listVms({ deadlineMs: 5000 })).rejects.toMatchObject({ code: 14 });
      await expect(open(connect(`127.0.0.1:${s.port}`, { tls: { ca: ca.certPem }, channelOptions: fresh })).listVms({ deadlineMs: 5000 })).rejects.toMatchObject({ code: 14 });
    } finally {
      for (const c of clients) c.close();
      s.server.forceShutdown();
    }
  });

  it("checks the server's certificate against tls.serverName when the address is an IP it does not name", async () => {
    const named = certs.issue(ca, "named", { cn: "debug.example", san: ["DNS:debug.example"], usage: "server" });
    const s = await startServer(ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ cert_chain: Buffer.from(named.certPem), private_key: Buffer.from(named.keyPem) }]));
    const fresh = { "grpc.use_local_subchannel_pool": 1 };
    const good = connect(`127.0.0.1:${s.port}`, { tls: { ca: ca.certPem, serverName: "debug.example" }, channelOptions: fresh });
    const bad = connect(`127.0.0.1:${s.port}`, { tls: { ca: ca.certPem }, channelOptions: fresh });
    try {
      await good.listVms();
      await expect(bad.listVms({ deadlineMs: 5000 })).rejects.toMatchObject({ code: 14 });
    } finally {
      good.close();
      bad.close();
      s.server.forceShutdown();
    }
  });
});
