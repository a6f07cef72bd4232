// `ipcscope insights`: the server's analysis prompt answered by an OpenAI-compatible endpoint. There
// is no model here, so a small endpoint written in this test stands in for one (Ollama, vLLM,
// OpenAI) and records each request, which the tests check; the server is real.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SYSTEM_PROMPT } from "../../src/client/insights.ts";
import { type ChatRequest, type HttpServer, runBinary, startChatEndpoint, startHttpServer } from "../helpers.ts";

const ANSWER = "The host serves one loopback MCP endpoint; nothing is exposed.";

describe("ipcscope insights", () => {
  let server: HttpServer;
  let llm: ReturnType<typeof Bun.serve>;
  let seen: ChatRequest[] = [];
  const base = () => `http://127.0.0.1:${llm.port}`;

  beforeAll(async () => {
    server = await startHttpServer();
    ({ server: llm, requests: seen } = startChatEndpoint(ANSWER));
  });
  afterAll(async () => {
    llm?.stop(true);
    if (server?.proc.exitCode === null) await server.stop();
  });

  const insights = (args: string[], env: Record<string, string> = {}) =>
    runBinary(["insights", "--server", server.url.toString(), "--max-tokens", "600", ...args], { env: { OPENAI_API_KEY: "", ...env } });

  test("with --llm-url and --model it posts the prompt to {base}/chat/completions and prints the answer; no key, no Authorization", async () => {
    seen.length = 0;
    const result = await insights(["--llm-url", `${base()}/v1`, "--model", "qwen2.5:0.5b", "--json"]);
    expect(result.stderr).toContain(`asking qwen2.5:0.5b at ${base()}/v1/chat/completions`);
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as { answer: string; prompt: string; model: string };
    expect(printed.answer).toBe(ANSWER);
    expect(seen.length).toBe(1);
    const request = seen[0]!;
    expect(request.method).toBe("POST");
    expect(request.path).toBe("/v1/chat/completions");
    expect(request.authorization).toBeNull();
    expect(request.body.model).toBe("qwen2.5:0.5b");
    // The user message is exactly the server's prompt; the system message says how to answer.
    expect(request.body.messages).toEqual([
      { role: "system", content: SYSTEM_PROMPT },
      { role: "user", content: printed.prompt },
    ]);
    expect(printed.prompt).toStartWith("# Task (analysis)");
  });

  test("OPENAI_API_KEY is sent as a bearer token; a base without /v1 gets it; --style and --focus reach the prompt", async () => {
    seen.length = 0;
    const result = await insights(["--llm-url", base(), "--model", "gpt-4o-mini", "--style", "security_review", "--focus", "port:1"], { OPENAI_API_KEY: "sk-test-123" });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(ANSWER);
    expect(seen[0]!.path).toBe("/v1/chat/completions");
    expect(seen[0]!.authorization).toBe("Bearer sk-test-123");
    expect(seen[0]!.body.messages[1]!.content).toStartWith("# Task (security_review)");
  });

  test("without --llm-url it prints the prompt and sends nothing", async () => {
    seen.length = 0;
    const result = await insights([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toStartWith("# Task (analysis)");
    expect(result.stderr).toContain("no --llm-url: this is the prompt");
    expect(seen.length).toBe(0);
  });

  test("failures name the URL and the status, with the exit codes of call", async () => {
    const missing = await insights(["--llm-url", `${base()}/v1`, "--model", "missing-model"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`POST ${base()}/v1/chat/completions: HTTP 404 Not Found: {"error":{"message":"model 'missing-model' not found"}}`);
    const broken = await insights(["--llm-url", `${base()}/v1`, "--model", "broken"]);
    expect(broken.code).toBe(3);
    expect(broken.stderr).toContain(`POST ${base()}/v1/chat/completions: HTTP 500 Internal Server Error: upstream exploded`);
    const noModel = await insights(["--llm-url", `${base()}/v1`]);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toContain("--llm-url needs --model");
    const badStyle = await insights(["--style", "poetry"]);
    expect(badStyle.code).toBe(2);
    expect(badStyle.stderr).toContain('--style: "poetry" is not one of analysis, security_review, connection_troubleshooting');
  });
});
