// Authentication, authorization and per-principal admission for every call, in one grpc-js
// server interceptor: it decides who calls (client certificate, bearer token, or the loopback
// default), refuses what that principal may not call (RPC_ACCESS), admits the call against the
// principal's limits, and hands the principal to the handler through a per-call id. Refusals
// here are audited like the refusals of handlers.
import { randomBytes } from "node:crypto";
import {
  Metadata,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status as GrpcStatus,
} from "@grpc/grpc-js";
import type { CallContext, ServerMiddleware } from "nice-grpc";
import { STATUS_DETAILS_KEY, encodeStatusDetails } from "../../wire";
import type { Logger } from "../logger";
import { clip } from "../errors";
import { rpcAccess } from "./access";
import { type AuthMethod, LOCAL_ADMIN, type Principal, type Role, hasRole } from "./principal";

/** A status as an interceptor sends it (grpc-js's PartialStatusObject, which it does not export). */
type PartialStatusObject = { code: number; details: string; metadata?: Metadata | null };

/** Bearer tokens, verified (tokens.ts's TokenStore). */
export interface TokenVerifier {
  verify(token: string): { name: string; role: Role } | undefined;
}

/** Per-principal admission (limits.ts's PrincipalLimiter). */
export interface CallLimiter {
  admit(principal: string, kind: "unary" | "stream"): { ok: true; release(): void } | { ok: false; reason: string; message: string; retryAfterMs?: number };
}

export interface AuthOptions {
  /**
   * Client certificates are required and verified by TLS (`--client-ca`): the principal is the
   * certificate's name, `certificateName` extracts it.
   */
  clientCertificates?: { name(cert: unknown): string | undefined; role(cert: unknown): Role };
  /** Bearer tokens are required (`--tokens`). */
  tokens?: TokenVerifier;
  /** Admission per principal. */
  limiter?: CallLimiter;
  /**
   * Nobody is authenticated, yet the server is reachable beyond loopback
   * (`--insecure-non-loopback`): callers are anonymous admins, and audited as such.
   */
  insecure?: boolean;
  logger: Logger;
}

/** What a handler learns about its call. */
export interface CallAuth {
  principal: Principal;
  /** Aborts when the principal's credential is revoked (a token removed): the call must end. */
  revoked: AbortSignal;
}

/** Limit refusals are audited once a second per principal (with a count of the rest). */
const LIMIT_AUDIT_WINDOW_MS = 1000;
const MAX_LIMIT_WINDOWS = 10_000;

/** The metadata key that carries a call's id from the interceptor to its handler (any sent by a client is dropped). */
export const CALL_ID_KEY = "x-vmm-debug-call";

interface OpenCall {
  auth: CallAuth;
  abort: AbortController;
  end(status: PartialStatusObject): void;
}

export class Authenticator {
  private readonly calls = new Map<string, OpenCall>();

  constructor(private readonly options: AuthOptions) {}

  /** Whether callers must prove who they are (client certificates or tokens configured). */
  get authenticates(): boolean {
    return this.options.clientCertificates !== undefined || this.options.tokens !== undefined;
  }

  /** The handler's view of its call (the loopback default when no interceptor ran, as in tests that call handlers directly). */
  callAuth(metadata: { get(key: string): unknown }): CallAuth {
    const id = metadata.get(CALL_ID_KEY);
    const open = typeof id === "string" ? this.calls.get(id) : undefined;
    return open?.auth ?? { principal: LOCAL_ADMIN, revoked: new AbortController().signal };
  }

  /** Ends every open call of these principals (their token was removed or changed): UNAUTHENTICATED / TOKEN_REVOKED. */
  revoke(names: readonly string[]): number {
    const gone = new Set(names);
    let ended = 0;
    for (const call of [...this.calls.values()]) {
      if (!gone.has(call.auth.principal.name) || !call.auth.principal.method.includes("token")) continue;
      call.abort.abort();
      call.end(refusal(GrpcStatus.UNAUTHENTICATED, "TOKEN_REVOKED", `the token of "${call.auth.principal.name}" was revoked`, {
        principal: call.auth.principal.name,
      }));
      ended++;
    }
    return ended;
  }

