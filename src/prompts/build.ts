// The analysis prompt, without I/O: the material ipcscope gathered (snapshot, IPC graph, event
// history, kernel counters) → sections of plain lines → one text cut to a token budget. The text is
// model-agnostic: markdown headings and one fact per line, no vendor syntax.
import type { ConnectionPatterns, ConnectionSummary } from "../events/analysis.ts";
import type { Completeness } from "../events/completeness.ts";
import type { EventView } from "../events/view.ts";
import { isLoopbackIp, unmapV4 } from "../snapshot/cidr.ts";
import type { IpcGraph } from "../snapshot/graph.ts";
import type { Connection, ProcessEntry, Snapshot } from "../snapshot/model.ts";

export const PROMPT_STYLES = ["analysis", "security_review", "connection_troubleshooting"] as const;
export type PromptStyle = (typeof PROMPT_STYLES)[number];

export const DEFAULT_MAX_TOKENS = 4000;
export const MIN_MAX_TOKENS = 300;
export const MAX_MAX_TOKENS = 100_000;

/** Tokens of a text, estimated as characters / 4 (rounded up): close for English and JSON-ish text across tokenizers. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

// ---------------------------------------------------------------------------------------------
// Focus

/** What to look at closely. A bare number may be a pid or a port: both are matched (union). */
export interface Focus {
  pid?: number;
  port?: number;
  command?: string;
  /** As the caller wrote it, for the prompt. */
  label: string;
}

/** "pid:1234", "port:8080", "command:nginx" (or "process:nginx"), a bare number (pid or port), or a command. */
export function parseFocus(text: string): Focus {
  const value = text.trim();
  const prefixed = /^(pid|port|command|process)\s*[:=]\s*(.+)$/i.exec(value);
  if (prefixed) {
    const kind = prefixed[1]!.toLowerCase();
    const rest = prefixed[2]!.trim();
    if (kind === "pid" || kind === "port") {
      const n = Number(rest);
      const max = kind === "port" ? 65535 : Number.MAX_SAFE_INTEGER;
      if (!/^\d+$/.test(rest) || n > max || (kind === "pid" && n === 0)) throw new Error(`focus: ${kind} must be a number, got "${rest}"`);
      return kind === "pid" ? { pid: n, label: value } : { port: n, label: value };
    }
    return { command: rest, label: value };
  }
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    return { ...(n > 0 ? { pid: n } : {}), ...(n <= 65535 ? { port: n } : {}), label: value };
  }
  return { command: value, label: value };
}

export function processInFocus(entry: Pick<ProcessEntry, "pid" | "name" | "command_line">, focus: Focus): boolean {
  if (focus.pid !== undefined && entry.pid === focus.pid) return true;
  if (focus.command !== undefined) {
    const needle = focus.command.toLowerCase();
    return entry.name.toLowerCase().includes(needle) || entry.command_line.toLowerCase().includes(needle);
  }
  return false;
}

export function connectionInFocus(connection: Pick<Connection, "local_port" | "remote_port">, focus: Focus): boolean {
  return focus.port !== undefined && (connection.local_port === focus.port || connection.remote_port === focus.port);
}

// ---------------------------------------------------------------------------------------------
// Material

/** /proc/net/snmp: protocol → counter → value, e.g. Tcp.RetransSegs. */
export type NetSnmp = Record<string, Record<string, number>>;

/** /proc/net/snmp text → counters. Each protocol is two lines: "Tcp: Name Name …" then "Tcp: 1 2 …". */
export function parseNetSnmp(text: string): NetSnmp {
  const result: NetSnmp = {};
  const headers = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const match = /^(\w+):\s+(.*)$/.exec(line);
    if (!match) continue;
    const [, proto, rest] = match;
    const fields = rest!.trim().split(/\s+/);
    const names = headers.get(proto!);
    if (!names) {
      headers.set(proto!, fields);
      continue;
    }
    headers.delete(proto!);
    if (!fields.every((field) => /^-?\d+$/.test(field)) || fields.length !== names.length) continue;
    result[proto!] = Object.fromEntries(names.map((name, i) => [name, Number(fields[i])]));
  }
  return result;
}

export interface InterfaceTotals {
  name: string;
  rx_bytes: number;
  tx_bytes: number;
  rx_errors: number;
  tx_errors: number;
  rx_dropped: number;
  tx_dropped: number;
}

