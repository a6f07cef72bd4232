import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { callTimeoutMs, explainFailure, localServerCommand, serverUrl } from "../../../src/client/connect.ts";
import { chatCompletionsUrl, chatRequest, SYSTEM_PROMPT } from "../../../src/client/insights.ts";
import { AuthError, ConnectError, UsageError } from "../../../src/errors.ts";
import { ROOT } from "../../helpers.ts";

describe("where the client connects", () => {
  test("--server takes the MCP URL; a bare host:port means /mcp; other schemes are refused", () => {
    expect(serverUrl("http://web1:8000/mcp").toString()).toBe("http://web1:8000/mcp");
    expect(serverUrl("http://web1:8000").toString()).toBe("http://web1:8000/mcp");
    expect(serverUrl("127.0.0.1:8000").toString()).toBe("http://127.0.0.1:8000/mcp");
    expect(serverUrl("https://proxy.example/ipcscope/mcp").toString()).toBe("https://proxy.example/ipcscope/mcp");
    expect(() => serverUrl("ftp://web1/mcp")).toThrow(UsageError);
    expect(() => serverUrl("http://")).toThrow('--server: "http://" is not a URL');
  });

  test("from source the local server is Bun running src/main.ts serve", () => {
    expect(localServerCommand()).toEqual({ command: process.execPath, args: [join(ROOT, "src", "main.ts"), "serve"] });
  });

  test("a call's timeout covers the window the server waits out", () => {
    expect(callTimeoutMs({})).toBe(60_000);
    expect(callTimeoutMs({ duration: 30, pid: 4 })).toBe(90_000);
    expect(callTimeoutMs({ timeout: 55 })).toBe(115_000);
    expect(callTimeoutMs({ duration: "x" })).toBe(60_000);
  });
});

describe("failures become the errors whose exit codes scripts rely on", () => {
  const where = "http://web1:8000/mcp";
  test("401 without a token says how to pass one; with a token, that it was refused", () => {
    const missing = explainFailure(new StreamableHTTPError(401, "Error POSTing to endpoint: "), where, { local: false });
    expect(missing).toBeInstanceOf(AuthError);
    expect(missing.message).toBe(`${where} wants a token (HTTP 401): pass --token-file PATH (the file the server was given), --token VALUE or IPCSCOPE_TOKEN`);
    const wrong = explainFailure(new StreamableHTTPError(401, 'Error POSTing to endpoint: {"error":{"message":"invalid token"}}'), where, { local: false, token: { token: "x".repeat(20), from: "IPCSCOPE_TOKEN" } });
    expect(wrong.message).toStartWith(`${where} refused the token from IPCSCOPE_TOKEN (HTTP 401: invalid token)`);
  });

  test("403 is an AuthError with the server's reason; other statuses and network failures are ConnectErrors", () => {
    const forbidden = explainFailure(new StreamableHTTPError(403, 'Error POSTing to endpoint: {"error":"Host \\"evil\\" is not allowed"}'), where, { local: false });
    expect(forbidden).toBeInstanceOf(AuthError);
    expect(forbidden.message).toBe(`${where} refused access (HTTP 403): Host "evil" is not allowed`);
    expect(explainFailure(new StreamableHTTPError(404, "Error POSTing to endpoint: Not Found"), where, { local: false })).toBeInstanceOf(ConnectError);
    const refused = Object.assign(new TypeError("ECONNREFUSED: Unable to connect"), { code: "ECONNREFUSED" });
    expect(explainFailure(refused, where, { local: false }).message).toBe(`cannot reach ${where} (ECONNREFUSED: Unable to connect); is \`ipcscope serve --http\` running there, on that port?`);
    const closed = explainFailure(new McpError(ErrorCode.ConnectionClosed, "Connection closed"), "the local server", { local: true });
    expect(closed).toBeInstanceOf(ConnectError);
    expect(closed.message).toContain("the local server (ipcscope serve) exited");
    expect(explainFailure(new McpError(ErrorCode.RequestTimeout, "timed out"), where, { local: false, timeoutMs: 90_000 }).message).toBe(`${where} did not answer within 90 s`);
  });

  test("other JSON-RPC errors and bugs pass through unchanged", () => {
    const internal = new McpError(ErrorCode.InternalError, "boom");
    expect(explainFailure(internal, where, { local: false })).toBe(internal);
    const usage = new UsageError("bad");
    expect(explainFailure(usage, where, { local: false })).toBe(usage);
  });
});

describe("the OpenAI-compatible endpoint", () => {
  test.each([
    ["http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1/chat/completions"],
    ["http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434/v1/chat/completions"],
    ["http://127.0.0.1:11434", "http://127.0.0.1:11434/v1/chat/completions"],
    ["127.0.0.1:8000", "http://127.0.0.1:8000/v1/chat/completions"],
    ["https://generativelanguage.googleapis.com/v1beta/openai/", "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"],
    ["http://vllm:8000/v1/chat/completions", "http://vllm:8000/v1/chat/completions"],
  ])("base %p posts to %p", (base, url) => {
    expect(chatCompletionsUrl(base).toString()).toBe(url);
  });

  test("a base that is not http(s) is a usage error", () => {
    expect(() => chatCompletionsUrl("file:///etc/passwd")).toThrow("--llm-url");
  });

  test("the request is the model and two messages: our instructions, then the prompt", () => {
    expect(chatRequest("PROMPT", "llama3.1")).toEqual({ model: "llama3.1", messages: [{ role: "system", content: SYSTEM_PROMPT }, { role: "user", content: "PROMPT" }] });
  });
});
