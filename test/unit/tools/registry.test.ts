import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { ToolError, UsageError } from "../../../src/errors.ts";
import { logger } from "../../../src/logger.ts";
import { ALL_TOOLS, invokeTool, parseToolsets, selectTools } from "../../../src/tools/index.ts";
import { defineTool, READ_ONLY, TOOLSETS, type ToolContext } from "../../../src/tools/types.ts";

const ctx: ToolContext = { signal: new AbortController().signal, log: logger, via: "cli" };

const echo = defineTool({
  name: "echo_values",
  title: "Echo",
  description: "Echoes.",
  toolset: "system",
  input: { pid: z.number().int().min(1).optional(), fail: z.boolean().default(false) },
  output: { pid: z.number().nullable() },
  annotations: READ_ONLY,
  handler: async ({ pid, fail }) => {
    if (fail) throw new ToolError("pid 42 is not running: list processes with get_process_connection_snapshot");
    return { pid: pid ?? null };
  },
});

describe("the tool list", () => {
  test("names are snake_case, start with a verb, and are unique", () => {
    const names = ALL_TOOLS.map((tool) => tool.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^(get|list|wait|analyze|trace|dump|send|generate|explain|stop)_[a-z0-9_]+$/);
  });

  test("every tool belongs to a known toolset and states its annotations honestly", () => {
    for (const tool of ALL_TOOLS) {
      expect(Object.keys(TOOLSETS)).toContain(tool.toolset);
      expect(tool.annotations.openWorldHint).toBe(false);
      if (tool.annotations.readOnlyHint) expect(tool.annotations.destructiveHint).toBe(false);
      if (tool.toolset === "actions") expect(tool.annotations.readOnlyHint).toBe(false);
      expect(tool.description.length).toBeGreaterThan(40);
    }
  });

  test("--toolsets and --read-only filter the list", () => {
    expect(selectTools().length).toBe(ALL_TOOLS.length);
    expect(selectTools({ toolsets: ["system"] }).map((tool) => tool.name)).toContain("get_system_info");
    expect(selectTools({ toolsets: ["events"] }).map((tool) => tool.name)).not.toContain("get_system_info");
    expect(selectTools({ readOnly: true }).every((tool) => tool.annotations.readOnlyHint)).toBe(true);
  });

  test("parseToolsets accepts all and lists, and names an unknown toolset", () => {
    expect(parseToolsets("all")).toBeUndefined();
    expect(parseToolsets(undefined)).toBeUndefined();
    expect(parseToolsets("system, events")).toEqual(["system", "events"]);
    expect(() => parseToolsets("system,bogus")).toThrow(UsageError);
    expect(() => parseToolsets("system,bogus")).toThrow('unknown toolset "bogus"');
  });
});

describe("invokeTool", () => {
  test("validates arguments and names the parameter and the value", async () => {
    const outcome = await invokeTool(echo as never, { pid: "abc" }, ctx);
    expect(outcome).toEqual({ ok: false, error: 'invalid arguments for echo_values: pid: expected number, got "abc"' });
    const range = await invokeTool(echo as never, { pid: 0 }, ctx);
    expect(range.ok).toBe(false);
    expect(!range.ok && range.error).toContain("pid: must be at least 1, got 0");
  });

  test("refuses unknown parameters by name (a typo must not be ignored)", async () => {
    const outcome = await invokeTool(echo as never, { pdi: 3 }, ctx);
    expect(!outcome.ok && outcome.error).toContain("unknown parameter(s) pdi");
  });

  test("applies defaults and returns the handler's result", async () => {
    expect(await invokeTool(echo as never, { pid: 7 }, ctx)).toEqual({ ok: true, result: { pid: 7 } });
    expect(await invokeTool(echo as never, undefined, ctx)).toEqual({ ok: true, result: { pid: null } });
  });

  test("turns a ToolError into an error outcome, and lets bugs throw", async () => {
    expect(await invokeTool(echo as never, { fail: true }, ctx)).toEqual({
      ok: false,
      error: "pid 42 is not running: list processes with get_process_connection_snapshot",
    });
    const buggy = { ...echo, handler: async () => { throw new TypeError("bug"); } };
    const quiet = logger.level;
    logger.level = -999;
    try {
      await expect(invokeTool(buggy as never, {}, ctx)).rejects.toThrow("bug");
    } finally {
      logger.level = quiet;
    }
  });
});
