// One MCP server instance per connection (stdio: one; HTTP: one per session), built from the tool list.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { LoggingLevel, RequestId } from "@modelcontextprotocol/sdk/types.js";
import type { LogObject } from "consola/core";
import { logger, onLog } from "../logger.ts";
import { registerPrompts } from "../prompts/mcp.ts";
import { registerResources } from "../resources/index.ts";
import { invokeTool } from "../tools/index.ts";
import type { ToolContext, ToolDefinition } from "../tools/types.ts";
import { VERSION } from "../version.ts";
import { asInvalidParams } from "./jsonrpc.ts";

export const SERVER_INSTRUCTIONS =
  "ipcscope shows this Linux host's processes and their network and IPC communications. " +
  "Start with get_system_info to learn what can run here (eBPF probes need root and bpftrace). " +
  "Answers are bounded: when a result says truncated, narrow it with the filters (pid, command, port). " +
  "Answers built from connection events say complete=false with a note when events are missing (lines lost, the probe down, ss polling).";

/** consola's numeric level → the MCP (syslog) level of notifications/message. */
export function mcpLogLevel(record: Pick<LogObject, "level" | "type">): LoggingLevel {
  if (record.type === "fatal") return "critical";
  if (record.level <= 0) return "error";
  if (record.level === 1) return "warning";
  if (record.level <= 3) return record.type === "info" ? "info" : "notice";
  return "debug";
}

function formatRecord(record: LogObject): string {
  return record.args
    .map((arg) => (arg instanceof Error ? arg.message : typeof arg === "string" ? arg : JSON.stringify(arg)))
    .join(" ");
}

/**
 * Sampling through the client's model, only when the client declared the capability. Tied to the
 * tool call (relatedRequestId) so that over HTTP the request travels on that call's response stream.
 */
function clientSampler(server: McpServer, relatedRequestId: RequestId): ToolContext["sample"] {
  if (!server.server.getClientCapabilities()?.sampling) return undefined;
  return async (request, signal) => {
    const result = await server.server.createMessage(
      {
        systemPrompt: request.system,
        messages: [{ role: "user", content: { type: "text", text: request.prompt } }],
        maxTokens: request.maxTokens,
        // The prompt carries everything the model needs; the client's other servers have no part in it.
        includeContext: "none",
        modelPreferences: { intelligencePriority: 0.8, speedPriority: 0.4, costPriority: 0.3 },
      },
      { signal, timeout: request.timeoutMs, relatedRequestId },
    );
    if (result.content.type !== "text") throw new Error(`the client's model answered with ${result.content.type} content, not text`);
    return { text: result.content.text, model: result.model, stopReason: result.stopReason };
  };
}

/** The JSON text of each answer, made once: calls that share a run (shareConcurrentCalls) share it. */
const texts = new WeakMap<object, string>();
function resultText(result: Record<string, unknown>): string {
  let text = texts.get(result);
  if (text === undefined) texts.set(result, (text = JSON.stringify(result)));
  return text;
}

/**
 * An incomplete answer's note as its own text item before the JSON: a client (or model) that reads
 * only the text, or only its start, still learns that events are missing.
 */
export function noteFirst(result: Record<string, unknown>): { type: "text"; text: string }[] {
  return result.complete === false && typeof result.note === "string" ? [{ type: "text", text: result.note }] : [];
}

/** tools/list answers, by tool list (serve passes one list to every session). */
const toolLists = new WeakMap<readonly ToolDefinition[], Promise<unknown>>();

/**
 * The SDK converts every tool's zod schemas to JSON Schema on each tools/list (about 13 ms of CPU
 * for our tools, and every client lists at the start of every session): the first answer for a
 * tool list is kept and given to every later call. The SDK keeps its handlers in a private map;
 * the toolsnaps test compares what tools/list serves, so an SDK change there fails CI.
 */
function keepToolList(server: McpServer, tools: readonly ToolDefinition[]): void {
  type Handler = (request: unknown, extra: unknown) => Promise<unknown>;
  const handlers = (server.server as unknown as { _requestHandlers?: Map<string, Handler> })._requestHandlers;
  const build = handlers?.get("tools/list");
  if (!handlers || !build) return;
  handlers.set("tools/list", (request, extra) => {
    let answer = toolLists.get(tools);
    if (!answer) {
      answer = build(request, extra);
      toolLists.set(tools, answer);
      answer.catch(() => toolLists.delete(tools));
    }
    return answer;
  });
}

export function createMcpServer(options: { tools: readonly ToolDefinition[]; via: ToolContext["via"] }): McpServer {
  const server = new McpServer(
    { name: "ipcscope", title: "ipcscope", version: VERSION },
    { capabilities: { logging: {} }, instructions: SERVER_INSTRUCTIONS },
  );

  for (const tool of options.tools) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.input,
        outputSchema: tool.output,
        annotations: { title: tool.title, ...tool.annotations },
      },
      async (args: Record<string, unknown>, extra) => {
        const token = extra._meta?.progressToken;
        const progress =
          token === undefined
            ? undefined
            : (value: number, total?: number, message?: string) => {
                extra
                  .sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: value, total, message } })
                  .catch(() => {});
              };
        const sample = clientSampler(server, extra.requestId);
        const outcome = await invokeTool(tool, args, { signal: extra.signal, log: logger, via: options.via, progress, sample });
        if (!outcome.ok) return { isError: true, content: [{ type: "text", text: outcome.error }] };
        return {
          content: [...noteFirst(outcome.result), { type: "text", text: resultText(outcome.result) }],
          structuredContent: outcome.result,
        };
      },
    );
  }

  keepToolList(server, options.tools);

  // Prompts and resources read only, like the snapshot tools: offered whatever --toolsets says.
  registerPrompts(server);
  registerResources(server, options.via);

  // Log records reach the client as notifications/message once it has initialized (nothing may
  // precede the initialize response). A failure to send (client gone) must not log again, or it
  // would loop.
  let initialized = false;
  server.server.oninitialized = () => {
    initialized = true;
  };
  let sessionId: string | undefined;
  const unsubscribe = onLog((record) => {
    if (!initialized || !server.isConnected()) return;
    sessionId ??= server.server.transport?.sessionId;
    server.server
      .sendLoggingMessage({ level: mcpLogLevel(record), logger: record.tag || "ipcscope", data: formatRecord(record) }, sessionId)
      .catch(() => {});
  });
  server.server.onclose = unsubscribe;

  // Every answer leaves through the transport's send: params the SDK's schemas refuse become -32602 there.
  const connect = server.connect.bind(server);
  server.connect = (transport) => {
    const send = transport.send.bind(transport);
    transport.send = (message, options) => send(asInvalidParams(message), options);
    return connect(transport);
  };
  return server;
}
