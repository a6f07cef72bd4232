import { z } from "zod";
import { ToolError } from "../errors.ts";
import {
  buildPrompt,
  DEFAULT_MAX_TOKENS,
  MAX_MAX_TOKENS,
  MIN_MAX_TOKENS,
  parseFocus,
  PROMPT_STYLES,
  type Focus,
} from "../prompts/build.ts";
import { collectPromptMaterial } from "../prompts/material.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "generate_ipc_analysis_prompt",
  title: "IPC analysis prompt",
  description:
    "A compact, model-agnostic prompt for analysing this host, built from the data right now: listening sockets " +
    "(exposed and root ones marked), established connections by destination and port, the busiest processes, the IPC " +
    "graph, the recorded connection events (failures, periodic connections, new listeners; when the monitor runs) and " +
    "the kernel's TCP/UDP and interface counters. style picks the task (analysis, security_review, " +
    "connection_troubleshooting); focus (pid, port or command) adds that part in full. Fitted to max_tokens " +
    "(estimated as characters/4): the least needed sections are cut first, and sections says what was cut.",
  toolset: "snapshot",
  input: {
    focus: z
      .string()
      .min(1)
      .optional()
      .describe('What to look at closely: "pid:1234", "port:8080", "command:nginx", a bare number (pid or port), or a command name'),
    max_tokens: z
      .number()
      .int()
      .min(MIN_MAX_TOKENS)
      .max(MAX_MAX_TOKENS)
      .default(DEFAULT_MAX_TOKENS)
      .describe(`Budget of the prompt in tokens, estimated as characters/4 (default ${DEFAULT_MAX_TOKENS})`),
    style: z.enum(PROMPT_STYLES).default("analysis").describe("The task the prompt asks for"),
  },
  output: {
    prompt: z.string(),
    estimated_tokens: z.number().describe("characters/4 of prompt, rounded up; at most budget_tokens"),
    budget_tokens: z.number(),
    style: z.enum(PROMPT_STYLES),
    focus: z.string().nullable(),
    sections: z
      .array(
        z.object({
          name: z.string(),
          status: z.enum(["complete", "cut", "dropped"]).describe("cut: lines removed from its end to fit; dropped: left out"),
          lines_kept: z.number(),
          lines_total: z.number(),
        }),
      )
      .describe("every section in prompt order"),
    truncated: z.boolean().describe("something was cut to fit the budget"),
  },
  annotations: READ_ONLY,
  shareConcurrentCalls: true,
  handler: async (args) => {
    let focus: Focus | null = null;
    if (args.focus !== undefined) {
      try {
        focus = parseFocus(args.focus);
      } catch (error) {
        throw new ToolError((error as Error).message);
      }
    }
    const fitted = buildPrompt(await collectPromptMaterial(focus), args.style, args.max_tokens);
    return { ...fitted, style: args.style, focus: focus?.label ?? null };
  },
});