export type EventMaterial =
  | {
      available: true;
      source: string;
      window_s: number;
      store_events: number;
      /** How complete the window's events are (lost lines, probe gaps, ss polling). */
      completeness: Completeness;
      summary: ConnectionSummary;
      patterns: ConnectionPatterns;
      /** The focus's own recent events, newest first (empty without a focus). */
      focus_events: EventView[];
    }
  | { available: false; reason: string };

export interface PromptMaterial {
  hostname: string;
  kernel: string;
  taken_at: string;
  /** Listening sockets only. */
  listeners: Snapshot;
  /** Every TCP/UDP/raw socket. */
  sockets: Snapshot;
  graph: IpcGraph;
  events: EventMaterial;
  snmp: NetSnmp | null;
  interfaces: InterfaceTotals[] | null;
  /** The focus's processes and sockets (from snapshots filtered by its pid, port or command). */
  focus: { focus: Focus; processes: ProcessEntry[] } | null;
}

// ---------------------------------------------------------------------------------------------
// Sections

export interface Section {
  name: string;
  title: string;
  /** Most important first: the budget cuts from the end. */
  lines: string[];
  /** Higher survives longer. */
  priority: number;
  /** Lines kept before the whole section is dropped instead. */
  minLines: number;
}

/** The local IP of an "ip:port" or "[v6]:port" address. */
export function addressIp(address: string): string {
  const v6 = /^\[(.*)\]:[^:]*$/.exec(address);
  if (v6) return v6[1]!.replace(/%.*$/, "");
  const colon = address.lastIndexOf(":");
  return (colon < 0 ? address : address.slice(0, colon)).replace(/%.*$/, "");
}

/** Reachable from other hosts: bound to a wildcard or a non-loopback address. */
export function isExposed(localAddress: string): boolean {
  const ip = unmapV4(addressIp(localAddress));
  return !isLoopbackIp(ip);
}

function who(entry: Pick<ProcessEntry, "pid" | "name">): string {
  return `${entry.name}(${entry.pid})`;
}

function owner(entry: ProcessEntry): string {
  const place = entry.container ? ` container ${entry.container.runtime}:${entry.container.id.slice(0, 12)}` : entry.unit ? ` unit ${entry.unit}` : "";
  return `${who(entry)} user ${entry.user}${place}`;
}

function protocolNote(connection: Connection): string {
  return connection.identified_application_protocol === "unknown" ? "" : ` [${connection.identified_application_protocol}]`;
}

/** One line per listening address (processes sharing it after fork on the same line); exposed ones first. */
export function listenerLines(snapshot: Snapshot): string[] {
  const groups = new Map<string, { connection: Connection; owners: ProcessEntry[] }>();
  for (const entry of snapshot.process_connections) {
    for (const connection of entry.connections) {
      if (connection.direction !== "listen") continue;
      const key = `${connection.transport_protocol}|${connection.local_address}|${connection.netns}`;
      const group = groups.get(key) ?? { connection, owners: [] };
      if (!group.owners.some((o) => o.pid === entry.pid)) group.owners.push(entry);
      groups.set(key, group);
    }
  }
  const rows = [...groups.values()].map(({ connection, owners }) => {
    const exposed = isExposed(connection.local_address);
    const root = owners.some((o) => o.uid === 0);
    const shown = owners.slice(0, 3).map(owner).join("; ") + (owners.length > 3 ? `; +${owners.length - 3} more` : "");
    const marks = [exposed ? "EXPOSED (non-loopback)" : "loopback only", ...(root && exposed ? ["ROOT ON NETWORK"] : [])].join(", ");
    return {
      exposed,
      port: connection.local_port ?? 0,
      line: `- ${connection.transport_protocol} ${connection.local_address}${protocolNote(connection)} ${marks}: ${shown}`,
    };
  });
  rows.sort((a, b) => Number(b.exposed) - Number(a.exposed) || a.port - b.port);
  return rows.map((row) => row.line);
}

