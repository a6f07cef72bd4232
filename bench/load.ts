#!/usr/bin/env bun
// Load benchmark: many agents at once against one compiled `ipcscope serve --http`.
//   1. load: --clients MCP SDK clients (Client + StreamableHTTPClientTransport, one session each)
//      make --calls mixed read-only calls each, one after another, all clients at once: total
//      calls, errors (transport errors, unexpected tool errors), p50/p99 latency per tool, and the
//      server's RSS before, after and at its peak (/proc/PID/status).
//   2. snapshot: --clients concurrent get_process_connection_snapshot calls against one call alone,
//      interleaved for --runs rounds (after one warm-up round): the ratio of the medians of the
//      server's CPU time (all its threads, /proc/PID/task/*/schedstat), the goal; and of wall time,
//      printed too (it also holds the clients' own work, done in this process). Identical calls at
//      once share one run (shareConcurrentCalls), so fifty should not cost fifty.
//   bun bench/load.ts [--clients N] [--calls N] [--runs N] [--binary PATH] [--json] [--check]
// Every client sends `Authorization: Bearer TOKEN`; the server gets the token from a 0600 temp file
// with --token-file when its `serve --help` lists that flag (older builds ignore the header).
// No windowed probe tools and no signals: the load is what agents ask all day. Every process it
// starts (the server, and the server's bpftrace) is killed by pid on an error or Ctrl-C.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ListToolsResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BaseOptions, BenchError, DEFAULT_BINARY, type Server, adopt, fail, fixed, integerOption, log, parseOptions, ratio, round, runMain, sleep, startServer, stats, stop, tail, times } from "./_lib.ts";

const GOALS = { errors: 0, snapshotRatio: 3 };
/** The server's own --call-timeout default is 120 s; the SDK's 60 s would end slow calls first and count them as errors. */
const CALL_TIMEOUT_MS = 120_000;
/** Sessions above the server's default --max-sessions (64) need the flag raised. */
const DEFAULT_MAX_SESSIONS = 64;
/** Time for the server to settle after the warm-up calls (the monitor's probe compiles for 1-3 s). */
const SETTLE_MS = 1_000;
const SERVER_STOP_GRACE_MS = 5_000;
/** An unknown job: get_capture_results answers it with a tool error (isError), by design. */
const UNKNOWN_JOB = "bench-load-no-such-job";

interface Options extends BaseOptions {
  clients: number;
  calls: number;
}

const USAGE = `usage: bun bench/load.ts [options]
  --clients N    concurrent MCP clients, one session each (default 50)
  --calls N      calls per client in the load phase (default 200)
  --runs N       rounds of the snapshot goal: one call alone, --clients at once (default 5)
  --binary PATH  binary to run as "PATH serve --http --port 0" (default dist/ipcscope)
  --json         print one JSON object instead of the table
  --check        exit 1 if a goal fails (default: exit 0 regardless)`;

function parseArgs(argv: string[]): Options {
  const options: Options = { clients: 50, calls: 200, runs: 5, binary: DEFAULT_BINARY, json: false, check: false };
  return parseOptions(argv, options, USAGE, (flag, value) => {
    switch (flag) {
      case "--clients": options.clients = integerOption(flag, value(), 1, 1000); return true;
      case "--calls": options.calls = integerOption(flag, value(), 1); return true;
      default: return false;
    }
  });
}

// ---- the mix of calls ----

interface Call {
  /** The label latencies are grouped by: the tool name, or the MCP method. */
  label: string;
  run: (client: Client) => Promise<{ isError?: boolean }>;
  /** A call that must answer with a tool error (counted apart; a success is an error). */
  expectError?: boolean;
}

const tool = (name: string, args: Record<string, unknown>, expectError = false): Call => ({
  label: name,
  run: (client) => client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS }) as Promise<{ isError?: boolean }>,
  expectError,
});

