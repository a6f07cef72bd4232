// A bounded fuzz of the compiled binary: thousands of random and mutated messages over stdio and
// HTTP (MCP sessions, requests without one, the REST mirror), built from valid calls of every tool,
// prompt and resource. The server must stay up, answer a normal call afterwards, keep its memory
// bounded, run few probes at a time, leak no stack trace, and leave no process behind on SIGTERM.
// The seed is printed; FUZZ_SEED=N repeats a run. FUZZ_STDIO / FUZZ_HTTP change the counts and
// FUZZ_BUDGET_S the sending time allowed to each (35 s), for longer runs by hand.
import { afterAll, describe, expect } from "bun:test";
import { readFileSync } from "node:fs";
import { checkLine } from "../../src/server/jsonrpc.ts";
import { descendants, type HttpServer, type Proc, readStat, startHttpServer, testWithBpf } from "../helpers.ts";
import { INITIALIZE, INITIALIZED, MCP_HEADERS, openSession, postMcp, PROTOCOL_VERSION, type RawStdio, startRawStdio } from "../raw-mcp.ts";

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 32);
const STDIO_MESSAGES = Number(process.env.FUZZ_STDIO ?? 3000);
const HTTP_MESSAGES = Number(process.env.FUZZ_HTTP ?? 3000);
/** An answer not back by then belongs to a long call (a window of up to 55 s): no longer waited for. */
const LONG_MS = 2_000;
/** Requests awaiting an answer at once (stdio) / HTTP requests in flight. */
const IN_FLIGHT = 12;
/**
 * Sending stops after this even if not every message went out (a loaded 2-core box): the file must
 * end in about 90 s. The report says how many were sent; the same seed sends the same ones first.
 */