/** Established connections: state totals, then outbound destinations and inbound ports, most connections first. */
export function establishedLines(snapshot: Snapshot): string[] {
  const states = Object.entries(snapshot.totals.by_state).sort((a, b) => b[1] - a[1]).map(([state, n]) => `${state} ${n}`);
  const lines = [`Socket states on the host: ${states.join(", ") || "none"} (${snapshot.totals.sockets} sockets, ${snapshot.totals.processes} processes with sockets).`];
  const outbound = new Map<string, { n: number; protocol: string; who: Set<string> }>();
  const inbound = new Map<string, { n: number; protocol: string; peers: Set<string>; who: Set<string> }>();
  let loopback = 0;
  for (const entry of snapshot.process_connections) {
    for (const connection of entry.connections) {
      if (connection.status !== "ESTAB") continue;
      if (connection.loopback) {
        loopback++;
        continue;
      }
      const protocol = protocolNote(connection);
      if (connection.direction === "inbound") {
        const key = `${connection.transport_protocol} ${connection.local_address}`;
        const row = inbound.get(key) ?? { n: 0, protocol, peers: new Set(), who: new Set() };
        row.n++;
        if (connection.remote_ip) row.peers.add(connection.remote_ip);
        row.who.add(who(entry));
        inbound.set(key, row);
      } else if (connection.direction === "outbound") {
        const key = `${connection.transport_protocol} ${connection.remote_address}`;
        const row = outbound.get(key) ?? { n: 0, protocol, who: new Set() };
        row.n++;
        row.who.add(who(entry));
        outbound.set(key, row);
      }
    }
  }
  const names = (set: Set<string>) => [...set].slice(0, 3).join(", ") + (set.size > 3 ? ` +${set.size - 3}` : "");
  lines.push(`Established: ${loopback} loopback (see the IPC graph), ${[...inbound.values()].reduce((s, r) => s + r.n, 0)} inbound, ${[...outbound.values()].reduce((s, r) => s + r.n, 0)} outbound.`);
  const rows: { n: number; line: string }[] = [];
  for (const [key, row] of inbound) rows.push({ n: row.n, line: `- inbound to ${key}${row.protocol} x${row.n} from ${row.peers.size} remote IPs, served by ${names(row.who)}` });
  for (const [key, row] of outbound) rows.push({ n: row.n, line: `- outbound to ${key}${row.protocol || " [unknown service port]"} x${row.n} from ${names(row.who)}` });
  rows.sort((a, b) => b.n - a.n);
  return [...lines, ...rows.map((row) => row.line)];
}

/** Processes by socket count, with their states. */
export function busiestLines(snapshot: Snapshot): string[] {
  return [...snapshot.process_connections]
    .sort((a, b) => b.connections_total - a.connections_total || a.pid - b.pid)
    .map((entry) => {
      const states: Record<string, number> = {};
      for (const c of entry.connections) states[c.status] = (states[c.status] ?? 0) + 1;
      const mix = Object.entries(states).sort((a, b) => b[1] - a[1]).map(([s, n]) => `${s} ${n}`).join(", ");
      return `- ${owner(entry)}: ${entry.connections_total} sockets (${mix}); cmd: ${entry.command_line.slice(0, 120)}`;
    });
}

export function graphLines(graph: IpcGraph): string[] {
  const nodes = new Map(graph.nodes.map((node) => [node.id, node]));
  const name = (id: string) => {
    const node = nodes.get(id);
    return node ? `${node.name}(${node.pid})` : id;
  };
  const lines = [`${graph.totals.nodes} processes, ${graph.totals.edges} edges, ${graph.totals.connections} local connections, ${graph.totals.unresolved} with an unknown peer.`];
  const edges = [...graph.edges].sort((a, b) => b.count - a.count);
  for (const edge of edges) {
    const protocol = edge.protocol === "unknown" ? "" : ` [${edge.protocol}]`;
    lines.push(`- ${name(edge.from)} -> ${name(edge.to)} ${edge.transport} ${edge.endpoint}${protocol} x${edge.count}`);
  }
  return lines;
}

/** Whether the window's events are all there, in the answer's own field names, and the note when not. */
export function completenessLine(completeness: Completeness): string {
  const fields = `lost_events ${completeness.lost_events.toLocaleString("en-US")}, complete ${completeness.complete}`;
  return completeness.complete ? `Completeness: ${fields}.` : `Completeness: ${fields}: ${completeness.note ?? "some events are missing."}`;
}

