// What a tool is: data (name, schemas, annotations, toolset) plus one handler. The server, the REST
// mirror and the CLI all call tools through invokeTool() in index.ts; no tool knows its transport.
import type { z } from "zod";
import type { logger } from "../logger.ts";

/** Toolsets group tools for `--toolsets`; the order here is the order `ipcscope tools` prints. */
export const TOOLSETS = {
  system: "the host: kernel, privileges, what can run",
  snapshot: "processes and their sockets at one point in time",
  events: "connection events over time (eBPF)",
  health: "kernel network health: drops, retransmits, traffic",
  actions: "tools that change the host (off unless enabled)",
} as const;
export type Toolset = keyof typeof TOOLSETS;

export interface ToolContext {
  /** Aborted when the caller cancels or disconnects. */
  signal: AbortSignal;
  log: typeof logger;
  /** Who is calling, for audit lines: "stdio", "http", "rest" or "cli". */
  via: "stdio" | "http" | "rest" | "cli";
  /** Present when the caller asked for progress (MCP progressToken): long calls report through it. */
  progress?: (progress: number, total?: number, message?: string) => void;
  /**
   * Present when the MCP client declared the sampling capability: asks the client's model (its user
   * may refuse, which rejects). REST and CLI calls have none.
   */
  sample?: (request: SamplingRequest, signal: AbortSignal) => Promise<SamplingAnswer>;
}

export interface SamplingRequest {
  system: string;
  prompt: string;
  maxTokens: number;
  timeoutMs: number;
}

export interface SamplingAnswer {
  text: string;
  /** As the client reports it. */
  model: string;
  /** "endTurn", "maxTokens", … when the client says. */
  stopReason?: string;
}

export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  /** Every ipcscope tool looks at this host only. */
  openWorldHint: false;
}

export interface ToolDefinition<In extends z.ZodRawShape = z.ZodRawShape, Out extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  toolset: Toolset;
  input: In;
  output: Out;
  annotations: ToolAnnotations;
  /**
   * Identical calls (same arguments) running at once share one run and its answer: for tools that
   * read the host at one moment and ignore cancellation (snapshots), fifty agents asking at once
   * cost one answer. Nothing is cached: a call after the run ends starts a new one.
   */
  shareConcurrentCalls?: boolean;
  handler: (args: z.output<z.ZodObject<In>>, ctx: ToolContext) => Promise<z.output<z.ZodObject<Out>>>;
}

/** Identity, for type inference of a tool file's handler from its schemas. */
export function defineTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(
  tool: ToolDefinition<In, Out>,
): ToolDefinition<In, Out> {
  return tool;
}

export const READ_ONLY: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};
