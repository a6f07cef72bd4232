// Token sources and checks, and the Host/Origin allow-lists, without a server.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { allowedHosts, checkBearer, generateToken, hostOf, parseOrigins, refuseHostOrOrigin, resolveToken } from "../../../src/server/auth.ts";

const dir = mkdtempSync(join(tmpdir(), "ipcscope-auth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN = "0123456789abcdefghij";

describe("tokens", () => {
  test("generated tokens are 43 url-safe characters (256 bits) and differ", () => {
    const tokens = new Set(Array.from({ length: 100 }, generateToken));
    expect(tokens.size).toBe(100);
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test("the file wins over --token, which wins over IPCSCOPE_TOKEN; nothing given is null", () => {
    const file = join(dir, "t");
    writeFileSync(file, `${TOKEN}-file\n`, { mode: 0o600 });
    expect(resolveToken({ tokenFile: file, token: `${TOKEN}-flag`, env: `${TOKEN}-env` })).toEqual({ token: `${TOKEN}-file`, from: `--token-file ${file}` });
    expect(resolveToken({ token: `${TOKEN}-flag`, env: `${TOKEN}-env` })).toEqual({ token: `${TOKEN}-flag`, from: "--token" });
    expect(resolveToken({ env: `${TOKEN}-env` })).toEqual({ token: `${TOKEN}-env`, from: "IPCSCOPE_TOKEN" });
    expect(resolveToken({ env: "" })).toBeNull();
    expect(resolveToken({})).toBeNull();
  });

  test("refused: a group/world-readable file, a missing file, a short token, white space inside", () => {
    const open = join(dir, "open");
    writeFileSync(open, TOKEN);
    chmodSync(open, 0o640);
    expect(() => resolveToken({ tokenFile: open })).toThrow(`readable by other users (mode 640); run: chmod 600 ${open}`);
    expect(() => resolveToken({ tokenFile: join(dir, "none") })).toThrow("make one with: ipcscope token --out");
    expect(() => resolveToken({ token: "short" })).toThrow("--token: the token is 5 characters long; use at least 16");
    expect(() => resolveToken({ env: `${TOKEN} ${TOKEN}` })).toThrow("IPCSCOPE_TOKEN: the token contains white space");
  });

  test("checkBearer: missing, wrong scheme, wrong token, right token in any case of 'Bearer'", () => {
    expect(checkBearer(null, TOKEN)).toBe("missing");
    expect(checkBearer(`Basic ${TOKEN}`, TOKEN)).toBe("invalid");
    expect(checkBearer("Bearer", TOKEN)).toBe("invalid");
    expect(checkBearer(`Bearer ${TOKEN}x`, TOKEN)).toBe("invalid");
    expect(checkBearer(`Bearer ${TOKEN.slice(1)}`, TOKEN)).toBe("invalid");
    expect(checkBearer(`Bearer ${TOKEN} extra`, TOKEN)).toBe("invalid");
    expect(checkBearer(`Bearer ${TOKEN}`, TOKEN)).toBe("ok");
    expect(checkBearer(`bearer  ${TOKEN} `, TOKEN)).toBe("ok");
  });
});

describe("Host and Origin", () => {
  test("hostOf strips ports and IPv6 brackets", () => {
    expect(hostOf("Example.COM:8000")).toBe("example.com");
    expect(hostOf("[::1]:8000")).toBe("::1");
    expect(hostOf("::1")).toBe("::1");
    expect(hostOf("10.0.0.1")).toBe("10.0.0.1");
  });

  test("defaults: the bind address, loopback names, this host's name; extra names added", () => {
    const hosts = allowedHosts("10.1.2.3", ["web1.example.com:8443"]);
    for (const name of ["10.1.2.3", "localhost", "127.0.0.1", "::1", hostname().toLowerCase(), "web1.example.com"]) expect(hosts.has(name)).toBe(true);
    expect(hosts.has("evil.example")).toBe(false);
    // Bound to every address: every address of this host is a name clients may use.
    expect(allowedHosts("0.0.0.0", []).size).toBeGreaterThan(allowedHosts("127.0.0.1", []).size - 1);
  });

  test("refusals name the header; no Origin is allowed; allowed-hosts' origins pass", () => {
    const gate = { hosts: allowedHosts("127.0.0.1", []), origins: parseOrigins(["https://console.example.com"]) };
    expect(refuseHostOrOrigin(gate, "127.0.0.1:8000", null)).toBeNull();
    expect(refuseHostOrOrigin(gate, "[::1]:8000", null)).toBeNull();
    expect(refuseHostOrOrigin(gate, "evil.example:8000", null)).toContain('Host "evil.example:8000" is not one of this server\'s names');
    expect(refuseHostOrOrigin(gate, null, null)).toBe("the request has no Host header");
    expect(refuseHostOrOrigin(gate, "localhost:8000", "http://localhost:8000")).toBeNull();
    expect(refuseHostOrOrigin(gate, "localhost:8000", "https://console.example.com")).toBeNull();
    expect(refuseHostOrOrigin(gate, "localhost:8000", "http://evil.example")).toContain("--allowed-origins");
    expect(refuseHostOrOrigin(gate, "localhost:8000", "null")).toContain("is not an origin");
    expect(refuseHostOrOrigin(gate, "localhost:8000", "file:///tmp/page.html")).toContain("opaque");
    expect(refuseHostOrOrigin({ hosts: new Set(["*"]), origins: [] }, "anything.example", null)).toBeNull();
  });

  test("--allowed-origins entries must be origins", () => {
    expect(parseOrigins(["https://a.example:8443/path", "*"])).toEqual(["https://a.example:8443", "*"]);
    expect(() => parseOrigins(["a.example"])).toThrow('--allowed-origins: "a.example" is not an origin');
  });
});
