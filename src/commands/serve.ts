import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import { logger } from "../logger.ts";
import type { startHttpServer as StartHttpServer } from "../server/http.ts";
import { accessSync, constants, mkdirSync } from "node:fs";
import { stopAllJobs } from "../jobs.ts";
import { configureMonitor, getMonitor, stopMonitor, type MonitorOptions } from "../events/monitor.ts";
import { parseToolsets, selectTools } from "../tools/index.ts";
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

/** Ends what serve started besides the transport: capture jobs, the probe, the store. */
async function shutdown(): Promise<void> {
  await stopAllJobs();
  await stopMonitor();
}

function checkStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    throw new UsageError(`--state-dir: cannot use "${dir}" (${(error as Error).message}); give a writable directory`);
  }
}