export function eventLines(events: EventMaterial): string[] {
  if (!events.available) return [`No event history: ${events.reason}.`];
  const { summary, patterns } = events;
  const reasons = Object.entries(summary.failed.by_reason).map(([r, n]) => `${r} ${n}`).join(", ");
  const lines = [
    `Source ${events.source}, last ${events.window_s} s: ${summary.events} events (the store holds ${events.store_events}).` +
      (events.source === "ss-poll" ? " ss polling samples: short connections are missed, no latency or bytes." : ""),
    completenessLine(events.completeness),
    `TCP connects: ${summary.established} established, ${summary.failed.total} failed${reasons ? ` (${reasons})` : ""}; accepted ${summary.accepted}; UDP/Unix connect() ${summary.udp_unix_connects.total} (${summary.udp_unix_connects.failed} failed).`,
  ];
  if (summary.connect_latency_us) {
    const l = summary.connect_latency_us;
    lines.push(`Connect latency us: p50 ${l.p50}, p95 ${l.p95}, max ${l.max} (${l.samples} samples).`);
  }
  for (const p of patterns.periodic) {
    lines.push(`- PERIODIC (beaconing?): ${p.comm} -> ${p.remote_ip}:${p.remote_port ?? "-"} x${p.count} every ${p.interval_s_avg} s (jitter ${p.jitter_cv})`);
  }
  for (const f of patterns.failure_rates) lines.push(`- failures: ${f.comm}(${f.pid}) ${f.failed}/${f.attempts} attempts failed`);
  for (const l of patterns.new_listeners) lines.push(`- new listener: ${l.comm}(${l.pid}) on ${l.local_ip ?? "*"}:${l.local_port ?? "-"} at ${l.ts}`);
  for (const d of patterns.top_destinations) lines.push(`- destination ${d.remote_ip}:${d.remote_port ?? "-"}: ${d.count} attempts from ${d.processes} processes`);
  for (const p of patterns.fan_out) lines.push(`- per process: ${p.comm}(${p.pid}) ${p.attempts} attempts to ${p.destinations} destinations`);
  return lines;
}

export function kernelLines(snmp: NetSnmp | null, interfaces: InterfaceTotals[] | null): string[] {
  const lines: string[] = [];
  const tcp = snmp?.Tcp;
  if (tcp) {
    const pct = tcp.OutSegs ? ` (${((100 * (tcp.RetransSegs ?? 0)) / tcp.OutSegs).toFixed(3)}% of OutSegs ${tcp.OutSegs})` : "";
    lines.push(
      `TCP since boot: ActiveOpens ${tcp.ActiveOpens}, PassiveOpens ${tcp.PassiveOpens}, AttemptFails ${tcp.AttemptFails}, EstabResets ${tcp.EstabResets}, ` +
        `CurrEstab ${tcp.CurrEstab}, RetransSegs ${tcp.RetransSegs}${pct}, InErrs ${tcp.InErrs}, OutRsts ${tcp.OutRsts}.`,
    );
  }
  const udp = snmp?.Udp;
  if (udp) lines.push(`UDP since boot: InDatagrams ${udp.InDatagrams}, NoPorts ${udp.NoPorts}, InErrors ${udp.InErrors}, RcvbufErrors ${udp.RcvbufErrors}, SndbufErrors ${udp.SndbufErrors}.`);
  for (const i of interfaces ?? []) {
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
    lines.push(`- ${i.name}: rx ${mb(i.rx_bytes)} MB, tx ${mb(i.tx_bytes)} MB, errors rx ${i.rx_errors}/tx ${i.tx_errors}, dropped rx ${i.rx_dropped}/tx ${i.tx_dropped}`);
  }
  return lines.length > 0 ? lines : ["Not readable here (/proc/net/snmp, /proc/net/dev)."];
}

export function focusLines(material: NonNullable<PromptMaterial["focus"]>, events: EventMaterial, graph: IpcGraph): string[] {
  const { focus, processes } = material;
  const lines: string[] = [];
  if (processes.length === 0) lines.push(`No process or socket on this host matches "${focus.label}" right now.`);
  for (const entry of processes) {
    lines.push(`- ${owner(entry)} ppid ${entry.ppid ?? "?"}; cmd: ${entry.command_line.slice(0, 200)}`);
    for (const c of entry.connections) {
      lines.push(`  - ${c.transport_protocol} ${c.local_address} -> ${c.remote_address} ${c.status} ${c.direction}${protocolNote(c)} recv_q ${c.recv_q} send_q ${c.send_q}`);
    }
  }
  const pids = new Set(processes.map((p) => `p${p.pid}`));
  const nodes = new Map(graph.nodes.map((node) => [node.id, `${node.name}(${node.pid})`]));
  for (const edge of graph.edges) {
    if (pids.has(edge.from) || pids.has(edge.to) || (focus.port !== undefined && edge.endpoint === String(focus.port))) {
      lines.push(`- local edge: ${nodes.get(edge.from) ?? edge.from} -> ${nodes.get(edge.to) ?? edge.to} ${edge.transport} ${edge.endpoint} x${edge.count}`);
    }
  }
  if (events.available) {
    if (events.focus_events.length === 0) lines.push(`No recorded events for the focus in the last ${events.window_s} s.`);
    for (const e of events.focus_events) {
      const dest = e.destination_ip ? ` -> ${e.destination_ip}:${e.destination_port ?? "-"}` : e.path ? ` ${e.path}` : "";
      const local = e.local_port !== undefined ? ` local :${e.local_port}` : "";
      lines.push(`- event ${e.wall_time} ${e.type} ${e.command}(${e.pid})${local}${dest}${e.reason ? ` ${e.reason}` : ""}${e.latency_us !== undefined ? ` ${e.latency_us} us` : ""}`);
    }
  }
  return lines;
}