/** What agents ask all day; small limits, as a careful agent sets them. Client c's call k is MIX[(c + k) % length]. */
const MIX: Call[] = [
  // A plain request, not client.listTools(): that also compiles a validator for every tool's output
  // schema, in this process, ~330 ms of CPU per call against the server's ~13 ms (measured here), so
  // the bench would time itself. Without those validators callTool() does not check answers either.
  { label: "tools/list", run: async (client) => (await client.request({ method: "tools/list" }, ListToolsResultSchema, { timeout: CALL_TIMEOUT_MS }), {}) },
  tool("get_system_info", {}),
  tool("get_process_connection_snapshot", { limit: 20 }),
  tool("get_ipc_graph", {}),
  tool("list_connections", { limit: 20 }),
  tool("get_connection_summary", { command: "ipcscope", since: 600 }),
  tool("analyze_patterns", { since: 600 }),
  tool("get_process_connection_snapshot", { listening: true, limit: 10 }),
  tool("generate_ipc_analysis_prompt", { max_tokens: 1000 }),
  tool("get_capture_results", { job_id: UNKNOWN_JOB }, true),
];

const SNAPSHOT = tool("get_process_connection_snapshot", { limit: 20 });
/** The cheapest call there is: a lookup that fails at once. */
const NOTHING = tool("get_capture_results", { job_id: UNKNOWN_JOB }, true);

// ---- the server ----

/** The server's flags for `--token-file` and `--max-sessions`, when this build has them. */
function serverFlags(binary: string): { token: boolean; maxSessions: boolean } {
  const help = Bun.spawnSync([binary, "serve", "--help"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  // citty colours its help; strip the escapes before looking for a flag.
  const text = `${help.stdout.toString()}${help.stderr.toString()}`.replace(/\x1b\[[0-9;]*m/g, "");
  return { token: /--token-file\b/.test(text), maxSessions: /--max-sessions\b/.test(text) };
}

interface Memory {
  rssMB: number | null;
  peakMB: number | null;
}

/** VmRSS and VmHWM (the peak RSS so far) of pid, in MB (2^20 bytes). */
function memory(pid: number): Memory {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => {
      const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status);
      return match ? round(Number(match[1]) / 1024) : null;
    };
    return { rssMB: field("VmRSS"), peakMB: field("VmHWM") };
  } catch {
    return { rssMB: null, peakMB: null };
  }
}

/** The pid of the server's monitor probe (a bpftrace), from /health, or null. */
async function probePid(server: Server, headers: Record<string, string>): Promise<number | null> {
  try {
    const response = await fetch(`${server.url}/health`, { headers, signal: AbortSignal.timeout(10_000) });
    const health = (await response.json()) as { background?: { monitor?: { probe?: { pid?: number | null } | null } } };
    return health.background?.monitor?.probe?.pid ?? null;
  } catch {
    return null;
  }
}

async function connect(url: string, headers: Record<string, string>, index: number): Promise<Client> {
  const client = new Client({ name: `bench-load-${index}`, version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers } }));
  return client;
}

/** Ends a client's session on the server (DELETE), then the client; errors do not matter any more. */
async function disconnect(client: Client): Promise<void> {
  try {
    await (client.transport as StreamableHTTPClientTransport | undefined)?.terminateSession();
  } catch {
    // the server may be gone
  }
  await client.close().catch(() => {});
}

// ---- the load ----

interface Tally {
  calls: number;
  transportErrors: number;
  /** isError from a call that should have succeeded, or success from one that should have failed. */
  unexpected: number;
  expectedToolErrors: number;
  latencies: Map<string, number[]>;
  /** The first distinct error messages, for stderr. */
  messages: Set<string>;
}

const newTally = (): Tally => ({ calls: 0, transportErrors: 0, unexpected: 0, expectedToolErrors: 0, latencies: new Map(), messages: new Set() });

async function timed(client: Client, call: Call, tally: Tally): Promise<number> {
  const started = performance.now();
  let problem: string | null = null;
  try {
    const result = await call.run(client);
    if (call.expectError) {
      if (result.isError) tally.expectedToolErrors++;
      else problem = `${call.label}: answered without isError, where a tool error was expected`;
    } else if (result.isError) {
      const text = (result as { content?: { text?: string }[] }).content?.[0]?.text ?? "";
      problem = `${call.label}: tool error: ${text.slice(0, 200)}`;
    }
    if (problem) tally.unexpected++;
  } catch (error) {
    tally.transportErrors++;
    problem = `${call.label}: ${error instanceof Error ? error.message : String(error)}`.slice(0, 300);
  }
  const ms = performance.now() - started;
  tally.calls++;
  if (problem && tally.messages.size < 10) tally.messages.add(problem);
  const list = tally.latencies.get(call.label);
  if (list) list.push(ms);
  else tally.latencies.set(call.label, [ms]);
  return ms;
}

