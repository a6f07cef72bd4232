// Raw JSON-RPC against the compiled binary, for tests that send what the SDK client never would:
// lines written to `serve`'s stdin as they are, and POSTs to /mcp whose JSON or SSE answer is read here.
import { ensureBinary } from "./helpers.ts";

export type Message = { jsonrpc?: string; id?: string | number | null; method?: string; result?: any; error?: { code: number; message: string } };

export const PROTOCOL_VERSION = "2025-06-18";
export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "raw", version: "0" } },
} as const;
export const INITIALIZED = { jsonrpc: "2.0", method: "notifications/initialized" } as const;
export const MCP_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

/** A notification (method, no id) rather than an answer. */
export const isNotification = (message: Message) => message.method !== undefined && message.id === undefined;

export interface RawStdio {
  proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  /** Writes text as it is (a message needs its own "\n"); resolves when the pipe took it. */
  write(text: string | Uint8Array): Promise<void>;
  /** The next answer (not a notification) not taken yet, within timeoutMs. */
  next(timeoutMs?: number): Promise<Message>;
  /** The answer with this id, within timeoutMs (the answers before it are left for next()). */
  response(id: string | number, timeoutMs?: number): Promise<Message>;
  /** Every message received, notifications too. */
  received: Message[];
  /** Lines on stdout that were not JSON: stdout must carry JSON-RPC only, so this stays empty. */
  notJson: string[];
  stderr(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts `ipcscope serve ARGS` on stdio and reads its stdout line by line. */
export async function startRawStdio(args: string[] = []): Promise<RawStdio> {
  const proc = Bun.spawn([await ensureBinary(), "serve", ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const received: Message[] = [];
  const answers: Message[] = [];
  const notJson: string[] = [];
  let taken = 0;
  let stderr = "";
  // Wakes a waitFor() when a line arrives (an object, so TypeScript does not narrow it to null).
  const waiter: { wake: (() => void) | null } = { wake: null };

  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of proc.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const message = JSON.parse(line) as Message;
          received.push(message);
          if (!isNotification(message)) answers.push(message);
        } catch {
          notJson.push(line);
        }
      }
      waiter.wake?.();
    }
    waiter.wake?.();
  })();
  void (async () => {
    for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
  })();

  async function waitFor<T>(what: string, find: () => T | undefined, timeoutMs: number): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      const left = end - Date.now();
      if (left <= 0 || proc.exitCode !== null) throw new Error(`no ${what} within ${timeoutMs} ms (server exit code ${proc.exitCode}); stderr:\n${stderr.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        waiter.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  return {
    proc,
    received,
    notJson,
    stderr: () => stderr,
    async write(text) {
      proc.stdin.write(text);
      await proc.stdin.flush();
    },
    next: (timeoutMs = 10_000) => waitFor("answer", () => (taken < answers.length ? answers[taken++] : undefined), timeoutMs),
    response: (id, timeoutMs = 10_000) => waitFor(`answer to id ${JSON.stringify(id)}`, () => answers.find((message) => message.id === id), timeoutMs),
    async stop(signal = "SIGTERM") {
      proc.kill(signal);
      return proc.exited;
    },
  };
}

/** The JSON-RPC messages of an /mcp answer: a JSON body, the data lines of an SSE body, or none. */
export function messagesOf(contentType: string | null, text: string): Message[] {
  if (text.trim() === "") return [];
  if (contentType?.includes("text/event-stream")) {
    return text
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trim())
      .filter((data) => data !== "")
      .map((data) => JSON.parse(data) as Message);
  }
  const body = JSON.parse(text) as Message | Message[];
  return Array.isArray(body) ? body : [body];
}

/** POSTs a body (text as it is) to /mcp; the status and the messages of the answer. */
export async function postMcp(url: URL, body: string, sessionId?: string, signal?: AbortSignal): Promise<{ status: number; messages: Message[]; text: string }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...MCP_HEADERS, ...(sessionId ? { "mcp-session-id": sessionId, "mcp-protocol-version": PROTOCOL_VERSION } : {}) },
    body,
    signal,
  });
  const text = await response.text();
  return { status: response.status, messages: messagesOf(response.headers.get("content-type"), text), text };
}

/** Opens an MCP session with initialize + notifications/initialized; its id. */
export async function openSession(url: URL): Promise<string> {
  const response = await fetch(url, { method: "POST", headers: MCP_HEADERS, body: JSON.stringify(INITIALIZE) });
  const sessionId = response.headers.get("mcp-session-id");
  await response.text();
  if (response.status !== 200 || !sessionId) throw new Error(`initialize answered ${response.status} without a session id`);
  await postMcp(url, JSON.stringify(INITIALIZED), sessionId);
  return sessionId;
}