const SEND_BUDGET_MS = Number(process.env.FUZZ_BUDGET_S ?? 35) * 1000;
/** The normal call after the fuzz: answered within this, while long windows may still run. */
const FINAL_MS = 15_000;
const TEST_TIMEOUT_MS = SEND_BUDGET_MS + 45_000;
/** Probes (bpftrace running a script) under the server at once: the monitor, 4 probe windows (inline or jobs, --max-jobs), a verification per probe (5). */
const MAX_BPFTRACE = 10;
/** A stack frame ("at f (file:1:2)", its newline JSON-escaped or not), or the compiled binary's module path. */
const STACK_TRACE = /(?:\\n|\n)\s*at (?:[^\n"(]* \()?\/[^\n"]*:\d+:\d+|\/\$bunfs\//;
/** How often the server's processes and memory are looked at while fuzzing. */
const SAMPLE_MS = 250;

console.log(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} repeats this run)`);

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(min = 0, max = 1): number {
    return min + this.next() * (max - min);
  }
  int(min: number, max: number): number {
    return Math.floor(this.float(min, max + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  /** Each field with probability p: a random subset of a tool's optional arguments. */
  some(fields: Record<string, () => unknown>, p = 0.35): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, make] of Object.entries(fields)) if (this.chance(p)) out[key] = make();
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Valid messages: every tool with plausible arguments, prompts, resources, notifications

const EVENT_TYPES = ["connect", "accept", "connect_failed", "close", "listen", "exec", "exit"];
const COMMANDS = ["bun", "ipcscope", "sshd", "python3", "systemd", "a b(c),d"];
const PIDS = () => [1, 2, process.pid, 999_999];

/** Plausible arguments per tool; `target` is a sleeping child no signal may ever reach. */
function toolArgs(r: Rng, target: number): Record<string, () => Record<string, unknown>> {
  const pid = () => r.pick(PIDS());
  const port = () => r.pick([0, 22, 53, 80, 443, 8000, r.int(1, 65535)]);
  const command = () => r.pick(COMMANDS);
  const type = () => (r.chance(0.7) ? r.pick(EVENT_TYPES) : [r.pick(EVENT_TYPES), r.pick(EVENT_TYPES)]);
  // Mostly short windows; some up to the inline limit; a few as background jobs of any length.
  const window = () => {
    const background = r.chance(0.1);
    return { duration: background ? r.int(1, 3600) : r.chance(0.85) ? Math.round(r.float(0.1, 2) * 10) / 10 : r.int(3, 55), ...(background || r.chance(0.2) ? { background } : {}) };
  };
  const since = () => r.pick([1, 60, 600, 3600, r.float(0, 100_000)]);
  const job = () => `job:${r.int(0, 9)}`; // resolved to a job the server named, at send time
  return {
    get_system_info: () => (r.chance(0.1) ? { verify_probes: true } : r.some({ verify_probes: () => false })),
    get_process_connection_snapshot: () =>
      r.some({
        pid,
        command,
        process: command,
        user: () => r.pick(["root", "nobody", "0"]),
        port,
        state: () => r.pick(["LISTEN", "ESTAB", "TIME-WAIT", "established"]),
        protocol: () => r.pick(["tcp", "udp", "unix", "raw"]),
        listening: () => r.chance(0.5),
        remote_cidr: () => r.pick(["127.0.0.0/8", "::1/128", "10.0.0.0/8", "0.0.0.0/0", "::ffff:127.0.0.1/104"]),
        include_unix: () => r.chance(0.5),
        limit: () => r.int(1, 2000),
      }),
    get_ipc_graph: () => r.some({ pid, command, process: command, mermaid: () => r.chance(0.5) }),
    get_live_network_events: () => ({ ...window(), ...r.some({ pid, command, process: command, port, type, max_events: () => r.int(1, 10_000) }) }),
    get_capture_results: () => ({ job_id: job() }),
    stop_capture: () => ({ job_id: job() }),
    wait_for_connection: () => ({ timeout: r.chance(0.8) ? Math.round(r.float(0.1, 2) * 10) / 10 : r.int(3, 55), ...r.some({ pid, command, process: command, port, type, destination: () => r.pick(["127.0.0.1", "::1", "example.org"]) }) }),
    list_connections: () => r.some({ pid, command, process: command, port, type, destination: () => "127.0.0.1", since, limit: () => r.int(1, 1000), group_by_pid: () => r.chance(0.5) }),
    get_connection_summary: () => r.some({ pid, command, process: command, since }),
    analyze_patterns: () => r.some({ pid, command, process: command, since }),
    trace_syscall_errors: () => ({ ...window(), ...r.some({ pid, command: () => r.pick(["bun", "sshd", "cat"]), limit: () => r.int(1, 1000) }) }),
    get_interface_traffic: () => ({ duration: r.chance(0.85) ? Math.round(r.float(0.1, 2) * 10) / 10 : r.int(3, 55), ...r.some({ interface: () => r.pick(["lo", "eth0", "nope0"]) }) }),
    list_bpf_programs: () => r.some({ type: () => r.pick(["tracepoint", "kprobe", "xdp"]), name: () => r.pick(["nope", "sys_enter", ""]), limit: () => r.int(1, 10_000), include_maps: () => r.chance(0.5) }),
    dump_bpf_map: () => (r.chance(0.5) ? { id: r.int(1, 200) } : { name: r.pick(["nope", "@c", "AT_c"]) }),
    get_packet_drop_summary: () => ({ ...window(), ...r.some({ port: () => r.int(1, 65535), limit: () => r.int(1, 1000) }) }),
    list_packet_drops: () => ({ ...window(), ...r.some({ port: () => r.int(1, 65535), max_events: () => r.int(1, 10_000) }) }),
    get_tcp_health: () => ({ ...window(), ...r.some({ port: () => r.int(1, 65535), pid, remote: () => r.pick(["127.0.0.1", "::1", "10.0.0.1:443"]), limit: () => r.int(1, 1000) }) }),
    // Signals are off (no --allow-signals): every call must be refused, and `target` outlives the run.
    send_signal_to_pid: () => ({ pid: target, ...r.some({ sig_str: () => r.pick(["SIGTERM", "TERM", "15", "SIGKILL", 9]), confirm_token: () => "tok-" + r.int(0, 1e6), wait_seconds: () => r.int(0, 30) }) }),
    generate_ipc_analysis_prompt: () => r.some({ focus: () => r.pick(["pid:1", "port:22", "command:bun", "22", "sshd", ""]), max_tokens: () => r.int(300, 100_000), style: () => r.pick(["analysis", "security_review", "connection_troubleshooting"]) }),
  };
}

const RESOURCES = ["ipcscope://snapshot", "ipcscope://ipc-graph", "ipcscope://events/recent", "ipcscope://system", "ipcscope://probes", "ipcscope://probes/trace_exec", "ipcscope://probes/nope", "ipcscope://process/1", "ipcscope://process/abc", "file:///etc/passwd"];
const PROMPTS = ["ipc_analysis", "security_review", "connection_troubleshooting", "nope"];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One valid message (request, notification or response) with the given id for requests. */
function validMessage(r: Rng, id: number, target: number): Record<string, Json> {
  const request = (method: string, params?: Record<string, unknown>) => ({ jsonrpc: "2.0", id, method, ...(params ? { params } : {}) }) as Record<string, Json>;
  const notification = (method: string, params?: Record<string, unknown>) => ({ jsonrpc: "2.0", method, ...(params ? { params } : {}) }) as Record<string, Json>;
  const tools = toolArgs(r, target);
  const kind = r.int(0, 99);
  if (kind < 45) {
    const name = r.pick(Object.keys(tools));
    return request("tools/call", { name, arguments: tools[name]!(), ...(r.chance(0.2) ? { _meta: { progressToken: `p${id}` } } : {}) });
  }
  // A copy: mutations change messages in place, and INITIALIZE opens the sessions of the tests.
  if (kind < 50) return request("initialize", { ...structuredClone(INITIALIZE.params), protocolVersion: r.pick([PROTOCOL_VERSION, "2024-11-05", "2025-03-26", "1999-01-01"]) });
  if (kind < 55) return request(r.pick(["ping", "tools/list", "prompts/list", "resources/list", "resources/templates/list"]), r.chance(0.2) ? { cursor: r.pick(["", "abc", "1"]) } : undefined);
  if (kind < 63) {
    const name = r.pick(PROMPTS);
    return request("prompts/get", { name, arguments: r.some({ focus: () => r.pick(["pid:1", "port:22", "sshd"]), max_tokens: () => String(r.int(300, 8000)), process: () => "sshd", port: () => "22" }) });
  }
  if (kind < 71) return request("resources/read", { uri: r.pick(RESOURCES) });
  if (kind < 74) return request("logging/setLevel", { level: r.pick(["debug", "info", "warning", "error", "emergency"]) });
  if (kind < 77) return request("completion/complete", { ref: { type: "ref/prompt", name: r.pick(PROMPTS) }, argument: { name: "focus", value: r.pick(["", "p", "port:"]) } });
  if (kind < 82) return notification("notifications/cancelled", { requestId: id - r.int(1, 20), reason: "fuzz" });
  if (kind < 85) return notification("notifications/progress", { progressToken: `p${id}`, progress: r.int(0, 10) });
  if (kind < 88) return notification(r.pick(["notifications/initialized", "notifications/roots/list_changed"]));
  if (kind < 91) return { jsonrpc: "2.0", id: r.pick([id, "s1"]), ...(r.chance(0.5) ? { result: {} } : { error: { code: -1, message: "client says no" } }) } as Record<string, Json>;
  return request(r.pick(["tools/call", "sampling/createMessage", "roots/list", "nope", ""]), r.chance(0.5) ? { name: "get_system_info" } : undefined);
}

// ---------------------------------------------------------------------------------------------
// Mutations

const WEIRD_NUMBERS = [0, -0, -1, 1e308, -1e308, 5e-324, 0.5, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 64, -(2 ** 63), 1e21, 65536, 3601, 55.0001];
const NUMBER_TEXTS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "0x10", "01", "+1", ".5", "1.", "-", "1e", "9".repeat(400)];
const UNICODE = ["é", "日本語", "😀👍🏽", "\u202eevil", "\u0000", "\ud800", "\udfff", "\u200b", "e\u0301", "\ufeff", "ﬀ", "\u2028\u2029", "𝕏", "\\", '"', "\n", "%00", "../../etc/passwd", "' OR 1=1 --", "$(reboot)", "`id`"];

/** A random JSON value of any type; nested a little. */
function randomValue(r: Rng, depth = 0): Json {
  switch (r.int(0, depth > 2 ? 5 : 7)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick(WEIRD_NUMBERS);
    case 3:
      return r.int(-1000, 100_000);
    case 4:
      return r.pick(UNICODE) + r.pick(["", "x", "abc"]);
    case 5:
      return r.pick(["", "true", "1", "-1", "SIGKILL", "job-1-x", "127.0.0.1", "lo"]);
    case 6:
      return Array.from({ length: r.int(0, 4) }, () => randomValue(r, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: r.int(0, 4) }, () => [r.pick(["a", "pid", "name", "_meta", "arguments", "", "__proto__", "constructor"]), randomValue(r, depth + 1)]));
  }
}

/** The objects inside a value, and their keys: where a mutation can act. */
function containers(value: Json, out: { [key: string]: Json }[] = []): { [key: string]: Json }[] {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    out.push(value);
    for (const child of Object.values(value)) containers(child, out);
  } else if (Array.isArray(value)) {
    for (const child of value) containers(child, out);
  }
  return out;
}

let deepCounter = 0;
const deep = new Map<string, string>();

/** Mutates a message object in place; some mutations leave a placeholder filled in at text level. */
function mutateObject(r: Rng, message: Record<string, Json>): void {
  const places = containers(message);
  const place = r.pick(places);
  const keys = Object.keys(place);
  const key = keys.length > 0 && r.chance(0.8) ? r.pick(keys) : r.pick(["extra", "pid", "duration", "name", "arguments", "id", "params", "😀", ""]);
  switch (r.int(0, 7)) {
    case 0: // drop a field
      delete place[key];
      break;
    case 1: // wrong type
      place[key] = randomValue(r);
      break;
    case 2: // huge, negative, fractional numbers
      place[key] = r.pick(WEIRD_NUMBERS);
      break;
    case 3: // long strings
      place[key] = r.pick(["x", "日", "😀", "\\u0000", "a,b"]).repeat(r.chance(0.9) ? r.int(100, 5_000) : r.int(50_000, 300_000));
      break;
    case 4: // unicode values and keys
      if (r.chance(0.5)) place[key] = r.pick(UNICODE);
      else {
        const value = place[key];
        delete place[key];
        place[key + r.pick(UNICODE)] = value ?? null;
      }
      break;
    case 5: {
      // deep nesting, built as text (JSON.stringify of a deep value would overflow here)
      const name = `__deep_${deepCounter++}__`;
      const depth = r.chance(0.8) ? r.int(10, 2_000) : r.int(10_000, 100_000);
      deep.set(name, r.chance(0.5) ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth));
      place[key] = name;
      break;
    }
    case 6: // arrays where objects go and the other way round
      place[key] = Array.isArray(place[key]) ? { 0: (place[key] as Json[])[0] ?? null } : [place[key] ?? null];
      break;
    default: // nulls
      place[key] = null;
  }
}

/** Text-level mutations: duplicate keys, number literals JSON lacks, truncation, random bytes. */
function mutateText(r: Rng, text: string): string | Uint8Array {
  switch (r.int(0, 5)) {
    case 0: // a duplicate key: JSON.parse keeps the last one
      return text.replace(/^\{/, `{"${r.pick(["id", "method", "params", "jsonrpc"])}":${JSON.stringify(randomValue(r))},`);
    case 1: {
      // number literals that are not JSON
      const at = text.search(/:\d/);
      return at === -1 ? text + r.pick(NUMBER_TEXTS) : text.slice(0, at + 1) + r.pick(NUMBER_TEXTS) + text.slice(at + 1).replace(/^\d+/, "");
    }
    case 2: // truncated
      return text.slice(0, r.int(0, text.length - 1));
    case 3: {
      // random bytes over the encoded message (a newline among them splits it over stdio)
      const bytes = new TextEncoder().encode(text);
      for (let i = r.int(1, 8); i > 0; i--) bytes[r.int(0, bytes.length - 1)] = r.int(0, 255);
      return bytes;
    }
    case 4: // only random bytes
      return Uint8Array.from({ length: r.int(1, 300) }, () => r.int(0, 255));
    default: // a byte order mark, trailing garbage, or whitespace
      return r.pick(["\ufeff" + text, text + r.pick(["}", "]", ",", " x", "\t"]), ` \t${text}\t `]);
  }
}

function serialize(value: unknown): string {
  let text = JSON.stringify(value);
  for (const [name, nested] of deep) {
    if (text.includes(name)) text = text.replace(`"${name}"`, nested);
  }
  return text;
}

/** One fuzz message: valid, mutated, text-mangled, or a batch; `id` is the request id it was built with. */
function fuzzMessage(r: Rng, id: number, target: number): { body: string | Uint8Array; id: number } {
  deep.clear();
  if (r.chance(0.06)) {
    const batch = Array.from({ length: r.pick([0, 1, 2, 3, 5, 101]) }, (_, i) => {
      const message = validMessage(r, id * 1000 + i, target);
      if (r.chance(0.3)) mutateObject(r, message);
      return message;
    });
    return { body: serialize(r.chance(0.3) ? [...batch, randomValue(r)] : batch), id };
  }
  const message = validMessage(r, id, target);
  const mutations = r.chance(0.2) ? 0 : r.int(1, 3);
  for (let i = 0; i < mutations; i++) mutateObject(r, message);
  const text = serialize(message);
  return { body: r.chance(0.25) ? mutateText(r, text) : text, id };
}

// ---------------------------------------------------------------------------------------------
// HTTP requests: /mcp with our session, none, or a wrong one; the REST mirror; odd paths and methods

interface FuzzRequest {
  method: string;
  path: string;
  /** "ours": the live session (renewed if a fuzzed DELETE closed it); "none"; or a session id that is not one. */
  session: "ours" | "none" | string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

const TOOL_NAMES = Object.keys(toolArgs(new Rng(0), 0));

/** A query string: the tool's own parameters and others, with values of every kind, some repeated. */
function randomQuery(r: Rng, tool: string, target: number): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(toolArgs(r, target)[tool]?.() ?? {})) params.append(key, typeof value === "string" ? value : JSON.stringify(value));
  for (let i = r.int(0, 3); i > 0; i--) {
    const key = r.chance(0.6) ? r.pick(["pid", "duration", "limit", "port", "background", "type", "since", "verify_probes", "job_id"]) : r.pick(["x", "", "😀", "__proto__", "a[b]"]);
    const value = r.pick(["", "1", "-1", "0", "NaN", "Infinity", "1e999", "true", "false", "yes", "0x10", "3601", "55.5", "connect,close", r.pick(UNICODE), "x".repeat(r.int(100, 20_000))]);
    params.append(key, value);
  }
  const query = params.toString();
  return r.chance(0.1) ? query + r.pick(["&&", "=", "%", "%zz", "&a=%00", "#frag"]) : query;
}

function fuzzRequest(r: Rng, id: number, target: number): FuzzRequest {
  const kind = r.int(0, 99);
  if (kind < 63) {
    const session = kind < 52 ? "ours" : kind < 59 ? "none" : r.pick(["00000000-0000-0000-0000-000000000000", "x", "../../etc", "a".repeat(500)]);
    return { method: "POST", path: "/mcp", session, headers: { ...MCP_HEADERS }, body: fuzzMessage(r, id, target).body };
  }
  if (kind < 66) {
    // Headers the transport checks: Accept, Content-Type, the protocol version.
    const headers = r.pick([
      { "content-type": "text/plain", accept: MCP_HEADERS.accept },
      { "content-type": "application/json", accept: "application/json" },
      { "content-type": "application/json; charset=latin1", accept: "*/*" },
      { ...MCP_HEADERS, "mcp-protocol-version": "1999-01-01" },
    ]) as Record<string, string>;
    return { method: "POST", path: "/mcp", session: "ours", headers, body: fuzzMessage(r, id, target).body };
  }
  if (kind < 68) return { method: r.pick(["GET", "DELETE"]), path: "/mcp", session: r.pick(["ours", "none", "x"]), headers: { accept: "text/event-stream" } };
  if (kind < 82) {
    const tool = r.chance(0.95) ? r.pick(TOOL_NAMES) : r.pick(["nope", "mcp/x", "health/"]);
    return { method: "GET", path: `/${tool}?${randomQuery(r, tool, target)}`, session: "none", headers: {} };
  }
  if (kind < 96) {
    deep.clear();
    const tool = r.pick(TOOL_NAMES);
    const args = toolArgs(r, target)[tool]!() as Record<string, Json>;
    const mutated = r.chance(0.3) ? args : (mutateObject(r, args), args);
    const text = serialize(r.chance(0.1) ? r.pick([[mutated], randomValue(r), "text"]) : mutated);
    return { method: "POST", path: `/${tool}`, session: "none", headers: r.chance(0.8) ? { "content-type": "application/json" } : {}, body: r.chance(0.2) ? mutateText(r, text) : text };
  }
  return {
    method: r.pick(["GET", "PUT", "PATCH", "HEAD", "OPTIONS", "DELETE"]),
    path: r.pick(["/", "/health", "/mcp/", "/%2e%2e/etc/passwd", "//mcp", "/get_system_info/", `/${"a".repeat(r.int(100, 8000))}`, "/health?x=1", "/GET_SYSTEM_INFO"]),
    session: "none",
    headers: {},
  };
}

// ---------------------------------------------------------------------------------------------
// The server's processes and memory

/**
 * The same process (pid and start time) still exists, and is not a zombie: an exited child whose
 * parent is gone waits for pid 1 to reap it, which some container inits do only now and then.
 */
const stillRunning = (proc: Proc) => {
  const now = readStat(proc.pid);
  return now !== null && now.start === proc.start && now.state !== "Z";
};

function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) : 0;
}

/** What watching the server during a run saw. */
class Watch {
  maxBpftrace = 0;
  /** The bpftrace command lines when there were most. */
  busiest: string[] = [];
  maxRssKb = 0;
  seen = new Map<string, Proc>();
  constructor(private readonly pid: number) {}
  sample(): void {
    const procs = descendants(this.pid);
    for (const proc of procs) this.seen.set(`${proc.pid}:${proc.start}`, proc);
    // Probes: bpftrace running a script (not `bpftrace --version`). `bpftrace -c CMD` forks CMD,
    // which is named bpftrace until it execs: the parent only is counted.
    const pids = new Set(procs.filter((proc) => proc.comm === "bpftrace").map((proc) => proc.pid));
    const bpftrace = procs
      .filter((proc) => pids.has(proc.pid) && !pids.has(proc.ppid) && proc.state !== "Z")
      .map((proc) => readCmdline(proc.pid))
      .filter((cmdline) => /\.bt\b/.test(cmdline));
    if (bpftrace.length > this.maxBpftrace) this.busiest = bpftrace.map((cmdline) => cmdline.replace(/\/tmp\/\S+\//, "TMP/"));
    this.maxBpftrace = Math.max(this.maxBpftrace, bpftrace.length);
    this.maxRssKb = Math.max(this.maxRssKb, rssKb(this.pid));
  }
  /** After the server exited: the processes it had started that still run. */
  left(): Proc[] {
    return [...this.seen.values()].filter(stillRunning);
  }
}

/** Answers that show a stack trace (cut to 300 characters). */
function leaks(texts: Iterable<string>): string[] {
  return [...texts].filter((text) => STACK_TRACE.test(text)).map((text) => text.slice(0, 300));
}

/** SIGTERM: exit code 0, and nothing the server started still runs (checked after a failure too). */
async function expectCleanStop(watch: Watch, stop: () => Promise<number>, failure: unknown): Promise<void> {
  watch.sample();
  const code = await stop();
  const left = watch.left().map((proc) => ({ ...proc, cmdline: readCmdline(proc.pid) }));
  if (left.length > 0) {
    await Bun.sleep(3_000);
    report("left after exit", { left, after_3s: left.filter(stillRunning).map((proc) => proc.pid) });
  }
  if (failure) throw failure;
  expect(code).toBe(0);
  expect(left).toEqual([]);
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").slice(0, 200);
  } catch {
    return "";
  }
}

function report(what: string, facts: Record<string, unknown>): void {
  console.log(`fuzz ${what}: ${JSON.stringify(facts)}`);
}

// ---------------------------------------------------------------------------------------------

const NEWLINE = Buffer.from("\n");

/** Job ids the server named in its answers; `job:N` in a generated message picks one at send time. */
class Jobs {
  private readonly ids: string[] = [];
  learn(text: string): void {
    for (const match of text.matchAll(/"job_id":"(job-[^"]+)"/g)) if (!this.ids.includes(match[1]!)) this.ids.push(match[1]!);
  }
  fill(text: string): string {
    return text.replace(/job:(\d)/g, (_, n: string) => this.ids[Number(n) % Math.max(this.ids.length, 1)] ?? "job-1-x");
  }
}

const errorLines = (stderr: string) => stderr.split("\n").filter((line) => /^\[[\d:]+\] error /.test(line));

describe(`fuzz (seed ${SEED})`, () => {
  // A harmless process given as send_signal_to_pid's target: it must outlive every run.
  const target = Bun.spawn(["sleep", "600"], { stdout: "ignore", stderr: "ignore" });
  afterAll(() => target.kill("SIGKILL"));

  testWithBpf(`${STDIO_MESSAGES} messages over stdio`, async () => {
    const r = new Rng(SEED);
    const server: RawStdio = await startRawStdio([]);
    const watch = new Watch(server.proc.pid);
    let failure: unknown;
    try {
      await server.write(`${JSON.stringify(INITIALIZE)}\n${JSON.stringify(INITIALIZED)}\n`);
      await server.response(0, 15_000);
      // Warm up what a first call loads, so that memory "before" is the server at work, not at start.
      await server.write(`${JSON.stringify({ jsonrpc: "2.0", id: -1, method: "tools/call", params: { name: "get_process_connection_snapshot", arguments: {} } })}\n`);
      await server.response(-1, 15_000);
      const rssBefore = rssKb(server.proc.pid);
      const started = Date.now();

      const texts: string[] = [];
      const jobs = new Jobs();
      const waiting = new Map<string | number, number>(); // request id → when it was sent
      const takeAnswers = () => {
        for (const message of server.received.splice(0)) {
          if (message.id !== undefined && message.id !== null) waiting.delete(message.id);
          const text = JSON.stringify(message);
          texts.push(text);
          jobs.learn(text);
        }
      };
      let sent = 0;
      const sampler = setInterval(() => watch.sample(), SAMPLE_MS);
      while (sent < STDIO_MESSAGES && Date.now() - started < SEND_BUDGET_MS) {
        sent++;
        const { body } = fuzzMessage(r, sent, target.pid);
        // Random bytes go as they are (invalid UTF-8 too); text gets its job ids filled in.
        const line = typeof body === "string" ? jobs.fill(body) : null;
        // What the server will run (valid JSON-RPC requests) is answered: at most IN_FLIGHT of those
        // are awaited at once, each for LONG_MS at most (then it is a long window, left running).
        const checked = line === null || line.includes("\n") ? null : checkLine(line);
        const id = checked && "message" in checked && "method" in checked.message && "id" in checked.message ? checked.message.id : undefined;
        for (;;) {
          takeAnswers();
          for (const [key, at] of waiting) if (Date.now() - at > LONG_MS) waiting.delete(key);
          if (waiting.size < IN_FLIGHT) break;
          await Bun.sleep(5);
        }
        if (id !== undefined) waiting.set(id, Date.now());
        await server.write(line !== null ? `${line}\n` : Buffer.concat([body as Uint8Array, NEWLINE]));
        if (sent % 100 === 0) expect(server.proc.exitCode).toBeNull();
      }
      clearInterval(sampler);
      const fuzzedMs = Date.now() - started;

      // A normal call is answered promptly, whatever long calls are still running.
      const asked = Date.now();
      await server.write(`${JSON.stringify({ jsonrpc: "2.0", id: "final", method: "tools/call", params: { name: "get_system_info", arguments: {} } })}\n`);
      const final = await server.response("final", FINAL_MS);
      const finalMs = Date.now() - asked;
      takeAnswers();
      watch.sample();
      const rssAfter = rssKb(server.proc.pid);
      report("stdio", { seed: SEED, sent, of: STDIO_MESSAGES, answers: texts.length, fuzz_s: fuzzedMs / 1000, final_ms: finalMs, rss_kb: { before: rssBefore, max: watch.maxRssKb, after: rssAfter }, max_bpftrace: watch.maxBpftrace });

      expect(final.result.isError).toBeFalsy();
      expect(final.result.structuredContent.ipcscope.pid).toBe(server.proc.pid);
      expect(server.notJson).toEqual([]);
      expect(leaks(texts)).toEqual([]);
      expect(rssAfter).toBeLessThan(rssBefore * 3);
      // Over the limit, the failure shows the command lines of the busiest moment.
      expect(watch.maxBpftrace <= MAX_BPFTRACE ? [] : watch.busiest).toEqual([]);
      expect(errorLines(server.stderr())).toEqual([]);
    } catch (error) {
      failure = error;
    }
    await expectCleanStop(watch, () => server.stop("SIGTERM"), failure);
    expect(target.exitCode).toBeNull();
  }, TEST_TIMEOUT_MS);

  testWithBpf(`${HTTP_MESSAGES} requests over HTTP: MCP with and without a session, and the REST mirror`, async () => {
    const r = new Rng(SEED ^ 0x5bd1e995);
    const server: HttpServer = await startHttpServer([]);
    const watch = new Watch(server.proc.pid);
    const url = server.url;
    let failure: unknown;
    try {
      let session = await openSession(url);
      await postMcp(url, JSON.stringify({ jsonrpc: "2.0", id: -1, method: "tools/call", params: { name: "get_process_connection_snapshot", arguments: {} } }), session);
      const rssBefore = rssKb(server.proc.pid);
      const started = Date.now();

      // Generated in order before sending, so the seed fixes the requests whatever the timing.
      const requests: FuzzRequest[] = [];
      for (let i = 1; i <= HTTP_MESSAGES; i++) requests.push(fuzzRequest(r, i, target.pid));

      const jobs = new Jobs();
      const texts: string[] = [];
      const serverErrors: string[] = [];
      let long = 0;
      let next = 0;
      let sent = 0;
      const worker = async () => {
        while (next < requests.length && Date.now() - started < SEND_BUDGET_MS) {
          const request = requests[next++]!;
          sent++;
          if (sent % 100 === 0) expect(server.proc.exitCode).toBeNull();
          const sessionId = request.session === "ours" ? session : request.session === "none" ? undefined : request.session;
          const headers: Record<string, string> = { ...(sessionId ? { "mcp-session-id": sessionId, "mcp-protocol-version": PROTOCOL_VERSION } : {}), ...request.headers };
          const body = typeof request.body === "string" ? jobs.fill(request.body) : request.body;
          try {
            const response = await fetch(url.origin + jobs.fill(request.path), { method: request.method, headers, body, signal: AbortSignal.timeout(LONG_MS) });
            const text = await response.text();
            texts.push(text);
            jobs.learn(text);
            if (response.status >= 500) serverErrors.push(`${response.status} ${request.method} ${request.path.slice(0, 100)} ${String(body).slice(0, 200)} → ${text.slice(0, 200)}`);
            // The session was closed (a fuzzed DELETE): go on in a new one.
            if (response.status === 404 && request.session === "ours" && request.path === "/mcp") session = await openSession(url);
          } catch (error) {
            if ((error as Error).name !== "TimeoutError" && (error as Error).name !== "AbortError") throw error;
            long++; // a long call (an inline window, an SSE stream): not waited for
          }
        }
      };
      const sampler = setInterval(() => watch.sample(), SAMPLE_MS);
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker)).finally(() => clearInterval(sampler));
      const fuzzedMs = Date.now() - started;

      const asked = Date.now();
      const final = await postMcp(url, JSON.stringify({ jsonrpc: "2.0", id: "final", method: "tools/call", params: { name: "get_system_info", arguments: {} } }), await openSession(url), AbortSignal.timeout(FINAL_MS));
      const finalMs = Date.now() - asked;
      watch.sample();
      const rssAfter = rssKb(server.proc.pid);
      const sessions = ((await (await fetch(`${url.origin}/health`)).json()) as { sessions: number }).sessions;
      report("http", { seed: SEED, sent, of: HTTP_MESSAGES, long, sessions, fuzz_s: fuzzedMs / 1000, final_ms: finalMs, rss_kb: { before: rssBefore, max: watch.maxRssKb, after: rssAfter }, max_bpftrace: watch.maxBpftrace });

      expect(final.messages[0]?.result?.structuredContent?.ipcscope?.pid).toBe(server.proc.pid);
      expect(serverErrors).toEqual([]);
      expect(leaks(texts)).toEqual([]);
      expect(rssAfter).toBeLessThan(rssBefore * 3);
      // Over the limit, the failure shows the command lines of the busiest moment.
      expect(watch.maxBpftrace <= MAX_BPFTRACE ? [] : watch.busiest).toEqual([]);
      expect(errorLines(server.stderr())).toEqual([]);
    } catch (error) {
      failure = error;
    }
    await expectCleanStop(watch, () => server.stop(), failure);
    expect(target.exitCode).toBeNull();
  }, TEST_TIMEOUT_MS);
});
