// The client side of `ipcscope call` and `ipcscope shell`: an SDK Client over Streamable HTTP to
// --server URL (with the bearer token), or over stdio to a local `ipcscope serve` it starts itself.
// Failures become the errors whose exit codes scripts rely on: ConnectError (3), AuthError (4).
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { type CallToolResult, ErrorCode, McpError, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { AuthError, ConnectError, UsageError } from "../errors.ts";
import { VERSION } from "../version.ts";

/** Long enough for a local server to start and a remote one across the world; a dead host fails sooner (refused). */
export const CONNECT_TIMEOUT_MS = 15_000;
/** The SDK's default per request; windowed tools get their window on top (callTimeoutMs). */
const BASE_CALL_TIMEOUT_MS = 60_000;

export interface ConnectOptions {
  /** The server's MCP URL (http://HOST:8000/mcp; a bare http://HOST:8000 means /mcp). Absent: a local server over stdio. */
  server?: string;
  /** Bearer token for --server, and where it came from (for messages). */
  token?: { token: string; from: string } | null;
  /** Local server only: --toolsets to pass on. */
  toolsets?: string;
  /** Local server only: its log level on our stderr (default error: a person wants answers, and the results say their source). */
  logLevel?: string;
  /** Local server only: record connection events from start (the shell) or only once an events tool asks (one call). */
  monitor?: boolean;
}

export interface Session {
  client: Client;
  /** Where we are connected, for messages: the URL, or "the local server". */
  where: string;
  tools: Tool[];
  /** Calls a tool; transport and authentication failures throw ConnectError/AuthError, tool failures come back as isError. */
  call(name: string, args: Record<string, unknown>, options?: { signal?: AbortSignal }): Promise<CallToolResult>;
  close(): Promise<void>;
}

/** --server's text as the MCP endpoint URL; refuses what is not http(s). */
export function serverUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new UsageError(`--server: "${text}" is not a URL; give one like http://127.0.0.1:8000/mcp`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--server: "${text}" is not an http(s) URL; give one like http://127.0.0.1:8000/mcp`);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/mcp";
  return url;
}

/**
 * How to start this same program as a stdio server. In the compiled binary the program is
 * process.execPath itself (its script lives in Bun's virtual /$bunfs); from source it is Bun
 * running src/main.ts.
 */
export function localServerCommand(): { command: string; args: string[] } {
  if (import.meta.path.startsWith("/$bunfs/")) return { command: process.execPath, args: ["serve"] };
  return { command: process.execPath, args: [join(import.meta.dir, "..", "main.ts"), "serve"] };
}

/** A window the server will wait out (duration, timeout, wait_seconds) is added to the request timeout. */
export function callTimeoutMs(args: Record<string, unknown>): number {
  const waits = [args.duration, args.timeout, args.wait_seconds].filter((value): value is number => typeof value === "number" && value > 0);
  return BASE_CALL_TIMEOUT_MS + 1000 * Math.max(0, ...waits);
}

/** The server's own words from an HTTP error ("Error POSTing to endpoint: {json}"), if it gave any. */
function httpDetail(error: Error): string {
  const text = error.message.replace(/^(Streamable HTTP error: )?(Error POSTing to endpoint|Failed to open SSE stream): ?/, "").trim();
  try {
    const body = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    const message = typeof body.error === "string" ? body.error : (body.error?.message ?? body.message);
    if (message) return message;
  } catch {
    // Not JSON: the text as it came.
  }
  return text;
}

/** Any failure to talk to the server as the error with the right exit code and a message saying what to do. */
export function explainFailure(error: unknown, where: string, options: { token?: ConnectOptions["token"]; local: boolean; timeoutMs?: number }): Error {
  if (error instanceof UsageError || error instanceof ConnectError || error instanceof AuthError) return error;
  if (error instanceof StreamableHTTPError || (error instanceof Error && typeof (error as { code?: unknown }).code === "number" && /HTTP|POSTing|SSE/.test(error.message))) {
    const status = (error as StreamableHTTPError).code ?? 0;
    const detail = httpDetail(error as Error);
    if (status === 401) {
      return new AuthError(
        options.token
          ? `${where} refused the token from ${options.token.from} (HTTP 401${detail ? `: ${detail}` : ""}); check that it is the token the server was started with`
          : `${where} wants a token (HTTP 401): pass --token-file PATH (the file the server was given), --token VALUE or IPCSCOPE_TOKEN`,
      );
    }
    if (status === 403) return new AuthError(`${where} refused access (HTTP 403)${detail ? `: ${detail}` : ""}`);
    if (status === 404) return new ConnectError(`${where}: HTTP 404${detail ? ` (${detail})` : ""}; the MCP endpoint of ipcscope serve --http is http://HOST:PORT/mcp`);
    return new ConnectError(`${where} answered HTTP ${status}${detail ? `: ${detail}` : ""}`);
  }
  if (error instanceof McpError) {
    if (error.code === ErrorCode.ConnectionClosed) {
      return new ConnectError(options.local ? "the local server (ipcscope serve) exited; its messages, if any, are above" : `${where} closed the connection`);
    }
    if (error.code === ErrorCode.RequestTimeout) {
      return new ConnectError(`${where} did not answer within ${Math.round((options.timeoutMs ?? CONNECT_TIMEOUT_MS) / 1000)} s`);
    }
    return error;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z]+$|^Connection|^Unable/.test(code)) {
    const hint = code === "ENOTFOUND" ? "check the host name" : code === "ECONNREFUSED" ? "is `ipcscope serve --http` running there, on that port?" : "is the server up and reachable?";
    return new ConnectError(`cannot reach ${where} (${(error as Error).message}); ${hint}`);
  }
  if (error instanceof Error && /fetch failed|socket|network|Unable to connect|ECONN/i.test(error.message)) {
    return new ConnectError(`cannot reach ${where} (${error.message})`);
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Connects, initializes and lists the tools; the session is reused for every call after. */
export async function connect(options: ConnectOptions): Promise<Session> {
  const local = options.server === undefined;
  let transport: Transport;
  let where: string;
  if (options.server !== undefined) {
    const url = serverUrl(options.server);
    where = url.toString();
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token.token}`;
    transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  } else {
    where = "the local server";
    const { command, args } = localServerCommand();
    args.push("--log-level", options.logLevel ?? "error");
    if (options.toolsets !== undefined) args.push("--toolsets", options.toolsets);
    if (options.monitor === false) args.push("--no-monitor");
    const env = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
    transport = new StdioClientTransport({ command, args, env, stderr: "inherit" });
  }
  const client = new Client({ name: "ipcscope-cli", version: VERSION });
  // Background transport trouble (an SSE stream that drops) surfaces on the next call; say nothing now.
  client.onerror = () => {};
  const explain = (error: unknown, timeoutMs?: number) => explainFailure(error, where, { token: options.token, local, timeoutMs });
  try {
    await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
  } catch (error) {
    await client.close().catch(() => {});
    throw explain(error);
  }
  const tools: Tool[] = [];
  try {
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: CONNECT_TIMEOUT_MS });
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  } catch (error) {
    await client.close().catch(() => {});
    throw explain(error);
  }
  return {
    client,
    where,
    tools,
    async call(name, args, callOptions = {}) {
      const timeout = callTimeoutMs(args);
      try {
        return (await client.callTool({ name, arguments: args }, undefined, { signal: callOptions.signal, timeout })) as CallToolResult;
      } catch (error) {
        if (callOptions.signal?.aborted) throw error;
        const explained = explain(error, timeout);
        // A JSON-RPC error from the server (a bug there, a result that breaks its schema) is the tool failing.
        if (explained instanceof McpError) return { isError: true, content: [{ type: "text", text: explained.message }] };
        throw explained;
      }
    },
    async close() {
      // A session the server still holds is ended politely; an unreachable one is simply dropped.
      if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => {});
      await client.close().catch(() => {});
    },
  };
}
