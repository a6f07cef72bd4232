// `ipcscope call` as people and scripts use it: every tool the server lists, over Streamable HTTP
// (--server) and over a local stdio server the binary starts itself, in the human and the --json
// output, and the exit codes scripts rely on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { ensureBinary, type HttpServer, type RunResult, runBinary, startHttpServer, testWithBpf, until } from "../helpers.ts";

// Bearer-token authentication lands in serve on another branch (issue 7); until this binary's serve
// takes --token-file, the 401 test waits (the unit tests cover the client's side of it).
const serveTakesTokens = Bun.spawnSync([await ensureBinary(), "serve", "--help"]).stdout.toString().includes("--token-file");

/**
 * How many calls run at once: the probe tools compile bpftrace programs (1-3 s of CPU each) and the
 * test machines have 2 cores; more at once makes compiles slow enough for the probe supervisor's
 * 5 s silence watchdog to kill them.
 */
const PARALLEL = 3;

/** What the human output of each tool starts with or contains; a tool not listed must still print text, not JSON. */
const HUMAN: Record<string, RegExp> = {
  get_system_info: /verdict: /,
  get_process_connection_snapshot: /matching sockets shown/,
  get_ipc_graph: /edge\(s\) between \d+ process\(es\)/,
  get_live_network_events: /matching events? over 1 second from (ebpf|ss-poll)/,
  get_capture_results: /matching events? over .* from (ebpf|ss-poll) \(job job-/,
  stop_capture: /matching events? over .* from (ebpf|ss-poll) \(job job-/,
  wait_for_connection: /^(Found after [\d.]+ s|No matching connection within [\d.]+ s)/,
  list_connections: /recorded events? over the last 10 minutes, newest first/,
  get_connection_summary: /^Process 'curl' made \d+ outbound connection attempts? over the last 60 seconds/,
  analyze_patterns: /^Connection patterns over the last 60 seconds: \d+ events?/,
  trace_syscall_errors: /^\d+ failed system calls? over 1 second/,
  get_interface_traffic: /^INTERFACE\s+RX_PKT\/S[\s\S]*\nlo\s/,
  list_bpf_programs: /^ID\s+TYPE\s+NAME[\s\S]*matching programs? shown/,
  dump_bpf_map: /^map \d+ .*entr(y|ies) shown/,
  get_packet_drop_summary: /^\d+ packets? dropped by the kernel over 1 second/,
  list_packet_drops: /packets? dropped over 1 second/,
  get_tcp_health: /^Over 1 second: \d+ TCP retransmits?/,
  generate_ipc_analysis_prompt: /^# Task \(analysis\)/,
};

/** Tools that answer with a tool error (exit 1) here, and what the error says. */
const TOOL_ERRORS: Record<string, RegExp> = { send_signal_to_pid: /^send_signal_to_pid: send_signal_to_pid is off on this server/ };

interface Context {
  jobId: string;
  mapId: number;
}

/** Each tool's flags for a short, valid call (windows of 1 s). */
function argsFor(tool: string, context: Context): string[] {
  const table: Record<string, string[]> = {
    get_process_connection_snapshot: ["--limit", "5"],
    get_live_network_events: ["--duration", "1", "--max-events", "5"],
    get_capture_results: ["--job-id", context.jobId],
    stop_capture: ["--job-id", context.jobId],
    wait_for_connection: ["--timeout", "1"],
    list_connections: ["--limit", "5"],
    get_connection_summary: ["--process", "curl", "--since", "60"],
    analyze_patterns: ["--since", "60"],
    trace_syscall_errors: ["--duration", "1", "--limit", "5"],
    get_interface_traffic: ["--duration", "1"],
    list_bpf_programs: ["--limit", "3"],
    dump_bpf_map: ["--id", String(context.mapId), "--max-entries", "3"],
    get_packet_drop_summary: ["--duration", "1"],
    list_packet_drops: ["--duration", "1"],
    get_tcp_health: ["--duration", "1"],
    send_signal_to_pid: ["--pid", String(process.pid)],
    generate_ipc_analysis_prompt: ["--max-tokens", "500"],
  };
  return table[tool] ?? [];
}

/** Runs the jobs at most `limit` at a time, keeping their order in the answer. */
async function pooled<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < jobs.length) {
        const index = next++;
        results[index] = await jobs[index]!();
      }
    }),
  );
  return results;
}

