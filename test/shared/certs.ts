// Throwaway certificates for tests, made at test time with Debian's `openssl` command in a
// temporary directory (nothing here is a real secret, and nothing is committed).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether the `openssl` command runs (CI installs it; tests skip naming it otherwise). */
export function haveOpenssl(): boolean {
  return spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
}

/** A certificate and its key: file paths and the PEM text. */
export interface CertFiles {
  cert: string;
  key: string;
  certPem: string;
  keyPem: string;
}

export interface Ca extends CertFiles {
  name: string;
}

export interface CertOptions {
  /** Subject CN; omitted, the subject has only an O (the principal then comes from the SAN). */
  cn?: string;
  /** Subject OU (the server takes a role named there: viewer, debugger, admin). */
  ou?: string;
  /** subjectAltName entries, e.g. ["DNS:localhost", "IP:127.0.0.1", "URI:spiffe://x"]. */
  san?: string[];
  /** "server" (serverAuth) or "client" (clientAuth). */
  usage: "server" | "client";
  /** Validity, as openssl's YYYYMMDDHHMMSSZ; default from yesterday for 30 days. */
  startDate?: string;
  endDate?: string;
}

export interface CertFactory {
  dir: string;
  /** A new self-signed CA. */
  ca(name: string): Ca;
  /** A certificate signed by `ca` (file base name `name`). */
  issue(ca: Ca, name: string, options: CertOptions): CertFiles;
  /** A server certificate for 127.0.0.1, ::1 and localhost. */
  server(ca: Ca, name?: string): CertFiles;
  /** A client certificate whose subject CN is `cn` (and OU `ou`, e.g. a role). */
  client(ca: Ca, cn: string, ou?: string): CertFiles;
  /** A client certificate with no CN, only a SAN (e.g. "URI:spiffe://fleet/collector"). */
  clientSanOnly(ca: Ca, name: string, san: string): CertFiles;
  /** A client certificate with CN `cn` that expired in 2020. */
  expiredClient(ca: Ca, cn: string): CertFiles;
  /**
   * Replaces `target`'s certificate and key files with `source`'s (each written to a temporary
   * name and renamed over, so a reader sees the old or the new file, never a half-written one).
   */
  replace(target: { cert: string; key: string }, source: { cert: string; key: string }): void;
  /** Removes the directory and everything in it. */
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
}

/** A temporary directory of certificates; call cleanup() when done. */
export function createCertFactory(): CertFactory {
  const dir = mkdtempSync(join(tmpdir(), "vmm-debug-certs-"));

  const ca = (name: string): Ca => {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    openssl(
      [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "30", "-subj", `/O=vmm-debug tests/CN=${name}`,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      ],
      dir,
    );
    return { name, key, cert, keyPem: readFileSync(key, "utf8"), certPem: readFileSync(cert, "utf8") };
  };

  const issue = (authority: Ca, name: string, o: CertOptions): CertFiles => {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.crt`);
    const subj = `/O=vmm-debug tests${o.ou === undefined ? "" : `/OU=${o.ou}`}${o.cn === undefined ? "" : `/CN=${o.cn}`}`;
    openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj", subj], dir);
    // `openssl ca` (not `x509 -req`, which in OpenSSL 3.0 cannot set a start date) with a
    // minimal configuration and its own database, so any validity period can be made.
    const db = join(dir, `${name}.db`);
    mkdirSync(db, { recursive: true });
    writeFileSync(join(db, "index.txt"), "");
    const ext = [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${o.usage === "server" ? "serverAuth" : "clientAuth"}`,
      ...(o.san?.length ? [`subjectAltName=${o.san.join(",")}`] : []),
    ];
    const config = join(db, "ca.cnf");
    writeFileSync(
      config,
      [
        "[ca]",
        "default_ca = test_ca",
        "[test_ca]",
        `database = ${join(db, "index.txt")}`,
        `new_certs_dir = ${db}`,
        `serial = ${join(db, "serial")}`,
        "default_md = sha256",
        "policy = any",
        "unique_subject = no",
        "copy_extensions = none",
        "[any]",
        "organizationName = optional",
        "organizationalUnitName = optional",
        "commonName = optional",
        "[ext]",
        ...ext,
        "",
      ].join("\n"),
    );
    const now = Date.now();
    const start = o.startDate ?? stamp(new Date(now - 24 * 3600_000));
    const end = o.endDate ?? stamp(new Date(now + 30 * 24 * 3600_000));
    openssl(
      [
        "ca", "-batch", "-notext", "-config", config, "-extensions", "ext", "-cert", authority.cert, "-keyfile", authority.key,
        "-in", csr, "-out", cert, "-startdate", start, "-enddate", end, "-create_serial",
      ],
      dir,
    );
    rmSync(csr);
    rmSync(db, { recursive: true, force: true });
    return { key, cert, keyPem: readFileSync(key, "utf8"), certPem: readFileSync(cert, "utf8") };
  };

  return {
    dir,
    ca,
    issue,
    server: (authority, name = "server") => issue(authority, name, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1", "IP:::1"], usage: "server" }),
    client: (authority, cn, ou) => issue(authority, `client-${cn}${ou ? `-${ou}` : ""}`, { cn, ou, usage: "client" }),
    clientSanOnly: (authority, name, san) => issue(authority, name, { san: [san], usage: "client" }),
    expiredClient: (authority, cn) => issue(authority, `expired-${cn}`, { cn, usage: "client", startDate: "20200101000000Z", endDate: "20200102000000Z" }),
    replace(target, source) {
      for (const [from, to] of [
        [source.key, target.key],
        [source.cert, target.cert],
      ] as const) {
        const tmp = `${to}.new`;
        writeFileSync(tmp, readFileSync(from));
        renameSync(tmp, to);
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
