import { appendFileSync, chmodSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { defineCommand } from "citty";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { flagOf, isBooleanSchema, splitFlags, splitWords, type JsonSchema } from "../client/args.ts";
import type { Session } from "../client/connect.ts";
import { AuthError, ConnectError, UsageError } from "../errors.ts";
import { connectionArgs, openSession, runTool, toolHelp } from "./call.ts";
import { chatCompletionsUrl } from "../client/insights.ts";
import { LLM_FLAGS, llmArgs, PROMPT_TOOL, runInsights } from "./insights.ts";
import { firstSentence } from "./tools.ts";
import { lineWriter, table } from "./_shared.ts";

/** The shell's words for the tools a person reaches for first; `call TOOL` reaches every other one. */
export const SHELL_COMMANDS: Record<string, { tool?: string; usage: string; what: string }> = {
  summary: { tool: "get_connection_summary", usage: "[--process NAME | --pid N] [--since S]", what: "what a process connected to: attempts, failures, latency, destinations" },
  list: { tool: "list_connections", usage: "[--process NAME] [--port N] [--since S] [--limit N]", what: "recorded connection events, newest first" },
  analyze: { tool: "analyze_patterns", usage: "[--since S]", what: "top destinations, fan-out, failure rates, beaconing, new listeners" },
  snapshot: { tool: "get_process_connection_snapshot", usage: "[--process NAME] [--port N] [--listening]", what: "every process with its sockets right now" },
  graph: { tool: "get_ipc_graph", usage: "[--process NAME] [--mermaid]", what: "who talks to whom on this host" },
  drops: { tool: "get_packet_drop_summary", usage: "[--duration S] [--port N]", what: "packets the kernel dropped, by reason, interface, port, process" },
  insights: { tool: PROMPT_TOOL, usage: "[--focus WHAT] [--style S]", what: "the host analysed by the model (--llm-url), else the analysis prompt" },
  tools: { usage: "", what: "the server's tools, one line each" },
  call: { usage: "TOOL [--param value …]", what: "any tool, with its parameters as flags (help TOOL lists them)" },
  help: { usage: "[COMMAND | TOOL]", what: "this list, or one command's or tool's parameters" },
  quit: { usage: "", what: "leave (also exit, or Ctrl-D)" },
};

const HISTORY_FILE = ".ipcscope_history";
/** Lines kept in memory and in the file: plenty to find last week's command, small enough to read at once. */
export const HISTORY_SIZE = 1000;
const PROMPT = "ipcscope> ";
/** Flags every tool command takes besides the tool's own. */
const COMMON_FLAGS = ["--json", "--arg", "--args-json"];

/** A description's first sentence on one line of at most `width` characters. */
export function oneLine(description: string, width: number): string {
  const sentence = firstSentence(description.replace(/\s+/g, " ")).replace(/[:.]$/, "");
  if (sentence.length <= width) return sentence;
  const cut = sentence.slice(0, width - 1);
  return `${cut.slice(0, Math.max(cut.lastIndexOf(" "), width / 2))}…`;
}

export function helpText(): string {
  return [
    table(
      ["COMMAND", "ARGUMENTS", "WHAT"],
      Object.entries(SHELL_COMMANDS).map(([name, command]) => [name, command.usage, command.tool ? `${command.what} (${command.tool})` : command.what]),
    ),
    "",
    "Flags are the tool's parameters (kebab or snake case), plus --json for the raw result. Tab completes commands, tools and flags;",
    "Up/Down walk the history; Ctrl-C cancels a running call.",
  ].join("\n");
}

/** The tool a shell line runs, if any: a shell command's tool, or the TOOL of `call TOOL`. */
function toolOfLine(words: readonly string[], tools: readonly Tool[]): Tool | undefined {
  const name = words[0] === "call" ? words[1] : SHELL_COMMANDS[words[0] ?? ""]?.tool;
  return tools.find((tool) => tool.name === name);
}

/**
 * Tab completion: commands at the start, tool names after `call` and `help`, then the tool's flags,
 * and after a flag with a fixed set of values (an enum, a boolean) those values.
 */
export function complete(line: string, tools: readonly Tool[]): [string[], string] {
  const words = line.split(/\s+/);
  const partial = words[words.length - 1]!;
  const before = words.slice(0, -1).filter(Boolean);
  const pick = (candidates: readonly string[]): [string[], string] => {
    const hits = candidates.filter((candidate) => candidate.startsWith(partial));
    return [hits.length === 1 ? [`${hits[0]} `] : hits, partial];
  };
  if (before.length === 0) return pick(Object.keys(SHELL_COMMANDS));
  if (before.length === 1 && (before[0] === "call" || before[0] === "help")) {
    return pick([...(before[0] === "help" ? Object.keys(SHELL_COMMANDS) : []), ...tools.map((tool) => tool.name)]);
  }
  const tool = toolOfLine(before, tools);
  if (!tool) return [[], partial];
  const props = (tool.inputSchema.properties ?? {}) as Record<string, JsonSchema>;
  const previous = before[before.length - 1]!;
  const param = previous.startsWith("--") ? previous.slice(2).replace(/-/g, "_") : undefined;
  if (param !== undefined && props[param] && !partial.startsWith("-")) {
    const schema = props[param]!;
    const values = isBooleanSchema(schema)
      ? ["true", "false"]
      : [schema.enum, ...(schema.anyOf ?? []).map((alternative) => alternative.enum)].flatMap((list) => (list ?? []).map(String));
    return pick(values);
  }
  return pick([...Object.keys(props).map(flagOf), ...COMMON_FLAGS, ...(tool.name === PROMPT_TOOL ? ["--llm-url", "--model"] : [])]);
}

/** The history file's lines, newest last, cut to the bound (the file is rewritten when it grew past twice that). */
export function loadHistory(path: string): string[] {
  let lines: string[];
  try {
    lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
  if (lines.length > 2 * HISTORY_SIZE) {
    lines = lines.slice(-HISTORY_SIZE);
    try {
      writeFileSync(path, `${lines.join("\n")}\n`, { mode: 0o600 });
    } catch {
      // A read-only home keeps its history as it is.
    }
  }
  return lines.slice(-HISTORY_SIZE);
}

function remember(path: string, line: string): void {
  try {
    appendFileSync(path, `${line}\n`, { mode: 0o600 });
    // Lines may carry tokens (confirm tokens, --token): only the owner reads them, as with bash.
    chmodSync(path, 0o600);
  } catch {
    // No history file (read-only home): the in-memory history still works.
  }
}

export interface ShellOptions {
  flags: Record<string, string | boolean>;
  llm: { url?: string; model?: string };
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream;
  historyFile: string;
}

/** The read-eval-print loop over one session; resolves with the exit code when the person leaves. */
export async function runShell(options: ShellOptions): Promise<number> {
  let session: Session | null = await openSession(options.flags, { monitor: true });
  const out = lineWriter(options.output);
  const err = lineWriter(process.stderr);
  const version = session.client.getServerVersion();

  const terminal = options.input.isTTY === true;
  (terminal ? out : err)(`Connected to ${session.where} (${version?.name ?? "server"} ${version?.version ?? ""}, ${session.tools.length} tools). Type help for the commands, quit or Ctrl-D to leave.`);
  const rl: Interface = createInterface({
    input: options.input,
    output: options.output,
    terminal,
    prompt: PROMPT,
    history: loadHistory(options.historyFile).reverse(),
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string) => complete(line, session?.tools ?? []),
  });

  let running: AbortController | null = null;
  // Lines typed (or piped in) while a call runs wait their turn, like a shell's typeahead.
  const queue: string[] = [];
  let draining = false;
  let closed = false;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = (code) => void (session?.close() ?? Promise.resolve()).finally(() => resolve(code));
  });
  const prompt = () => {
    if (terminal && !closed) rl.prompt();
  };
  rl.on("close", () => {
    closed = true;
    // Ctrl-D at a terminal leaves now; piped input ends after its last line has run.
    if (terminal) {
      queue.length = 0;
      running?.abort();
      out("");
    }
    if (!draining) finish(0);
  });

  const ensureSession = async (): Promise<Session> => {
    if (session) return session;
    session = await openSession(options.flags, { monitor: true });
    out(`(reconnected to ${session.where})`);
    return session;
  };

  const execute = async (words: string[], signal: AbortSignal): Promise<void> => {
    const [command = "", ...rest] = words;
    if (command === "quit" || command === "exit") {
      queue.length = 0;
      rl.close();
      return;
    }
    if (command === "help" || command === "?") {
      const topic = rest[0];
      if (topic === undefined) return out(helpText());
      const name = SHELL_COMMANDS[topic]?.tool ?? topic;
      const tool = (await ensureSession()).tools.find((candidate) => candidate.name === name);
      if (tool) return out(`${topic === name ? "" : `${topic} ${SHELL_COMMANDS[topic]!.usage}\n`}${toolHelp(tool)}`);
      if (SHELL_COMMANDS[topic]) return out(`${topic} ${SHELL_COMMANDS[topic]!.usage}: ${SHELL_COMMANDS[topic]!.what}`);
      throw new UsageError(`no command or tool "${topic}"; type help for the commands, tools for the tools`);
    }
    const current = await ensureSession();
    if (command === "tools") {
      return out(table(["TOOL", "WHAT"], current.tools.map((tool) => [tool.name, oneLine(tool.description ?? "", 100)])));
    }
    const { flags, rest: toolArgv } = splitFlags(rest, { json: "boolean", ...(command === "insights" ? LLM_FLAGS : {}) });
    // An incomplete answer's warning belongs with the answer, in the shell's output.
    const io = { json: flags.json === true, signal, out, err, warn: out };
    if (command === "insights") {
      const llm = { url: (flags["llm-url"] as string | undefined) ?? options.llm.url, model: (flags.model as string | undefined) ?? options.llm.model };
      await runInsights(current, toolArgv, llm, io);
      return;
    }
    if (command === "call") {
      const [name, ...callArgv] = toolArgv;
      if (name === undefined) throw new UsageError("call needs a tool name: call TOOL [--param value …]; tools lists them");
      await runTool(current, name, callArgv, io);
      return;
    }
    const tool = SHELL_COMMANDS[command]?.tool;
    if (!tool) throw new UsageError(`unknown command "${command}"; commands: ${Object.keys(SHELL_COMMANDS).join(", ")} (help explains them)`);
    await runTool(current, tool, toolArgv, io);
  };

  /** Runs one line; errors are printed and the shell goes on. */
  const handle = async (line: string): Promise<void> => {
    const trimmed = line.trim();
    if (trimmed === "") return;
    remember(options.historyFile, trimmed);
    const controller = new AbortController();
    running = controller;
    try {
      await execute(splitWords(trimmed), controller.signal);
    } catch (error) {
      if (controller.signal.aborted) err("cancelled");
      else if (error instanceof UsageError) err(`error: ${error.message}`);
      else if (error instanceof ConnectError || error instanceof AuthError) {
        err(`error: ${error.message}`);
        // The next command connects again (a restarted server, a new local one).
        await session?.close().catch(() => {});
        session = null;
      } else err(`error: ${(error as Error).message ?? String(error)}`);
    } finally {
      running = null;
    }
  };

  const drain = async (): Promise<void> => {
    if (draining) return;
    draining = true;
    while (queue.length > 0) await handle(queue.shift()!);
    draining = false;
    if (closed) finish(0);
    else prompt();
  };

  rl.on("line", (line: string) => {
    queue.push(line);
    void drain();
  });

  // Ctrl-C: cancels the running call (the server is told, and stops its capture), or clears the line.
  rl.on("SIGINT", () => {
    if (running) {
      running.abort();
      return;
    }
    if (rl.line.length > 0) {
      rl.write(null, { ctrl: true, name: "u" });
      out("^C");
    } else {
      out("\n(To leave, type quit or press Ctrl-D)");
    }
    prompt();
  });

  // Without a terminal (input piped in) Ctrl-C arrives as a signal, not a key.
  const onSignal = () => (running ? running.abort() : rl.close());
  if (!terminal) process.on("SIGINT", onSignal);
  prompt();
  const code = await done;
  process.off("SIGINT", onSignal);
  return code;
}

export default defineCommand({
  meta: {
    name: "shell",
    description: "Investigate interactively over one session: summary, list, analyze, snapshot, graph, drops, insights, tools, call, help, quit.",
  },
  args: { ...connectionArgs, ...llmArgs },
  async run({ args }) {
    if (args["llm-url"] !== undefined) {
      chatCompletionsUrl(args["llm-url"]);
      if (!args.model) throw new UsageError("--llm-url needs --model: the model to ask there (e.g. --model llama3.1 for Ollama)");
    }
    const flags: Record<string, string | boolean> = {};
    for (const name of Object.keys(connectionArgs)) {
      const value = (args as Record<string, unknown>)[name];
      if (typeof value === "string") flags[name] = value;
    }
    process.exitCode = await runShell({
      flags,
      llm: { url: args["llm-url"], model: args.model },
      input: process.stdin,
      output: process.stdout,
      historyFile: join(homedir(), HISTORY_FILE),
    });
  },
});
