// TLS and mutual TLS on the real vmm-debug server, with certificates made at test time by a
// throwaway CA (openssl): server TLS (a client trusting the CA is served, a plaintext one is not),
// mutual TLS accepted (the certificate's CN is the principal of the audit line) and refused (no
// certificate, one from another CA, an expired one), certificate and client-CA rotation under a
// live server, the CLI client flags through `vmm-debug gdb`, and the Python example with mTLS and
// a token.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "nice-grpc";
import { connect, type ConnectOptions, type VmmDebugClient } from "../../src/client";
import { TokenStore, tokenLine } from "../../src/server/auth/tokens";
import { type Harness, startHarness, waitFor } from "../integration/harness";
import { createCertFactory, haveOpenssl, type Ca, type CertFactory, type CertFiles } from "../shared/certs";

const ROOT = join(__dirname, "../..");
const PYTHON = "/usr/bin/python3";

const describeTls = haveOpenssl() ? describe : describe.skip;
if (!haveOpenssl()) console.warn("skipping the TLS system tests: the openssl command is missing (install the Debian package openssl)");

/** Every client of a test on its own connection (grpc-js would otherwise share one between equal channels). */
const FRESH = { "grpc.use_local_subchannel_pool": 1 };

const tlsOf = (ca: Ca, client?: CertFiles): ConnectOptions["tls"] => ({ ca: ca.certPem, ...(client && { cert: client.certPem, key: client.keyPem }) });

