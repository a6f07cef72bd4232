// The MCP prompts (prompts/list, prompts/get): the analysis prompt of build.ts in three styles.
// MCP prompt arguments are strings, so numbers arrive as text and are checked here.
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ErrorCode, McpError, type GetPromptResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { buildPrompt, DEFAULT_MAX_TOKENS, MAX_MAX_TOKENS, MIN_MAX_TOKENS, parseFocus, type Focus, type PromptStyle } from "./build.ts";
import { collectPromptMaterial } from "./material.ts";

const maxTokensArg = z
  .string()
  .regex(/^\d+$/, "max_tokens must be a whole number")
  .optional()
  .describe(`Budget in tokens, estimated as characters/4 (default ${DEFAULT_MAX_TOKENS}, ${MIN_MAX_TOKENS}-${MAX_MAX_TOKENS})`);

function budgetOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_TOKENS;
  const n = Number(text);
  if (n < MIN_MAX_TOKENS || n > MAX_MAX_TOKENS) throw new McpError(ErrorCode.InvalidParams, `max_tokens must be ${MIN_MAX_TOKENS}-${MAX_MAX_TOKENS}, got ${text}`);
  return n;
}

function focusOf(text: string | undefined): Focus | null {
  if (text === undefined || text.trim() === "") return null;
  try {
    return parseFocus(text);
  } catch (error) {
    throw new McpError(ErrorCode.InvalidParams, (error as Error).message);
  }
}

/**
 * connection_troubleshooting's arguments as one focus: `process` is a pid when it is a number, else
 * a name or command-line substring; `port` a port. Given both, both are shown (the process's sockets
 * and whatever uses the port), since a failing connection usually involves the other side too.
 */
export function troubleshootingFocus(args: { process?: string; port?: string }): Focus | null {
  const process = args.process?.trim() || undefined;
  const port = args.port?.trim() || undefined;
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) > 65535)) throw new McpError(ErrorCode.InvalidParams, `port must be 0-65535, got "${port}"`);
  if (process === undefined && port === undefined) return null;
  const focus: Focus = { label: [process && `process ${process}`, port && `port ${port}`].filter(Boolean).join(", ") };
  if (process !== undefined) {
    if (/^\d+$/.test(process)) focus.pid = Number(process);
    else focus.command = process;
  }
  if (port !== undefined) focus.port = Number(port);
  return focus;
}

async function message(style: PromptStyle, focus: Focus | null, budget: number, description: string): Promise<GetPromptResult> {
  const fitted = buildPrompt(await collectPromptMaterial(focus), style, budget);
  return { description, messages: [{ role: "user", content: { type: "text", text: fitted.prompt } }] };
}

export function registerPrompts(server: McpServer): void {
  server.registerPrompt(
    "ipc_analysis",
    {
      title: "Analyse this host's processes and connections",
      description:
        "What the host does on the network: listeners and their clients, the IPC graph, connections, recorded events and kernel counters, as of now.",
      argsSchema: { focus: z.string().optional().describe('Optional: "pid:N", "port:N", "command:NAME", a number (pid or port) or a name'), max_tokens: maxTokensArg },
    },
    async (args) => message("analysis", focusOf(args.focus), budgetOf(args.max_tokens), "IPC analysis of this host"),
  );
  server.registerPrompt(
    "security_review",
    {
      title: "Security review of network exposure",
      description:
        "Unexpected listeners (non-loopback addresses), root processes exposed to the network, outbound connections to unusual ports, beaconing and new listeners.",
      argsSchema: { focus: z.string().optional().describe('Optional: "pid:N", "port:N", "command:NAME", a number (pid or port) or a name'), max_tokens: maxTokensArg },
    },
    async (args) => message("security_review", focusOf(args.focus), budgetOf(args.max_tokens), "Security review of this host's network exposure"),
  );
  server.registerPrompt(
    "connection_troubleshooting",
    {
      title: "Troubleshoot a process's or a port's connections",
      description:
        "Focuses on a process (pid or name) and/or a port: its sockets, listeners, local edges, recorded failures and the kernel's TCP counters, with likely causes to check.",
      argsSchema: {
        process: z.string().optional().describe("A pid, or a process name or command-line substring"),
        port: z.string().optional().describe("A TCP/UDP port (local or remote)"),
        max_tokens: maxTokensArg,
      },
    },
    async (args) =>
      message("connection_troubleshooting", troubleshootingFocus(args), budgetOf(args.max_tokens), "Connection troubleshooting"),
  );
}
