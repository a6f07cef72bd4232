import { describe, expect, test } from "bun:test";
import { UsageError } from "../../../src/errors.ts";
import { parseLogLevel } from "../../../src/logger.ts";
import { main, unknownFlags } from "../../../src/main.ts";
import { isLoopback, parsePort } from "../../../src/commands/serve.ts";
import serve from "../../../src/commands/serve.ts";
import { firstSentence } from "../../../src/commands/tools.ts";
import { table } from "../../../src/commands/_shared.ts";
import { formatDoctorReport } from "../../../src/commands/doctor.ts";
import { collectSystemInfo } from "../../../src/system/info.ts";
import { mcpLogLevel } from "../../../src/server/mcp.ts";

describe("argument checks", () => {
  test("unknownFlags catches typos and accepts every declared flag, its camelCase and --no- form", () => {
    expect(unknownFlags(["--prot", "8000"], serve)).toEqual(["prot"]);
    expect(unknownFlags(["--http", "--port=0", "--log-level", "debug", "--no-read-only", "--readOnly"], serve)).toEqual([]);
    expect(unknownFlags(["-x"], serve)).toEqual(["x"]);
    expect(main.meta).toBeDefined();
  });

  test.each(["0", "8000", "65535"])("parsePort accepts %p", (value) => {
    expect(parsePort(value)).toBe(Number(value));
  });

  test.each(["abc", "-1", "65536", "80.5", ""])("parsePort refuses %p and names it", (value) => {
    expect(() => parsePort(value)).toThrow(UsageError);
    expect(() => parsePort(value)).toThrow(`--port: "${value}"`);
  });

  test("isLoopback knows the loopback names and nothing else", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopback(host)).toBe(true);
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "example.com"]) expect(isLoopback(host)).toBe(false);
  });

  test("parseLogLevel names a bad level and lists the good ones", () => {
    expect(parseLogLevel("debug")).toBe("debug");
    expect(() => parseLogLevel("loud")).toThrow('--log-level: unknown level "loud"; use one of silent, error, warn, info, debug, trace');
  });
});

describe("output for people", () => {
  test("table pads every column but the last", () => {
    expect(table(["A", "BB"], [["xyz", "1"], ["", "22"]])).toBe("A    BB\nxyz  1\n     22");
  });

  test("firstSentence stops at the first full stop", () => {
    expect(firstSentence("Lists things. More detail: here.")).toBe("Lists things.");
    expect(firstSentence("No stop at all")).toBe("No stop at all");
    expect(firstSentence("Version 1.2 of it. Rest.")).toBe("Version 1.2 of it.");
  });

  test("the doctor report has a line per check, fixes under failures, and a verdict", async () => {
    const info = await collectSystemInfo();
    const broken = {
      ...info,
      core_ok: false,
      checks: [
        ...info.checks,
        { name: "ss", status: "error" as const, detail: "ss is not installed", fix: "dnf install -y iproute" },
      ],
    };
    const report = formatDoctorReport(broken);
    for (const check of info.checks) expect(report).toContain(check.name);
    expect(report).toMatch(/FAIL\s+ss\s+ss is not installed\n\s+fix: dnf install -y iproute/);
    expect(report).toContain("verdict: ipcscope cannot work on this host");
    expect(formatDoctorReport(info)).toContain(info.core_ok ? "verdict: snapshots work" : "verdict: ipcscope cannot work");
  });

  test("log records map to MCP logging levels", () => {
    expect(mcpLogLevel({ level: 0, type: "error" })).toBe("error");
    expect(mcpLogLevel({ level: 0, type: "fatal" })).toBe("critical");
    expect(mcpLogLevel({ level: 1, type: "warn" })).toBe("warning");
    expect(mcpLogLevel({ level: 3, type: "info" })).toBe("info");
    expect(mcpLogLevel({ level: 3, type: "success" })).toBe("notice");
    expect(mcpLogLevel({ level: 4, type: "debug" })).toBe("debug");
  });
});