/** Sections by style: what each style needs most survives the budget longest. */
const PRIORITIES: Record<PromptStyle, Record<string, number>> = {
  analysis: { focus: 100, listeners: 90, established: 80, ipc_graph: 70, events: 60, busiest: 50, kernel: 40 },
  security_review: { focus: 100, listeners: 95, events: 90, established: 80, busiest: 50, ipc_graph: 45, kernel: 40 },
  connection_troubleshooting: { focus: 100, events: 90, listeners: 80, kernel: 70, established: 60, ipc_graph: 50, busiest: 40 },
};

export function buildSections(material: PromptMaterial, style: PromptStyle): Section[] {
  const p = PRIORITIES[style];
  const sections: Section[] = [];
  const add = (name: string, title: string, lines: string[], minLines = 3) => sections.push({ name, title, lines, priority: p[name]!, minLines });
  if (material.focus) add("focus", `Focus: ${material.focus.focus.label}`, focusLines(material.focus, material.events, material.graph), 5);
  add("listeners", `Listening sockets (${material.listeners.matched.sockets})`, listenerLines(material.listeners));
  add("established", "Connections", establishedLines(material.sockets));
  add("busiest", "Busiest processes", busiestLines(material.sockets));
  add("ipc_graph", "IPC graph (local client -> server)", graphLines(material.graph));
  add("events", "Connection events", eventLines(material.events), 2);
  add("kernel", "Kernel network counters", kernelLines(material.snmp, material.interfaces), 1);
  return sections;
}

const TASKS: Record<PromptStyle, string> = {
  analysis:
    "Explain what this host does on the network: its services (listening sockets) and who uses them, the main flows between " +
    "local processes (IPC graph) and to remote hosts, and anything unusual (connection failures, retransmits, periodic " +
    "connections, processes with many sockets).",
  security_review:
    "Review this host's network exposure and activity for security problems: (1) unexpected listeners, above all on " +
    "non-loopback addresses (0.0.0.0, ::, public IPs) - which are plausible for this host's role and which are not; " +
    "(2) processes running as root that are reachable from the network; (3) outbound connections to unusual ports or " +
    "unknown hosts; (4) beaconing: connections repeated on a regular schedule; (5) new listeners and failure bursts " +
    "(scanning). Rate each finding high, medium or low and quote the line it rests on.",
  connection_troubleshooting:
    "Troubleshoot the connections of the focus below: is the service listening, on which address and namespace; who " +
    "connects to it and from where; connection failures and their reasons (refused: nothing listens; timeout: filtered " +
    "or unreachable); queue backlogs (recv_q/send_q); retransmits and resets in the kernel counters. List the likely " +
    "causes, most likely first.",
};

const ANSWER: Record<PromptStyle, string> = {
  analysis: "Answer with: a summary of the host's role, the services and their clients, notable findings, and what to check next.",
  security_review: "Answer with: findings ordered by severity (evidence, why it matters, what to do), then what looked normal.",
  connection_troubleshooting: "Answer with: the diagnosis, the evidence for and against each cause, and the next check for each.",
};

