// The binary as people use it: help, version, doctor, tools, and the errors for bad input.
import { describe, expect, test } from "bun:test";
import pkg from "../../package.json" with { type: "json" };
import { runBinary } from "../helpers.ts";

describe("ipcscope for people", () => {
  test("--version prints the package version", async () => {
    const { code, stdout } = await runBinary(["--version"]);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(pkg.version);
  });

  test("--help lists the commands, and every command has its own --help", async () => {
    const top = await runBinary(["--help"]);
    expect(top.code).toBe(0);
    for (const command of ["serve", "doctor", "tools", "call", "shell", "insights"]) expect(top.stdout).toContain(command);
    const expected: Record<string, string[]> = {
      serve: ["--http", "--host", "--port", "--toolsets", "--read-only", "--log-level", "--insecure-no-auth"],
      doctor: ["--json", "--quick", "--log-level"],
      tools: ["--json", "--toolsets", "--read-only"],
      call: ["--server", "--token", "--token-file", "--json", "--arg", "--args-json", "Exit codes: 0 success"],
      shell: ["--server", "--token-file", "--llm-url", "--model"],
      insights: ["--server", "--llm-url", "--model", "--focus", "--style", "--max-tokens"],
    };
    for (const [command, flags] of Object.entries(expected)) {
      const help = await runBinary([command, "--help"]);
      expect(help.code).toBe(0);
      for (const flag of flags) expect(help.stdout).toContain(flag);
    }
  });

  test("an unknown command or option exits 2 and names it", async () => {
    const command = await runBinary(["frobnicate"]);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('unknown command "frobnicate"');
    const option = await runBinary(["serve", "--prot", "80"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("unknown option --prot");
  });

  test.each([
    [["serve", "--http", "--port", "http"], '--port: "http" is not a port number'],
    [["serve", "--log-level", "loud"], '--log-level: unknown level "loud"'],
    [["serve", "--toolsets", "system,nope"], '--toolsets: unknown toolset "nope"'],
    [["serve", "--http", "--host", "0.0.0.0", "--port", "0"], "--host 0.0.0.0: refusing to serve without authentication"],
  ])("serve %p exits 2 with a message naming the input", async (args, message) => {
    const { code, stderr, stdout } = await runBinary(args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stdout).toBe("");
  });

  test("a port already in use is a clear error", async () => {
    const holder = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("busy") });
    try {
      const { code, stderr } = await runBinary(["serve", "--http", "--port", String(holder.port)]);
      expect(code).toBe(2);
      expect(stderr).toContain(`--port ${holder.port}: address 127.0.0.1:${holder.port} is already in use`);
    } finally {
      holder.stop(true);
    }
  });

  test("tools prints one line per tool, and --json the full list", async () => {
    const text = await runBinary(["tools"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^TOOL\s+TOOLSET\s+ACCESS\s+WHAT\nget_system_info\s+system\s+read-only\s+What this host is/);
    const json = await runBinary(["tools", "--json", "--toolsets", "system"]);
    const tools = JSON.parse(json.stdout) as { name: string; annotations: { readOnlyHint: boolean } }[];
    expect(tools.map((tool) => tool.name)).toEqual(["get_system_info"]);
    const events = await runBinary(["tools", "--json", "--toolsets", "events"]);
    expect((JSON.parse(events.stdout) as { name: string }[]).map((tool) => tool.name)).toEqual([
      "get_live_network_events",
      "get_capture_results",
      "stop_capture",
      "wait_for_connection",
      "list_connections",
      "get_connection_summary",
      "analyze_patterns",
    ]);
    const actions = await runBinary(["tools", "--json", "--toolsets", "actions"]);
    expect((JSON.parse(actions.stdout) as { name: string; annotations: { destructiveHint: boolean } }[]).map((tool) => [tool.name, tool.annotations.destructiveHint])).toEqual([["send_signal_to_pid", true]]);
    const readOnly = await runBinary(["tools", "--json", "--toolsets", "actions", "--read-only"]);
    expect(JSON.parse(readOnly.stdout)).toEqual([]);
  });

  test("doctor prints a report with a verdict, and --json the same facts as get_system_info", async () => {
    const report = await runBinary(["doctor", "--quick"]);
    expect(report.stdout).toContain("CHECK");
    expect(report.stdout).toMatch(/verdict: /);
    expect(report.code).toBe(report.stdout.includes("verdict: snapshots work") ? 0 : 1);
    const json = await runBinary(["doctor", "--json", "--quick"]);
    const info = JSON.parse(json.stdout);
    expect(info.checks.map((check: { name: string }) => check.name)).toContain("bpftrace");
    expect(info.host.arch).toMatch(/x86_64|aarch64/);
    expect(json.stderr).not.toContain("error");
  });
});
