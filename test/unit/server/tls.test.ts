// createTlsCredentials and principalFromCertificate against a bare grpc-js server (one echo
// method that answers the principal of the caller's certificate): server TLS, mutual TLS accepted
// and refused, certificate and client-CA rotation under a live server, and the startup checks.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { createTlsCredentials, principalFromCertificate, TlsFileError, type TlsFiles } from "../../../src/server/auth/tls";
import { createCertFactory, haveOpenssl, type Ca, type CertFactory, type CertFiles } from "../../shared/certs";

const PATH = "/test.Who/Am";
const identity = (b: Buffer) => b;

const SERVICE: grpc.ServiceDefinition = {
  am: {
    path: PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

interface Running {
  port: number;
  close(): Promise<void>;
}

async function startServer(files: TlsFiles, refreshIntervalMs = 50): Promise<Running> {
  const tls = createTlsCredentials(files, { refreshIntervalMs });
  const server = new grpc.Server();
  server.addService(SERVICE, {
    am: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const ctx = call.getAuthContext();
      cb(null, Buffer.from(JSON.stringify({ security: ctx.transportSecurityType ?? "", principal: principalFromCertificate(ctx.sslPeerCertificate) ?? "" })));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", tls.credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          tls.close();
          resolve();
        });
        server.forceShutdown();
      }),
  };
}

/** One call on a fresh channel (its own connection: nothing shared with earlier clients). */
function call(port: number, creds: grpc.ChannelCredentials, host = "127.0.0.1"): Promise<{ security: string; principal: string }> {
  const client = new grpc.Client(`${host}:${port}`, creds, { "grpc.use_local_subchannel_pool": 1 });
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(PATH, identity, identity, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(JSON.parse(res!.toString()));
    });
  });
}

function ssl(ca: Ca, client?: CertFiles): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(ca.certPem), client ? Buffer.from(client.keyPem) : null, client ? Buffer.from(client.certPem) : null);
}

async function refused(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (e) {
    const err = e as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    return err;
  }
  throw new Error("the call succeeded; expected it refused");
}

