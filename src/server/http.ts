// Streamable HTTP on Bun.serve: /mcp (sessions, one McpServer each), GET /health, and the REST
// mirror of every tool (GET /<tool>?k=v or POST /<tool> with a JSON body).
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { logger } from "../logger.ts";
import { invokeTool } from "../tools/index.ts";
import type { ToolDefinition } from "../tools/types.ts";
import { health } from "./health.ts";
import { checkBody } from "./jsonrpc.ts";
import { createMcpServer } from "./mcp.ts";
import { coerceQuery } from "./rest.ts";

/** JSON-RPC messages are small; 1 MiB is far above any real request and bounds memory per request. */
export const MAX_BODY_BYTES = 1024 * 1024;
/**
 * Bun closes a connection idle this long (seconds, 255 at most). SSE streams send a keep-alive
 * comment every 15 s, so anything above that keeps them open; 255 also covers long tool calls.
 */
const IDLE_TIMEOUT_SECONDS = 255;
/**
 * A session with no request for this long is closed. Clients often never send DELETE (Gemini
 * CLI's `mcp list` opens a session per run and walks away), so without this they pile up.
 */
export const SESSION_IDLE_MS = 30 * 60 * 1000;
const SESSION_SWEEP_MS = 60 * 1000;

export interface HttpOptions {
  host: string;
  port: number;
  tools: readonly ToolDefinition[];
}

interface Session {
  transport: WebStandardStreamableHTTPServerTransport;
  server: McpServer;
  lastSeen: number;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers });

const jsonRpcError = (status: number, code: number, message: string) =>
  json(status, { jsonrpc: "2.0", error: { code, message }, id: null });

class BodyError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Reads a JSON body, refusing more than MAX_BODY_BYTES whatever Content-Length claims. */
async function readJsonBody(request: Request): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new BodyError(413, `request body of ${declared} bytes exceeds the limit of ${MAX_BODY_BYTES}`);
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > MAX_BODY_BYTES) throw new BodyError(413, `request body exceeds the limit of ${MAX_BODY_BYTES} bytes`);
  if (bytes.byteLength === 0) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new BodyError(400, `request body is not valid JSON: ${(error as Error).message}`);
  }
}

const OPENING_COMMENT = new TextEncoder().encode(": stream open\n\n");

/**
 * Bun sends a streamed response's headers only with its first body bytes, and the SDK writes
 * nothing on a GET stream until an event or the 15 s keep-alive: clients would wait that long
 * for the 200. An SSE comment first (ignored by every SSE parser) sends the headers at once.
 */
function openEventStream(response: Response): Response {
  if (!response.body || !response.headers.get("content-type")?.includes("text/event-stream")) return response;
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(OPENING_COMMENT);
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

export function startHttpServer(options: HttpOptions) {
  const sessions = new Map<string, Session>();
  const toolsByName = new Map(options.tools.map((tool) => [tool.name, tool]));

  async function handleMcp(request: Request): Promise<Response> {
    const sessionId = request.headers.get("mcp-session-id");
    // Every POST body is read and checked here, with or without a session: a wrong shape is -32600
    // as on stdio (the SDK would say -32700), and the body limit holds for sessions too.
    let body: unknown;
    if (request.method === "POST") {
      try {
        body = await readJsonBody(request);
      } catch (error) {
        if (error instanceof BodyError) return jsonRpcError(error.status, error.status === 413 ? -32000 : -32700, error.message);
        throw error;
      }
      const invalid = checkBody(body);
      if (invalid) return json(400, invalid);
    }
    if (sessionId) {
      const session = sessions.get(sessionId);
      if (!session) return jsonRpcError(404, -32001, `session ${sessionId} not found (expired or closed): initialize a new one`);
      session.lastSeen = Date.now();
      return openEventStream(await session.transport.handleRequest(request, { parsedBody: body }));
    }
    if (request.method !== "POST") {
      return jsonRpcError(400, -32000, `${request.method} /mcp needs an Mcp-Session-Id header; start with a POST initialize`);
    }
    const initializes = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
    if (!initializes) return jsonRpcError(400, -32000, "no Mcp-Session-Id header: the first request of a session must be initialize");

    const server = createMcpServer({ tools: options.tools, via: "http" });
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, lastSeen: Date.now() });
        logger.debug(`MCP session ${id} opened (${sessions.size} open)`);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId && sessions.delete(transport.sessionId)) {
        logger.debug(`MCP session ${transport.sessionId} closed (${sessions.size} open)`);
      }
    };
    await server.connect(transport);
    return openEventStream(await transport.handleRequest(request, { parsedBody: body }));
  }

  async function handleRest(request: Request, tool: ToolDefinition, url: URL): Promise<Response> {
    let args: unknown;
    if (request.method === "GET") {
      args = coerceQuery(tool.input, url.searchParams);
    } else if (request.method === "POST") {
      try {
        args = (await readJsonBody(request)) ?? {};
      } catch (error) {
        if (error instanceof BodyError) return json(error.status, { error: error.message });
        throw error;
      }
    } else {
      return json(405, { error: `${request.method} is not allowed on /${tool.name}: use GET with query parameters or POST with a JSON body` }, { allow: "GET, POST" });
    }
    const outcome = await invokeTool(tool, args, { signal: request.signal, log: logger, via: "rest" });
    return outcome.ok ? json(200, outcome.result) : json(400, { error: outcome.error, tool: tool.name });
  }

  const server = Bun.serve({
    hostname: options.host,
    port: options.port,
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    async fetch(request) {
      const url = new URL(request.url);
      try {
        if (url.pathname === "/mcp") return await handleMcp(request);
        if (url.pathname === "/health" && request.method === "GET") {
          return json(200, health({ transport: "http", sessions: sessions.size, tools: options.tools.length }));
        }
        const tool = toolsByName.get(url.pathname.slice(1));
        if (tool) return await handleRest(request, tool, url);
        return json(404, {
          error: `no endpoint ${request.method} ${url.pathname}`,
          endpoints: ["/mcp", "/health", ...options.tools.map((t) => `/${t.name}`)],
        });
      } catch (error) {
        logger.error(`${request.method} ${url.pathname} failed:`, error);
        return json(500, { error: "internal error; see the server log" });
      }
    },
    error(error) {
      logger.error("HTTP server error:", error);
      return json(500, { error: "internal error; see the server log" });
    },
  });

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - SESSION_IDLE_MS;
    for (const [id, session] of sessions) {
      if (session.lastSeen < cutoff) {
        logger.debug(`MCP session ${id} idle for ${SESSION_IDLE_MS / 60000} min: closing it`);
        void session.transport.close();
      }
    }
  }, SESSION_SWEEP_MS);
  sweeper.unref();

  return {
    url: server.url,
    sessions,
    async stop(): Promise<void> {
      clearInterval(sweeper);
      await Promise.allSettled([...sessions.values()].map((session) => session.transport.close()));
      await server.stop(true);
    },
  };
}