async function load(clients: Client[], calls: number, tally: Tally): Promise<number> {
  const started = performance.now();
  await Promise.all(
    clients.map(async (client, c) => {
      for (let k = 0; k < calls; k++) await timed(client, MIX[(c + k) % MIX.length]!, tally);
    }),
  );
  return performance.now() - started;
}

/** The nearest-rank percentile q (0..1) of values. */
function percentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

// ---- the snapshot goal ----

interface SnapshotRound {
  aloneMs: number;
  concurrentMs: number;
  /** CPU the server's threads used (ms) for the call alone, and for the concurrent calls. */
  aloneCpuMs: number;
  concurrentCpuMs: number;
  /** The same number of concurrent calls of a tool that does nothing: what the transport costs. */
  floorMs: number;
}

/**
 * CPU time (ms) of every thread of a process so far, from /proc/PID/task/TID/schedstat (ns):
 * /proc/PID/stat counts in 10 ms ticks, coarser than one snapshot.
 */
function threadsCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/** Runs `work` and returns its wall time and the server's CPU time, both in ms. */
async function measured(pid: number, work: () => Promise<number>): Promise<[number, number]> {
  const cpu = threadsCpuMs(pid);
  const wall = await work();
  return [wall, threadsCpuMs(pid) - cpu];
}

/** Wall time until the last of one call per client, all at once. */
async function together(clients: Client[], call: Call, tally: Tally): Promise<number> {
  const started = performance.now();
  await Promise.all(clients.map((client) => timed(client, call, tally)));
  return performance.now() - started;
}

/**
 * One snapshot call from the first client alone, one from every client at once, and as many calls
 * at once of a tool that does nothing (the floor: HTTP, JSON-RPC and both SDKs, with no snapshot).
 */
async function snapshotRound(pid: number, clients: Client[], tally: Tally, aloneFirst: boolean): Promise<SnapshotRound> {
  const alone = () => measured(pid, () => timed(clients[0]!, SNAPSHOT, tally));
  const concurrent = () => measured(pid, () => together(clients, SNAPSHOT, tally));
  if (aloneFirst) {
    const [aloneMs, aloneCpuMs] = await alone();
    const [concurrentMs, concurrentCpuMs] = await concurrent();
    return { aloneMs, concurrentMs, aloneCpuMs, concurrentCpuMs, floorMs: await together(clients, NOTHING, tally) };
  }
  const floorMs = await together(clients, NOTHING, tally);
  const [concurrentMs, concurrentCpuMs] = await concurrent();
  const [aloneMs, aloneCpuMs] = await alone();
  return { aloneMs, concurrentMs, aloneCpuMs, concurrentCpuMs, floorMs };
}

// ---- main ----

interface Result {
  clients: number;
  calls_per_client: number;
  authenticated: boolean;
  load: {
    calls: number;
    seconds: number;
    calls_per_second: number;
    errors: number;
    transport_errors: number;
    unexpected_tool_errors: number;
    expected_tool_errors: number;
    latency_ms: Record<string, { calls: number; p50: number | null; p99: number | null }>;
  };
  memory_mb: { before: number | null; after: number | null; peak: number | null };
  snapshot: {
    runs: number;
    alone_ms: number | null;
    concurrent_ms: number | null;
    wall_ratio: number | null;
    alone_cpu_ms: number | null;
    concurrent_cpu_ms: number | null;
    ratio: number | null;
    floor_ms: number | null;
    rounds: SnapshotRound[];
  };
  goals: { name: string; value: string; limit: string; pass: boolean }[];
  pass: boolean;
}

