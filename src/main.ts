#!/usr/bin/env bun
// ipcscope: the CLI entry. Commands are thin; each calls the library functions the MCP tools use.
import { type CommandDef, defineCommand, runCommand, showUsage } from "citty";
import { AuthError, ConnectError, EXIT, UsageError } from "./errors.ts";
import { logger } from "./logger.ts";
import { VERSION } from "./version.ts";
import call, { EXIT_CODES_HELP, splitCallFlags } from "./commands/call.ts";
import doctor from "./commands/doctor.ts";
import events from "./commands/events.ts";
import graph from "./commands/graph.ts";
import insights from "./commands/insights.ts";
import serve from "./commands/serve.ts";
import shell from "./commands/shell.ts";
import snapshot from "./commands/snapshot.ts";
import token from "./commands/token.ts";
import tools from "./commands/tools.ts";

export const subCommands: Record<string, CommandDef<any>> = { serve, snapshot, graph, events, doctor, tools, token, call, shell, insights };

/** Commands that take a tool's parameters as flags: they check them against the schema the server serves. */
const TOOL_FLAG_COMMANDS = new Set(["call", "insights"]);
/** The MCP client commands, whose exit codes scripts rely on (said in their --help). */
const CLIENT_COMMANDS = new Set(["call", "shell", "insights"]);

export const main = defineCommand({
  meta: {
    name: "ipcscope",
    version: VERSION,
    description: "A deep and safe view of this host's processes and their network/IPC communications, served over MCP.",
  },
  subCommands,
});

/** citty accepts any flag; a typo such as --prot must be an error, not silently ignored. */
export function unknownFlags(rawArgs: readonly string[], command: CommandDef<any>): string[] {
  const known = new Set(["help", "h"]);
  for (const [name, def] of Object.entries((command.args ?? {}) as Record<string, { alias?: string | string[] }>)) {
    known.add(name);
    known.add(name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()));
    for (const alias of [def.alias ?? []].flat()) known.add(alias);
  }
  return rawArgs
    .filter((arg) => arg.startsWith("-") && arg !== "-" && arg !== "--")
    .map((arg) => arg.replace(/^--?/, "").split("=")[0]!)
    .map((name) => (name.startsWith("no-") && known.has(name.slice(3)) ? name.slice(3) : name))
    .filter((name) => !known.has(name));
}

async function run(rawArgs: string[]): Promise<number> {
  const name = rawArgs[0];
  const command = name ? subCommands[name] : undefined;
  if (!command) {
    if (rawArgs.length === 1 && (name === "--version" || name === "-v")) {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
    await showUsage(main);
    if (name === undefined || name === "--help" || name === "-h") return 0;
    process.stderr.write(`ipcscope: unknown command "${name}"; commands: ${Object.keys(subCommands).join(", ")}\n`);
    return 2;
  }
  const rest = rawArgs.slice(1);
  // `call TOOL --help` lists the tool's parameters, which only the server knows: call answers it.
  const toolHelp = name === "call" && splitCallFlags(rest).rest.length > 0;
  if ((rest.includes("--help") || rest.includes("-h")) && !toolHelp) {
    await showUsage(command, main);
    if (CLIENT_COMMANDS.has(name!)) process.stdout.write(`${EXIT_CODES_HELP}\n`);
    return 0;
  }
  const unknown = TOOL_FLAG_COMMANDS.has(name!) ? [] : unknownFlags(rest, command);
  if (unknown.length > 0) {
    await showUsage(command, main);
    process.stderr.write(`ipcscope ${name}: unknown option ${unknown.map((flag) => `--${flag}`).join(", ")}\n`);
    return 2;
  }
  await runCommand(command, { rawArgs: rest });
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}

if (import.meta.main) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof UsageError || error instanceof ConnectError || error instanceof AuthError) {
        process.stderr.write(`ipcscope: ${error.message}\n`);
        process.exit(error instanceof UsageError ? EXIT.usage : error instanceof ConnectError ? EXIT.connect : EXIT.auth);
      }
      logger.error(error);
      process.exit(1);
    },
  );
}
