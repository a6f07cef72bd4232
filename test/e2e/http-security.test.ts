// The HTTP server as an attacker and as a careful operator see it: the bearer token on every
// endpoint (a scan finds nothing open), TLS with a certificate the test makes, Host/Origin checks
// against DNS rebinding, the limits (sessions, idle sessions, jobs, call timeout, destructive rate),
// and a clean stop on SIGTERM in the middle of calls that run probes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { alive, descendants, type HttpServer, runBinary, startHttpServer, testWithBpf, until } from "../helpers.ts";
import { INITIALIZE, MCP_HEADERS } from "../raw-mcp.ts";

const dir = mkdtempSync(join(tmpdir(), "ipcscope-security-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function makeToken(name = "token"): Promise<{ path: string; token: string }> {
  const path = join(dir, name);
  const made = await runBinary(["token", "--out", path]);
  expect(made.code).toBe(0);
  return { path, token: readFileSync(path, "utf8").trim() };
}

async function connect(url: URL, token: string, fetchImpl?: typeof fetch): Promise<Client> {
  const client = new Client({ name: "e2e-security", version: "0" });
  await client.connect(
    new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } }, ...(fetchImpl ? { fetch: fetchImpl } : {}) }),
  );
  return client;
}

/** Lines of the server's log saying a tool ran (invokeTool logs every answer and refusal at debug). */
const toolRuns = (server: HttpServer) => server.stderr().split("\n").filter((line) => / (answered|refused) via /.test(line));

