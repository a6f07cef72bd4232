import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import { logger } from "../logger.ts";
import type { startHttpServer as StartHttpServer } from "../server/http.ts";
import { accessSync, constants, mkdirSync } from "node:fs";
import { stopAllJobs } from "../jobs.ts";
import { stopInlineWindows } from "../health/window.ts";
import { verificationsEnded } from "../probes/verify.ts";
import { configureMonitor, getMonitor, stopMonitor, type MonitorOptions } from "../events/monitor.ts";
import { parseToolsets, selectTools } from "../tools/index.ts";
import { configureSignals } from "../tools/send_signal_to_pid.ts";
import { DEFAULT_DENY_COMMANDS, parseNameList } from "../signals/policy.ts";
import { applyLogLevel, logLevelArg, toolFilterArgs } from "./_shared.ts";

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || port > 65535) {
    throw new UsageError(`--port: "${value}" is not a port number (1-65535, or 0 for any free port)`);
  }
  return port;
}

/** Loopback addresses: binding there exposes nothing to the network. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "::1" || host === "[::1]";
}

export default defineCommand({
  meta: {
    name: "serve",
    description:
      "Serve MCP: over stdio by default (for local agents), or over Streamable HTTP at /mcp with --http " +
      "(plus GET /health and a REST mirror of every tool at /<tool_name>).",
  },
  args: {
    http: { type: "boolean", description: "Serve Streamable HTTP instead of stdio", default: false },
    host: { type: "string", description: "Address to bind with --http", default: "127.0.0.1", valueHint: "addr" },
    port: { type: "string", description: "Port to bind with --http (0 picks a free port)", default: "8000", valueHint: "port" },
    "insecure-no-auth": {
      type: "boolean",
      description: "Allow --host to be a non-loopback address without authentication (trusted networks only)",
      default: false,
    },
    monitor: {
      type: "boolean",
      description: "Record connection events from server start (--no-monitor: only while an events tool runs)",
      default: true,
    },
    "events-source": {
      type: "string",
      description: "Where connection events come from: auto (eBPF if it can run, else ss polling), ebpf, or ss-poll",
      default: "auto",
      valueHint: "source",
    },
    "state-dir": {
      type: "string",
      description: "Keep the event history in DIR/events.db across restarts (default: in memory)",
      valueHint: "dir",
    },
    "allow-signals": {
      type: "boolean",
      description: "Let send_signal_to_pid send signals (preview + confirm, protections, audit); off by default",
      default: false,
    },
    "signal-deny-commands": {
      type: "string",
      description: "Process names send_signal_to_pid never signals (comma list; \"\" for none)",
      default: DEFAULT_DENY_COMMANDS,
      valueHint: "list",
    },
    "signal-allow-users": {
      type: "string",
      description: "Only signal processes of these users (names or uids, comma list; default: any user)",
      valueHint: "list",
    },
    "signal-deny-users": {
      type: "string",
      description: "Never signal processes of these users (names or uids, comma list); wins over --signal-allow-users",
      valueHint: "list",
    },
    ...toolFilterArgs,
    ...logLevelArg,
  },
  async run({ args }) {
    applyLogLevel(args["log-level"]);
    const tools = selectTools({ toolsets: parseToolsets(args.toolsets), readOnly: args["read-only"] });
    const source = args["events-source"];
    if (!["auto", "ebpf", "ss-poll"].includes(source)) throw new UsageError(`--events-source: unknown source "${source}"; use auto, ebpf or ss-poll`);
    configureMonitor({ stateDir: args["state-dir"], source: source as MonitorOptions["source"] });
    if (args["state-dir"] !== undefined) checkStateDir(args["state-dir"]);
    configureSignalsFromFlags(args, tools);
    if (args.monitor && tools.some((tool) => tool.toolset === "events")) getMonitor();
    if (!args.http) {
      // The server modules (and the MCP SDK under them) load only here: the one-shot commands
      // (snapshot, graph, tools) start ~10 ms sooner without them (bench/startup.ts).
      const { serveStdio } = await import("../server/stdio.ts");
      await serveStdio(tools);
      await shutdown();
      return;
    }
    const port = parsePort(args.port);
    if (!isLoopback(args.host) && !args["insecure-no-auth"]) {
      throw new UsageError(
        `--host ${args.host}: refusing to serve without authentication on a non-loopback address, ` +
          "where anyone who reaches the port could read every process's connections. Bind to 127.0.0.1 and " +
          "tunnel (ssh -L 8000:127.0.0.1:8000 HOST), or pass --insecure-no-auth on a trusted network.",
      );
    }
    if (!isLoopback(args.host)) logger.warn(`serving on ${args.host} WITHOUT authentication (--insecure-no-auth)`);
    const { startHttpServer } = await import("../server/http.ts");
    let server: ReturnType<typeof StartHttpServer>;
    try {
      server = startHttpServer({ host: args.host, port, tools });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "EADDRINUSE") throw new UsageError(`--port ${port}: address ${args.host}:${port} is already in use; pick another --port`);
      if (code === "EADDRNOTAVAIL") throw new UsageError(`--host ${args.host}: no such address on this host`);
      throw error;
    }
    logger.info(`ipcscope serving MCP at ${new URL("/mcp", server.url)} (health: ${new URL("/health", server.url)}) with ${tools.length} tool(s)`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info(`${signal} received: closing sessions and stopping`);
        server.stop().finally(resolve);
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
    await shutdown();
  },
});

/** Ends what serve started besides the transport: capture jobs, inline probe windows, verifications, the probe, the store. */
async function shutdown(): Promise<void> {
  await Promise.all([stopAllJobs(), stopInlineWindows(), verificationsEnded()]);
  await stopMonitor();
}

/** send_signal_to_pid's policy from the --allow-signals and --signal-* flags. */
function configureSignalsFromFlags(args: Record<string, unknown>, tools: readonly { name: string }[]): void {
  const policy = {
    enabled: args["allow-signals"] === true,
    denyCommands: parseNameList(args["signal-deny-commands"] as string | undefined, "--signal-deny-commands"),
    allowUsers: parseNameList(args["signal-allow-users"] as string | undefined, "--signal-allow-users"),
    denyUsers: parseNameList(args["signal-deny-users"] as string | undefined, "--signal-deny-users"),
  };
  configureSignals({ policy, stateDir: args["state-dir"] as string | undefined });
  if (!policy.enabled) return;
  if (!tools.some((tool) => tool.name === "send_signal_to_pid")) {
    logger.warn("--allow-signals has no effect: send_signal_to_pid is not served (--read-only or --toolsets)");
    return;
  }
  logger.warn(
    `signals ENABLED (--allow-signals): send_signal_to_pid may signal processes after a confirmed preview; ` +
      `never: pid 1, kernel threads, ipcscope and its parents, commands ${policy.denyCommands.join(",") || "(none)"}` +
      (policy.denyUsers.length > 0 ? `, users ${policy.denyUsers.join(",")}` : "") +
      (policy.allowUsers.length > 0 ? `; only users ${policy.allowUsers.join(",")}` : "") +
      `; audit: ${args["state-dir"] === undefined ? "this log only" : `${args["state-dir"]}/audit.log and this log`}`,
  );
}

function checkStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    throw new UsageError(`--state-dir: cannot use "${dir}" (${(error as Error).message}); give a writable directory`);
  }
}
