// The client flags (--tls-ca, --tls-cert, --tls-key, --tls-server-name, --tls, --token /
// $VMM_DEBUG_TOKEN) and the connect() options they make.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError, parseArgs } from "../../../src/cli/args";
import { CLIENT_OPTION_SPEC, clientConnectOptions } from "../../../src/cli/client-options";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("clientConnectOptions", () => {
  let dir: string;
  let ca: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vmm-debug-client-options-"));
    ca = join(dir, "ca.crt");
    writeFileSync(ca, PEM);
    writeFileSync(join(dir, "c.crt"), PEM);
    writeFileSync(join(dir, "c.key"), "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");
    writeFileSync(join(dir, "junk"), "hello");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const parse = (argv: string[]) => parseArgs(argv, CLIENT_OPTION_SPEC).options;
  const run = (argv: string[], env: NodeJS.ProcessEnv = {}, server = "127.0.0.1:50051") => {
    const warnings: string[] = [];
    const out = clientConnectOptions(parse(argv), server, env, (m) => warnings.push(m));
    return { out, warnings };
  };

  it("makes plaintext options when no flag is given (the loopback default)", () => {
    expect(run([]).out).toEqual({});
  });

  it("reads the CA, client certificate and key files", () => {
    const { out } = run(["--tls-ca", ca, "--tls-cert", join(dir, "c.crt"), "--tls-key", join(dir, "c.key"), "--tls-server-name", "debug.example"]);
    expect(Buffer.from(out.tls!.ca as Uint8Array).toString()).toBe(PEM);
    expect(Buffer.from(out.tls!.cert as Uint8Array).toString()).toBe(PEM);
    expect(Buffer.from(out.tls!.key as Uint8Array).toString()).toContain("PRIVATE KEY");
    expect(out.tls!.serverName).toBe("debug.example");
    expect(run(["--tls"]).out).toEqual({ tls: {} });
  });

  it("takes the token from --token, else $VMM_DEBUG_TOKEN (an empty one meaning none)", () => {
    expect(run(["--token", "abc"], { VMM_DEBUG_TOKEN: "env" }).out).toEqual({ token: "abc" });
    expect(run([], { VMM_DEBUG_TOKEN: "env" }).out).toEqual({ token: "env" });
    expect(run([], { VMM_DEBUG_TOKEN: "" }).out).toEqual({});
  });

  it("warns when a token would travel in plaintext to a non-loopback server", () => {
    expect(run(["--token", "abc"], {}, "10.1.2.3:50051").warnings).toEqual([expect.stringMatching(/without TLS to 10\.1\.2\.3:50051/)]);
    expect(run(["--token", "abc"], {}, "localhost:50051").warnings).toEqual([]);
    expect(run(["--token", "abc"], {}, "[::1]:50051").warnings).toEqual([]);
    expect(run(["--token", "abc", "--tls-ca", ca], {}, "10.1.2.3:50051").warnings).toEqual([]);
  });

  it("refuses what cannot work, naming the flag", () => {
    expect(() => run(["--tls-cert", join(dir, "c.crt")])).toThrow(/--tls-cert and --tls-key go together/);
    expect(() => run(["--tls-ca", join(dir, "missing.pem")])).toThrow(/^--tls-ca .*missing\.pem: cannot read \(no such file\)$/);
    expect(() => run(["--tls-ca", join(dir, "junk")])).toThrow(/^--tls-ca .*: not a PEM file/);
    expect(() => run(["--tls-cert", join(dir, "c.crt"), "--tls-key", dir])).toThrow(/^--tls-key .*: cannot read \(is a directory\)/);
    expect(() => run(["--token", "a b"])).toThrow(UsageError);
    expect(() => run(["--token="])).toThrow(/--token needs a value/);
  });
});