  /** Who is calling, or why they are not let in. */
  identify(metadata: Metadata, peerCertificate: unknown): Principal | { code: number; reason: string; message: string; metadata?: Record<string, string> } {
    const { clientCertificates, tokens } = this.options;
    if (!clientCertificates && !tokens) return this.options.insecure ? { name: "anonymous", role: "admin", method: "insecure" } : LOCAL_ADMIN;
    let certName: string | undefined;
    let certRole: Role | undefined;
    if (clientCertificates) {
      certName = peerCertificate ? clientCertificates.name(peerCertificate) : undefined;
      if (certName === undefined) {
        return { code: GrpcStatus.UNAUTHENTICATED, reason: "CERTIFICATE_REQUIRED", message: "this server requires a client certificate with a subject CN or a SAN" };
      }
      certRole = clientCertificates.role(peerCertificate);
    }
    if (!tokens) return { name: certName!, role: certRole!, method: "mtls" };
    const header = metadata.get("authorization").find((v): v is string => typeof v === "string");
    const m = header === undefined ? null : /^Bearer[ ]+(\S+)$/i.exec(header.trim());
    if (!m) {
      return {
        code: GrpcStatus.UNAUTHENTICATED,
        reason: "TOKEN_REQUIRED",
        message: header === undefined ? 'this server requires a bearer token: send the header "authorization: Bearer <token>"' : 'the authorization header must be "Bearer <token>"',
      };
    }
    const holder = tokens.verify(m[1]);
    if (!holder) return { code: GrpcStatus.UNAUTHENTICATED, reason: "TOKEN_INVALID", message: "the bearer token is not valid (unknown, removed or mistyped)" };
    if (certName !== undefined && certName !== holder.name) {
      return {
        code: GrpcStatus.UNAUTHENTICATED,
        reason: "PRINCIPAL_MISMATCH",
        message: `the token belongs to "${clip(holder.name, 64)}" but the client certificate names "${clip(certName, 64)}": both must name the same principal`,
        metadata: { token_principal: holder.name, certificate_principal: clip(certName, 256) },
      };
    }
    const method: AuthMethod = certName !== undefined ? "mtls+token" : "token";
    return { name: holder.name, role: holder.role, method };
  }

  interceptor(): ServerInterceptor {
    return (methodDescriptor, call) => this.intercept(methodDescriptor.path, methodDescriptor.requestStream, call);
  }