describe("ipcscope call", () => {
  let server: HttpServer;
  let client: Client;
  let tools: Tool[];
  const context: Context = { jobId: "", mapId: 0 };
  let holder: Bun.Subprocess | undefined;
  const url = () => server.url.toString();

  beforeAll(async () => {
    server = await startHttpServer();
    client = new Client({ name: "e2e-call", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(server.url));
    tools = (await client.listTools()).tools;
    // A background job for get_capture_results and stop_capture, and a curl for get_connection_summary.
    const job = await client.callTool({ name: "get_live_network_events", arguments: { duration: 30, background: true } });
    context.jobId = (job.structuredContent as { job_id: string }).job_id;
    Bun.spawnSync(["curl", "-s", "-m", "1", "http://127.0.0.1:9/"]);
  });
  afterAll(async () => {
    holder?.kill("SIGINT");
    await client?.close().catch(() => {});
    if (server?.proc.exitCode === null) await server.stop();
  });

  /** A map of a bpftrace this test runs (not under ipcscope's supervisor, so it stays), for dump_bpf_map. */
  async function ownMapId(): Promise<number> {
    holder ??= Bun.spawn(["bpftrace", "-q", "-e", "BEGIN { @ipcscope_call_test = 1 } interval:s:1 { @ipcscope_call_test = 2 }"], { stdout: "ignore", stderr: "ignore" });
    const pid = holder.pid;
    return until("the test's bpftrace to hold a BPF map", async () => {
      const listed = await client.callTool({ name: "list_bpf_programs", arguments: { include_maps: true, limit: 1000 } });
      const maps = (listed.structuredContent as { maps?: { id: number; pids: { pid: number }[] }[] }).maps ?? [];
      return maps.find((map) => map.pids.some((owner) => owner.pid === pid))?.id;
    }, 30_000, 250);
  }

  /** Calls every listed tool in both modes over one transport; returns what went wrong, tool by tool. */
  async function everyTool(transport: string[]): Promise<string[]> {
    const problems: string[] = [];
    const local = transport.length === 0;
    const runs = tools.flatMap((tool) =>
      [false, true].map((json) => async () => {
        const argv = ["call", tool.name, ...argsFor(tool.name, context), ...transport, ...(json ? ["--json"] : [])];
        const result: RunResult = await runBinary(argv);
        const say = (what: string) => problems.push(`${argv.join(" ")}: ${what}\nexit ${result.code}\nstdout: ${result.stdout.slice(0, 400)}\nstderr: ${result.stderr.slice(0, 400)}`);
        // Jobs live in the server that started them: a fresh local server knows none.
        const expectedError = TOOL_ERRORS[tool.name] ?? (local && /^(get_capture_results|stop_capture)$/.test(tool.name) ? /no job "job-/ : undefined);
        if (expectedError) {
          if (result.code !== 1 || result.stdout !== "" || !expectedError.test(result.stderr)) say(`expected exit 1 and ${expectedError} on stderr`);
          return;
        }
        if (result.code !== 0) return say("expected exit 0");
        if (json) {
          let parsed: Record<string, unknown>;
          try {
            parsed = JSON.parse(result.stdout);
          } catch {
            return say("--json output does not parse");
          }
          const schema = tool.outputSchema as { properties?: Record<string, unknown>; required?: string[] } | undefined;
          const unknown = Object.keys(parsed).filter((key) => schema?.properties && !(key in schema.properties));
          const missing = (schema?.required ?? []).filter((key) => !(key in parsed));
          if (unknown.length > 0 || missing.length > 0) say(`--json does not match the output schema: unknown ${unknown}, missing ${missing}`);
          return;
        }
        const expected = HUMAN[tool.name];
        if (result.stdout.trim() === "" || result.stdout.trimStart().startsWith("{")) return say("human output is empty or JSON");
        if (expected && !expected.test(result.stdout)) say(`human output does not match ${expected}`);
      }),
    );
    await pooled(runs, PARALLEL);
    return problems;
  }

  testWithBpf(
    "over HTTP (--server URL), every tool answers for people and, with --json, its structured result",
    async () => {
      context.mapId = await ownMapId();
      expect(await everyTool(["--server", url()])).toEqual([]);
    },
    120_000,
  );

  testWithBpf(
    "over a local stdio server (no --server), every tool answers in both modes",
    async () => {
      context.mapId = await ownMapId();
      expect(await everyTool([])).toEqual([]);
    },
    120_000,
  );

  test("--json is the structured content the server answers", async () => {
    const [cli, direct] = await Promise.all([
      runBinary(["call", "get_system_info", "--server", url(), "--json"]),
      client.callTool({ name: "get_system_info", arguments: {} }),
    ]);
    expect(cli.code).toBe(0);
    const parsed = JSON.parse(cli.stdout);
    const expected = direct.structuredContent as Record<string, unknown>;
    for (const key of ["ipcscope", "host", "kernel", "tools", "checks"]) expect(parsed[key]).toEqual(expected[key]);
  });

  test("a tool's flags are typed by its schema: numbers, booleans, lists, aliases, --arg and --args-json", async () => {
    const run = (args: string[]) => runBinary(["call", "list_connections", "--server", url(), "--json", ...args]);
    const [flags, arg, json] = await Promise.all([
      run(["--process", "curl", "--type", "connect,connect_failed", "--since", "60", "--limit", "2", "--group-by-pid"]),
      run(["--arg", "command=curl", "--arg", "limit=2"]),
      run(["--args-json", '{"command": "curl", "limit": 2}']),
    ]);
    for (const result of [flags, arg, json]) {
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const parsed = JSON.parse(result.stdout) as { returned: number; events?: { command: string }[]; processes?: { connections: { command: string; type: string }[] }[] };
      expect(parsed.returned).toBeLessThanOrEqual(2);
      const events = parsed.events ?? (parsed.processes ?? []).flatMap((group) => group.connections);
      for (const event of events) expect(event.command).toContain("curl");
    }
    // --group-by-pid (a boolean) grouped them, --type (a list) kept only connects and failures.
    const grouped = JSON.parse(flags.stdout) as { events?: unknown; processes: { connections: { type: string }[] }[] };
    expect(grouped.events).toBeUndefined();
    for (const event of grouped.processes.flatMap((group) => group.connections)) expect(["connect", "connect_failed"]).toContain(event.type);
  });

  test.each([
    [["get_ipc_graph", "--prot", "80"], "unknown option --prot for get_ipc_graph; get_ipc_graph takes --pid, --command, --process, --mermaid"],
    [["get_ipc_graph", "--pid", "abc"], '--pid: "abc" is not a whole number greater than 0'],
    [["get_tcp_health", "--port", "70000"], '--port: "70000" is not a whole number from 1 to 65535'],
    [["get_capture_results"], "get_capture_results needs --job-id"],
    [["get_ipc_graph", "42"], 'unexpected argument "42"'],
    [["get_ipc_graf"], 'unknown tool "get_ipc_graf"'],
    [[], "call needs a tool name; http://"],
  ])("call %p exits 2 with a message naming the problem", async (args, message) => {
    const result = await runBinary(["call", ...args, "--server", url()]);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
  });

  test("bad client flags exit 2 before connecting", async () => {
    for (const [args, message] of [
      [["call", "get_system_info", "--server", "ftp://x/mcp"], '--server: "ftp://x/mcp" is not an http(s) URL'],
      [["call", "get_system_info", "--server"], "--server needs a value"],
      [["call", "get_system_info", "--toolsets", "nope"], '--toolsets: unknown toolset "nope"'],
      [["call", "get_system_info", "--server", url(), "--token", "short"], "--token: the token is 5 characters long"],
    ] as const) {
      const result = await runBinary([...args]);
      expect(result.stderr).toContain(message);
      expect(result.code).toBe(2);
    }
  });

  test("call TOOL --help lists the tool's parameters from the server's schema", async () => {
    const result = await runBinary(["call", "get_tcp_health", "--help", "--server", url()]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("--duration (a number greater than 0 and at most 3600): Seconds to count");
    expect(result.stdout).toContain("--background: Run as a background job");
    const usage = await runBinary(["call", "--help"]);
    expect(usage.code).toBe(0);
    expect(usage.stdout).toContain("Exit codes: 0 success; 1 the tool answered with an error; 2 usage error");
  });

  test("a tool error exits 1 with the tool's message on stderr, in both modes", async () => {
    for (const json of [[], ["--json"]]) {
      const result = await runBinary(["call", "get_interface_traffic", "--interface", "nope0", "--duration", "0.2", "--server", url(), ...json]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain('get_interface_traffic: interface: no interface "nope0" in /proc/net/dev; known: lo');
    }
  });

  test("an incomplete events answer prints its note as a warning on stderr; --json keeps the fields only", async () => {
    // ss polling samples: every answer from it is incomplete, root or not.
    const polled = await startHttpServer(["--events-source", "ss-poll"]);
    try {
      const target = polled.url.toString();
      const [human, json] = await Promise.all([
        runBinary(["call", "list_connections", "--server", target, "--limit", "1"]),
        runBinary(["call", "list_connections", "--server", target, "--limit", "1", "--json"]),
      ]);
      expect(human.code).toBe(0);
      expect(human.stderr).toMatch(/^warning: events come from ss polling, which samples every [\d.]+ s: short-lived connections are missed\.$/m);
      expect(human.stdout).not.toContain("warning:");
      expect(json.code).toBe(0);
      expect(json.stderr).not.toContain("warning:");
      expect(JSON.parse(json.stdout)).toMatchObject({ source: "ss-poll", lost_events: 0, complete: false, note: expect.stringContaining("ss polling") });
    } finally {
      await polled.stop();
    }
  });

  test("nothing listening at --server exits 3 and says so", async () => {
    const holder = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = holder.port;
    holder.stop(true);
    const result = await runBinary(["call", "get_system_info", "--server", `http://127.0.0.1:${port}/mcp`]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`cannot reach http://127.0.0.1:${port}/mcp`);
    expect(result.stderr).toContain("is `ipcscope serve --http` running there, on that port?");
    const wrongPath = await runBinary(["call", "get_system_info", "--server", new URL("/nope", server.url).toString()]);
    expect(wrongPath.code).toBe(3);
    expect(wrongPath.stderr).toContain("HTTP 404");
  });

  test.skipIf(!serveTakesTokens)("a server that wants a token: none or a wrong one exits 4 and says what to pass; the right one works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ipcscope-call-token-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${"t".repeat(32)}\n`, { mode: 0o600 });
    const guarded = await startHttpServer(["--token-file", tokenFile]);
    try {
      const target = guarded.url.toString();
      const none = await runBinary(["call", "get_system_info", "--server", target], { env: { IPCSCOPE_TOKEN: "" } });
      expect(none.code).toBe(4);
      expect(none.stderr).toContain(`${target} wants a token (HTTP 401): pass --token-file PATH`);
      const wrong = await runBinary(["call", "get_system_info", "--server", target], { env: { IPCSCOPE_TOKEN: "w".repeat(32) } });
      expect(wrong.code).toBe(4);
      expect(wrong.stderr).toContain(`${target} refused the token from IPCSCOPE_TOKEN (HTTP 401`);
      const right = await runBinary(["call", "get_system_info", "--server", target, "--token-file", tokenFile, "--json"]);
      expect(right.code).toBe(0);
      expect(JSON.parse(right.stdout).host).toBeDefined();
    } finally {
      await guarded.stop();
    }
  });
});
