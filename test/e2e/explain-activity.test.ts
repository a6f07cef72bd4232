// explain_activity against the compiled binary, over stdio and over HTTP, with SDK clients that
// answer sampling/createMessage (with a fixed text, by refusing, or never), and one that cannot
// sample. A loopback listener this test starts must reach the model's prompt.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CreateMessageRequestSchema, type CreateMessageRequest, type CreateMessageResult } from "@modelcontextprotocol/sdk/types.js";
import { ensureBinary, firstLine, type HttpServer, resultText, ROOT, startHttpServer, until } from "../helpers.ts";

const EXPLANATION = "bun is a test workload listening on loopback only; nothing is exposed.";
const MODEL = "test-model-7";
const QUESTION = "What does the workload listen on?";
// Short, so the test of a client that never answers takes seconds; an immediate answer is far quicker.
const SAMPLING_TIMEOUT_MS = "3000";
const SERVE_ARGS = ["--no-monitor", "--log-level", "debug"];

interface Explained {
  mode: "sampled" | "prompt";
  explanation: string | null;
  model: string | null;
  stop_reason: string | null;
  reason: string | null;
  system_prompt: string;
  prompt: string;
  focus: string | null;
  question: string | null;
}

type Sampler = (request: CreateMessageRequest, signal: AbortSignal) => Promise<CreateMessageResult>;

/** An SDK client; with a sampler it declares the sampling capability and answers with it. */
function makeClient(name: string, sampler?: Sampler): Client {
  const client = new Client({ name, version: "0" }, sampler ? { capabilities: { sampling: {} } } : {});
  if (sampler) client.setRequestHandler(CreateMessageRequestSchema, (request, extra) => sampler(request, extra.signal));
  return client;
}

async function explain(client: Client, args: Record<string, unknown>): Promise<Explained> {
  const result = await client.callTool({ name: "explain_activity", arguments: args });
  expect(result.isError, resultText(result)).toBeFalsy();
  return result.structuredContent as unknown as Explained;
}

const transports: Record<string, { setUp: () => Promise<void>; tearDown: () => Promise<void>; connect: () => Transport; healthy: () => Promise<void> }> = {
  stdio: (() => {
    const env = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
    let binary = "";
    return {
      setUp: async () => {
        binary = await ensureBinary();
      },
      tearDown: async () => {},
      connect: () =>
        new StdioClientTransport({ command: binary, args: ["serve", ...SERVE_ARGS], env: { ...env, IPCSCOPE_SAMPLING_TIMEOUT_MS: SAMPLING_TIMEOUT_MS }, stderr: "ignore" }),
      healthy: async () => {},
    };
  })(),
  http: (() => {
    let server: HttpServer;
    return {
      setUp: async () => {
        server = await startHttpServer(SERVE_ARGS, { env: { IPCSCOPE_SAMPLING_TIMEOUT_MS: SAMPLING_TIMEOUT_MS } });
      },
      tearDown: async () => {
        if (server.proc.exitCode === null) await server.stop();
      },
      connect: () => new StreamableHTTPClientTransport(server.url),
      healthy: async () => {
        const health = await fetch(new URL("/health", server.url));
        expect(health.status).toBe(200);
        // The REST mirror has no client to sample with: it answers the prompt.
        const rest = await fetch(new URL("/explain_activity", server.url), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ max_tokens: 300 }),
        });
        expect(rest.status).toBe(200);
        expect(((await rest.json()) as Explained).mode).toBe("prompt");
      },
    };
  })(),
};

let child: Bun.Subprocess<"pipe", "pipe", "inherit">;
let ports: { tcp4: number; tcp6: number; udp: number; unix: string };

