// The contract of trace_connections.bt's lines: the zod schema of each line (its header's Fields,
// tested with its Example lines) and their translation into connection events. One place: the
// probe's printf, this schema and the events must agree, and the header says which is which.
//
// A short TCP connection is one close line per side: the probe prints a connect or accept only
// when the connection is still open at its next flush, and the close line carries the rest
// (open_ts_ns, latency_us, side). The Lines class makes the missing connect or accept event from
// the close, and drops a connect or accept line that arrives after the close it was made from
// (lines of different CPUs come out of order). A connection is named by (sk, open_ts_ns).
import { z } from "zod";
import { errnoName } from "../util/errno.ts";
import { makeEvent, type ConnectionEvent } from "./model.ts";

const family = z.union([z.literal(4), z.literal(6), z.literal(1)]).transform((f) => (f === 4 ? "ipv4" : f === 6 ? "ipv6" : "unix") as "ipv4" | "ipv6" | "unix");
const who = { ts_ns: z.number(), pid: z.number(), uid: z.number(), comm: z.string() };
const inet = { family, laddr: z.string(), lport: z.number(), raddr: z.string(), rport: z.number() };

/** The lines trace_connections.bt prints (see its header), besides ready, heartbeat and dropped (the supervisor's). */
export const probeLineSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("listen"), ...who, family, laddr: z.string(), lport: z.number() }),
  z.object({
    type: z.literal("connect"),
    ...who,
    proto: z.enum(["tcp", "udp", "unix"]),
    family,
    laddr: z.string().optional(),
    lport: z.number().optional(),
    raddr: z.string().optional(),
    rport: z.number().optional(),
    path: z.string().optional(),
    latency_us: z.number().optional(),
    ret: z.number().optional(),
    sk: z.number().optional(),
  }),
  z.object({ type: z.literal("connect_failed"), ...who, proto: z.literal("tcp"), ...inet, latency_us: z.number().optional(), reason: z.string() }),
  z.object({ type: z.literal("accept"), ...who, proto: z.literal("tcp").optional(), ...inet, sk: z.number().optional() }),
  z.object({
    type: z.literal("close"),
    ...who,
    ...inet,
    duration_ms: z.number(),
    bytes_sent: z.number().optional(),
    bytes_received: z.number().optional(),
    /** 1 active, 2 passive never accept()ed, 3 passive accept()ed, 0 unknown (before the probe). */
    side: z.number().int().min(0).max(3),
    latency_us: z.number(),
    open_ts_ns: z.number(),
    sk: z.number(),
  }),
  z.object({ type: z.literal("exec"), ...who, ppid: z.number(), filename: z.string() }),
  z.object({ type: z.literal("exit"), ...who, ppid: z.number(), exit_code: z.number() }),
]);
export type ProbeLine = z.infer<typeof probeLineSchema>;
type CloseLine = Extract<ProbeLine, { type: "close" }>;

