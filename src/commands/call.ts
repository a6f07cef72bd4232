import { defineCommand } from "citty";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import { describeParams, parseToolArgs, splitFlags, type FlagSpec, type ToolSchema } from "../client/args.ts";
import { connect, type Session } from "../client/connect.ts";
import { completenessWarning, formatResult } from "../client/format.ts";
import { EXIT, UsageError } from "../errors.ts";
import { parseLogLevel } from "../logger.ts";
import { resolveToken } from "../server/auth.ts";
import { parseToolsets } from "../tools/index.ts";
import { jsonArg, lineWriter, print } from "./_shared.ts";

export const EXIT_CODES_HELP =
  "Exit codes: 0 success; 1 the tool answered with an error; 2 usage error (bad flag or value, unknown tool); " +
  "3 cannot connect (or the connection failed); 4 authentication or authorization refused (HTTP 401/403); 130 interrupted (Ctrl-C).";

/** The flags every client command takes (citty definitions: they make --help). */
export const connectionArgs = {
  server: { type: "string", description: "The server's MCP URL, e.g. http://127.0.0.1:8000/mcp (default: start a local server over stdio)", valueHint: "url" },
  token: { type: "string", description: "Bearer token for --server (visible in ps: prefer --token-file or IPCSCOPE_TOKEN)", valueHint: "token" },
  "token-file": { type: "string", description: "Read the bearer token from this file (mode 0600)", valueHint: "path" },
  toolsets: { type: "string", description: "The local server's toolsets (system, snapshot, events, health, actions), or all", valueHint: "list" },
  "log-level": { type: "string", description: "The local server's log detail on stderr (default error)", valueHint: "level" },
} as const;

/** The same flags as a spec for splitFlags: the client's own flags come out, the tool's stay. */
export const CONNECTION_FLAGS: FlagSpec = { server: "string", token: "string", "token-file": "string", toolsets: "string", "log-level": "string" };

/** Opens the session the flags describe; a bad flag is a UsageError before anything is started. */
export async function openSession(flags: Record<string, string | boolean>, options: { monitor: boolean }): Promise<Session> {
  const text = (name: string) => (typeof flags[name] === "string" ? (flags[name] as string) : undefined);
  if (text("log-level") !== undefined) parseLogLevel(text("log-level")!);
  if (text("toolsets") !== undefined) parseToolsets(text("toolsets"));
  const token = resolveToken({ token: text("token"), tokenFile: text("token-file"), env: process.env.IPCSCOPE_TOKEN });
  return connect({ server: text("server"), token, toolsets: text("toolsets"), logLevel: text("log-level"), monitor: options.monitor });
}

/** A tool by name, or a UsageError listing the server's tools. */
export function findTool(session: Session, name: string): Tool {
  const tool = session.tools.find((candidate) => candidate.name === name);
  if (tool) return tool;
  const close = session.tools.filter((candidate) => candidate.name.includes(name) || name.includes(candidate.name)).map((candidate) => candidate.name);
  throw new UsageError(
    `unknown tool "${name}"${close.length > 0 ? ` (did you mean ${close.join(" or ")}?)` : ""}; ${session.where} has: ${session.tools.map((tool) => tool.name).join(", ")}`,
  );
}

/** A tool's parameters, for `call TOOL --help` and the shell's `help TOOL`. */
export function toolHelp(tool: Tool): string {
  const params = describeParams(tool as ToolSchema);
  return [
    `${tool.name}: ${tool.description ?? ""}`,
    "",
    params.length > 0 ? params.map((line) => `  ${line}`).join("\n") : "  (no parameters)",
    "",
    "Also: --arg key=value (repeatable), --args-json '{...}', --json for the raw result.",
  ].join("\n");
}

/** The text of a result's content parts (a tool error's message, or a result without structuredContent). */
export function contentText(result: CallToolResult): string {
  return (result.content ?? []).map((part) => (part.type === "text" ? part.text : `[${part.type}]`)).join("\n");
}