function table(r: Result): string {
  let out = `ipcscope load: ${r.clients} MCP clients x ${r.calls_per_client} mixed calls (${r.authenticated ? "bearer token" : "no --token-file in this build: header sent, not checked"})\n\n`;
  out += `calls ${r.load.calls} in ${fixed(r.load.seconds)} s (${fixed(r.load.calls_per_second)}/s); errors ${r.load.errors} `;
  out += `(transport ${r.load.transport_errors}, unexpected tool errors ${r.load.unexpected_tool_errors}); expected tool errors ${r.load.expected_tool_errors}\n\n`;
  out += `${"call".padEnd(34)}${"calls".padStart(7)}${"p50 ms".padStart(10)}${"p99 ms".padStart(10)}\n`;
  for (const [label, l] of Object.entries(r.load.latency_ms)) {
    out += `${label.padEnd(34)}${String(l.calls).padStart(7)}${fixed(l.p50).padStart(10)}${fixed(l.p99).padStart(10)}\n`;
  }
  out += `\nserver RSS MB: before ${fixed(r.memory_mb.before)}, after ${fixed(r.memory_mb.after)}, peak ${fixed(r.memory_mb.peak)}\n`;
  out += `snapshot, server CPU: ${r.clients} concurrent calls ${fixed(r.snapshot.concurrent_cpu_ms)} ms, one alone ${fixed(r.snapshot.alone_cpu_ms)} ms (medians of ${r.snapshot.runs} rounds): ${times(r.snapshot.ratio)}\n`;
  out += `snapshot, wall time: ${r.clients} concurrent calls ${fixed(r.snapshot.concurrent_ms)} ms, one alone ${fixed(r.snapshot.alone_ms)} ms: ${times(r.snapshot.wall_ratio)} (includes the clients' own work in this process)\n`;
  out += `  floor: ${r.clients} concurrent calls of a tool that does nothing ${fixed(r.snapshot.floor_ms)} ms (what HTTP, JSON-RPC and the SDKs cost alone)\n`;
  out += "\ngoals:\n";
  for (const g of r.goals) out += `  ${g.pass ? "PASS" : "FAIL"}  ${g.name.padEnd(40)} ${g.value.padStart(8)}  (goal ${g.limit})\n`;
  return out;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(options.binary)) fail(`${options.binary} does not exist: run scripts/build (or pass --binary PATH)`);
  if (process.geteuid?.() !== 0) log("not root: the snapshot sees only this user's processes, and events come from ss polling");

  const flags = serverFlags(options.binary);
  const token = randomBytes(32).toString("base64url");
  const headers = { authorization: `Bearer ${token}` };
  const dir = mkdtempSync(join(tmpdir(), "ipcscope-load-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const extra = [
    ...(flags.token ? ["--token-file", tokenFile] : []),
    ...(flags.maxSessions && options.clients + 1 > DEFAULT_MAX_SESSIONS ? ["--max-sessions", String(options.clients + 1)] : []),
  ];
  if (!flags.token) log(`${options.binary} has no --token-file: the bearer header is sent but not checked`);
  if (!flags.maxSessions && options.clients + 1 > DEFAULT_MAX_SESSIONS) log(`${options.clients} clients: more sessions than a server with --max-sessions would allow by default`);

  const server = await startServer(options.binary, extra);
  let release = () => {};
  const clients: Client[] = [];
  const tally = newTally();
  try {
    log(`server at ${server.url}; connecting ${options.clients} clients`);
    for (let i = 0; i < options.clients; i++) clients.push(await connect(server.url, headers, i));
    // Warm-up: one call of each kind (starts the event monitor, as the events tools do), not counted.
    const warm = newTally();
    for (const call of MIX) await timed(clients[0]!, call, warm);
    if (warm.transportErrors + warm.unexpected > 0) throw new BenchError(`the warm-up calls failed: ${[...warm.messages].join("; ")} (server log: ${tail(server.stderr)})`);
    const probe = await probePid(server, headers);
    // A SIGKILLed server can leave its bpftrace behind: kill that too on Ctrl-C.
    if (probe !== null) release = adopt(probe, "bpftrace");
    await sleep(SETTLE_MS);
    const before = memory(server.child.pid);

    log(`load: ${options.clients} clients x ${options.calls} calls`);
    const loadMs = await load(clients, options.calls, tally);

    log(`snapshot: ${options.runs} rounds of 1 call alone and ${options.clients} at once (+1 warm-up)`);
    const snapshotTally = newTally();
    await snapshotRound(server.child.pid, clients, snapshotTally, true);
    const rounds: SnapshotRound[] = [];
    // ABBA: the order flips every round, so a drift of the machine hits both alike.
    for (let i = 0; i < options.runs; i++) rounds.push(await snapshotRound(server.child.pid, clients, snapshotTally, i % 2 === 0));
    for (const message of snapshotTally.messages) tally.messages.add(message);
    tally.transportErrors += snapshotTally.transportErrors;
    tally.unexpected += snapshotTally.unexpected;

    await Promise.all(clients.splice(0).map(disconnect));
    await sleep(SETTLE_MS);
    const after = memory(server.child.pid);

    const alone = stats(rounds.map((r) => r.aloneMs))?.median;
    const concurrent = stats(rounds.map((r) => r.concurrentMs))?.median;
    const floor = stats(rounds.map((r) => r.floorMs))?.median;
    const wallRatio = ratio(concurrent, alone);
    const aloneCpu = stats(rounds.map((r) => r.aloneCpuMs))?.median;
    const concurrentCpu = stats(rounds.map((r) => r.concurrentCpuMs))?.median;
    // The cost to the host is the server's CPU: the wall time also holds the 50 clients' own work
    // (SSE, JSON, validation), done in this one bench process on the same two cores.
    const snapshotRatio = ratio(concurrentCpu, aloneCpu);
    const errors = tally.transportErrors + tally.unexpected;
    const goals = [
      { name: "errors (transport + unexpected tool errors)", value: String(errors), limit: `= ${GOALS.errors}`, pass: errors === GOALS.errors },
      {
        name: `${options.clients} concurrent snapshots / one alone (server CPU)`,
        value: times(snapshotRatio),
        limit: `<= ${GOALS.snapshotRatio}x`,
        pass: snapshotRatio !== null && snapshotRatio <= GOALS.snapshotRatio,
      },
    ];
    const latency = Object.fromEntries(
      [...tally.latencies].map(([label, values]) => {
        const p50 = percentile(values, 0.5);
        const p99 = percentile(values, 0.99);
        return [label, { calls: values.length, p50: p50 === null ? null : round(p50), p99: p99 === null ? null : round(p99) }];
      }),
    );
    const result: Result = {
      clients: options.clients,
      calls_per_client: options.calls,
      authenticated: flags.token,
      load: {
        calls: options.clients * options.calls,
        seconds: round(loadMs / 1000, 2),
        calls_per_second: round((options.clients * options.calls) / (loadMs / 1000)),
        errors,
        transport_errors: tally.transportErrors,
        unexpected_tool_errors: tally.unexpected,
        expected_tool_errors: tally.expectedToolErrors,
        latency_ms: latency,
      },
      memory_mb: { before: before.rssMB, after: after.rssMB, peak: after.peakMB },
      snapshot: {
        runs: options.runs,
        alone_ms: alone === undefined ? null : round(alone),
        concurrent_ms: concurrent === undefined ? null : round(concurrent),
        wall_ratio: wallRatio,
        alone_cpu_ms: aloneCpu === undefined ? null : round(aloneCpu),
        concurrent_cpu_ms: concurrentCpu === undefined ? null : round(concurrentCpu),
        ratio: snapshotRatio,
        floor_ms: floor === undefined ? null : round(floor),
        rounds: rounds.map((r) => ({ aloneMs: round(r.aloneMs), concurrentMs: round(r.concurrentMs), aloneCpuMs: round(r.aloneCpuMs), concurrentCpuMs: round(r.concurrentCpuMs), floorMs: round(r.floorMs) })),
      },
      goals,
      pass: goals.every((g) => g.pass),
    };
    process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : table(result));
    for (const message of tally.messages) log(`error: ${message}`);
    return options.check && !result.pass ? 1 : 0;
  } finally {
    await Promise.all(clients.map(disconnect));
    if (!(await stop(server.child, "SIGTERM", SERVER_STOP_GRACE_MS))) log(`server did not stop within ${SERVER_STOP_GRACE_MS / 1000} s of SIGTERM; killed`);
    release();
    rmSync(dir, { recursive: true, force: true });
  }
}

await runMain(main);