beforeAll(async () => {
  child = Bun.spawn(["bun", join(ROOT, "test", "fixtures", "bin", "workload-server.ts"), join(tmpdir(), `ipcscope-explain-${process.pid}.sock`)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  ports = JSON.parse(await firstLine(child.stdout));
});
afterAll(async () => {
  child.stdin.end();
  await child.exited;
});

/** The workload's process and listener, as the prompt's focus section shows them. */
function expectWorkload(text: string): void {
  expect(text).toContain(`## Focus: pid:${child.pid}`);
  expect(text).toContain(`- bun(${child.pid}) user `);
  expect(text).toContain(`TCP 127.0.0.1:${ports.tcp4} -> `);
}

for (const [name, via] of Object.entries(transports)) {
  describe(`explain_activity over ${name}`, () => {
    const clients: Client[] = [];
    const connected = async (client: Client) => {
      await client.connect(via.connect());
      clients.push(client);
      return client;
    };

    beforeAll(via.setUp, 120_000);
    afterAll(async () => {
      await Promise.all(clients.map((client) => client.close()));
      await via.tearDown();
    });

    test("a client that samples gets the host's material in its request, and the tool answers its text and model", async () => {
      const requests: CreateMessageRequest[] = [];
      const client = await connected(
        makeClient("e2e-sampling", async (request) => {
          requests.push(request);
          return { role: "assistant", model: MODEL, content: { type: "text", text: EXPLANATION }, stopReason: "endTurn" };
        }),
      );
      const answer = await explain(client, { focus: `pid:${child.pid}`, question: QUESTION, max_answer_tokens: 321 });

      expect(requests).toHaveLength(1);
      const params = requests[0]!.params;
      expect(params.maxTokens).toBe(321);
      expect(params.includeContext).toBe("none");
      expect(params.systemPrompt).toContain("Linux site reliability engineer");
      expect(params.systemPrompt).toBe(answer.system_prompt);
      expect(params.messages).toHaveLength(1);
      expect(params.messages[0]!.role).toBe("user");
      const text = (params.messages[0]!.content as { type: string; text: string }).text;
      expectWorkload(text);
      expect(text).toContain(`## Question\n${QUESTION}\n`);

      expect(answer).toMatchObject({ mode: "sampled", explanation: EXPLANATION, model: MODEL, stop_reason: "endTurn", reason: null });
      expect(answer.prompt).toBe(text);
      expect(answer.focus).toBe(`pid:${child.pid}`);
      expect(answer.question).toBe(QUESTION);
    });

    test("a client without sampling gets the prompt to use with its own model, naming the workload", async () => {
      const client = await connected(makeClient("e2e-no-sampling"));
      const answer = await explain(client, { focus: `pid:${child.pid}` });
      expect(answer).toMatchObject({ mode: "prompt", explanation: null, model: null });
      expect(answer.reason).toContain("the client does not support sampling");
      expectWorkload(answer.prompt);
      expect(answer.prompt).not.toContain("## Question");
    });

    test("a client whose user declines gets the prompt with the client's error as the reason, and the server carries on", async () => {
      const client = await connected(
        makeClient("e2e-declines", async () => {
          throw new Error("User declined the sampling request");
        }),
      );
      const answer = await explain(client, { focus: `pid:${child.pid}`, question: QUESTION });
      expect(answer).toMatchObject({ mode: "prompt", explanation: null, model: null });
      expect(answer.reason).toContain("User declined the sampling request");
      expectWorkload(answer.prompt);
      expect(answer.prompt).toContain(`## Question\n${QUESTION}\n`);

      // The same session and the server still answer.
      const graph = await client.callTool({ name: "get_ipc_graph", arguments: { pid: child.pid } });
      expect(graph.isError).toBeFalsy();
      await via.healthy();
    });

    test("a client that never answers is cancelled after the sampling timeout, and the tool answers the prompt", async () => {
      let cancelled = false;
      let requests = 0;
      const client = await connected(
        makeClient("e2e-silent", async (_request, signal) => {
          // The SDK client ignores notifications/cancelled for request id 0 (typescript-sdk#2283), and
          // the server's first request is id 0: answer that one, stay silent from the second on.
          if (requests++ === 0) return { role: "assistant", model: MODEL, content: { type: "text", text: EXPLANATION } };
          return new Promise((_resolve, reject) => {
            signal.addEventListener("abort", () => {
              cancelled = true;
              reject(new Error("cancelled"));
            });
          });
        }),
      );
      expect((await explain(client, { max_tokens: 300 })).mode).toBe("sampled");
      const started = performance.now();
      const answer = await explain(client, { max_tokens: 300 });
      expect(performance.now() - started).toBeGreaterThanOrEqual(Number(SAMPLING_TIMEOUT_MS) - 100);
      expect(answer).toMatchObject({ mode: "prompt", explanation: null, stop_reason: null });
      expect(answer.reason).toContain("Request timed out");
      // notifications/cancelled reached the client.
      await until("the client's sampling handler to be cancelled", () => (cancelled ? true : undefined), 5_000);
    });
  });
}
