// explain_activity's conversation, without I/O: the system prompt, the user message (the analysis
// prompt of build.ts with the user's question after the data) and the reason given when the answer
// is the prompt instead of the client's model's explanation.
import { ToolError } from "../errors.ts";

export const DEFAULT_ANSWER_TOKENS = 1500;
export const MIN_ANSWER_TOKENS = 100;
// The explanation comes back into the agent's context: keep it well under the ~25k tokens agents accept.
export const MAX_ANSWER_TOKENS = 8000;
export const MAX_QUESTION_CHARS = 2000;

/**
 * How long the client may take to answer, its user's approval included. Under the 60 s an SDK
 * client waits for a tool call by default, so the tool still answers (with the prompt) before the
 * agent gives up on it.
 */
export const SAMPLING_TIMEOUT_MS = 50_000;

export const EXPLAIN_SYSTEM_PROMPT =
  "You are an experienced Linux site reliability engineer explaining what a host's processes do on the network " +
  "and over local IPC to a colleague. Use only the data in the user's message, name the evidence for each statement " +
  "(process and pid, address and port, counter), say when something needed is missing, and be concise.";

/** The user message: the analysis prompt, then the question (after the data, where long-context models answer best). */
export function explainPrompt(analysisPrompt: string, question: string | null): string {
  if (question === null) return analysisPrompt;
  return (
    `${analysisPrompt}\n## Question\n${question.trim()}\n` +
    "Answer this question first, from the data above; then add only what else in the data bears on it.\n"
  );
}

export const NO_SAMPLING_REASON =
  "the client does not support sampling (it did not declare the sampling capability, or the call came over REST or the CLI): " +
  "use prompt (with system_prompt) with your own model";

/** Why a sampling request the client supports gave no explanation, with the client's own message. */
export function samplingFailedReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `the client's model did not answer (${message}): use prompt (with system_prompt) with your own model`;
}

/** IPCSCOPE_SAMPLING_TIMEOUT_MS (for tests, to see a request time out) may only shorten the timeout; read per call. */
export function samplingTimeoutFromEnv(value: string | undefined): number {
  if (value === undefined || value === "") return SAMPLING_TIMEOUT_MS;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 1 || ms > SAMPLING_TIMEOUT_MS) {
    throw new ToolError(`IPCSCOPE_SAMPLING_TIMEOUT_MS: "${value}" is not a number of milliseconds from 1 to ${SAMPLING_TIMEOUT_MS}`);
  }
  return ms;
}
