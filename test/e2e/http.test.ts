// The compiled binary over Streamable HTTP: the SDK client, raw requests for the edges, /health,
// the REST mirror, and a clean stop on SIGTERM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { release } from "node:os";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpServer, startHttpServer } from "../helpers.ts";
import { INITIALIZE, MCP_HEADERS } from "../raw-mcp.ts";

describe("ipcscope serve --http", () => {
  let server: HttpServer;
  const base = () => new URL("/", server.url).toString().replace(/\/$/, "");

  beforeAll(async () => {
    server = await startHttpServer(["--log-level", "debug"]);
  });
  afterAll(async () => {
    if (server.proc.exitCode === null) await server.stop();
  });

  test("the SDK client initializes, lists and calls tools", async () => {
    const client = new Client({ name: "e2e-http", version: "0" });
    const transport = new StreamableHTTPClientTransport(server.url);
    await client.connect(transport);
    expect(transport.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(client.getServerVersion()?.name).toBe("ipcscope");
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toContain("get_system_info");
    const result = await client.callTool({ name: "get_system_info", arguments: {} });
    expect((result.structuredContent as { host: { kernel_release: string } }).host.kernel_release).toBe(release());
    await transport.terminateSession();
    await client.close();
  });

  test("GET /mcp with a session opens an SSE stream (Gemini CLI does this)", async () => {
    const init = await fetch(server.url, { method: "POST", headers: MCP_HEADERS, body: JSON.stringify(INITIALIZE) });
    expect(init.status).toBe(200);
    const sessionId = init.headers.get("mcp-session-id")!;
    await init.text();
    await fetch(server.url, {
      method: "POST",
      headers: { ...MCP_HEADERS, "mcp-session-id": sessionId },
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    });
    const controller = new AbortController();
    const sse = await fetch(server.url, {
      headers: { accept: "text/event-stream", "mcp-session-id": sessionId },
      signal: controller.signal,
    });
    expect(sse.status).toBe(200);
    expect(sse.headers.get("content-type")).toContain("text/event-stream");
    controller.abort();
    const closed = await fetch(server.url, { method: "DELETE", headers: { "mcp-session-id": sessionId } });
    expect(closed.status).toBe(200);
    // The session is gone: using it again is a 404, which tells clients to start over.
    const stale = await fetch(server.url, {
      method: "POST",
      headers: { ...MCP_HEADERS, "mcp-session-id": sessionId },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }),
    });
    expect(stale.status).toBe(404);
    expect((await stale.json() as any).error.message).toContain(`session ${sessionId} not found`);
  });

  test("requests without a session must start with initialize", async () => {
    const get = await fetch(server.url, { headers: { accept: "text/event-stream" } });
    expect(get.status).toBe(400);
    expect((await get.json() as any).error.message).toContain("Mcp-Session-Id");
    const ping = await fetch(server.url, { method: "POST", headers: MCP_HEADERS, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }) });
    expect(ping.status).toBe(400);
    expect((await ping.json() as any).error.message).toContain("must be initialize");
  });

  test("malformed JSON is a JSON-RPC parse error, an oversized body is 413", async () => {
    const bad = await fetch(server.url, { method: "POST", headers: MCP_HEADERS, body: "{not json" });
    expect(bad.status).toBe(400);
    expect((await bad.json() as any).error.code).toBe(-32700);
    const huge = await fetch(server.url, { method: "POST", headers: MCP_HEADERS, body: "x".repeat(2 * 1024 * 1024) });
    expect(huge.status).toBe(413);
  });

  test("GET /health answers version, uptime and background work", async () => {
    const response = await fetch(`${base()}/health`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({ status: "ok", name: "ipcscope", transport: "http", background: {} });
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof body.uptime_seconds).toBe("number");
  });

  test("the REST mirror answers GET and POST with the tool's structured result", async () => {
    const get = await fetch(`${base()}/get_system_info`);
    expect(get.status).toBe(200);
    expect((await get.json() as any).host.kernel_release).toBe(release());
    const post = await fetch(`${base()}/get_system_info`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(post.status).toBe(200);
    expect((await post.json() as any).ipcscope.pid).toBe(server.proc.pid);
  });

  test("the REST mirror names a bad parameter and its value, and unknown paths list the endpoints", async () => {
    const bad = await fetch(`${base()}/get_system_info?verify_probes=maybe`);
    expect(bad.status).toBe(400);
    expect((await bad.json() as any).error).toBe('invalid arguments for get_system_info: verify_probes: expected boolean, got "maybe"');
    const typo = await fetch(`${base()}/get_system_info?verfy_probes=1`);
    expect((await typo.json() as any).error).toContain("unknown parameter(s) verfy_probes");
    const missing = await fetch(`${base()}/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json() as any).endpoints).toContain("/get_system_info");
    const put = await fetch(`${base()}/get_system_info`, { method: "PUT" });
    expect(put.status).toBe(405);
  });

  test("SIGTERM closes the sessions and exits 0", async () => {
    const client = new Client({ name: "e2e-http-open", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(server.url));
    const code = await server.stop();
    expect(code).toBe(0);
    expect(server.stderr()).toContain("SIGTERM received");
    await client.close().catch(() => {});
  });
});
