// Who is calling: the principal every call runs as, its role, and how it proved who it is.

/** Roles in increasing power: each may do everything the ones before it may. */
export const ROLES = ["viewer", "debugger", "admin"] as const;
export type Role = (typeof ROLES)[number];

/**
 * How the caller was authenticated: "local" is the loopback default with neither TLS client
 * certificates nor tokens configured (every caller an implicit admin); "insecure" the same
 * beyond loopback (`--insecure-non-loopback`).
 */
export type AuthMethod = "local" | "insecure" | "mtls" | "token" | "mtls+token";

export interface Principal {
  /** The certificate's subject CN (or first SAN), or the token's name; "local" in the default mode. */
  name: string;
  role: Role;
  method: AuthMethod;
}

/** Every caller in the default loopback mode (no client CA, no tokens): as before, an admin. */
export const LOCAL_ADMIN: Principal = Object.freeze({ name: "local", role: "admin", method: "local" });

export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text);
}

/** Whether `role` may do what `needed` allows. */
export function hasRole(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
