// Exact connection totals: the connection tracker counts every outcome in the kernel (see the
// counts in probes/trace_connections.bt's header), and this module reads them from its maps, turns
// each key into a count row (a ~1 s bucket of one process, direction, destination and result) and
// keeps the rows in the `counts` table beside the events. The summaries read their totals here and
// their details (latency, bytes, samples) from the events, which may be lost under load; the counts
// may not. Where the kernel's counts cannot be read (ss polling, no CAP_SYS_ADMIN), the rows are
// counted from the events instead, and the answers say their totals are not exact.
import type { Database, Statement } from "bun:sqlite";
import { BpfMap, openMapsOfProcess } from "../probes/bpf.ts";
import { formatIpBytes } from "../snapshot/cidr.ts";
import { errnoName } from "../util/errno.ts";
import type { ConnectionEvent } from "./model.ts";
import { CODES } from "./codes.ts";

/** One bucket of one process, direction, destination and result: n outcomes. Columns as in events. */
export interface CountRow {
  /** Start of the bucket, ms since the epoch. */
  ts_ms: number;
  type: "connect" | "accept" | "connect_failed";
  protocol: "tcp" | "udp" | "unix";
  family: "ipv4" | "ipv6" | "unix";
  pid: number;
  comm: string;
  /** accept: the listening (service) port. */
  local_port: number | null;
  /** connect: the destination; accept: the client's address (its port, ephemeral, is not kept). */
  remote_ip: string | null;
  remote_port: number | null;
  path: string | null;
  /** connect_failed: refused, timeout, other, an errno name; UDP/unix connect: the errno name when it failed. */
  reason: string | null;
  /** UDP/unix connect(): 0 or -errno. */
  return_code: number | null;
  netns: number | null;
  n: number;
}

/** The process name of outcomes the kernel counted in @tot but not in @cnt/@ucnt (those maps were full). */
export const OTHER = "(other)";
/** The counts are read every second: the epochs (2^30 ns) that have ended since. */
export const DRAIN_MS = 1_000;
/** An epoch is read once this long past its end: a BPF program that took its epoch just before the end has finished. */
const EPOCH_GRACE_NS = 50_000_000;
const EPOCH_SHIFT = 30n;

const KIND = { connect: 1, accept: 2, udp: 3, unix: 4 } as const;

/** The reason of a TCP connect's result code (the probe's connect_failed reasons, errno names beyond them). */
function tcpReason(result: number): string {
  if (result === 111) return "refused";
  if (result === 110) return "timeout";
  if (result === 255) return "other";
  return errnoName(result);
}

const decoder = new TextDecoder();
const cString = (bytes: Uint8Array) => decoder.decode(bytes.subarray(0, bytes.indexOf(0) < 0 ? bytes.length : bytes.indexOf(0)));

/** An inet value of bpftrace's ntop(): 8 bytes of address family, then 16 of address. */
function inetOf(bytes: Uint8Array): string {
  const af = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return af === 2 ? formatIpBytes(bytes.subarray(8, 12)) : formatIpBytes(bytes.subarray(8, 24));
}

export interface DecodedKey {
  epoch: number;
  row: Omit<CountRow, "ts_ms" | "n">;
}

/** A key of @cnt (56 bytes) or @ucnt (96 bytes): pure. See the probe header for the layout. */
export function decodeCountKey(key: Uint8Array): DecodedKey {
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const head = view.getBigUint64(0, true);
  const meta = view.getBigUint64(8, true);
  const epoch = Number(head >> 32n);
  const pid = Number(head & 0xffffffffn);
  const kind = Number(meta & 0xfn);
  const fam = Number((meta >> 4n) & 0xfn);
  const result = Number((meta >> 8n) & 0xffn);
  const port = Number((meta >> 16n) & 0xffffn);
  const netns = Number(meta >> 32n) || null;
  const comm = cString(key.subarray(16, 32));
  const none = { local_port: null, remote_ip: null, remote_port: null, path: null, reason: null, return_code: null };
  if (kind === KIND.unix) {
    const path = cString(key.subarray(32, 96));
    const failed = result !== 0;
    return {
      epoch,
      row: { ...none, type: "connect", protocol: "unix", family: "unix", pid, comm, netns, path: fam === 2 ? `@${path}` : path, return_code: -result, reason: failed ? errnoName(result) : null },
    };
  }
  const family = fam === 6 ? "ipv6" : "ipv4";
  const address = inetOf(key.subarray(32, 56));
  if (kind === KIND.accept) return { epoch, row: { ...none, type: "accept", protocol: "tcp", family, pid, comm, netns, local_port: port, remote_ip: address } };
  if (kind === KIND.udp) {
    return {
      epoch,
      row: { ...none, type: "connect", protocol: "udp", family, pid, comm, netns, remote_ip: address, remote_port: port, return_code: -result, reason: result ? errnoName(result) : null },
    };
  }
  return {
    epoch,
    row: { ...none, type: result ? "connect_failed" : "connect", protocol: "tcp", family, pid, comm, netns, remote_ip: address, remote_port: port, reason: result ? tcpReason(result) : null },
  };
}

