// Streamable HTTP on Bun.serve: /mcp (sessions, one McpServer each), GET /health, and the REST
// mirror of every tool (GET /<tool>?k=v or POST /<tool> with a JSON body). Every request passes
// the Host/Origin allow-lists (403) and then the bearer token (401) before anything else runs.
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { logger } from "../logger.ts";
import { drained, runningCalls } from "../limits.ts";
import { invokeTool } from "../tools/index.ts";
import type { ToolDefinition } from "../tools/types.ts";
import { checkBearer, refuseHostOrOrigin, type RequestGate } from "./auth.ts";
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
export const MAX_SESSIONS = 64;
/** How long shutdown waits for running calls to answer after cancelling them. */
const SHUTDOWN_GRACE_MS = 5_000;
/** Refused requests (a scanner, a wrong token) are logged at most this often, with a count. */
const REFUSAL_WARN_EVERY_MS = 60_000;

export interface HttpOptions {
  host: string;
  port: number;
  tools: readonly ToolDefinition[];
  /** The bearer token every request but GET /health needs; null: none (loopback or --insecure-no-auth). */
  token: string | null;
  gate: RequestGate;
  /** PEM certificate chain and key: served as HTTPS by Bun itself. */
  tls?: { cert: string; key: string };
  maxSessions?: number;
  sessionIdleMs?: number;
}

interface Session {
  transport: WebStandardStreamableHTTPServerTransport;
  server: McpServer;
  lastSeen: number;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers });

const jsonRpcError = (status: number, code: number, message: string, headers: Record<string, string> = {}) =>
  json(status, { jsonrpc: "2.0", error: { code, message }, id: null }, headers);

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

function refusalLogger() {
  let last = 0;
  let quiet = 0;
  return (message: string) => {
    const now = Date.now();
    if (now - last < REFUSAL_WARN_EVERY_MS) {
      quiet++;
      return;
    }
    logger.warn(`${message}${quiet > 0 ? ` (and ${quiet} more refused requests since the last warning)` : ""}`);
    last = now;
    quiet = 0;
  };
}

export function startHttpServer(options: HttpOptions) {
  const sessions = new Map<string, Session>();
  const toolsByName = new Map(options.tools.map((tool) => [tool.name, tool]));
  const maxSessions = options.maxSessions ?? MAX_SESSIONS;
  const sessionIdleMs = options.sessionIdleMs ?? SESSION_IDLE_MS;
  const warnRefused = refusalLogger();
  /** Sessions being initialized: counted against the limit before they are in `sessions`. */
  let opening = 0;
  let stopping = false;

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
    if (sessions.size + opening >= maxSessions) {
      warnRefused(`refused a new MCP session: ${sessions.size} open (--max-sessions ${maxSessions})`);
      return jsonRpcError(
        503,
        -32000,
        `${sessions.size} sessions are open, the most this server allows (--max-sessions ${maxSessions}): close one (DELETE /mcp) or retry later; idle sessions close after ${sessionIdleMs / 1000} s`,
        { "retry-after": "60" },
      );
    }

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
    opening++;
    try {
      await server.connect(transport);
      return openEventStream(await transport.handleRequest(request, { parsedBody: body }));
    } finally {
      opening--;
    }
  }

  async function handleRest(request: Request, tool: ToolDefinition, url: URL): Promise<Response> {
    let args: unknown;
    if (request.method === "GET" && tool.annotations.destructiveHint) {
      // A GET can be sent by a link, an <img>, a prefetch: never let one change the host.
      return json(405, { error: `GET is not allowed on /${tool.name}, which changes the host: use POST with a JSON body` }, { allow: "POST" });
    }
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
    if (outcome.ok) return json(200, outcome.result);
    if (outcome.retryAfterS !== undefined) return json(429, { error: outcome.error, tool: tool.name }, { "retry-after": String(outcome.retryAfterS) });
    return json(400, { error: outcome.error, tool: tool.name });
  }

  /** A refusal for a request without the right token; the client learns the scheme, nothing more. */
  function unauthorized(request: Request, why: "missing" | "invalid", from: string): Response {
    warnRefused(`refused ${request.method} ${new URL(request.url).pathname} from ${from}: ${why === "missing" ? "no bearer token" : "wrong bearer token"}`);
    const challenge = why === "missing" ? 'Bearer realm="ipcscope"' : 'Bearer realm="ipcscope", error="invalid_token"';
    const error = why === "missing" ? "authentication required: send Authorization: Bearer <token>" : "the bearer token is not valid";
    return json(401, { error }, { "www-authenticate": challenge });
  }

  const server = Bun.serve({
    hostname: options.host,
    port: options.port,
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
    async fetch(request, bun) {
      const url = new URL(request.url);
      const from = bun.requestIP(request)?.address ?? "unknown";
      try {
        const refused = refuseHostOrOrigin(options.gate, request.headers.get("host"), request.headers.get("origin"));
        if (refused) {
          warnRefused(`refused ${request.method} ${url.pathname} from ${from}: ${refused}`);
          return json(403, { error: `forbidden: ${refused}` });
        }
        const auth = options.token === null ? "ok" : checkBearer(request.headers.get("authorization"), options.token);
        if (url.pathname === "/health" && request.method === "GET") {
          // Open for load balancers and probes, but only a caller with the token learns more than "ok".
          if (auth !== "ok") return json(200, { status: stopping ? "stopping" : "ok" });
          return json(200, { ...health({ transport: "http", sessions: sessions.size, tools: options.tools.length }), ...(stopping ? { status: "stopping" } : {}) });
        }
        if (auth !== "ok") return unauthorized(request, auth, from);
        if (stopping) return json(503, { error: "the server is shutting down" }, { "retry-after": "5" });
        if (url.pathname === "/mcp") return await handleMcp(request);
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
    const cutoff = Date.now() - sessionIdleMs;
    for (const [id, session] of sessions) {
      if (session.lastSeen < cutoff) {
        logger.debug(`MCP session ${id} idle for ${sessionIdleMs / 1000} s: closing it`);
        void session.transport.close();
      }
    }
  }, Math.min(60_000, Math.max(1_000, sessionIdleMs / 4)));
  sweeper.unref();

  return {
    url: server.url,
    sessions,
    /**
     * Refuses new requests, lets the calls (already cancelled by cancelAllCalls) send their answers,
     * closes the sessions and then the listener.
     */
    async stop(): Promise<void> {
      stopping = true;
      clearInterval(sweeper);
      await drained(runningCalls, SHUTDOWN_GRACE_MS);
      await Promise.allSettled([...sessions.values()].map((session) => session.transport.close()));
      // Answers already written get out; a connection that stays open is cut after a moment.
      await Promise.race([server.stop(false), Bun.sleep(1_000)]);
      await server.stop(true);
    },
  };
}
