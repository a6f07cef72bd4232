// Arguments shared by several commands, and the helpers their output uses.
import { UsageError } from "../errors.ts";
import { type LogLevelName, LOG_LEVELS, logger, parseLogLevel, setLogLevel } from "../logger.ts";
import { coerceQuery } from "../server/rest.ts";
import { ALL_TOOLS, invokeTool } from "../tools/index.ts";

export const logLevelArg = {
  "log-level": {
    type: "string",
    description: `Log detail on stderr: ${Object.keys(LOG_LEVELS).join(", ")}`,
    default: "info",
    valueHint: "level",
  },
} as const;

export const jsonArg = {
  json: { type: "boolean", description: "Print JSON for machines instead of text for people", default: false },
} as const;

export const toolFilterArgs = {
  toolsets: {
    type: "string",
    description: "Comma-separated toolsets to enable (system, snapshot, events, health, actions), or all",
    default: "all",
    valueHint: "list",
  },
  "read-only": { type: "boolean", description: "Leave out every tool that can change the host", default: false },
} as const;

export function applyLogLevel(value: string | undefined): LogLevelName {
  const level = parseLogLevel(value ?? "info");
  setLogLevel(level);
  return level;
}

/** Plain text table: columns padded to their widest cell, the last column left ragged. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** A function writing text to `stream` as whole lines (a newline added when it has none). */
export const lineWriter =
  (stream: { write(text: string): unknown }) =>
  (text: string): void => {
    stream.write(text.endsWith("\n") ? text : `${text}\n`);
  };

/** Writes a command's own result to stdout (a CLI command may; the server never does). */
export const print = lineWriter(process.stdout);

/**
 * Runs a tool for a CLI command through the same validation as MCP and REST: flags (kebab-case,
 * as text) become the tool's snake_case arguments, converted like REST query parameters.
 * A refused call is a UsageError (exit 2) carrying the tool's message.
 */
export async function runToolFromFlags(name: string, flags: Record<string, unknown>): Promise<Record<string, unknown>> {
  const tool = ALL_TOOLS.find((candidate) => candidate.name === name);
  if (!tool) throw new Error(`no tool ${name}`);
  const params = new URLSearchParams();
  for (const [flag, value] of Object.entries(flags)) {
    // citty also hands over positionals (_) and camelCase copies of kebab-case flags: skip them.
    const param = flag.replace(/-/g, "_");
    if (value === undefined || value === false || value === "" || !(param in tool.input)) continue;
    params.set(param, String(value));
  }
  const outcome = await invokeTool(tool, coerceQuery(tool.input, params), { signal: new AbortController().signal, log: logger, via: "cli" });
  if (!outcome.ok) throw new UsageError(outcome.error);
  return outcome.result;
}
