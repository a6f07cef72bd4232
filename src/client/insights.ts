// The analysis prompt (from the server's generate_ipc_analysis_prompt) sent to an OpenAI-compatible
// chat-completions endpoint: OpenAI, or a local Ollama, vLLM, llama.cpp server. Only when the person
// names one with --llm-url: the prompt describes every process's connections, so it never leaves
// the terminal unasked.
import { AuthError, ConnectError, UsageError } from "../errors.ts";

/** A local model on CPU can take minutes over a 4k-token prompt; a hung endpoint should not hang us forever. */
export const LLM_TIMEOUT_MS = 300_000;

export const SYSTEM_PROMPT =
  "You are an experienced Linux site reliability and security engineer. You are given data that ipcscope collected " +
  "on one host. Answer from that data only, say what is missing when it matters, and be concise: findings first, " +
  "each with its evidence, then what to check next (with the ipcscope command or tool that shows it).";

export interface LlmOptions {
  /** Base URL: http://127.0.0.1:11434/v1 (Ollama), http://HOST:8000/v1 (vLLM), https://api.openai.com/v1; a bare host gets /v1. */
  url: string;
  model: string;
  /** OPENAI_API_KEY; sent as a bearer token only when set (local servers need none). */
  apiKey?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * The chat-completions URL from a base URL given with or without /v1: a bare host gets /v1 (what
 * Ollama, vLLM and OpenAI serve), any other path is kept (some providers put the API elsewhere), and
 * a URL already ending in /chat/completions is used as it is.
 */
export function chatCompletionsUrl(base: string): URL {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(base) ? base : `http://${base}`);
  } catch {
    throw new UsageError(`--llm-url: "${base}" is not a URL; give a base URL such as http://127.0.0.1:11434/v1`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--llm-url: "${base}" is not an http(s) URL`);
  const path = url.pathname.replace(/\/+$/, "");
  if (path.endsWith("/chat/completions")) return url;
  url.pathname = `${path === "" ? "/v1" : path}/chat/completions`;
  return url;
}

export function chatRequest(prompt: string, model: string): { model: string; messages: { role: "system" | "user"; content: string }[] } {
  return { model, messages: [{ role: "system", content: SYSTEM_PROMPT }, { role: "user", content: prompt }] };
}

/** The model's answer, or an error that names the URL and what went wrong (ConnectError, AuthError). */
export async function askModel(prompt: string, options: LlmOptions): Promise<{ answer: string; model: string }> {
  const url = chatCompletionsUrl(options.url);
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const timeoutMs = options.timeoutMs ?? LLM_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await fetch(url, { method: "POST", headers, body: JSON.stringify(chatRequest(prompt, options.model)), signal });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (timeout.aborted) throw new ConnectError(`POST ${url}: no answer within ${Math.round(timeoutMs / 1000)} s`);
    throw new ConnectError(`POST ${url}: cannot reach it (${(error as Error).message}); is the model server running?`);
  }
  const text = await response.text().catch(() => "");
  if (!response.ok) {
    const detail = text.trim().slice(0, 500);
    const message = `POST ${url}: HTTP ${response.status} ${response.statusText}${detail ? `: ${detail}` : ""}`;
    if (response.status === 401 || response.status === 403) {
      throw new AuthError(`${message}${options.apiKey ? " (check OPENAI_API_KEY)" : "; set OPENAI_API_KEY if the endpoint needs a key"}`);
    }
    if (response.status === 404) throw new ConnectError(`${message}; is --llm-url the API's base URL (e.g. http://127.0.0.1:11434/v1), and --model "${options.model}" served there?`);
    throw new ConnectError(message);
  }
  let body: { model?: string; choices?: { message?: { content?: string | null } }[] };
  try {
    body = JSON.parse(text);
  } catch {
    throw new ConnectError(`POST ${url}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
  const answer = body.choices?.[0]?.message?.content;
  if (typeof answer !== "string") throw new ConnectError(`POST ${url}: the answer has no choices[0].message.content: ${text.slice(0, 200)}`);
  return { answer, model: body.model ?? options.model };
}