/** A key of @tot: epoch << 8 | kind << 1 | failed. */
export function decodeTotalKey(key: Uint8Array): { epoch: number; kind: number; failed: boolean } {
  const value = new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(0, true);
  return { epoch: Number(value >> 8n), kind: Number((value >> 1n) & 0x7fn), failed: (value & 1n) === 1n };
}

type Decoded = DecodedKey & { n: number };
const kindOf = (row: DecodedKey["row"]) => (row.protocol === "unix" ? KIND.unix : row.protocol === "udp" ? KIND.udp : row.type === "accept" ? KIND.accept : KIND.connect);
const failedOf = (row: DecodedKey["row"]) => row.type === "connect_failed" || (row.return_code ?? 0) < 0;

/** The row of OTHER that stands for n outcomes @tot counted beyond the detailed rows (a full map). */
export function otherRow(kind: number, failed: boolean): DecodedKey["row"] {
  const base = { pid: 0, comm: OTHER, netns: null, local_port: null, remote_ip: null, remote_port: null, path: null };
  const failure = failed ? { reason: "unknown", return_code: -1 } : { reason: null, return_code: 0 };
  if (kind === KIND.unix) return { ...base, ...failure, type: "connect", protocol: "unix", family: "unix" };
  if (kind === KIND.udp) return { ...base, ...failure, type: "connect", protocol: "udp", family: "ipv4" };
  if (kind === KIND.accept) return { ...base, type: "accept", protocol: "tcp", family: "ipv4", reason: null, return_code: null };
  return { ...base, type: failed ? "connect_failed" : "connect", protocol: "tcp", family: "ipv4", reason: failed ? "unknown" : null, return_code: null };
}

const MAP_NAMES = ["AT_cnt", "AT_ucnt", "AT_tot"] as const;
/** What KernelCounts needs of a map (a BpfMap; in unit tests, a Map in memory). */
export type CountMap = Pick<BpfMap, "keys" | "sum" | "delete" | "close"> & { info: Pick<BpfMap["info"], "name"> };
const hex = (key: Uint8Array) => Buffer.from(key).toString("hex");

/**
 * Reads a running trace_connections probe's counts. Each read books what every key gained since
 * the last one (so an answer right after a burst already counts it), and deletes the keys of the
 * epochs that have ended once their last gain is booked: the maps hold about two epochs. @tot is
 * read before the detail maps, so that outcomes counted between the two reads show in the details
 * first and are never booked as OTHER; OTHER is what @tot holds beyond the details, per epoch,
 * kind and outcome, summed over the reads.
 */
export class KernelCounts {
  private maps: Map<string, CountMap> | null = null;
  /** The value booked so far of each key of an epoch that has not ended. */
  private readonly booked = new Map<string, bigint>();
  /** Per epoch:kind:failed, what @tot, the details and OTHER have booked so far. */
  private readonly sums = new Map<string, { epoch: number; total: number; detailed: number; other: number }>();

  constructor(
    private readonly probePid: number,
    /** The probe's clock (bpftrace's nsecs) now, and its ns as wall ms. */
    private readonly clock: { probeNs: () => number; wallMs: (tsNs: number) => number },
    private readonly openMaps: (pid: number, names: readonly string[]) => Map<string, CountMap> = openMapsOfProcess,
  ) {}