describeTls("TLS on the vmm-debug server", () => {
  let certs: CertFactory;
  let ca: Ca;
  let other: Ca;
  let serverCert: CertFiles;
  const clients: VmmDebugClient[] = [];
  const open = (address: string, options: ConnectOptions = {}) => {
    const c = connect(address, { ...options, channelOptions: FRESH });
    clients.push(c);
    return c;
  };

  beforeAll(() => {
    certs = createCertFactory();
    ca = certs.ca("ca");
    other = certs.ca("other-ca");
    serverCert = certs.server(ca);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => certs?.cleanup());

  /** Whether a new connection with these options is served (the probe's client closed at once). */
  async function served(address: string, options: ConnectOptions): Promise<boolean> {
    const c = connect(address, { ...options, channelOptions: FRESH });
    try {
      await c.listVms({ deadlineMs: 5000 });
      return true;
    } catch {
      return false;
    } finally {
      c.close();
    }
  }

  /** A call refused before it reaches the server: the TLS handshake failed. */
  async function handshakeRefused(client: VmmDebugClient): Promise<void> {
    await expect(client.listVms({ deadlineMs: 10_000 })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
  }

  describe("server TLS", () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ tls: { cert: serverCert.cert, key: serverCert.key } });
    });
    afterAll(() => h?.close());

    it("serves a client that trusts the CA, by IP and by host name", async () => {
      const port = h.address.split(":")[1];
      expect((await open(h.address, { tls: tlsOf(ca) }).listVms()).map((vm) => vm.id)).toEqual(["demo"]);
      expect((await open(`localhost:${port}`, { tls: tlsOf(ca) }).listVms()).map((vm) => vm.id)).toEqual(["demo"]);
    });

    it("refuses a plaintext client and one that does not trust the CA", async () => {
      await handshakeRefused(open(h.address));
      await handshakeRefused(open(h.address, { tls: tlsOf(other) }));
    });
  });

  describe("mutual TLS", () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ tls: { cert: serverCert.cert, key: serverCert.key, clientCa: ca.cert } });
    });
    afterAll(() => h?.close());

    it("accepts a client certificate from the CA: its CN is the principal of the audit line", async () => {
      // The role comes from the certificate's OU (debugger here); without one, a viewer.
      const client = open(h.address, { tls: tlsOf(ca, certs.client(ca, "crash-collector", "debugger")) });
      expect((await client.listVms()).map((vm) => vm.id)).toEqual(["demo"]);
      const before = h.logs.length;
      const session = await client.attach("demo", { transport: "unary" });
      await session.detach();
      const attach = h.logs.slice(before).find((l) => l.message === "audit" && l.fields.rpc === "Attach");
      expect(attach?.fields).toMatchObject({ principal: "crash-collector", auth: "mtls", outcome: "ok" });

      const viewer = open(h.address, { tls: tlsOf(ca, certs.client(ca, "dashboard")) });
      await viewer.listVms();
      await expect(viewer.attach("demo", { transport: "unary" })).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
      expect(h.logs.filter((l) => l.message === "audit" && l.fields.principal === "dashboard").map((l) => [l.fields.rpc, l.fields.auth, l.fields.outcome])).toEqual([
        ["Attach", "mtls", "PERMISSION_DENIED/ROLE_REQUIRED"],
      ]);
    });

    it("takes the first SAN as the principal of a certificate without a CN", async () => {
      const client = open(h.address, { tls: tlsOf(ca, certs.clientSanOnly(ca, "ci-farm", "URI:spiffe://fleet/ci-farm")) });
      const before = h.logs.length;
      await client.attach("demo", { transport: "unary" }).then((s) => s.detach()).catch(() => undefined);
      await waitFor(() => h.logs.slice(before).some((l) => l.message === "audit" && l.fields.rpc === "Attach"), 10_000, "an Attach audit line");
      expect(h.logs.slice(before).find((l) => l.message === "audit" && l.fields.rpc === "Attach")!.fields).toMatchObject({
        principal: "spiffe://fleet/ci-farm",
        auth: "mtls",
      });
    });

    it("refuses no client certificate, one from another CA, and an expired one", async () => {
      await handshakeRefused(open(h.address, { tls: tlsOf(ca) }));
      await handshakeRefused(open(h.address, { tls: tlsOf(ca, certs.client(other, "intruder")) }));
      await handshakeRefused(open(h.address, { tls: tlsOf(ca, certs.expiredClient(ca, "late")) }));
      await handshakeRefused(open(h.address));
    });
  });

  it("rotates the server certificate and the client CA under a live server (new connections see the new files)", async () => {
    const live = { cert: join(certs.dir, "live.crt"), key: join(certs.dir, "live.key"), clientCa: join(certs.dir, "live-ca.crt") };
    certs.replace(live, serverCert);
    writeFileSync(live.clientCa, ca.certPem);
    const h = await startHarness({ tls: live });
    try {
      const alice = certs.client(ca, "alice");
      await open(h.address, { tls: tlsOf(ca, alice) }).listVms();

      // A server certificate from a new CA, swapped in by renaming over the files.
      const ca2 = certs.ca("ca2");
      certs.replace(live, certs.server(ca2, "server2"));
      await waitFor(
        () => served(h.address, { tls: tlsOf(ca2, alice) }),
        15_000,
        "a client trusting only the new CA to be served",
      );
      await handshakeRefused(open(h.address, { tls: tlsOf(ca, alice) }));

      // A new client CA: its clients are let in, the old CA's are not.
      writeFileSync(live.clientCa, ca2.certPem);
      const bob = certs.client(ca2, "bob");
      await waitFor(
        () => served(h.address, { tls: tlsOf(ca2, bob) }),
        15_000,
        "a client certificate from the new client CA to be accepted",
      );
      await handshakeRefused(open(h.address, { tls: tlsOf(ca2, alice) }));
    } finally {
      for (const c of clients.splice(0)) c.close();
      await h.close();
    }
  });

  describe("clients across hosts (mutual TLS and a token)", () => {
    let h: Harness;
    let store: TokenStore;
    let dir: string;
    const TOKEN = "vmmd_test_token_for_the_python_client_0123456789";
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "vmm-debug-tls-tokens-"));
      writeFileSync(join(dir, "tokens"), tokenLine("collector", "debugger", TOKEN) + "\n", { mode: 0o600 });
      store = TokenStore.open(join(dir, "tokens"), { watch: false });
      h = await startHarness({ tls: { cert: serverCert.cert, key: serverCert.key, clientCa: ca.cert }, tokens: store });
    });
    afterAll(async () => {
      await h?.close();
      store?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("the SDK's token also rides a plaintext loopback channel (a server with tokens and no TLS)", async () => {
      const plain = await startHarness({ tokens: store });
      try {
        expect((await open(plain.address, { token: TOKEN }).listVms()).length).toBe(1);
        const session = await open(plain.address, { token: TOKEN }).attach("demo");
        await session.detach();
        expect(plain.logs.find((l) => l.message === "audit" && l.fields.rpc === "Attach")?.fields).toMatchObject({ principal: "collector", auth: "token", outcome: "ok" });
        await expect(open(plain.address).listVms()).rejects.toMatchObject({ code: Status.UNAUTHENTICATED, reason: "TOKEN_REQUIRED" });
      } finally {
        for (const c of clients.splice(0)) c.close();
        await plain.close();
      }
    });

    it("the SDK needs the certificate and the token of the same principal", async () => {
      const collector = certs.client(ca, "collector");
      expect((await open(`localhost:${h.address.split(":")[1]}`, { tls: tlsOf(ca, collector), token: TOKEN }).listVms()).length).toBe(1);
      await expect(open(h.address, { tls: tlsOf(ca, collector) }).listVms()).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
      await expect(open(h.address, { tls: tlsOf(ca, certs.client(ca, "someone-else")), token: TOKEN }).listVms()).rejects.toMatchObject({
        code: Status.UNAUTHENTICATED,
      });
    });

    it("vmm-debug gdb reaches the server with --tls-ca --tls-cert --tls-key and $VMM_DEBUG_TOKEN", async () => {
      const collector = certs.client(ca, "collector");
      const port = h.address.split(":")[1];
      const bridge = spawn(
        process.execPath,
        [
          "--require", require.resolve("tsx/cjs"), "src/cli/main.ts", "gdb", "--listen", "127.0.0.1:0", "--server", `localhost:${port}`, "--vm", "demo",
          "--tls-ca", ca.cert, "--tls-cert", collector.cert, "--tls-key", collector.key,
        ],
        { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, VMM_DEBUG_TOKEN: TOKEN } },
      );
      try {
        const gdbAt = await lineMatch(bridge, /bridging gdb on (\S+):(\d+) /, 30_000);
        // One RSP exchange: "?" (why did the target stop) needs the bridge to attach over TLS.
        const reply = await rsp(Number(gdbAt[2]), "?", 20_000);
        expect(reply).toMatch(/^\$T[0-9a-f]{2}/);
        await waitFor(() => h.logs.some((l) => l.message === "audit" && l.fields.rpc === "Attach" && l.fields.principal === "collector"), 10_000, "the bridge's Attach audit line");
        expect(h.logs.find((l) => l.message === "audit" && l.fields.rpc === "Attach" && l.fields.principal === "collector")!.fields.auth).toBe("mtls+token");
      } finally {
        await stop(bridge);
      }
    });

    it("buf curl with --cacert --cert --key and the authorization header, also on its reflection requests", async () => {
      const collector = certs.client(ca, "collector");
      const url = `https://localhost:${h.address.split(":")[1]}/vmm.debug.v1.VmService/ListVms`;
      const base = ["--no-install", "buf", "curl", "--protocol", "grpc", "--cacert", ca.cert, "--cert", collector.cert, "--key", collector.key];
      // --reflect-header '*': the token also goes with buf's reflection requests (reflection needs a viewer).
      const ok = await run("npx", [...base, "-H", `authorization: Bearer ${TOKEN}`, "--reflect-header", "*", url]);
      expect(ok.stderr).toBe("");
      expect(JSON.parse(ok.stdout).vms.map((vm: { id: string }) => vm.id)).toEqual(["demo"]);
      // The token only on reflection: the call itself is refused.
      const noToken = await run("npx", [...base, "--reflect-header", `authorization: Bearer ${TOKEN}`, url]);
      expect(noToken.status).not.toBe(0);
      expect(noToken.stderr).toMatch(/unauthenticated/i);
    });

    const python = pythonStubs();
    (python.missing ? it.skip : it)("the Python example (examples/python/remote.py) lists the VMs and reads memory with ssl_channel_credentials and the token", async () => {
      const collector = certs.client(ca, "collector");
      // (Asynchronously: the server runs in this process.)
      const r = await run(
        PYTHON,
        ["examples/python/remote.py", `localhost:${h.address.split(":")[1]}`, "--ca", ca.cert, "--cert", collector.cert, "--key", collector.key, "--stubs", python.dir!],
        { VMM_DEBUG_TOKEN: TOKEN },
      ).finally(() => python.cleanup());
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^vm demo: 2 VPs\ndemo gpa 0x1000: [0-9a-f]{32}\n$/);
    });
    if (python.missing) console.warn(`skipping the Python TLS example test: ${python.missing}`);
  });
});