describe("ipcscope token", () => {
  test("prints a strong token, or writes a new 0600 file and refuses to overwrite one", async () => {
    const printed = await runBinary(["token"]);
    expect(printed.code).toBe(0);
    expect(printed.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await runBinary(["token"])).stdout).not.toBe(printed.stdout);
    const { path } = await makeToken("fresh");
    const { statSync } = await import("node:fs");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = await runBinary(["token", "--out", path]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("exists; pass --force");
  });

  test("serve refuses a token file others can read, a short token, and TLS half given", async () => {
    const loose = join(dir, "loose");
    writeFileSync(loose, "a".repeat(40));
    chmodSync(loose, 0o644);
    const refused = await runBinary(["serve", "--http", "--port", "0", "--token-file", loose]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`chmod 600 ${loose}`);
    const short = await runBinary(["serve", "--http", "--port", "0", "--token", "abc"]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("--token: the token is 3 characters long");
    const half = await runBinary(["serve", "--http", "--port", "0", "--tls-cert", loose]);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain("--tls-cert and --tls-key go together");
    const stdio = await runBinary(["serve", "--token-file", loose]);
    expect(stdio.code).toBe(2);
    expect(stdio.stderr).toContain("--token-file applies to HTTP only");
  });
});

describe("with a token", () => {
  let server: HttpServer;
  let token: string;
  let tools: string[];

  beforeAll(async () => {
    const made = await makeToken("serve");
    token = made.token;
    server = await startHttpServer(["--token-file", made.path, "--no-monitor", "--log-level", "debug", "--destructive-rate-limit", "2"]);
    const client = await connect(server.url, token);
    tools = (await client.listTools()).tools.map((tool) => tool.name);
    await client.close();
  });
  afterAll(async () => {
    if (server.proc.exitCode === null) await server.stop();
  });

  test("a scan of every endpoint and method without the token finds nothing open, and no tool runs", async () => {
    const before = toolRuns(server).length;
    const paths = ["/mcp", "/", "/health/../mcp", "/nope", "/.env", ...tools.map((name) => `/${name}`)];
    const methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    const answers: string[] = [];
    for (const path of paths) {
      for (const method of methods) {
        for (const authorization of [undefined, "Bearer wrong-token-of-some-length", `Basic ${btoa(`x:${token}`)}`, `Bearer ${token}x`, "Bearer"]) {
          const response = await fetch(new URL(path, server.url), {
            method,
            headers: { ...MCP_HEADERS, ...(authorization ? { authorization } : {}) },
            body: method === "GET" || method === "OPTIONS" ? undefined : JSON.stringify(path === "/mcp" ? INITIALIZE : {}),
          });
          if (response.status !== 401) answers.push(`${method} ${path} (${authorization ?? "no auth"}) → ${response.status}`);
          else expect(response.headers.get("www-authenticate")).toStartWith('Bearer realm="ipcscope"');
          await response.body?.cancel();
        }
      }
    }
    expect(answers).toEqual([]);
    expect(toolRuns(server).length).toBe(before);
    // /health stays open for load balancers, but tells a stranger only that it is up.
    const health = await fetch(new URL("/health", server.url));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const full = (await (await fetch(new URL("/health", server.url), { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    expect(full).toMatchObject({ status: "ok", name: "ipcscope", transport: "http" });
    // The refusals were logged, but not once per request.
    expect(server.stderr().match(/warn\s+refused/g)?.length ?? 0).toBeLessThanOrEqual(2);
  });

  test("with the right token the SDK client and the REST mirror work; a wrong token says invalid_token", async () => {
    const client = await connect(server.url, token);
    const result = await client.callTool({ name: "get_system_info", arguments: {} });
    expect(result.isError).toBeFalsy();
    await client.close();
    const rest = await fetch(new URL("/get_system_info", server.url), { headers: { authorization: `bearer ${token}` } });
    expect(rest.status).toBe(200);
    const wrong = await fetch(new URL("/get_system_info", server.url), { headers: { authorization: "Bearer not-the-token-at-all-really" } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe('Bearer realm="ipcscope", error="invalid_token"');
  });

  test("Host and Origin from another site get 403 before anything runs; no Origin is fine", async () => {
    const before = toolRuns(server).length;
    const auth = { authorization: `Bearer ${token}` };
    const foreign: Record<string, string>[] = [{ host: "evil.example" }, { host: `evil.example:${server.url.port}` }, { origin: "http://evil.example" }, { origin: "null" }];
    for (const headers of foreign) {
      for (const path of ["/mcp", "/get_system_info", "/health"]) {
        const response = await fetch(new URL(path, server.url), {
          method: path === "/mcp" ? "POST" : "GET",
          headers: { ...MCP_HEADERS, ...auth, ...headers },
          body: path === "/mcp" ? JSON.stringify(INITIALIZE) : undefined,
        });
        expect(`${path} ${JSON.stringify(headers)} → ${response.status}`).toBe(`${path} ${JSON.stringify(headers)} → 403`);
        expect(((await response.json()) as { error: string }).error).toStartWith("forbidden: ");
      }
    }
    expect(toolRuns(server).length).toBe(before);
    const sameOrigin = await fetch(new URL("/get_system_info", server.url), { headers: { ...auth, origin: `http://127.0.0.1:${server.url.port}` } });
    expect(sameOrigin.status).toBe(200);
    const localhost = await fetch(new URL("/get_system_info", server.url), { headers: { ...auth, host: `localhost:${server.url.port}` } });
    expect(localhost.status).toBe(200);
  });

  test("destructive tools: GET is refused on the REST mirror, and calls are rate limited (429 with Retry-After)", async () => {
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const get = await fetch(new URL("/send_signal_to_pid?pid=1&signal=TERM", server.url), { headers });
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 3; i++) {
      const response = await fetch(new URL("/send_signal_to_pid", server.url), { method: "POST", headers, body: JSON.stringify({ pid: process.pid }) });
      statuses.push(response.status);
      if (response.status === 429) {
        retryAfter = response.headers.get("retry-after");
        expect(((await response.json()) as { error: string }).error).toContain("--destructive-rate-limit");
      } else await response.body?.cancel();
    }
    // Signals are off here: the first two are refused by the policy (400), the third by the rate.
    expect(statuses).toEqual([400, 400, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    // The rate is the server's, whatever the transport: MCP is limited too.
    const client = await connect(server.url, token);
    const result = await client.callTool({ name: "send_signal_to_pid", arguments: { pid: process.pid } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain("rate limit reached");
    await client.close();
  });
});

describe("TLS", () => {
  test("serves HTTPS with a self-signed certificate; the token is still required", async () => {
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    const openssl = Bun.spawnSync([
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert,
    ], { stderr: "pipe" });
    expect(openssl.exitCode).toBe(0);
    const made = await makeToken("tls");
    const server = await startHttpServer(["--token-file", made.path, "--tls-cert", cert, "--tls-key", key, "--no-monitor"]);
    try {
      expect(server.url.protocol).toBe("https:");
      const ca = readFileSync(cert, "utf8");
      const trusting = ((url: string | URL | Request, init?: RequestInit) => fetch(url, { ...init, tls: { ca } } as RequestInit)) as typeof fetch;
      const unauthenticated = await trusting(new URL("/get_system_info", server.url));
      expect(unauthenticated.status).toBe(401);
      const client = await connect(server.url, made.token, trusting);
      const result = await client.callTool({ name: "get_system_info", arguments: {} });
      expect(result.isError).toBeFalsy();
      await client.close();
      // A client that does not trust the certificate cannot talk to it at all.
      expect(fetch(new URL("/health", server.url))).rejects.toThrow();
      // Nor can plain HTTP on the same port.
      const plain = new URL("/health", server.url);
      plain.protocol = "http:";
      const answer = await fetch(plain).then((response) => response.status, () => "refused");
      expect(answer).not.toBe(200);
      expect(await server.stop()).toBe(0);
    } finally {
      if (server.proc.exitCode === null) server.proc.kill("SIGKILL");
    }
  });

  test("a file that is not PEM is refused at start, naming the flag", async () => {
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "not a certificate\n");
    const { code, stderr } = await runBinary(["serve", "--http", "--port", "0", "--tls-cert", junk, "--tls-key", junk]);
    expect(code).toBe(2);
    expect(stderr).toContain(`--tls-cert: "${junk}" is not a PEM file`);
  });
});

describe("limits", () => {
  test("sessions: more than --max-sessions are refused with 503; idle ones close after --session-idle-timeout", async () => {
    const server = await startHttpServer(["--max-sessions", "2", "--session-idle-timeout", "2", "--no-monitor"]);
    try {
      const open = async () => fetch(server.url, { method: "POST", headers: MCP_HEADERS, body: JSON.stringify(INITIALIZE) });
      const first = await open();
      const second = await open();
      expect([first.status, second.status]).toEqual([200, 200]);
      const third = await open();
      expect(third.status).toBe(503);
      expect(((await third.json()) as { error: { message: string } }).error.message).toContain("--max-sessions 2");
      const id = first.headers.get("mcp-session-id")!;
      await Promise.all([first.body?.cancel(), second.body?.cancel()]);
      // Idle for more than 2 s: the sweeper closes both (watched on /health, which does not touch them).
      await until("the idle sessions to close", async () => {
        const health = (await (await fetch(new URL("/health", server.url))).json()) as { sessions: number };
        return health.sessions === 0 ? true : undefined;
      }, 10_000, 250);
      const gone = await fetch(server.url, { method: "POST", headers: { ...MCP_HEADERS, "mcp-session-id": id }, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) });
      expect(gone.status).toBe(404);
      const later = await open();
      expect(later.status).toBe(200);
      await later.body?.cancel();
    } finally {
      await server.stop();
    }
  });

  testWithBpf("a call over --call-timeout is cancelled with its probe; probe windows beyond --max-jobs are refused", async () => {
    const server = await startHttpServer(["--call-timeout", "4", "--max-jobs", "1", "--no-monitor"]);
    const client = await connect(server.url, "unused");
    try {
      const long = client.callTool({ name: "get_tcp_health", arguments: { duration: 30 } }, undefined, { timeout: 60_000 });
      const probe = await until("the window's bpftrace", () => descendants(server.proc.pid).find((child) => child.comm === "bpftrace")?.pid, 15_000);
      // The one slot is taken: a second window, inline or as a job, is refused at once.
      for (const background of [false, true]) {
        const refused = await client.callTool({ name: "get_packet_drop_summary", arguments: { duration: 2, background } });
        expect(refused.isError).toBe(true);
        expect(JSON.stringify(refused.content)).toContain("(at most 1, --max-jobs)");
      }
      const result = await long;
      expect(result.isError).toBe(true);
      expect(JSON.stringify(result.content)).toContain("cancelled after 4 s (the server's --call-timeout)");
      await until("the probe to end", () => (alive(probe) ? undefined : true), 5_000);
      // The slot is free again.
      const job = await client.callTool({ name: "get_packet_drop_summary", arguments: { duration: 1, background: true } });
      expect(job.isError).toBeFalsy();
    } finally {
      await client.close();
      expect(await server.stop()).toBe(0);
    }
  });
});

describe("graceful shutdown", () => {
  testWithBpf("SIGTERM during a live capture and a probe window: both calls answer, the server exits 0, no probe is left", async () => {
    const server = await startHttpServer();
    const client = await connect(server.url, "unused");
    const capture = client.callTool({ name: "get_live_network_events", arguments: { duration: 40 } }, undefined, { timeout: 60_000 });
    const window = client.callTool({ name: "get_tcp_health", arguments: { duration: 40 } }, undefined, { timeout: 60_000 });
    // Both the monitor's probe and the window's are running before the signal.
    const probes = await until("two bpftrace", () => {
      const found = descendants(server.proc.pid).filter((child) => child.comm === "bpftrace");
      return found.length >= 2 ? found.map((child) => child.pid) : undefined;
    }, 30_000);
    await Bun.sleep(500);
    const started = Date.now();
    server.proc.kill("SIGTERM");
    const [captured, windowed] = await Promise.all([capture, window]);
    // Cancelled calls answer with what they had (a capture's events so far, a window's counts) or say why.
    for (const result of [captured, windowed]) expect(result.content).toBeDefined();
    expect(await server.proc.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    for (const pid of probes) expect(alive(pid)).toBe(false);
    expect(server.stderr()).toContain("SIGTERM received: cancelling calls");
    await client.close().catch(() => {});
  });
});
