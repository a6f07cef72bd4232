// Tool results for people: a sentence that answers the question, then tables. Pure. A tool without
// its own formatter (a newer server's, say) still prints sensibly through formatGeneric(), and so
// does a result whose shape a formatter did not expect.
import { formatDoctorReport } from "../commands/doctor.ts";
import { formatEventLine } from "../commands/events.ts";
import { formatGraph } from "../commands/graph.ts";
import { formatSnapshot } from "../commands/snapshot.ts";
import { table } from "../commands/_shared.ts";
import { formatEndpoint } from "../snapshot/cidr.ts";

// Results come from a server that may be another version: read them loosely.
type R = Record<string, any>;
export type Formatter = (result: R, args: R) => string;

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** 0.5 → "0.5 seconds", 60 → "60 seconds", 600 → "10 minutes", 3600 → "hour", 7200 → "2 hours". */
export function span(seconds: number): string {
  if (!Number.isFinite(seconds)) return "the window";
  if (seconds < 120 || seconds % 60 !== 0) return plural(seconds < 10 ? Math.round(seconds * 10) / 10 : Math.round(seconds), "second");
  if (seconds === 3600) return "hour";
  if (seconds % 3600 === 0) return `${seconds / 3600} hours`;
  return `${seconds / 60} minutes`;
}

function windowSeconds(window: R | undefined): number {
  return window ? (Date.parse(window.until) - Date.parse(window.since)) / 1000 : Number.NaN;
}

const endpoint = (ip: string | null | undefined, port: number | null | undefined) => (ip ? formatEndpoint(ip, port ?? null) : "?");
const percent = (rate: number) => `${Math.round(rate * 100)}%`;
const orNone = (rows: readonly unknown[], text: string) => (rows.length === 0 ? "none" : text);

/** A titled table, or "Title: none". */
function section(title: string, header: string[], rows: string[][]): string {
  return rows.length === 0 ? `${title}: none` : `${title}:\n${table(header, rows)}`;
}

/** Who a per-process question was about, from its arguments. */
function subject(args: R, result: R): string {
  if (args.pid !== undefined) {
    const comm = (result.processes as R[] | undefined)?.find((process) => process.pid === args.pid)?.comm;
    return `Process ${args.pid}${comm ? ` (${comm})` : ""}`;
  }
  const command = args.command ?? args.process;
  return command !== undefined ? `Process '${command}'` : "All processes";
}

/** Windowed eBPF tools (drops, TCP health, syscall errors): where it came from and what went wrong. */
function probeFooter(result: R): string[] {
  const lines = [`source: ${result.source}${result.started_at ? `, started ${result.started_at}` : ""}`];
  if (result.lost_events > 0) lines.push(`warning: ${result.lost_events} event(s) lost`);
  if (result.probe_restarts > 0) lines.push(`warning: the probe restarted ${plural(result.probe_restarts, "time")}`);
  for (const gap of (result.gaps as R[] | undefined) ?? []) lines.push(`gap ${gap.from} → ${gap.to}: ${gap.reason}`);
  if (result.error) lines.push(`error: ${result.error}`);
  if (result.truncated) lines.push("truncated: narrow with filters or raise --limit");
  return lines;
}

/** The first answer of a tool called with background=true: the job's id and how to follow it. */
function jobStarted(result: R, args: R): string | null {
  if (args.background !== true || !result.job_id) return null;
  return [
    `Started background job ${result.job_id}${result.source ? ` (source ${result.source})` : ""}.`,
    `Results so far: ipcscope call get_capture_results --job-id ${result.job_id}`,
    `Stop it:        ipcscope call stop_capture --job-id ${result.job_id}`,
  ].join("\n");
}

const formatEvents: Formatter = (result, args) => {
  if (result.result !== undefined && result.kind && result.kind !== "get_live_network_events") {
    // get_capture_results / stop_capture of another tool's job: that tool's answer, under `result`.
    return `job ${result.job_id} (${result.kind}, ${result.done ? "done" : "still running"}):\n${formatResult(result.kind, result.result, args)}`;
  }
  const started = jobStarted(result, args);
  if (started) return started;
  const events = (result.events as R[]).map((event) => formatEventLine(event as never));
  const lines = events.length > 0 ? [`${"TIME".padEnd(12)}  ${"TYPE".padEnd(14)} ${"PROCESS[PID]".padEnd(24)} DETAILS`, ...events, ""] : [];
  lines.push(
    `${result.returned} of ${plural(result.matched, "matching event")} over ${span(result.duration_s)} from ${result.source}` +
      (result.job_id ? ` (job ${result.job_id}, ${result.done ? "done" : "still running"})` : ""),
  );
  if (result.truncated && result.hint) lines.push(result.hint);
  if (result.limits) lines.push(`limits: ${result.limits}`);
  return lines.join("\n");
};