export function promptHeader(material: PromptMaterial, style: PromptStyle): string {
  const notes: string[] = [];
  if (material.sockets.truncated) notes.push(`the socket list was cut (${material.sockets.returned.sockets} of ${material.sockets.matched.sockets} sockets)`);
  if (material.graph.truncated) notes.push("the IPC graph was cut");
  const focus =
    style === "connection_troubleshooting" && !material.focus
      ? " No process or port was given: ask which connection fails, or look for failures in the events below."
      : "";
  return [
    `# Task (${style})`,
    `You are given a snapshot of the Linux host ${material.hostname} (kernel ${material.kernel}) taken by ipcscope at ${material.taken_at}.`,
    `${TASKS[style]}${focus}`,
    `Use only the data below; say when something needed is missing.${notes.length > 0 ? ` Note: ${notes.join("; ")}.` : ""}`,
    "Marks: EXPOSED = bound to a non-loopback address; ROOT ON NETWORK = an exposed listener held by uid 0; PERIODIC = regular intervals.",
    "To dig further, the ipcscope tools get_process_connection_snapshot, get_connection_summary, list_connections, analyze_patterns, get_tcp_health and wait_for_connection take pid, command and port filters.",
    ANSWER[style],
    "",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Budget

export interface SectionReport {
  name: string;
  status: "complete" | "cut" | "dropped";
  lines_kept: number;
  lines_total: number;
}

export interface FittedPrompt {
  prompt: string;
  estimated_tokens: number;
  budget_tokens: number;
  sections: SectionReport[];
  truncated: boolean;
}

function renderSection(section: Section, kept: number): string {
  const cut = section.lines.length - kept;
  const more = cut > 0 ? `(${cut} more lines cut to fit the token budget)\n` : "";
  return `## ${section.title}\n${section.lines.slice(0, kept).join("\n")}${kept > 0 ? "\n" : ""}${more}\n`;
}

/** The closing line: how big the prompt is. Its length is bounded by FOOTER_RESERVE. */
function footer(tokens: number, budget: number, report: SectionReport[]): string {
  const cut = report.filter((s) => s.status !== "complete").map((s) => s.name);
  return `(~${tokens} tokens, estimated as characters/4, budget ${budget}${cut.length > 0 ? `; cut to fit: ${cut.join(", ")}` : ""})\n`;
}
const FOOTER_RESERVE = 60;

/**
 * Puts the header and the sections (in their order) into at most `budget` tokens. Over budget, the
 * lowest-priority section loses lines from its end down to its minLines, and is dropped if that is
 * not enough, before the next one is touched; the highest-priority section is only shortened. A
 * header alone over budget is cut mid-text.
 */
export function fitToBudget(header: string, sections: readonly Section[], budget: number): FittedPrompt {
  const limitChars = (budget - FOOTER_RESERVE) * 4;
  const kept = sections.map((s) => s.lines.length);
  const dropped = sections.map(() => false);
  const size = () => header.length + sections.reduce((sum, s, i) => sum + (dropped[i] ? 0 : renderSection(s, kept[i]!).length), 0);
  const byPriority = sections.map((_, i) => i).sort((a, b) => sections[a]!.priority - sections[b]!.priority);

  let total = size();
  for (const [rank, i] of byPriority.entries()) {
    if (total <= limitChars) break;
    const section = sections[i]!;
    // The most needed section is never dropped: it keeps what fits, down to no line.
    const last = rank === byPriority.length - 1;
    const floor = last ? 0 : Math.min(section.minLines, section.lines.length);
    while (total > limitChars && kept[i]! > floor) {
      // Lines are short: step by the overflow's worth of lines, then re-measure.
      const over = total - limitChars;
      let drop = 0;
      let freed = 0;
      while (freed < over && kept[i]! - drop > floor) freed += section.lines[kept[i]! - 1 - drop++]!.length + 1;
      kept[i] = kept[i]! - Math.max(1, drop);
      total = size();
    }
    if (total > limitChars && !last) {
      dropped[i] = true;
      total = size();
    }
  }

  let body = header + sections.map((s, i) => (dropped[i] ? "" : renderSection(s, kept[i]!))).join("");
  let headerCut = false;
  if (body.length > limitChars) {
    body = `${body.slice(0, Math.max(0, limitChars - 40))}\n(cut to fit the token budget)\n`;
    headerCut = true;
  }
  const report: SectionReport[] = sections.map((s, i) => ({
    name: s.name,
    status: dropped[i] ? "dropped" : kept[i]! < s.lines.length ? "cut" : "complete",
    lines_kept: dropped[i] ? 0 : kept[i]!,
    lines_total: s.lines.length,
  }));
  // The estimate printed in the footer covers the footer too: two passes settle the digit count.
  let tokens = estimateTokens(body + footer(0, budget, report));
  tokens = estimateTokens(body + footer(tokens, budget, report));
  const prompt = body + footer(tokens, budget, report);
  return {
    prompt,
    estimated_tokens: estimateTokens(prompt),
    budget_tokens: budget,
    sections: report,
    truncated: headerCut || report.some((s) => s.status !== "complete"),
  };
}

/** The whole prompt for a style, fitted to the budget. */
export function buildPrompt(material: PromptMaterial, style: PromptStyle, budget: number): FittedPrompt {
  return fitToBudget(promptHeader(material, style), buildSections(material, style), budget);
}
