// The MCP resources: read-only JSON views built by the same tool code (through invokeTool), so a
// resource reads back exactly what the tool answers. ipcscope://process/{pid} joins the process's
// facts, its sockets (the snapshot tool for that pid) and its recent events.
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ErrorCode, McpError, type ReadResourceResult } from "@modelcontextprotocol/sdk/types.js";
import { peekMonitor } from "../events/monitor.ts";
import { logger } from "../logger.ts";
import { findProbe, PROBES } from "../probes/catalog.ts";
import { readProcess } from "../snapshot/proc.ts";
import getIpcGraph from "../tools/get_ipc_graph.ts";
import getProcessConnectionSnapshot from "../tools/get_process_connection_snapshot.ts";
import getSystemInfo from "../tools/get_system_info.ts";
import { invokeTool } from "../tools/index.ts";
import listConnections from "../tools/list_connections.ts";
import type { ToolContext, ToolDefinition } from "../tools/types.ts";

const JSON_TYPE = "application/json";

function json(uri: URL, value: unknown): ReadResourceResult {
  return { contents: [{ uri: uri.href, mimeType: JSON_TYPE, text: JSON.stringify(value, null, 2) }] };
}

type Via = ToolContext["via"];

async function call(tool: ToolDefinition, args: Record<string, unknown>, via: Via, signal: AbortSignal): Promise<Record<string, unknown>> {
  const outcome = await invokeTool(tool as ToolDefinition, args, { signal, log: logger, via });
  if (!outcome.ok) throw new McpError(ErrorCode.InternalError, outcome.error);
  return outcome.result;
}

/** The pid of ipcscope://process/{pid}, or an error that says what is wrong with it. */
export function parsePid(value: string | string[] | undefined): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^[1-9]\d{0,9}$/.test(text)) {
    throw new McpError(ErrorCode.InvalidParams, `ipcscope://process/{pid}: pid must be a positive integer, got "${text ?? ""}"`);
  }
  return Number(text);
}

async function processResource(pid: number, via: Via, signal: AbortSignal) {
  const info = readProcess(pid);
  if (!info) {
    throw new McpError(ErrorCode.InvalidParams, `no process with pid ${pid} on this host (it may have exited); read ipcscope://snapshot for the processes with sockets`);
  }
  const snapshot = (await call(getProcessConnectionSnapshot as unknown as ToolDefinition, { pid, include_unix: true, limit: 2000 }, via, signal)) as {
    process_connections: { pid: number; connections: unknown[]; connections_total: number }[];
    truncated: boolean;
  };
  const entry = snapshot.process_connections.find((p) => p.pid === pid);
  // Events only from a running monitor: reading a resource must not load a probe.
  const events = peekMonitor() === null ? null : await call(listConnections as unknown as ToolDefinition, { pid, since: 600, limit: 50 }, via, signal);
  return {
    pid,
    ppid: info.ppid,
    name: info.name,
    user: info.user,
    uid: info.uid,
    command_line: info.command_line,
    unit: info.unit,
    container: info.container,
    cgroup: info.cgroup,
    netns: info.netns,
    sockets: entry?.connections ?? [],
    sockets_total: entry?.connections_total ?? 0,
    sockets_truncated: snapshot.truncated,
    recent_events: events,
    ...(events === null ? { recent_events_note: "no event history: the connection monitor is not running (serve --no-monitor); an events tool starts it" } : {}),
  };
}

export function registerResources(server: McpServer, via: Via): void {
  const fixed: [name: string, uri: string, title: string, description: string, read: (signal: AbortSignal) => Promise<unknown>][] = [
    ["snapshot", "ipcscope://snapshot", "Process connection snapshot", "get_process_connection_snapshot with no filters: every process with its TCP/UDP/raw sockets", (signal) => call(getProcessConnectionSnapshot as unknown as ToolDefinition, {}, via, signal)],
    ["ipc-graph", "ipcscope://ipc-graph", "IPC graph", "get_ipc_graph: local client -> server edges over loopback TCP/UDP and Unix sockets", (signal) => call(getIpcGraph as unknown as ToolDefinition, {}, via, signal)],
    ["events-recent", "ipcscope://events/recent", "Recent connection events", "list_connections defaults: the newest 100 events of the last 600 s, with lost_events, complete and a note when incomplete (starts the monitor like the tool)", (signal) => call(listConnections as unknown as ToolDefinition, {}, via, signal)],
    ["system", "ipcscope://system", "System info", "get_system_info: kernel, privileges, probe readiness, checks, monitor state", (signal) => call(getSystemInfo as unknown as ToolDefinition, {}, via, signal)],
    [
      "probes",
      "ipcscope://probes",
      "Probe catalogue",
      "Every embedded bpftrace probe: summary, tracepoints, kernel needs, overhead; each source at ipcscope://probes/{name}",
      async () => ({
        probes: PROBES.map(({ source: _source, ...probe }) => ({ ...probe, uri: `ipcscope://probes/${probe.name}` })),
      }),
    ],
  ];
  for (const [name, uri, title, description, read] of fixed) {
    server.registerResource(name, uri, { title, description, mimeType: JSON_TYPE }, async (url, extra) => json(url, await read(extra.signal)));
  }

  server.registerResource(
    "probe-source",
    new ResourceTemplate("ipcscope://probes/{name}", {
      list: async () => ({
        resources: PROBES.map((probe) => ({ uri: `ipcscope://probes/${probe.name}`, name: probe.name, description: probe.summary, mimeType: "text/plain" })),
      }),
      complete: { name: (value) => PROBES.map((p) => p.name).filter((n) => n.startsWith(value)) },
    }),
    { title: "Probe source", description: "A probe's bpftrace script, as embedded in this binary", mimeType: "text/plain" },
    async (url, variables) => {
      const name = String(variables.name);
      const probe = findProbe(name);
      if (!probe) throw new McpError(ErrorCode.InvalidParams, `no probe "${name}"; known: ${PROBES.map((p) => p.name).join(", ")}`);
      return { contents: [{ uri: url.href, mimeType: "text/plain", text: probe.source }] };
    },
  );

  server.registerResource(
    "process",
    new ResourceTemplate("ipcscope://process/{pid}", { list: undefined }),
    {
      title: "One process",
      description: "A process's command line, user, systemd unit or container, its sockets (TCP, UDP, raw, Unix) and its recent connection events",
      mimeType: JSON_TYPE,
    },
    async (url, variables, extra) => json(url, await processResource(parsePid(variables.pid), via, extra.signal)),
  );
}