  private intercept(path: string, clientStreams: boolean, next: ServerInterceptingCallInterface): ServerInterceptingCall {
    let id: string | undefined;
    let release: (() => void) | undefined;
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      if (id !== undefined) this.calls.delete(id);
      release?.();
    };
    const call: ServerInterceptingCall = new ServerInterceptingCall(next, {
      start: (startNext) => {
        startNext(
          new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, metadataNext) => {
              metadata.remove(CALL_ID_KEY);
              const denied = this.admit(path, clientStreams, metadata, next);
              if ("code" in denied) {
                ended = true;
                call.sendStatus(refusal(denied.code, denied.reason, denied.message, denied.metadata ?? {}));
                return;
              }
              release = denied.release;
              id = randomBytes(12).toString("base64url");
              const abort = new AbortController();
              this.calls.set(id, {
                auth: { principal: denied.principal, revoked: abort.signal },
                abort,
                end: (status) => call.sendStatus(status),
              });
              metadata.set(CALL_ID_KEY, id);
              metadataNext(metadata);
            })
            .withOnCancel(finish)
            .build(),
        );
      },
      sendStatus: (status, statusNext) => {
        finish();
        statusNext(status);
      },
    });
    return call;
  }

  /** Authenticates, authorizes and admits one call, auditing a refusal. */
  private admit(
    path: string,
    clientStreams: boolean,
    metadata: Metadata,
    call: ServerInterceptingCallInterface,
  ): { principal: Principal; release?: () => void } | { code: number; reason: string; message: string; metadata?: Record<string, string> } {
    const needed = rpcAccess(path);
    if (needed === "open") return { principal: LOCAL_ADMIN };
    const peerCertificate = this.options.clientCertificates ? call.getAuthContext()?.sslPeerCertificate : undefined;
    const who = this.identify(metadata, peerCertificate);
    const rpc = path.slice(path.lastIndexOf("/") + 1);
    const peer = call.getPeer();
    if (!("name" in who)) {
      this.audit(peer, rpc, "", "none", `UNAUTHENTICATED/${who.reason}`);
      return who;
    }
    if (!hasRole(who.role, needed)) {
      const refused = {
        code: GrpcStatus.PERMISSION_DENIED,
        reason: "ROLE_REQUIRED",
        message: `"${clip(who.name, 64)}" has the role ${who.role}; ${rpc} needs ${needed}`,
        metadata: { principal: clip(who.name, 256), role: who.role, needed },
      };
      this.audit(peer, rpc, who.name, who.method, `PERMISSION_DENIED/ROLE_REQUIRED`);
      return refused;
    }
    if (this.options.limiter) {
      const admitted = this.options.limiter.admit(who.name, clientStreams || path.endsWith("/Session") ? "stream" : "unary");
      if (!admitted.ok) {
        this.auditLimited(peer, rpc, who, `RESOURCE_EXHAUSTED/${admitted.reason}`);
        return {
          code: GrpcStatus.RESOURCE_EXHAUSTED,
          reason: admitted.reason,
          message: admitted.message,
          metadata: { principal: clip(who.name, 256), ...(admitted.retryAfterMs !== undefined ? { retry_after_ms: String(admitted.retryAfterMs) } : {}) },
        };
      }
      return { principal: who, release: admitted.release };
    }
    return { principal: who };
  }

  private audit(peer: string, rpc: string, principal: string, auth: string, outcome: string, extra: Record<string, unknown> = {}): void {
    this.options.logger.info("audit", { time: new Date().toISOString(), peer, principal: clip(principal, 256), auth, vm: "", rpc, session: "", outcome, ...extra });
  }

  /** Per principal: the window of limit refusals now being counted instead of written one by one. */
  private readonly limitWindows = new Map<string, { startedMs: number; suppressed: number }>();

  /**
   * A principal over its limits is refused as fast as it asks: writing every refusal would let it
   * flood the audit log (and spend the server's time on it). The first refusal of each second is
   * written, carrying how many of the previous second's were not (`suppressed`).
   */
  private auditLimited(peer: string, rpc: string, who: Principal, outcome: string): void {
    const now = Date.now();
    const w = this.limitWindows.get(who.name);
    if (w && now - w.startedMs < LIMIT_AUDIT_WINDOW_MS) {
      w.suppressed++;
      return;
    }
    this.audit(peer, rpc, who.name, who.method, outcome, w && w.suppressed > 0 ? { suppressed: w.suppressed } : {});
    if (this.limitWindows.size >= MAX_LIMIT_WINDOWS && !w) this.limitWindows.clear(); // bounded; losing counts is harmless
    this.limitWindows.set(who.name, { startedMs: now, suppressed: 0 });
  }
}

/** A refusal as grpc-js sends it: code, message, and the google.rpc.Status detail with the ErrorInfo. */
function refusal(code: number, reason: string, message: string, metadata: Record<string, string>): PartialStatusObject {
  const trailer = new Metadata();
  trailer.set(STATUS_DETAILS_KEY, Buffer.from(encodeStatusDetails({ code, message, reason, metadata })));
  return { code, details: message, metadata: trailer };
}

/**
 * nice-grpc middleware: puts the call's principal on its context (`principalOf`) and makes the
 * context's signal abort when the principal's credential is revoked, so every handler (a waiting
 * Resume, a Session stream, a WatchEvents feed) ends with the call.
 */
export function authMiddleware(authenticator: Authenticator): ServerMiddleware {
  return async function* withPrincipal(call, context: CallContext) {
    const auth = authenticator.callAuth(context.metadata);
    // Only a token can be revoked: other calls keep their own signal.
    const signal = auth.principal.method.includes("token") ? AbortSignal.any([context.signal, auth.revoked]) : context.signal;
    return yield* call.next(call.request, { ...context, signal, principal: auth.principal } as CallContext);
  };
}

/** The principal a handler's call runs as (the loopback default for a context no middleware saw). */
export function principalOf(context: CallContext): Principal {
  return (context as CallContext & { principal?: Principal }).principal ?? LOCAL_ADMIN;
}