  /** Opens the maps; throws (EPERM, not found) when the counts cannot be read. */
  open(): void {
    if (this.maps) return;
    const maps = this.openMaps(this.probePid, MAP_NAMES);
    const missing = MAP_NAMES.filter((name) => !maps.has(name));
    if (missing.length > 0) {
      for (const map of maps.values()) map.close();
      throw new Error(`the probe (pid ${this.probePid}) holds no map ${missing.join(", ")}`);
    }
    this.maps = maps;
  }

  /** Books every key's gain since the last read; `all`: every epoch counts as ended (the last read before the probe stops). */
  drain(all = false): CountRow[] {
    this.open();
    const maps = this.maps!;
    const ended = all ? Number.POSITIVE_INFINITY : Math.floor((this.clock.probeNs() - EPOCH_GRACE_NS) / 2 ** Number(EPOCH_SHIFT));
    const sum = (epoch: number, kind: number, failed: boolean) => {
      const key = `${epoch}:${kind}:${failed}`;
      let entry = this.sums.get(key);
      if (!entry) this.sums.set(key, (entry = { epoch, total: 0, detailed: 0, other: 0 }));
      return entry;
    };
    const tot = maps.get("AT_tot")!;
    for (const key of tot.keys()) {
      const { epoch, kind, failed } = decodeTotalKey(key);
      const gain = this.book(tot, key, epoch < ended);
      if (gain > 0) sum(epoch, kind, failed).total += gain;
    }
    const rows: Decoded[] = [];
    for (const name of ["AT_cnt", "AT_ucnt"] as const) {
      const map = maps.get(name)!;
      for (const key of map.keys()) {
        const decoded = decodeCountKey(key);
        const gain = this.book(map, key, decoded.epoch < ended);
        if (gain <= 0) continue;
        rows.push({ ...decoded, n: gain });
        sum(decoded.epoch, kindOf(decoded.row), failedOf(decoded.row)).detailed += gain;
      }
    }
    for (const [key, entry] of this.sums) {
      const missing = entry.total - entry.detailed - entry.other;
      if (missing > 0) {
        const [, kind, failed] = key.split(":");
        rows.push({ epoch: entry.epoch, row: otherRow(Number(kind), failed === "true"), n: missing });
        entry.other += missing;
      }
      if (entry.epoch < ended) this.sums.delete(key);
    }
    return rows.map(({ epoch, row, n }) => ({ ...row, ts_ms: Math.floor(this.clock.wallMs(epoch * 2 ** Number(EPOCH_SHIFT))), n }));
  }

  /** A key's gain since it was last booked; the key is deleted when its epoch has ended. */
  private book(map: CountMap, key: Uint8Array, ended: boolean): number {
    const id = `${map.info.name}:${hex(key)}`;
    const value = map.sum(key) ?? 0n;
    const gain = Number(value - (this.booked.get(id) ?? 0n));
    if (ended) {
      map.delete(key);
      this.booked.delete(id);
    } else {
      this.booked.set(id, value);
    }
    return gain;
  }

  close(): void {
    for (const map of this.maps?.values() ?? []) map.close();
    this.maps = null;
  }
}

/** The count row of one event (ss polling, or eBPF where the kernel's counts cannot be read); null for other types. */
export function countOfEvent(event: ConnectionEvent): CountRow | null {
  if (event.type !== "connect" && event.type !== "accept" && event.type !== "connect_failed") return null;
  const protocol = event.protocol ?? "tcp";
  const accept = event.type === "accept";
  return {
    ts_ms: Math.floor(event.ts_ms / 1000) * 1000,
    type: event.type,
    protocol,
    family: event.family ?? (protocol === "unix" ? "unix" : "ipv4"),
    pid: event.pid,
    comm: event.comm,
    local_port: accept ? event.local_port : null,
    remote_ip: event.remote_ip,
    remote_port: accept || protocol === "unix" ? null : event.remote_port,
    path: protocol === "unix" ? event.path : null,
    reason: event.reason,
    return_code: event.return_code,
    netns: null,
    n: 1,
  };
}

