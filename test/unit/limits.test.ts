// The call limits without a server: the destructive rate, probe slots, and invokeTool's timeout.
import { afterEach, expect, test } from "bun:test";
import { z } from "zod";
import { configureLimits, DEFAULT_LIMITS, RateLimitError, resetDestructiveCalls, runningCalls, runningProbeWindows, takeDestructiveCall, takeProbeSlot } from "../../src/limits.ts";
import { logger } from "../../src/logger.ts";
import { invokeTool } from "../../src/tools/index.ts";
import { defineTool, READ_ONLY, type ToolDefinition } from "../../src/tools/types.ts";

afterEach(() => {
  configureLimits(DEFAULT_LIMITS);
  resetDestructiveCalls();
});

test("destructive calls: the limit per minute, then a refusal saying when to retry", () => {
  configureLimits({ destructivePerMinute: 3 });
  const t0 = 1_000_000;
  for (let i = 0; i < 3; i++) takeDestructiveCall("kill", t0 + i * 10_000);
  let refusal: unknown;
  try {
    takeDestructiveCall("kill", t0 + 30_000);
  } catch (error) {
    refusal = error;
  }
  expect(refusal).toBeInstanceOf(RateLimitError);
  expect((refusal as RateLimitError).retryAfterS).toBe(30);
  // A minute after the first call, one slot is free again.
  expect(() => takeDestructiveCall("kill", t0 + 60_001)).not.toThrow();
});

test("probe slots: at most maxJobs, released once", () => {
  configureLimits({ maxJobs: 2 });
  const a = takeProbeSlot("p");
  const b = takeProbeSlot("p");
  expect(() => takeProbeSlot("p")).toThrow("2 probe windows are already running (at most 2, --max-jobs)");
  a();
  a();
  expect(runningProbeWindows()).toBe(1);
  b();
  expect(runningProbeWindows()).toBe(0);
});

test("invokeTool cancels a call over the timeout through its signal, and counts running calls", async () => {
  configureLimits({ callTimeoutMs: 150 });
  let aborted = false;
  const slow = defineTool({
    name: "slow",
    title: "Slow",
    description: "waits for its signal",
    toolset: "system",
    input: { ms: z.number() },
    output: {},
    annotations: READ_ONLY,
    handler: ({ ms }, ctx) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve({}), ms);
        ctx.signal.addEventListener("abort", () => {
          aborted = true;
          clearTimeout(timer);
        });
      }),
  }) as unknown as ToolDefinition;
  const ctx = { signal: new AbortController().signal, log: logger, via: "cli" as const };
  const pending = invokeTool(slow, { ms: 5_000 }, ctx);
  expect(runningCalls()).toBe(1);
  expect(await pending).toEqual({ ok: false, error: "slow: cancelled after 0.15 s (the server's --call-timeout); narrow the call or use background: true" });
  expect(aborted).toBe(true);
  expect(runningCalls()).toBe(0);
  expect(await invokeTool(slow, { ms: 1 }, ctx)).toEqual({ ok: true, result: {} });
});

test("identical calls of a shareConcurrentCalls tool running at once share one run; a later call runs again", async () => {
  let runs = 0;
  const snapshot = defineTool({
    name: "snap",
    title: "Snap",
    description: "counts its runs",
    toolset: "snapshot",
    input: { limit: z.number().default(10) },
    output: { limit: z.number(), run: z.number() },
    annotations: READ_ONLY,
    shareConcurrentCalls: true,
    handler: async ({ limit }) => {
      runs++;
      await Bun.sleep(50);
      return { limit, run: runs };
    },
  }) as unknown as ToolDefinition;
  const ctx = { signal: new AbortController().signal, log: logger, via: "cli" as const };
  const answers = await Promise.all([invokeTool(snapshot, {}, ctx), invokeTool(snapshot, { limit: 10 }, ctx), invokeTool(snapshot, { limit: 5 }, ctx)]);
  // {} and {limit: 10} are the same call once defaults apply; {limit: 5} is another.
  expect(runs).toBe(2);
  expect(answers[0]).toEqual(answers[1]);
  expect(answers[2]).toEqual({ ok: true, result: { limit: 5, run: 2 } });
  await invokeTool(snapshot, {}, ctx);
  expect(runs).toBe(3);
});
