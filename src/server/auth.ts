// Who may talk to the HTTP server: the bearer token (where it comes from, how it is compared, how a
// strong one is made) and the Host/Origin allow-lists that stop DNS rebinding. Pure but for reading
// the token file; serve and `ipcscope call` share the token resolution.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { UsageError } from "../errors.ts";

/** 32 random bytes: 256 bits, far beyond guessing at any request rate. */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Tokens shorter than this are refused: they could be guessed or are a mistake (an empty file). */
export const MIN_TOKEN_LENGTH = 16;

export interface TokenSources {
  /** --token VALUE (visible in `ps` to every user: the file or the environment is better). */
  token?: string;
  /** --token-file PATH */
  tokenFile?: string;
  /** IPCSCOPE_TOKEN */
  env?: string;
}

/**
 * The token from the first source given: --token-file, then --token, then IPCSCOPE_TOKEN. A token
 * file readable by group or others is refused, like ssh refuses such a key.
 */
export function resolveToken(sources: TokenSources): { token: string; from: string } | null {
  let token: string;
  let from: string;
  if (sources.tokenFile !== undefined) {
    from = `--token-file ${sources.tokenFile}`;
    let mode: number;
    try {
      mode = statSync(sources.tokenFile).mode;
      token = readFileSync(sources.tokenFile, "utf8").trim();
    } catch (error) {
      throw new UsageError(`--token-file: cannot read "${sources.tokenFile}" (${(error as Error).message}); make one with: ipcscope token --out ${sources.tokenFile}`);
    }
    if ((mode & 0o077) !== 0) {
      throw new UsageError(
        `--token-file: "${sources.tokenFile}" is readable by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${sources.tokenFile}`,
      );
    }
  } else if (sources.token !== undefined) {
    from = "--token";
    token = sources.token.trim();
  } else if (sources.env !== undefined && sources.env !== "") {
    from = "IPCSCOPE_TOKEN";
    token = sources.env.trim();
  } else {
    return null;
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(`${from}: the token is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (ipcscope token makes a strong one)`);
  }
  if (/\s/.test(token)) throw new UsageError(`${from}: the token contains white space; use one line of printable characters (ipcscope token makes one)`);
  return { token, from };
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * Whether an Authorization header carries the token. Both sides are hashed first, so the
 * comparison takes the same time whatever the length or the first differing byte.
 */
export function checkBearer(header: string | null, token: string): "ok" | "missing" | "invalid" {
  if (header === null) return "missing";
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match) return "invalid";
  return timingSafeEqual(digest(match[1]!), digest(token)) ? "ok" : "invalid";
}

/** A Host header's or URL's host name, lower case, without port or IPv6 brackets. */
export function hostOf(value: string): string {
  const trimmed = value.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(trimmed);
  if (bracketed) return bracketed[1]!;
  // One colon is host:port; more is a bare IPv6 address.
  return (trimmed.match(/:/g) ?? []).length === 1 ? trimmed.slice(0, trimmed.indexOf(":")) : trimmed;
}

const WILDCARD_BINDS = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * The host names a request may carry in Host: the bind address, the loopback names, this host's
 * name, and — when bound to every address — every address of this host. `extra` adds names;
 * `*` there allows any (behind a proxy that checks it).
 */
export function allowedHosts(bind: string, extra: readonly string[]): Set<string> {
  const hosts = new Set(["localhost", "127.0.0.1", "::1", hostOf(bind), hostname().toLowerCase()]);
  const short = hostname().toLowerCase().split(".")[0];
  if (short) hosts.add(short);
  if (WILDCARD_BINDS.has(bind)) {
    for (const addresses of Object.values(networkInterfaces())) {
      for (const address of addresses ?? []) hosts.add(address.address.toLowerCase().replace(/%.*$/, ""));
    }
  }
  for (const name of extra) hosts.add(hostOf(name));
  hosts.delete("");
  return hosts;
}

/** Normalizes --allowed-origins entries to scheme://host[:port], refusing what is not an origin. */
export function parseOrigins(values: readonly string[]): string[] {
  return values.map((value) => {
    if (value === "*") return value;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new UsageError(`--allowed-origins: "${value}" is not an origin; write it as scheme://host[:port], e.g. https://console.example.com`);
    }
    if (url.origin === "null") throw new UsageError(`--allowed-origins: "${value}" has no origin (use http:// or https://)`);
    return url.origin;
  });
}

export interface RequestGate {
  hosts: Set<string>;
  origins: readonly string[];
}

/**
 * Why a request's Host or Origin is refused (DNS rebinding: a web page whose name now points here),
 * or null. No Origin is fine: only browsers send it, and a non-browser client is not rebound.
 */
export function refuseHostOrOrigin(gate: RequestGate, host: string | null, origin: string | null): string | null {
  if (!gate.hosts.has("*")) {
    if (host === null || host === "") return "the request has no Host header";
    if (!gate.hosts.has(hostOf(host))) return `Host "${host}" is not one of this server's names (add it with --allowed-hosts)`;
  }
  if (origin === null) return null;
  if (gate.origins.includes("*") || gate.origins.includes(origin.toLowerCase())) return null;
  let originHost: string;
  try {
    const url = new URL(origin);
    if (url.origin === "null") return `Origin "${origin}" is opaque`;
    originHost = hostOf(url.host);
  } catch {
    return `Origin "${origin}" is not an origin`;
  }
  if (gate.hosts.has(originHost) && !gate.hosts.has("*")) return null;
  return `Origin "${origin}" is not allowed (add it with --allowed-origins)`;
}
