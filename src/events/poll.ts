// Connection events without eBPF: take a socket snapshot every few seconds and report what changed.
// It sees only what lives across two polls: a connection opened and closed between them is missed,
// failures are guessed (a SYN-SENT socket that vanished) and latencies are unknown. Every event says
// source "ss-poll" so an answer built on it can say so.
import { directionOf, listeningPorts } from "../snapshot/build.ts";
import { collectHostSockets, type HostSocket, type HostSockets } from "../snapshot/collect.ts";
import { logger } from "../logger.ts";
import { makeEvent, type ConnectionEvent } from "./model.ts";

export const POLL_LIMITS =
  "sampled from ss every few seconds: connections shorter than the interval are missed, failures are guessed " +
  "from SYN-SENT sockets that vanished, connect latency and bytes are unknown";

interface Seen {
  socket: HostSocket;
  firstSeenMs: number;
  pid: number;
  comm: string;
  uid: number | null;
}

/** The fields every poll event of this socket shares. */
function eventBase(entry: Seen, nowMs: number) {
  const { socket } = entry;
  const listen = socket.state === "LISTEN";
  return {
    ts_ms: nowMs,
    source: "ss-poll" as const,
    pid: entry.pid,
    comm: entry.comm,
    uid: entry.uid,
    protocol: "tcp" as const,
    family: socket.local.address.includes(":") ? ("ipv6" as const) : ("ipv4" as const),
    local_ip: socket.local.address,
    local_port: socket.local.port,
    remote_ip: listen ? null : socket.peer.address,
    remote_port: listen ? null : socket.peer.port,
  };
}

/**
 * The events between two polls: pure, so the tests can feed it hand-made snapshots. With no
 * previous poll (the first one) it only learns what exists and reports nothing.
 */
export function diffPolls(previous: Map<string, Seen> | null, host: HostSockets, nowMs: number): { events: ConnectionEvent[]; seen: Map<string, Seen> } {
  const listening = listeningPorts(host.sockets);
  const seen = new Map<string, Seen>();
  const events: ConnectionEvent[] = [];
  for (const socket of host.sockets) {
    if (socket.transport !== "tcp" || !["ESTAB", "SYN-SENT", "LISTEN"].includes(socket.state)) continue;
    const key = `${socket.netns}|${socket.state === "LISTEN" ? "L" : "C"}|${socket.local.address}|${socket.local.port}|${socket.peer.address}|${socket.peer.port}`;
    const before = previous?.get(key);
    const owner = socket.owners.map((o) => host.processes.get(o.pid)).find((info) => info !== undefined);
    const entry: Seen = before
      ? { ...before, socket }
      : { socket, firstSeenMs: nowMs, pid: owner?.pid ?? 0, comm: owner?.name ?? "", uid: owner?.uid ?? socket.uid };
    seen.set(key, entry);
    if (previous === null || (before && !(before.socket.state === "SYN-SENT" && socket.state === "ESTAB"))) continue;
    const base = eventBase(entry, nowMs);
    if (socket.state === "LISTEN") events.push(makeEvent({ ...base, type: "listen" }));
    else if (socket.state === "ESTAB") events.push(makeEvent({ ...base, type: directionOf(socket, listening) === "inbound" ? "accept" : "connect" }));
  }
  for (const [key, entry] of previous ?? []) {
    if (seen.has(key) || entry.socket.state === "LISTEN") continue;
    const socket = entry.socket;
    const base = eventBase(entry, nowMs);
    if (socket.state === "SYN-SENT") events.push(makeEvent({ ...base, type: "connect_failed", reason: "unknown (vanished while connecting)" }));
    else events.push(makeEvent({ ...base, type: "close", duration_ms: null }));
  }
  return { events, seen };
}

export class SsPoller {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private previous: Map<string, Seen> | null = null;
  private lastCostMs = 0;
  polls = 0;
  lastError: string | null = null;

  constructor(private readonly onEvent: (event: ConnectionEvent) => void, private readonly minIntervalMs = 2_000) {}

  /** At least minIntervalMs, at most 30 s, and about 10% of the time spent polling on a busy host. */
  get intervalMs(): number {
    return Math.min(30_000, Math.max(this.minIntervalMs, this.lastCostMs * 10));
  }

  start(): void {
    if (this.timer) return;
    const tick = async () => {
      const started = performance.now();
      try {
        const { events, seen } = diffPolls(this.previous, await collectHostSockets({ unix: false }), Date.now());
        this.previous = seen;
        for (const event of events) this.onEvent(event);
        this.polls++;
        this.lastError = null;
      } catch (error) {
        this.lastError = error instanceof Error ? error.message : String(error);
        logger.warn(`ss poll failed: ${this.lastError}`);
      }
      // The first poll pays for warming up (JIT, passwd, namespaces): it does not set the pace.
      if (this.polls > 1) this.lastCostMs = performance.now() - started;
      if (this.timer !== null) this.timer = setTimeout(tick, this.intervalMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  get running(): boolean {
    return this.timer !== null;
  }
}