const COLUMNS = ["ts_ms", "type", "protocol", "family", "pid", "comm", "local_port", "remote_ip", "remote_port", "path", "reason", "return_code", "netns", "n"] as const;

export const COUNTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS counts (
  id INTEGER PRIMARY KEY,
  ts_ms INTEGER NOT NULL,
  type INTEGER NOT NULL,
  protocol INTEGER NOT NULL,
  family INTEGER,
  pid INTEGER NOT NULL,
  comm TEXT NOT NULL,
  local_port INTEGER,
  remote_ip TEXT,
  remote_port INTEGER,
  path TEXT,
  reason TEXT,
  return_code INTEGER,
  netns INTEGER,
  n INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS counts_ts ON counts (ts_ms);
CREATE INDEX IF NOT EXISTS counts_pid_ts ON counts (pid, ts_ms);
CREATE INDEX IF NOT EXISTS counts_comm_ts ON counts (comm, ts_ms);
CREATE INDEX IF NOT EXISTS counts_remote_ip_ts ON counts (remote_ip, ts_ms) WHERE remote_ip IS NOT NULL;
`;

/** Rows kept at most: a port scan makes a row per destination and second. Past it the oldest go. */
export const DEFAULT_MAX_COUNT_ROWS = 1_000_000;

/**
 * The counts table, in the event store's database: written a batch at a time, bounded by rows and
 * by age like the events. A file from before the table existed gets it filled from its events.
 */
export class CountTable {
  private readonly insert: Statement;
  private readonly writeBatch: (rows: CountRow[]) => void;
  private rows: number;
  droppedByRetention = 0;

  constructor(
    private readonly db: Database,
    private readonly limits: { maxRows?: number; maxAgeMs: number },
  ) {
    const existed = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counts'").get() !== null;
    db.exec(COUNTS_SCHEMA);
    if (!existed) this.backfill();
    this.rows = (db.query("SELECT count(*) AS n FROM counts").get() as { n: number }).n;
    this.insert = db.prepare(`INSERT INTO counts (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`);
    const deleteOldest = db.prepare("DELETE FROM counts WHERE id IN (SELECT id FROM counts ORDER BY ts_ms, id LIMIT ?)");
    const deleteOlderThan = db.prepare("DELETE FROM counts WHERE ts_ms < ?");
    const maxRows = limits.maxRows ?? DEFAULT_MAX_COUNT_ROWS;
    this.writeBatch = db.transaction((rows: CountRow[]) => {
      for (const row of rows) {
        this.insert.run(
          row.ts_ms,
          CODES.type[row.type],
          CODES.protocol[row.protocol],
          CODES.family[row.family],
          row.pid,
          row.comm,
          row.local_port,
          row.remote_ip,
          row.remote_port,
          row.path,
          row.reason,
          row.return_code,
          row.netns,
          row.n,
        );
      }
      let removed = 0;
      const total = this.rows + rows.length;
      if (total > maxRows) removed += deleteOldest.run(total - maxRows).changes;
      removed += deleteOlderThan.run(Date.now() - this.limits.maxAgeMs).changes;
      this.rows = total - removed;
      this.droppedByRetention += removed;
    });
  }

  /** The counts of a history written before counts were kept: one row per event, as ss polling makes them. */
  private backfill(): void {
    const t = CODES.type;
    this.db.run(
      `INSERT INTO counts (ts_ms, type, protocol, family, pid, comm, local_port, remote_ip, remote_port, path, reason, return_code, netns, n)
       SELECT (ts_ms / 1000) * 1000, type, coalesce(protocol, ${CODES.protocol.tcp}), family, pid, comm,
         CASE WHEN type = ${t.accept} THEN local_port END, remote_ip,
         CASE WHEN type = ${t.accept} OR protocol = ${CODES.protocol.unix} THEN NULL ELSE remote_port END,
         CASE WHEN protocol = ${CODES.protocol.unix} THEN path END, reason, return_code, NULL, 1
       FROM events WHERE type IN (${t.connect}, ${t.accept}, ${t.connect_failed})`,
    );
  }

  write(rows: CountRow[]): void {
    if (rows.length > 0) this.writeBatch(rows);
  }

  get size(): number {
    return this.rows;
  }
}