export interface RunToolOptions {
  json: boolean;
  signal?: AbortSignal;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Where an incomplete answer's warning goes (people only: --json carries the note itself); err when absent. */
  warn?: (text: string) => void;
}

/**
 * One tool call for a person (sentences, tables) or a script (--json: the structured result): parses
 * the tool's flags against the schema the server serves, calls, prints, and returns the exit code.
 * A tool error goes to err with code 1; the server refusing the arguments is a usage error (2).
 */
export async function runTool(session: Session, name: string, argv: readonly string[], options: RunToolOptions): Promise<number> {
  const tool = findTool(session, name);
  const args = parseToolArgs(tool as ToolSchema, argv);
  const result = await session.call(name, args, { signal: options.signal });
  if (result.isError) {
    const message = contentText(result);
    options.err(`${name}: ${message}`);
    // The SDK's server checks arguments against the schema before the tool runs.
    return /^(Input validation error|MCP error -32602)/.test(message) ? EXIT.usage : EXIT.toolError;
  }
  let value: unknown = result.structuredContent;
  if (value === undefined) {
    const text = contentText(result);
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
  }
  options.out(options.json ? JSON.stringify(value, null, 2) : formatResult(name, value, args));
  const warning = options.json ? null : completenessWarning(value);
  if (warning) (options.warn ?? options.err)(warning);
  return EXIT.ok;
}

/**
 * Runs a client command's work on an open session: Ctrl-C aborts the signal it is given (the
 * server is told to cancel), which prints "cancelled" and exits 130; the session is closed either way.
 */
export async function runCancellable(session: Session, work: (signal: AbortSignal) => Promise<number | undefined>): Promise<void> {
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once("SIGINT", cancel);
  try {
    const code = await work(controller.signal);
    if (code !== undefined) process.exitCode = code;
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    process.stderr.write("cancelled\n");
    process.exitCode = 130;
  } finally {
    process.off("SIGINT", cancel);
    await session.close();
  }
}

export default defineCommand({
  meta: {
    name: "call",
    description:
      "Call one tool on a server (--server URL) or a local one, and print the answer for people (--json: the structured result). " +
      "The tool's parameters are flags (ipcscope call TOOL --help lists them).",
  },
  args: {
    tool: { type: "positional", description: "The tool to call (see ipcscope tools, or the shell's tools)", required: false },
    ...connectionArgs,
    ...jsonArg,
    arg: { type: "string", description: "A parameter as key=value (repeatable), e.g. --arg pid=42", valueHint: "key=value" },
    "args-json": { type: "string", description: "Parameters as one JSON object, e.g. '{\"pid\": 42}'", valueHint: "json" },
  },
  async run({ rawArgs }) {
    const { flags, rest } = splitCallFlags(rawArgs);
    const [name, ...toolArgv] = rest;
    if (name !== undefined && name.startsWith("-")) throw new UsageError(`call: the tool name comes first: ipcscope call TOOL ${name} …`);
    // One call, one session: a local server records events only if the tool asks for them.
    const session = await openSession(flags, { monitor: false });
    await runCancellable(session, async (signal) => {
      if (name === undefined) throw new UsageError(`call needs a tool name; ${session.where} has: ${session.tools.map((tool) => tool.name).join(", ")}`);
      if (flags.help) {
        print(toolHelp(findTool(session, name)));
        return undefined;
      }
      return runTool(session, name, toolArgv, { json: flags.json === true, signal, out: print, err: lineWriter(process.stderr) });
    });
  },
});

/** call's own flags (connection, --json, --help) out of the command line; the tool's flags stay in order. */
export function splitCallFlags(rawArgs: readonly string[]): { flags: Record<string, string | boolean>; rest: string[] } {
  const argv = rawArgs.map((word) => (word === "-h" ? "--help" : word));
  return splitFlags(argv, { ...CONNECTION_FLAGS, json: "boolean", help: "boolean" });
}
