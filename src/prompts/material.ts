// Gathers what the analysis prompt is made of: one socket collection for the snapshots and the IPC
// graph (so they agree), the event history when the monitor is running (never started for this),
// and the kernel's cheap counters (/proc/net/snmp, /proc/net/dev; no probe).
import { readFileSync } from "node:fs";
import { hostname, release } from "node:os";
import { analyzePatterns, connectionSummary } from "../events/analysis.ts";
import { getMonitor, peekMonitor } from "../events/monitor.ts";
import { queryEvents } from "../events/query.ts";
import { viewOf } from "../events/view.ts";
import { parseProcNetDev } from "../health/traffic.ts";
import { buildSnapshot } from "../snapshot/build.ts";
import { collectHostSockets } from "../snapshot/collect.ts";
import { buildIpcGraph } from "../snapshot/graph.ts";
import type { ProcessEntry } from "../snapshot/model.ts";
import { parseNetSnmp, type EventMaterial, type Focus, type InterfaceTotals, type PromptMaterial } from "./build.ts";

/** The window of event history the prompt summarises. */
export const EVENT_WINDOW_S = 3600;
/** The focus's own events listed one by one, newest first. */
const FOCUS_EVENTS = 20;
/** Sockets read per snapshot: the prompt summarises, and buildSnapshot still cuts at ~60k characters. */
const SNAPSHOT_LIMIT = 2000;

function readOptional(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function events(focus: Focus | null): EventMaterial {
  // Only a monitor that serve (or an events tool) already started: a prompt must not load a probe.
  if (peekMonitor() === null) return { available: false, reason: "the connection monitor is not running (serve --no-monitor, or the CLI): call an events tool to start it" };
  const monitor = getMonitor();
  monitor.sync();
  const now = Date.now();
  const window = { sinceMs: now - EVENT_WINDOW_S * 1000, untilMs: now };
  const focusEvents = [];
  if (focus) {
    // A bare number is a pid or a port: both queries, merged newest first.
    const queries = [
      ...(focus.pid !== undefined ? [{ pid: focus.pid }] : []),
      ...(focus.port !== undefined ? [{ port: focus.port }] : []),
      ...(focus.command !== undefined ? [{ command: focus.command }] : []),
    ];
    const seen = new Set<string>();
    for (const query of queries) {
      for (const event of queryEvents(monitor.store, { ...query, ...window, limit: FOCUS_EVENTS }).events) {
        const key = JSON.stringify(event);
        if (!seen.has(key)) (seen.add(key), focusEvents.push(event));
      }
    }
    focusEvents.sort((a, b) => b.ts_ms - a.ts_ms);
  }
  return {
    available: true,
    source: monitor.source,
    window_s: EVENT_WINDOW_S,
    store_events: monitor.store.stats().events,
    completeness: monitor.completeness(window.sinceMs, window.untilMs),
    summary: connectionSummary(monitor.store, window),
    patterns: analyzePatterns(monitor.store, window),
    focus_events: focusEvents.slice(0, FOCUS_EVENTS).map(viewOf),
  };
}

function interfaces(): InterfaceTotals[] | null {
  const text = readOptional("/proc/net/dev");
  if (text === null) return null;
  return [...parseProcNetDev(text)].map(([name, c]) => ({
    name,
    rx_bytes: Number(c.rx_bytes),
    tx_bytes: Number(c.tx_bytes),
    rx_errors: Number(c.rx_errors),
    tx_errors: Number(c.tx_errors),
    rx_dropped: Number(c.rx_dropped),
    tx_dropped: Number(c.tx_dropped),
  }));
}

export async function collectPromptMaterial(focus: Focus | null): Promise<PromptMaterial> {
  const host = await collectHostSockets({ unix: true });
  let focusMaterial: PromptMaterial["focus"] = null;
  if (focus) {
    // Union of what the pid, the port and the command select, one entry per process.
    const byPid = new Map<number, ProcessEntry>();
    const filters = [
      ...(focus.pid !== undefined ? [{ pid: focus.pid, include_unix: true }] : []),
      ...(focus.port !== undefined ? [{ port: focus.port }] : []),
      ...(focus.command !== undefined ? [{ command: focus.command }] : []),
    ];
    for (const filter of filters) {
      for (const entry of buildSnapshot(host, { ...filter, limit: SNAPSHOT_LIMIT }).process_connections) {
        const known = byPid.get(entry.pid);
        if (!known) byPid.set(entry.pid, { ...entry, connections: [...entry.connections] });
        else for (const c of entry.connections) if (!known.connections.some((k) => k.inode === c.inode && k.local_address === c.local_address && k.remote_address === c.remote_address)) known.connections.push(c);
      }
    }
    focusMaterial = { focus, processes: [...byPid.values()] };
  }
  return {
    hostname: hostname(),
    kernel: release(),
    taken_at: new Date().toISOString(),
    listeners: buildSnapshot(host, { listening: true, limit: SNAPSHOT_LIMIT }),
    sockets: buildSnapshot(host, { limit: SNAPSHOT_LIMIT }),
    graph: buildIpcGraph(host),
    events: events(focus),
    snmp: (() => {
      const text = readOptional("/proc/net/snmp");
      return text === null ? null : parseNetSnmp(text);
    })(),
    interfaces: interfaces(),
    focus: focusMaterial,
  };
}
