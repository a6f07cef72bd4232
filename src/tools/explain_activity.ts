import { z } from "zod";
import {
  DEFAULT_ANSWER_TOKENS,
  EXPLAIN_SYSTEM_PROMPT,
  explainPrompt,
  MAX_ANSWER_TOKENS,
  MAX_QUESTION_CHARS,
  MIN_ANSWER_TOKENS,
  NO_SAMPLING_REASON,
  samplingFailedReason,
  samplingTimeoutFromEnv,
} from "../prompts/explain.ts";
import { estimateTokens, PROMPT_STYLES } from "../prompts/build.ts";
import generateIpcAnalysisPrompt from "./generate_ipc_analysis_prompt.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "explain_activity",
  title: "Explain this host's activity",
  description:
    "Explains what this host's processes do on the network and over IPC, by asking the connected client's model " +
    "(MCP sampling, which the client's user may approve or refuse) with the prompt generate_ipc_analysis_prompt builds " +
    "(same focus, style and max_tokens) plus an optional question. mode sampled: explanation and model are the model's " +
    "answer; mode prompt (the client cannot sample, or refused, or failed: reason says which): use prompt and system_prompt " +
    "with your own model. prompt is always returned.",
  toolset: generateIpcAnalysisPrompt.toolset,
  input: {
    ...generateIpcAnalysisPrompt.input,
    question: z
      .string()
      .trim()
      .min(1)
      .max(MAX_QUESTION_CHARS)
      .optional()
      .describe('What the user wants explained, e.g. "why does curl keep failing to reach port 8080?"'),
    max_answer_tokens: z
      .number()
      .int()
      .min(MIN_ANSWER_TOKENS)
      .max(MAX_ANSWER_TOKENS)
      .default(DEFAULT_ANSWER_TOKENS)
      .describe(`Longest answer the model may give, in tokens (default ${DEFAULT_ANSWER_TOKENS})`),
  },
  output: {
    mode: z.enum(["sampled", "prompt"]).describe("sampled: the client's model answered; prompt: use prompt yourself"),
    explanation: z.string().nullable().describe("the model's answer (mode sampled)"),
    model: z.string().nullable().describe("the model as the client names it (mode sampled)"),
    stop_reason: z.string().nullable().describe('why the model stopped, as the client says ("maxTokens": the answer was cut)'),
    reason: z.string().nullable().describe("why there is no explanation (mode prompt)"),
    system_prompt: z.string(),
    prompt: z.string().describe("the user message that was, or should be, sent: the analysis prompt and the question"),
    estimated_tokens: z.number().describe("characters/4 of prompt"),
    truncated: z.boolean().describe("the analysis prompt was cut to fit max_tokens"),
    style: z.enum(PROMPT_STYLES),
    focus: z.string().nullable(),
    question: z.string().nullable(),
  },
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    const { max_answer_tokens, question, ...promptArgs } = args;
    const analysis = await generateIpcAnalysisPrompt.handler(promptArgs, ctx);
    const prompt = explainPrompt(analysis.prompt, question ?? null);
    const common = {
      system_prompt: EXPLAIN_SYSTEM_PROMPT,
      prompt,
      estimated_tokens: estimateTokens(prompt),
      truncated: analysis.truncated,
      style: analysis.style,
      focus: analysis.focus,
      question: question ?? null,
    };
    const asPrompt = (reason: string) => ({ mode: "prompt" as const, explanation: null, model: null, stop_reason: null, reason, ...common });

    if (!ctx.sample) return asPrompt(NO_SAMPLING_REASON);
    const timeoutMs = samplingTimeoutFromEnv(process.env.IPCSCOPE_SAMPLING_TIMEOUT_MS);
    try {
      const answer = await ctx.sample({ system: EXPLAIN_SYSTEM_PROMPT, prompt, maxTokens: max_answer_tokens, timeoutMs }, ctx.signal);
      ctx.log.debug(`explain_activity: ${answer.model} answered ${answer.text.length} characters via ${ctx.via}`);
      return { mode: "sampled" as const, explanation: answer.text, model: answer.model, stop_reason: answer.stopReason ?? null, reason: null, ...common };
    } catch (error) {
      // A refusal, a timeout or a client error is an answer too: the agent still gets the prompt.
      ctx.log.info(`explain_activity: sampling via ${ctx.via} gave no answer: ${(error as Error).message ?? error}`);
      return asPrompt(samplingFailedReason(error));
    }
  },
});
