import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import { logger } from "../logger.ts";
import type { startHttpServer as StartHttpServer } from "../server/http.ts";
import { accessSync, constants, mkdirSync, readFileSync } from "node:fs";
import { stopAllJobs } from "../jobs.ts";
import { cancelAllCalls, configureLimits, DEFAULT_LIMITS, drained, runningProbeWindows } from "../limits.ts";
import { verificationsEnded } from "../probes/verify.ts";
import { allowedHosts, parseOrigins, resolveToken } from "../server/auth.ts";
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

/** A whole number flag within bounds, or a UsageError naming the flag and the value. */
export function parseCount(flag: string, value: string, min: number, max: number): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || number < min || number > max) {
    throw new UsageError(`${flag}: "${value}" is not a whole number from ${min} to ${max}`);
  }
  return number;
}

const list = (value: string | undefined) => (value ?? "").split(",").map((item) => item.trim()).filter(Boolean);

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
    "token-file": {
      type: "string",
      description: "With --http: require Authorization: Bearer <the token in FILE> (mode 0600; make it with ipcscope token --out FILE)",
      valueHint: "file",
    },
    token: {
      type: "string",
      description: "With --http: the bearer token itself (other users see it in ps: prefer --token-file or IPCSCOPE_TOKEN)",
      valueHint: "token",
    },
    "insecure-no-auth": {
      type: "boolean",
      description: "Allow --host to be a non-loopback address without a token (trusted networks only)",
      default: false,
    },
    "allowed-hosts": {
      type: "string",
      description: "Extra names clients may use in the Host header (comma list; * for any); the bind address, localhost and this host's name are always allowed",
      valueHint: "list",
    },
    "allowed-origins": {
      type: "string",
      description: "Browser origins allowed besides those of the allowed hosts (comma list of scheme://host[:port]; * for any)",
      valueHint: "list",
    },
    "tls-cert": { type: "string", description: "With --http: serve HTTPS with this PEM certificate (chain); needs --tls-key", valueHint: "file" },
    "tls-key": { type: "string", description: "With --http: the PEM private key of --tls-cert", valueHint: "file" },
    "max-sessions": { type: "string", description: "With --http: MCP sessions open at once; more are refused with 503", default: "64", valueHint: "n" },
    "session-idle-timeout": {
      type: "string",
      description: "With --http: close an MCP session after this many seconds without a request",
      default: "1800",
      valueHint: "seconds",
    },
    "max-jobs": {
      type: "string",
      description: "Background jobs at once, and probe windows (each a bpftrace) at once",
      default: String(DEFAULT_LIMITS.maxJobs),
      valueHint: "n",
    },
    "call-timeout": {
      type: "string",
      description: "Cancel a tool call running longer than this many seconds",
      default: String(DEFAULT_LIMITS.callTimeoutMs / 1000),
      valueHint: "seconds",
    },
    "destructive-rate-limit": {
      type: "string",
      description: "Calls per minute of tools that change the host (send_signal_to_pid, previews included)",
      default: String(DEFAULT_LIMITS.destructivePerMinute),
      valueHint: "n",
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
    configureLimits({
      maxJobs: parseCount("--max-jobs", args["max-jobs"], 1, 64),
      callTimeoutMs: parseCount("--call-timeout", args["call-timeout"], 1, 86_400) * 1000,
      destructivePerMinute: parseCount("--destructive-rate-limit", args["destructive-rate-limit"], 0, 10_000),
    });
    if (!args.http) {
      for (const flag of ["token-file", "token", "allowed-hosts", "allowed-origins", "tls-cert", "tls-key"] as const) {
        if (args[flag] !== undefined) throw new UsageError(`--${flag} applies to HTTP only: add --http, or leave it out for stdio`);
      }
    }
    const http = args.http ? httpOptionsFromFlags(args) : null;
    const stopRequested = stopOnSignals();
    if (args.monitor && tools.some((tool) => tool.toolset === "events")) getMonitor();
    if (!http) {
      // The server modules (and the MCP SDK under them) load only here: the one-shot commands
      // (snapshot, graph, tools) start ~10 ms sooner without them (bench/startup.ts).
      const { serveStdio } = await import("../server/stdio.ts");
      await serveStdio(tools, stopRequested);
      await shutdown();
      return;
    }
    const { startHttpServer } = await import("../server/http.ts");
    let server: ReturnType<typeof StartHttpServer>;
    try {
      server = startHttpServer({ ...http, tools });
    } catch (error) {
      await shutdown();
      const code = (error as { code?: string }).code;
      if (code === "EADDRINUSE") throw new UsageError(`--port ${http.port}: address ${http.host}:${http.port} is already in use; pick another --port`);
      if (code === "EADDRNOTAVAIL") throw new UsageError(`--host ${http.host}: no such address on this host`);
      if (http.tls) throw new UsageError(`--tls-cert/--tls-key: Bun could not start TLS with them (${(error as Error).message}); give a PEM certificate and its matching key`);
      throw error;
    }
    logger.info(
      `ipcscope serving MCP at ${new URL("/mcp", server.url)} (health: ${new URL("/health", server.url)}) with ${tools.length} tool(s)` +
        `${http.token ? ", bearer token required" : ""}`,
    );
    await stopRequested;
    await server.stop();
    await shutdown();
  },
});