/** One line as its event, given its wall time (the supervisor's wallTime of line.ts_ns): pure. */
export function eventOfLine(line: ProbeLine, tsMs: number): ConnectionEvent {
  const base = { ts_ms: Math.round(tsMs), source: "ebpf" as const, pid: line.pid, uid: line.uid, comm: line.comm };
  switch (line.type) {
    case "listen":
      return makeEvent({ ...base, type: "listen", protocol: "tcp", family: line.family, local_ip: line.laddr, local_port: line.lport });
    case "exec":
      return makeEvent({ ...base, type: "exec", ppid: line.ppid, path: line.filename });
    case "exit":
      return makeEvent({ ...base, type: "exit", ppid: line.ppid, exit_code: line.exit_code });
    case "connect": {
      const failed = line.ret !== undefined && line.ret < 0;
      return makeEvent({
        ...base,
        type: "connect",
        protocol: line.proto,
        family: line.family,
        local_ip: line.laddr || null,
        local_port: line.lport ?? null,
        remote_ip: line.raddr || null,
        remote_port: line.proto === "unix" ? null : (line.rport ?? null),
        path: line.path || null,
        latency_us: line.latency_us ?? null,
        return_code: line.ret ?? null,
        reason: failed ? errnoName(line.ret!) : null,
      });
    }
    default: {
      const addresses = { protocol: "tcp" as const, family: line.family, local_ip: line.laddr, local_port: line.lport, remote_ip: line.raddr, remote_port: line.rport };
      if (line.type === "accept") return makeEvent({ ...base, ...addresses, type: "accept" });
      if (line.type === "connect_failed") {
        // "errno:113" (an ICMP error, or a connect() that failed before any SYN) → "EHOSTUNREACH".
        const errno = /^errno:(\d+)$/.exec(line.reason);
        return makeEvent({ ...base, ...addresses, type: "connect_failed", reason: errno ? errnoName(Number(errno[1])) : line.reason, latency_us: line.latency_us ?? null });
      }
      return makeEvent({
        ...base,
        ...addresses,
        type: "close",
        duration_ms: line.duration_ms < 0 ? null : line.duration_ms,
        bytes_sent: line.bytes_sent ?? null,
        bytes_received: line.bytes_received ?? null,
      });
    }
  }
}

/** The connect or accept event a close line stands for, when that line was not printed. */
function openingOf(line: CloseLine, tsMs: number): ConnectionEvent | null {
  if (line.side !== 1 && line.side !== 3) return null;
  return makeEvent({
    ts_ms: Math.round(tsMs),
    source: "ebpf",
    type: line.side === 1 ? "connect" : "accept",
    pid: line.pid,
    uid: line.uid,
    comm: line.comm,
    protocol: "tcp",
    family: line.family,
    local_ip: line.laddr,
    local_port: line.lport,
    remote_ip: line.raddr,
    remote_port: line.rport,
    latency_us: line.side === 1 && line.latency_us >= 0 ? line.latency_us : null,
  });
}

/**
 * Connections whose connect/accept line was seen, waiting for their close; and those whose event
 * was made from their close, for a late connect/accept line to be dropped. Both bounded: past the
 * bound the oldest entry goes (a long-open connection's close then makes its connect again, a
 * duplicate event; totals come from the kernel's counts and do not change).
 */
export const MAX_OPEN_CONNECTIONS = 200_000;
const MADE_FROM_CLOSE_KEEP = 20_000;

export class Lines {
  private readonly opened = new Set<string>();
  private readonly madeFromClose = new Set<string>();

  constructor(private readonly wallTime: (tsNs: number) => number) {}

  /** The events a line stands for: none (a late duplicate), one, or two (a close and the connect or accept made from it). */
  events(line: ProbeLine): ConnectionEvent[] {
    if ((line.type === "connect" || line.type === "accept") && line.sk !== undefined) {
      const key = `${line.sk}:${line.ts_ns}`;
      if (this.madeFromClose.delete(key)) return [];
      remember(this.opened, key, MAX_OPEN_CONNECTIONS);
    }
    const event = eventOfLine(line, this.wallTime(line.ts_ns));
    if (line.type !== "close") return [event];
    const key = `${line.sk}:${line.open_ts_ns}`;
    if (this.opened.delete(key)) return [event];
    const opening = openingOf(line, this.wallTime(line.open_ts_ns));
    if (!opening) return [event];
    remember(this.madeFromClose, key, MADE_FROM_CLOSE_KEEP);
    return [opening, event];
  }

  /** After a probe restart: the new probe's sockets share nothing with the old one's. */
  reset(): void {
    this.opened.clear();
    this.madeFromClose.clear();
  }
}

/** A Set in insertion order, cut to `max` from its oldest end. */
function remember(set: Set<string>, key: string, max: number): void {
  set.add(key);
  if (set.size > max) set.delete(set.values().next().value!);
}