const FORMATTERS: Record<string, Formatter> = {
  get_system_info: (result) => formatDoctorReport(result as never),
  get_process_connection_snapshot: (result) => formatSnapshot(result as never),
  get_ipc_graph: (result, args) => (args.mermaid && result.mermaid ? result.mermaid : formatGraph(result as never)),
  get_live_network_events: formatEvents,
  get_capture_results: formatEvents,
  stop_capture: formatEvents,

  wait_for_connection: (result) =>
    result.found
      ? `Found after ${result.waited_s} s (${result.source}):\n${formatEventLine(result.event)}`
      : `No matching connection within ${result.waited_s} s (${result.source}).`,

  list_connections: (result, args) => {
    const lines: string[] = [];
    if (result.processes) {
      // group_by_pid: each process, then its events.
      for (const group of result.processes as R[]) {
        lines.push(`${group.command}[${group.pid}]: ${plural(group.events, "event")}`, ...(group.connections as R[]).map((event) => `  ${formatEventLine(event as never)}`), "");
      }
    } else {
      const events = ((result.events as R[] | undefined) ?? []).map((event) => formatEventLine(event as never));
      if (events.length > 0) lines.push(`${"TIME".padEnd(12)}  ${"TYPE".padEnd(14)} ${"PROCESS[PID]".padEnd(24)} DETAILS`, ...events, "");
    }
    lines.push(
      `${result.returned} of ${plural(result.matched, "recorded event")} over the last ${span(windowSeconds(result.window))}, newest first (source ${result.source})` +
        (result.history ? `; the history holds ${result.history.events} events${result.history.oldest ? ` since ${result.history.oldest}` : ""}` : ""),
    );
    if (result.truncated && result.hint) lines.push(result.hint);
    return lines.join("\n");
  },

  get_connection_summary: (result, args) => {
    const failed = result.failed as R;
    const reasons = Object.entries((failed.by_reason as Record<string, number>) ?? {}).map(([reason, count]) => `${reason} ${count}`);
    const lines = [
      `${subject(args, result)} made ${plural(result.attempts, "outbound connection attempt")} over the last ${span(windowSeconds(result.window))}` +
        (result.attempts > 0 ? `: ${result.established} established, ${failed.total} failed${reasons.length > 0 ? ` (${reasons.join(", ")})` : ""}.` : "."),
    ];
    const udp = result.udp_unix_connects as R;
    if (udp.total > 0) lines.push(`UDP and Unix connect() calls: ${udp.total}, ${udp.failed} failed.`);
    lines.push(`Accepted ${result.accepted}, closed ${result.closed}; ${result.bytes.sent} bytes sent, ${result.bytes.received} received.`);
    const latency = result.connect_latency_us as R | null;
    if (latency) lines.push(`Connect latency: avg ${latency.avg} µs, p50 ${latency.p50} µs, p95 ${latency.p95} µs, max ${latency.max} µs (${plural(latency.samples, "sample")}).`);
    lines.push(
      "",
      section("Top destinations", ["DESTINATION", "ATTEMPTS", "FAILED"], (result.top_destinations as R[]).map((d) => [endpoint(d.remote_ip, d.remote_port), String(d.attempts), String(d.failed)])),
      "",
      section(
        `Processes (${result.processes.length} of ${result.processes_total})`,
        ["PID", "COMMAND", "EVENTS", "PATH"],
        (result.processes as R[]).map((p) => [String(p.pid), p.comm, String(p.events), p.path ?? ""]),
      ),
      "",
      `${plural(result.events, "event")} in the window, source ${result.source}`,
    );
    return lines.join("\n");
  },

  analyze_patterns: (result) => {
    const mix = result.protocol_mix as R;
    return [
      `Connection patterns over the last ${span(windowSeconds(result.window))}: ${plural(result.events, "event")} (source ${result.source}); ` +
        `connections by protocol: TCP ${mix.tcp}, UDP ${mix.udp}, Unix ${mix.unix}.`,
      "",
      section("Top destinations", ["DESTINATION", "CONNECTIONS", "PROCESSES"], (result.top_destinations as R[]).map((d) => [endpoint(d.remote_ip, d.remote_port), String(d.count), String(d.processes)])),
      "",
      section("Fan-out (distinct destinations per process)", ["PID", "COMMAND", "DESTINATIONS", "ATTEMPTS"], (result.fan_out as R[]).map((f) => [String(f.pid), f.comm, String(f.destinations), String(f.attempts)])),
      "",
      section("Failure rates", ["PID", "COMMAND", "ATTEMPTS", "FAILED", "RATE"], (result.failure_rates as R[]).map((f) => [String(f.pid), f.comm, String(f.attempts), String(f.failed), percent(f.rate)])),
      "",
      section(
        "Periodic connections (possible beaconing)",
        ["COMMAND", "DESTINATION", "COUNT", "EVERY", "JITTER"],
        (result.periodic as R[]).map((p) => [p.comm, endpoint(p.remote_ip, p.remote_port), String(p.count), `${p.interval_s_avg} s`, String(p.jitter_cv)]),
      ),
      "",
      section(
        `New listeners (${result.new_listeners_total})`,
        ["PID", "COMMAND", "ADDRESS", "SINCE"],
        (result.new_listeners as R[]).map((l) => [String(l.pid), l.comm, endpoint(l.local_ip, l.local_port), String(l.ts)]),
      ),
    ].join("\n");
  },

  get_packet_drop_summary: (result, args) => {
    const started = jobStarted(result, args);
    if (started) return started;
    return [
      `${plural(result.total_drops, "packet")} dropped by the kernel over ${span(result.duration_s)}${result.port_filter != null ? ` (port ${result.port_filter})` : ""}.`,
      ...(result.kernel_has_reasons === false ? ["This kernel gives no drop reasons (before 5.17)."] : []),
      "",
      section("By reason", ["REASON", "CODE", "DROPS"], (result.by_reason as R[]).map((r) => [r.reason, String(r.code), String(r.drops)])),
      ...((result.rows as R[]).length > 0
        ? [
            "",
            table(
              ["REASON", "PROTO", "INTERFACE", "DPORT", "PID", "COMMAND", "DROPS", "PER_S"],
              (result.rows as R[]).map((r) => [r.reason, r.protocol ?? "", r.interface ?? "", String(r.dport ?? ""), String(r.pid ?? ""), r.command ?? "", String(r.drops), String(r.per_second)]),
            ),
          ]
        : []),
      "",
      ...probeFooter(result),
      ...(result.note ? [result.note] : []),
    ].join("\n");
  },

  list_packet_drops: (result, args) => {
    const started = jobStarted(result, args);
    if (started) return started;
    const drops = result.drops as R[];
    return [
      ...(drops.length > 0
        ? [
            table(
              ["TIME", "REASON", "PROTO", "INTERFACE", "SOURCE", "DESTINATION", "PID", "COMMAND"],
              drops.map((d) => [String(d.time).slice(11, 23), d.reason, d.protocol ?? "", d.interface ?? "", d.source ?? "", d.destination ?? "", String(d.pid ?? ""), d.command ?? ""]),
            ),
            "",
          ]
        : []),
      `${plural(result.total_drops, "packet")} dropped over ${span(result.duration_s)}; ${result.sampled} sampled, ${result.returned} shown.`,
      ...probeFooter(result),
    ].join("\n");
  },

  get_tcp_health: (result, args) => {
    const started = jobStarted(result, args);
    if (started) return started;
    const totals = result.totals as R;
    return [
      `Over ${span(result.duration_s)}: ${plural(totals.retransmits, "TCP retransmit")} (${totals.retransmits_per_second}/s), ` +
        `${totals.resets_sent} resets sent and ${totals.resets_received} received.`,
      "",
      section(
        "Connections",
        ["LOCAL", "REMOTE", "STATE", "PID", "COMMAND", "RETRANS", "RST_SENT", "RST_RECV"],
        (result.connections as R[]).map((c) => [c.local, c.remote, c.state ?? "", String(c.pid ?? ""), c.command ?? "", String(c.retransmits), String(c.resets_sent), String(c.resets_received)]),
      ),
      ...((result.by_process as R[]).length > 0
        ? [
            "",
            section(
              "By process",
              ["PID", "COMMAND", "CONNECTIONS", "RETRANS", "RST_SENT", "RST_RECV"],
              (result.by_process as R[]).map((p) => [String(p.pid ?? ""), p.command ?? "", String(p.connections), String(p.retransmits), String(p.resets_sent), String(p.resets_received)]),
            ),
          ]
        : []),
      "",
      ...probeFooter(result),
    ].join("\n");
  },

  trace_syscall_errors: (result, args) => {
    const started = jobStarted(result, args);
    if (started) return started;
    const rows = result.rows as R[];
    const top = (items: R[], name: (item: R) => string) => items.slice(0, 8).map((item) => `${name(item)} ${item.count}`).join(", ");
    return [
      `${plural(result.total_errors, "failed system call")} over ${span(result.duration_s)}${result.unattributed > 0 ? ` (${result.unattributed} unattributed)` : ""}.`,
      "",
      ...(rows.length > 0
        ? [
            table(
              ["PID", "COMMAND", "SYSCALL", "ERRNO", "COUNT", "PER_S"],
              rows.map((r) => [String(r.pid), r.command, r.syscall, r.errno_name ?? String(r.errno), String(r.count), String(r.per_second)]),
            ),
            "",
            `by syscall: ${top(result.by_syscall, (s) => s.syscall)}`,
            `by errno: ${top(result.by_errno, (e) => e.errno_name ?? String(e.errno))}`,
            "",
          ]
        : []),
      ...probeFooter(result),
    ].join("\n");
  },

  get_interface_traffic: (result) => {
    const rate = (value: number) => (value >= 1e6 ? `${(value / 1e6).toFixed(1)}M` : value >= 1e3 ? `${(value / 1e3).toFixed(1)}k` : String(Math.round(value * 10) / 10));
    const totals = result.totals as R;
    return [
      table(
        ["INTERFACE", "RX_PKT/S", "TX_PKT/S", "RX_B/S", "TX_B/S", "ERR/S", "DROP/S"],
        (result.interfaces as R[]).map((i) => [
          `${i.interface}${i.counter_reset ? " (counter reset)" : ""}`,
          rate(i.rx_packets_per_s),
          rate(i.tx_packets_per_s),
          rate(i.rx_bytes_per_s),
          rate(i.tx_bytes_per_s),
          rate(i.rx_errors_per_s + i.tx_errors_per_s),
          rate(i.rx_dropped_per_s + i.tx_dropped_per_s),
        ]),
      ),
      "",
      `${plural(totals.interfaces, "interface")} over ${result.window_s} s: ${rate(totals.rx_bytes_per_s)} B/s in, ${rate(totals.tx_bytes_per_s)} B/s out; ` +
        `${totals.rx_errors + totals.tx_errors} errors and ${totals.rx_dropped + totals.tx_dropped} drops in the window.`,
      ...((result.vanished as string[] | undefined)?.length ? [`vanished during the window: ${result.vanished.join(", ")}`] : []),
      ...(result.cancelled ? ["cancelled before the end of the window"] : []),
    ].join("\n");
  },

  list_bpf_programs: (result) => {
    const programs = result.programs as R[];
    const lines = [
      orNone(
        programs,
        table(
          ["ID", "TYPE", "NAME", "LOADED", "PIDS", "MAPS", "AVG_NS"],
          programs.map((p) => [
            String(p.id),
            p.type,
            p.name ?? "",
            String(p.loaded_at ?? "").slice(0, 19),
            ((p.pids as R[] | undefined) ?? []).map((owner) => `${owner.comm}[${owner.pid}]`).join(","),
            ((p.map_ids as number[] | undefined) ?? []).join(","),
            p.avg_run_ns == null ? "" : String(p.avg_run_ns),
          ]),
        ),
      ),
    ];
    const maps = result.maps as R[] | undefined;
    if (maps && maps.length > 0) {
      lines.push("", "Maps:", table(["ID", "TYPE", "NAME", "KEY", "VALUE", "MAX_ENTRIES"], maps.map((m) => [String(m.id), m.type, m.name ?? "", String(m.key_size ?? ""), String(m.value_size ?? ""), String(m.max_entries ?? "")])));
    }
    const totals = result.totals as R;
    const byType = Object.entries((totals.by_type as Record<string, number>) ?? {}).map(([type, count]) => `${type} ${count}`).join(", ");
    lines.push("", `${totals.returned} of ${plural(totals.matched, "matching program")} shown (${totals.programs} loaded${byType ? `: ${byType}` : ""})`);
    if (result.hint) lines.push(result.hint);
    return lines.join("\n");
  },

  dump_bpf_map: (result) => {
    const map = result.map as R;
    const entries = (result.entries as R[]).map((entry) => {
      const value = entry.error ?? entry.value ?? entry.values;
      return `${JSON.stringify(entry.key)} → ${JSON.stringify(value)}`;
    });
    return [
      `map ${map.id}${map.name ? ` ${map.name}` : ""} (${map.type}, key ${map.key_size ?? "?"} B, value ${map.value_size ?? "?"} B, max ${map.max_entries ?? "?"} entries): ` +
        `${result.returned} of ${plural(result.total_entries, "entry", "entries")} shown, as ${result.format}`,
      ...entries,
      ...(result.truncated && result.hint ? [result.hint] : []),
    ].join("\n");
  },

  send_signal_to_pid: (result) => {
    const process = result.process as R;
    const lines = [
      `${result.step === "preview" ? "Preview (nothing sent)" : "Sent"}: ${result.signal.name} (${result.signal.effect}) to pid ${result.pid}`,
      `  ${process.name} [${process.pid}], parent ${process.ppid}, user ${process.user}, state ${process.state_name ?? process.state}` +
        `${process.unit ? `, unit ${process.unit}` : ""}${process.start_time ? `, started ${process.start_time}` : ""}`,
      `  ${process.command_line}`,
    ];
    if (result.sockets) lines.push(`  ${plural(result.sockets_total, "socket")}, ${plural(result.children_total, "child", "children")}`);
    if (result.outcome) lines.push(`  outcome: ${result.outcome.result}${result.outcome.exited_after_ms != null ? ` after ${result.outcome.exited_after_ms} ms` : ""}`);
    for (const warning of (result.warnings as string[]) ?? []) lines.push(`warning: ${warning}`);
    lines.push(result.next_step);
    if (result.confirm_token) {
      lines.push(`To send it: ipcscope call send_signal_to_pid --pid ${result.pid} --sig-str ${result.signal.name} --confirm-token ${result.confirm_token}`);
    }
    return lines.join("\n");
  },

  generate_ipc_analysis_prompt: (result) => result.prompt,
};

