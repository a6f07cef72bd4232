import { describe, expect, test } from "bun:test";
import { ToolError } from "../../../src/errors.ts";
import { explainPrompt, SAMPLING_TIMEOUT_MS, samplingFailedReason, samplingTimeoutFromEnv } from "../../../src/prompts/explain.ts";

describe("the explain_activity conversation", () => {
  test("without a question the user message is the analysis prompt itself", () => {
    expect(explainPrompt("# Task (analysis)\n…\n", null)).toBe("# Task (analysis)\n…\n");
  });

  test("a question comes after the data, trimmed, with the instruction to answer it first", () => {
    const text = explainPrompt("# Task (analysis)\n## Listening sockets\n- TCP 127.0.0.1:8080\n", "  why is 8080 open?\n");
    expect(text.startsWith("# Task (analysis)\n## Listening sockets\n- TCP 127.0.0.1:8080\n\n## Question\nwhy is 8080 open?\n")).toBe(true);
    expect(text).toContain("Answer this question first");
  });

  test("a failed sampling request's reason carries the client's message and says what to do", () => {
    const reason = samplingFailedReason(new Error("MCP error -32603: User declined the sampling request"));
    expect(reason).toContain("(MCP error -32603: User declined the sampling request)");
    expect(reason).toContain("use prompt (with system_prompt) with your own model");
    expect(samplingFailedReason("gone")).toContain("(gone)");
  });

  test("IPCSCOPE_SAMPLING_TIMEOUT_MS may only shorten the timeout, and names a bad value", () => {
    expect(samplingTimeoutFromEnv(undefined)).toBe(SAMPLING_TIMEOUT_MS);
    expect(samplingTimeoutFromEnv("")).toBe(SAMPLING_TIMEOUT_MS);
    expect(samplingTimeoutFromEnv("1500")).toBe(1500);
    expect(() => samplingTimeoutFromEnv("0")).toThrow(ToolError);
    expect(() => samplingTimeoutFromEnv(String(SAMPLING_TIMEOUT_MS + 1))).toThrow(`IPCSCOPE_SAMPLING_TIMEOUT_MS: "${SAMPLING_TIMEOUT_MS + 1}" is not`);
    expect(() => samplingTimeoutFromEnv("soon")).toThrow('"soon"');
  });
});
