// The tool list. Adding a tool = one file in this folder + one line in ALL_TOOLS.
import { z } from "zod";
import "../util/zod-errors.ts";
import { ToolError, UsageError } from "../errors.ts";
import { callStarted, limits, RateLimitError, shutdownSignal, takeDestructiveCall } from "../limits.ts";
import { singleFlight } from "../util/single-flight.ts";
import { TOOLSETS, type Toolset, type ToolContext, type ToolDefinition } from "./types.ts";
import getIpcGraph from "./get_ipc_graph.ts";
import getProcessConnectionSnapshot from "./get_process_connection_snapshot.ts";
import getSystemInfo from "./get_system_info.ts";
import getLiveNetworkEvents from "./get_live_network_events.ts";
import getCaptureResults from "./get_capture_results.ts";
import stopCapture from "./stop_capture.ts";
import waitForConnection from "./wait_for_connection.ts";
import listConnections from "./list_connections.ts";
import getConnectionSummary from "./get_connection_summary.ts";
import analyzePatterns from "./analyze_patterns.ts";
import traceSyscallErrors from "./trace_syscall_errors.ts";
import getInterfaceTraffic from "./get_interface_traffic.ts";
import listBpfPrograms from "./list_bpf_programs.ts";
import dumpBpfMap from "./dump_bpf_map.ts";
import getPacketDropSummary from "./get_packet_drop_summary.ts";
import listPacketDrops from "./list_packet_drops.ts";
import getTcpHealth from "./get_tcp_health.ts";
import sendSignalToPid from "./send_signal_to_pid.ts";
import generateIpcAnalysisPrompt from "./generate_ipc_analysis_prompt.ts";
import explainActivity from "./explain_activity.ts";

export const ALL_TOOLS: readonly ToolDefinition[] = [
  getSystemInfo,
  getProcessConnectionSnapshot,
  getIpcGraph,
  getLiveNetworkEvents,
  getCaptureResults,
  stopCapture,
  waitForConnection,
  listConnections,
  getConnectionSummary,
  analyzePatterns,
  traceSyscallErrors,
  getInterfaceTraffic,
  listBpfPrograms,
  dumpBpfMap,
  getPacketDropSummary,
  listPacketDrops,
  getTcpHealth,
  sendSignalToPid,
  generateIpcAnalysisPrompt,
  explainActivity,
] as unknown as ToolDefinition[];

export interface ToolFilter {
  /** Toolset names; empty or undefined means all. */
  toolsets?: readonly string[];
  /** Leave out every tool that is not read-only. */
  readOnly?: boolean;
}

/** Parses `--toolsets system,snapshot` (or `all`) and refuses names that do not exist. */
export function parseToolsets(value: string | undefined): Toolset[] | undefined {
  if (value === undefined || value.trim() === "" || value.trim() === "all") return undefined;
  const names = value.split(",").map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    if (!(name in TOOLSETS)) {
      throw new UsageError(`--toolsets: unknown toolset "${name}"; known: ${Object.keys(TOOLSETS).join(", ")}, or all`);
    }
  }
  return names as Toolset[];
}

export function selectTools(filter: ToolFilter = {}): ToolDefinition[] {
  return ALL_TOOLS.filter(
    (tool) =>
      (!filter.toolsets || filter.toolsets.length === 0 || filter.toolsets.includes(tool.toolset)) &&
      (!filter.readOnly || tool.annotations.readOnlyHint),
  );
}

export type ToolOutcome =
  | { ok: true; result: Record<string, unknown> }
  | { ok: false; error: string; retryAfterS?: number };

class CallTimeout extends Error {}

/**
 * Each tool's strict input schema, built once: zod compiles a parser the first time a schema
 * parses, so a schema built per call cost that compilation on every call.
 */
const strictInput = (tool: ToolDefinition) => z.object(tool.input).strict();
const inputSchemas = new WeakMap<ToolDefinition, ReturnType<typeof strictInput>>();
function inputSchema(tool: ToolDefinition): ReturnType<typeof strictInput> {
  let schema = inputSchemas.get(tool);
  if (!schema) inputSchemas.set(tool, (schema = strictInput(tool)));
  return schema;
}

/** Runs of tools with shareConcurrentCalls, by tool and arguments. */
const sharedRuns = singleFlight<Record<string, unknown>>();

/**
 * Validates arguments with the tool's schema, runs it under the limits (rate of destructive calls,
 * per-call timeout, server shutdown), and turns expected failures into outcomes.
 */
export async function invokeTool(tool: ToolDefinition, args: unknown, ctx: ToolContext): Promise<ToolOutcome> {
  const parsed = inputSchema(tool).safeParse(args ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const where = issue.path.length > 0 ? issue.path.join(".") : "arguments";
      return `${where}: ${issue.message}`;
    });
    return { ok: false, error: `invalid arguments for ${tool.name}: ${problems.join("; ")}` };
  }
  if (shutdownSignal.aborted) return { ok: false, error: `${tool.name}: the server is shutting down; retry against the next instance` };
  const started = performance.now();
  const ended = callStarted();
  // The tool sees one signal: the caller cancelled, the call timed out, or the server is stopping.
  const timeout = new AbortController();
  const signal = AbortSignal.any([ctx.signal, timeout.signal, shutdownSignal]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timeout.abort(new CallTimeout());
      reject(new CallTimeout());
    }, limits.callTimeoutMs);
  });
  try {
    if (tool.annotations.destructiveHint) takeDestructiveCall(tool.name);
    const run = () => tool.handler(parsed.data, { ...ctx, signal });
    const result = await Promise.race([tool.shareConcurrentCalls ? sharedRuns(`${tool.name} ${JSON.stringify(parsed.data)}`, run) : run(), expired]);
    ctx.log.debug(`${tool.name} answered via ${ctx.via} in ${Math.round(performance.now() - started)} ms`);
    return { ok: true, result };
  } catch (error) {
    if (error instanceof CallTimeout) {
      ctx.log.warn(`${tool.name} via ${ctx.via} ran longer than ${limits.callTimeoutMs / 1000} s: cancelled`);
      return { ok: false, error: `${tool.name}: cancelled after ${limits.callTimeoutMs / 1000} s (the server's --call-timeout); narrow the call or use background: true` };
    }
    if (error instanceof ToolError) {
      ctx.log.debug(`${tool.name} refused via ${ctx.via}: ${error.message}`);
      return { ok: false, error: error.message, ...(error instanceof RateLimitError ? { retryAfterS: error.retryAfterS } : {}) };
    }
    ctx.log.error(`tool ${tool.name} failed:`, error);
    throw error;
  } finally {
    clearTimeout(timer);
    ended();
  }
}