/** The Python stubs generated into a temporary directory (as the README does into examples/python/gen). */
function pythonStubs(): { missing?: string; dir?: string; cleanup(): void } {
  if (spawnSync(PYTHON, ["-c", "import grpc, google.protobuf"], { stdio: "ignore", timeout: 20_000 }).status !== 0) {
    return { missing: `${PYTHON} cannot import grpc (Debian package python3-grpcio)`, cleanup() {} };
  }
  const plugin = spawnSync("sh", ["-c", "command -v grpc_python_plugin"], { encoding: "utf8" }).stdout.trim();
  if (!plugin || spawnSync("protoc", ["--version"], { stdio: "ignore" }).status !== 0) {
    return { missing: "protoc or grpc_python_plugin not found (Debian packages protobuf-compiler protobuf-compiler-grpc)", cleanup() {} };
  }
  const dir = mkdtempSync(join(tmpdir(), "vmm-debug-py-stubs-"));
  const protos = ["breakpoint", "types", "vm_service", "debug_service"].map((p) => `proto/vmm/debug/v1/${p}.proto`);
  const r = spawnSync(
    "protoc",
    ["-I", "proto", "-I", "third_party", `--plugin=protoc-gen-grpc_python=${plugin}`, `--python_out=${dir}`, `--grpc_python_out=${dir}`, ...protos, "third_party/google/rpc/status.proto", "third_party/google/rpc/error_details.proto"],
    { cwd: ROOT, encoding: "utf8", timeout: 30_000 },
  );
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) {
    cleanup();
    return { missing: `protoc failed: ${r.stderr}`, cleanup() {} };
  }
  return { dir, cleanup };
}

/** Runs a command to its end (bounded: killed by its PID after `ms`) without blocking this process, which serves it. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, ms = 60_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} did not finish within ${ms} ms: ${stdout}${stderr}`));
    }, ms);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The first stdout match of `re`, bounded. */
function lineMatch(child: ChildProcess, re: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms: ${out}${err}`)), ms);
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}: ${err}`));
    });
  });
}

/** Sends one GDB remote packet to the bridge and resolves its first reply packet. */
function rsp(port: number, body: string, ms: number): Promise<string> {
  const sum = [...body].reduce((s, ch) => (s + ch.charCodeAt(0)) & 0xff, 0);
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1");
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply to ${body} within ${ms} ms: ${JSON.stringify(data)}`));
    }, ms);
    socket.on("connect", () => socket.write(`$${body}#${sum.toString(16).padStart(2, "0")}`));
    socket.on("data", (d) => {
      data += d.toString("latin1");
      const m = /\$([^#]*)#[0-9a-f]{2}/.exec(data);
      if (m) {
        clearTimeout(timer);
        socket.write("+");
        socket.end();
        resolve(`$${m[1]}`);
      }
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