/**
 * The first SIGINT or SIGTERM cancels every running call and resolves (serve then closes the
 * transport, the jobs, the probe, the store, and exits 0); a second one exits at once.
 */
function stopOnSignals(): Promise<string> {
  return new Promise((resolve) => {
    let received = 0;
    const handler = (signal: NodeJS.Signals) => {
      if (++received > 1) {
        logger.warn(`${signal} again: exiting now, without waiting for calls, jobs and probes`);
        process.exit(1);
      }
      logger.info(`${signal} received: cancelling calls, closing sessions, stopping probes (again to exit at once)`);
      cancelAllCalls();
      resolve(signal);
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}

/** How long shutdown waits for cancelled probe windows to stop their bpftrace. */
const WINDOWS_GRACE_MS = 5_000;

/** Ends what serve started besides the transport: running calls, jobs, probe windows, verifications, the monitor's probe, the store. */
async function shutdown(): Promise<void> {
  cancelAllCalls();
  await Promise.all([stopAllJobs(), verificationsEnded()]);
  // Inline windows stop on the cancellation; each releases its slot once its bpftrace has exited.
  await drained(runningProbeWindows, WINDOWS_GRACE_MS);
  await stopMonitor();
}

/** Who may connect and how, from the --http flags: token, allow-lists, TLS, session limits. */
function httpOptionsFromFlags(args: Record<string, unknown>) {
  const host = args.host as string;
  const port = parsePort(args.port as string);
  const found = resolveToken({ tokenFile: args["token-file"] as string | undefined, token: args.token as string | undefined, env: process.env.IPCSCOPE_TOKEN });
  if (found?.from === "--token") logger.warn("--token: the token is visible to every user in ps; prefer --token-file or IPCSCOPE_TOKEN");
  const certPath = args["tls-cert"] as string | undefined;
  const keyPath = args["tls-key"] as string | undefined;
  if ((certPath === undefined) !== (keyPath === undefined)) throw new UsageError("--tls-cert and --tls-key go together: give both, or neither");
  const readPem = (flag: string, path: string) => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      throw new UsageError(`--${flag}: cannot read "${path}" (${(error as Error).message})`);
    }
    if (!text.includes("-----BEGIN ")) throw new UsageError(`--${flag}: "${path}" is not a PEM file (no -----BEGIN line)`);
    return text;
  };
  const tls = certPath && keyPath ? { cert: readPem("tls-cert", certPath), key: readPem("tls-key", keyPath) } : undefined;
  if (!isLoopback(host)) {
    if (!found && !args["insecure-no-auth"]) {
      throw new UsageError(
        `--host ${host}: refusing to serve without authentication on a non-loopback address, ` +
          "where anyone who reaches the port could read every process's connections. Make a token " +
          "(ipcscope token --out /etc/ipcscope/token) and pass --token-file; or bind to 127.0.0.1 and tunnel " +
          "(ssh -L 8000:127.0.0.1:8000 HOST); or pass --insecure-no-auth on a trusted network.",
      );
    }
    if (!found) logger.warn(`serving on ${host} WITHOUT authentication (--insecure-no-auth): anyone who reaches the port can use every tool`);
    else if (!tls) logger.warn(`serving on ${host} over plain HTTP: the token and the answers cross the network unencrypted; add --tls-cert/--tls-key or put a TLS proxy in front`);
  }
  return {
    host,
    port,
    token: found?.token ?? null,
    gate: { hosts: allowedHosts(host, list(args["allowed-hosts"] as string | undefined)), origins: parseOrigins(list(args["allowed-origins"] as string | undefined)) },
    tls,
    maxSessions: parseCount("--max-sessions", args["max-sessions"] as string, 1, 100_000),
    sessionIdleMs: parseCount("--session-idle-timeout", args["session-idle-timeout"] as string, 1, 7 * 86_400) * 1000,
  };
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
