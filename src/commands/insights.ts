import { defineCommand } from "citty";
import { parseToolArgs, splitFlags, type FlagSpec, type ToolSchema } from "../client/args.ts";
import type { Session } from "../client/connect.ts";
import { askModel, chatCompletionsUrl } from "../client/insights.ts";
import { EXIT, UsageError } from "../errors.ts";
import { lineWriter, print } from "./_shared.ts";
import { CONNECTION_FLAGS, connectionArgs, contentText, findTool, openSession, runCancellable, type RunToolOptions } from "./call.ts";

export const PROMPT_TOOL = "generate_ipc_analysis_prompt";

export const llmArgs = {
  "llm-url": {
    type: "string",
    description: "An OpenAI-compatible API (e.g. http://127.0.0.1:11434/v1 for Ollama): send it the prompt and print its answer. Without it the prompt is printed",
    valueHint: "url",
  },
  model: { type: "string", description: "The model to ask at --llm-url (e.g. llama3.1); OPENAI_API_KEY is sent when set", valueHint: "name" },
} as const;

export const LLM_FLAGS: FlagSpec = { "llm-url": "string", model: "string" };

export interface Llm {
  url?: string;
  model?: string;
}

/**
 * The analysis prompt of the host from the server, answered by the model at llm.url when one is
 * given, else printed (for a person to paste into a model). Returns the exit code.
 */
export async function runInsights(session: Session, argv: readonly string[], llm: Llm, options: RunToolOptions): Promise<number> {
  const tool = findTool(session, PROMPT_TOOL);
  const args = parseToolArgs(tool as ToolSchema, argv);
  if (llm.url !== undefined) {
    chatCompletionsUrl(llm.url);
    if (!llm.model) throw new UsageError("--llm-url needs --model: the model to ask there (e.g. --model llama3.1 for Ollama)");
  }
  const result = await session.call(PROMPT_TOOL, args, { signal: options.signal });
  if (result.isError) {
    options.err(`${PROMPT_TOOL}: ${contentText(result)}`);
    return EXIT.toolError;
  }
  const { prompt, estimated_tokens: tokens } = result.structuredContent as { prompt: string; estimated_tokens: number };
  if (llm.url === undefined) {
    options.out(options.json ? JSON.stringify(result.structuredContent, null, 2) : prompt);
    options.err("(no --llm-url: this is the prompt; give it to a model, or pass --llm-url URL --model NAME to have it answered)");
    return EXIT.ok;
  }
  options.err(`asking ${llm.model} at ${chatCompletionsUrl(llm.url)} (~${tokens} tokens of host data)…`);
  const { answer, model } = await askModel(prompt, { url: llm.url, model: llm.model!, apiKey: process.env.OPENAI_API_KEY || undefined, signal: options.signal });
  options.out(options.json ? JSON.stringify({ model, answer, prompt }, null, 2) : answer);
  return EXIT.ok;
}

export default defineCommand({
  meta: {
    name: "insights",
    description: "The host's analysis prompt, answered by an OpenAI-compatible model (--llm-url, --model: Ollama, vLLM, OpenAI…) or printed.",
  },
  args: {
    ...connectionArgs,
    ...llmArgs,
    focus: { type: "string", description: "pid:N, port:N, command:NAME, or a bare number or name: shown in full first", valueHint: "what" },
    style: { type: "string", description: "analysis (default), security_review or connection_troubleshooting", valueHint: "style" },
    "max-tokens": { type: "string", description: "The prompt's token budget (default 4000)", valueHint: "n" },
    json: { type: "boolean", description: "Print JSON: the model's answer with the prompt (or the tool's result)", default: false },
  },
  async run({ rawArgs }) {
    const { flags, rest } = splitFlags(rawArgs, { ...CONNECTION_FLAGS, ...LLM_FLAGS, json: "boolean" });
    const llm = { url: flags["llm-url"] as string | undefined, model: flags.model as string | undefined };
    if (llm.url !== undefined) {
      chatCompletionsUrl(llm.url);
      if (!llm.model) throw new UsageError("--llm-url needs --model: the model to ask there (e.g. --model llama3.1 for Ollama)");
    }
    const session = await openSession(flags, { monitor: false });
    await runCancellable(session, (signal) => runInsights(session, rest, llm, { json: flags.json === true, signal, out: print, err: lineWriter(process.stderr) }));
  },
});