/** Polls `cond` until it holds (bounded), for a change the server picks up on its next refresh. */
async function eventually(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not within ${ms} ms`);
}

const succeeds = (p: Promise<unknown>) => p.then(() => true, () => false);

const d = haveOpenssl() ? describe : describe.skip;
if (!haveOpenssl()) console.warn("skipping TLS tests: the openssl command is missing (Debian package openssl)");

d("createTlsCredentials", () => {
  let certs: CertFactory;
  let ca: Ca;
  let serverCert: CertFiles;

  beforeAll(() => {
    certs = createCertFactory();
    ca = certs.ca("ca");
    serverCert = certs.server(ca);
  });
  afterAll(() => certs?.cleanup());

  describe("server TLS", () => {
    let server: Running;
    beforeAll(async () => {
      server = await startServer({ cert: serverCert.cert, key: serverCert.key });
    });
    afterAll(() => server?.close());

    it("serves a client that trusts the CA, by IP and by host name", async () => {
      // (grpc-js reports an auth context only for an authorized client certificate: none here.)
      expect(await call(server.port, ssl(ca))).toEqual({ security: "", principal: "" });
      expect(await call(server.port, ssl(ca), "localhost")).toEqual({ security: "", principal: "" });
    });

    it("refuses an insecure client and one that does not trust the CA", async () => {
      await refused(call(server.port, grpc.credentials.createInsecure()));
      await refused(call(server.port, ssl(certs.ca("stranger"))));
    });
  });

  describe("mutual TLS", () => {
    let server: Running;
    let other: Ca;
    beforeAll(async () => {
      other = certs.ca("other");
      server = await startServer({ cert: serverCert.cert, key: serverCert.key, clientCa: ca.cert });
    });
    afterAll(() => server?.close());

    it("accepts a client certificate from the CA; the principal is its CN", async () => {
      expect(await call(server.port, ssl(ca, certs.client(ca, "crash-collector")))).toEqual({ security: "ssl", principal: "crash-collector" });
    });

    it("takes the first SAN when the certificate has no CN", async () => {
      const c = certs.clientSanOnly(ca, "san-only", "URI:spiffe://fleet/ci-farm");
      expect(await call(server.port, ssl(ca, c))).toEqual({ security: "ssl", principal: "spiffe://fleet/ci-farm" });
    });

    it("refuses no certificate, a certificate from another CA and an expired one", async () => {
      await refused(call(server.port, ssl(ca)));
      await refused(call(server.port, ssl(ca, certs.client(other, "intruder"))));
      await refused(call(server.port, ssl(ca, certs.expiredClient(ca, "late"))));
    });
  });

  it("picks up a rotated server certificate and client CA without a restart", async () => {
    const live = { cert: join(certs.dir, "live.crt"), key: join(certs.dir, "live.key"), clientCa: join(certs.dir, "live-ca.crt") };
    certs.replace(live, serverCert);
    writeFileSync(live.clientCa, ca.certPem);
    const server = await startServer(live);
    try {
      const alice = certs.client(ca, "alice");
      expect((await call(server.port, ssl(ca, alice))).principal).toBe("alice");

      // A new server certificate from a new CA: new connections see it.
      const ca2 = certs.ca("ca2");
      certs.replace(live, certs.server(ca2, "server2"));
      await eventually(() => succeeds(call(server.port, ssl(ca2, alice))));
      await refused(call(server.port, ssl(ca, alice)));

      // A new client CA: its clients are accepted, the old CA's are not.
      writeFileSync(live.clientCa, ca2.certPem);
      const bob = certs.client(ca2, "bob");
      await eventually(() => succeeds(call(server.port, ssl(ca2, bob))));
      expect((await call(server.port, ssl(ca2, bob))).principal).toBe("bob");
      await refused(call(server.port, ssl(ca2, alice)));
    } finally {
      await server.close();
    }
  });

  it("keeps the last good pair while a rotation is half done", async () => {
    const live = { cert: join(certs.dir, "half.crt"), key: join(certs.dir, "half.key") };
    certs.replace(live, serverCert);
    const warnings: string[] = [];
    const tls = createTlsCredentials(live, { refreshIntervalMs: 20, onWarning: (m) => warnings.push(m) });
    const server = new grpc.Server();
    server.addService(SERVICE, { am: (_c: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from("{}")) });
    const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", tls.credentials, (e, p) => (e ? rej(e) : res(p))));
    try {
      // Only the certificate replaced: it does not match the key; the old pair keeps serving.
      const ca3 = certs.ca("ca3");
      const next = certs.server(ca3, "server3");
      writeFileSync(live.cert, next.certPem);
      await eventually(async () => warnings.some((w) => w.includes("does not match")));
      await call(port, ssl(ca));
      writeFileSync(live.key, next.keyPem);
      await eventually(() => succeeds(call(port, ssl(ca3))));
    } finally {
      server.forceShutdown();
      tls.close();
    }
  });

  it("fails fast naming the flag whose file is wrong", () => {
    const missing = join(certs.dir, "nope.pem");
    expect(() => createTlsCredentials({ cert: missing, key: serverCert.key })).toThrow(/^--tls-cert .*nope\.pem: cannot read \(no such file\)/);
    expect(() => createTlsCredentials({ cert: serverCert.cert, key: missing })).toThrow(/^--tls-key .*: cannot read/);
    expect(() => createTlsCredentials({ cert: serverCert.cert, key: serverCert.key, clientCa: missing })).toThrow(/^--client-ca .*: cannot read/);
    const other = certs.server(ca, "mismatch");
    expect(() => createTlsCredentials({ cert: serverCert.cert, key: other.key })).toThrow(/^--tls-key .*does not match the certificate/);
    // A key where the certificate should be, and a certificate where the key should be.
    expect(() => createTlsCredentials({ cert: serverCert.key, key: serverCert.key })).toThrow(/^--tls-cert .*not a PEM certificate/);
    expect(() => createTlsCredentials({ cert: serverCert.cert, key: serverCert.cert })).toThrow(/^--tls-key .*not a PEM private key/);
    expect(() => createTlsCredentials({ cert: serverCert.cert, key: serverCert.key, clientCa: serverCert.key })).toThrow(/^--client-ca .*not a PEM certificate/);
    const empty = join(certs.dir, "empty.pem");
    writeFileSync(empty, "");
    expect(() => createTlsCredentials({ cert: empty, key: serverCert.key })).toThrow(TlsFileError);
  });
});

describe("principalFromCertificate", () => {
  const cert = (c: Partial<PeerCertificate>) => c as PeerCertificate;
  it("is the subject CN, else the first SAN, else undefined", () => {
    expect(principalFromCertificate(undefined)).toBeUndefined();
    expect(principalFromCertificate(cert({ subject: { CN: "alice" } as PeerCertificate["subject"], subjectaltname: "DNS:x" }))).toBe("alice");
    expect(principalFromCertificate(cert({ subject: { CN: ["a", "b"] } as unknown as PeerCertificate["subject"] }))).toBe("a");
    expect(principalFromCertificate(cert({ subject: { O: "x" } as PeerCertificate["subject"], subjectaltname: "DNS:host.example, IP Address:10.0.0.1" }))).toBe("host.example");
    expect(principalFromCertificate(cert({ subject: { O: "x" } as PeerCertificate["subject"], subjectaltname: "IP Address:10.0.0.1, DNS:h" }))).toBe("10.0.0.1");
    expect(principalFromCertificate(cert({ subject: { O: "x" } as PeerCertificate["subject"], subjectaltname: 'URI:"spiffe://a/b, c", DNS:h' }))).toBe("spiffe://a/b, c");
    expect(principalFromCertificate(cert({ subject: { O: "x" } as PeerCertificate["subject"], subjectaltname: "othername:<unsupported>, DNS:h" }))).toBe("h");
    expect(principalFromCertificate(cert({ subject: { O: "x" } as PeerCertificate["subject"] }))).toBeUndefined();
  });
});