/** A cell: scalars as they are, lists of scalars joined, anything bigger summarised so tables stay tables. */
function scalar(value: unknown): string {
  if (value === null || value === undefined) return "-";
  if (Array.isArray(value)) return value.every((item) => typeof item !== "object" || item === null) ? value.join(",") : plural(value.length, "item");
  if (typeof value === "object") {
    const json = JSON.stringify(value);
    return json.length <= 60 ? json : "{…}";
  }
  return String(value);
}

const isPlainObject = (value: unknown): value is R => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Any result for people: scalars as `key: value`, lists of objects as tables of their simple
 * columns, nested objects one level flattened, deeper values as compact JSON.
 */
export function formatGeneric(result: unknown): string {
  if (!isPlainObject(result)) return typeof result === "string" ? result : JSON.stringify(result, null, 2);
  const lines: string[] = [];
  const blocks: string[] = [];
  for (const [key, value] of Object.entries(result)) {
    if (Array.isArray(value)) {
      if (value.length === 0) lines.push(`${key}: none`);
      else if (value.every(isPlainObject)) {
        const columns = [...new Set(value.flatMap((row) => Object.keys(row)))].filter((column) => value.some((row) => row[column] !== undefined && !isPlainObject(row[column])));
        blocks.push(`${key} (${value.length}):\n${table(columns.map((column) => column.toUpperCase()), value.map((row) => columns.map((column) => scalar(row[column]))))}`);
      } else lines.push(`${key}: ${value.map(scalar).join(", ")}`);
    } else if (isPlainObject(value)) {
      for (const [sub, inner] of Object.entries(value)) lines.push(`${key}.${sub}: ${scalar(inner)}`);
    } else if (typeof value === "string" && value.includes("\n")) {
      blocks.push(`${key}:\n${value}`);
    } else {
      lines.push(`${key}: ${scalar(value)}`);
    }
  }
  return [lines.join("\n"), ...blocks].filter(Boolean).join("\n\n");
}

/**
 * An events answer that is incomplete (lines lost, the probe down, ss polling) as one warning line
 * for people, printed beside the answer (call: stderr; shell: its output); null when complete.
 */
export function completenessWarning(result: unknown): string | null {
  return isPlainObject(result) && result.complete === false && typeof result.note === "string" ? `warning: ${result.note}` : null;
}

/** A tool's structured result for people; falls back to formatGeneric for unknown tools and shapes. */
export function formatResult(tool: string, result: unknown, args: R = {}): string {
  const formatter = FORMATTERS[tool];
  if (formatter && isPlainObject(result)) {
    try {
      return formatter(result, args);
    } catch {
      // A shape this formatter does not know (another server version): the generic view still shows it all.
    }
  }
  return formatGeneric(result);
}

/** Tools with their own formatter (the rest use the generic one). */
export const FORMATTED_TOOLS: readonly string[] = Object.keys(FORMATTERS);
