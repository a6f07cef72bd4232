// Parser for the output of `ss` (iproute2): `ss -tuwnaeH` / `ss -tuwpnaeH` (TCP, UDP, raw) and
// `ss -xaeH` / `ss -xpaeH` (unix). Pure: text in, sockets out; collect.ts runs ss. Checked against
// real captures in test/fixtures/ss/<distro>/ (scripts/capture-ss-fixtures makes them).
//
// One line per socket: netid, state, Recv-Q, Send-Q, local, peer, then the -p/-e extras
// (`users:((...))`, `timer:(...)`, `uid:N`, `ino:N`, `sk:HEX`, `cgroup:PATH`, `v6only:N`, `<->`).
// A line that does not parse never throws: it is returned in `skipped`.
//
// Known limits: a unix socket path is everything before the last three columns, so a local path
// with spaces is kept whole (exact spacing included) but a peer path with spaces would not be
// (ss 6.1 always prints `*` for the peer); a path holding " users:((", " ino:", " peers:" or a
// shutdown mark such as " <-> " is cut there, and a cgroup path at the next " key:" word.

export type SsTransport = "tcp" | "udp" | "raw" | "unix";
export type SsKind = "inet" | "unix";

export interface SsEndpoint {
  /** IP address without brackets ("0.0.0.0", "::", "::ffff:127.0.0.1"), "*" for ss's wildcard; unix: the path, "@name" when abstract, "*" when none. */
  address: string;
  /** null when ss prints "*" (and always for unix). For raw sockets ss prints the IP protocol number here. */
  port: number | null;
  /** The "%iface" suffix: the device the socket is bound to (SO_BINDTODEVICE), e.g. "lo". */
  scope: string | null;
}

export interface SsProcessRef {
  name: string;
  pid: number;
  fd: number;
}

export interface SsSocket {
  transport: SsTransport;
  /** As printed: tcp, udp, raw, u_str, u_dgr, u_seq. */
  netid: string;
  /** As printed: LISTEN, ESTAB, UNCONN, TIME-WAIT, SYN-SENT, CLOSE-WAIT, ... */
  state: string;
  recv_q: number;
  send_q: number;
  local: SsEndpoint;
  peer: SsEndpoint;
  /** inet: "ino:N" (null when absent or 0: TIME-WAIT, orphans, raw sockets); unix: the local inode column. */
  inode: number | null;
  /** unix only: the peer's inode column (null when 0 or "*"). */
  peer_inode: number | null;
  /** "uid:N"; ss leaves it out for uid 0. */
  uid: number | null;
  /** From -p: users:(("name",pid=1,fd=3),...); [] without -p or when ss cannot see the owner. */
  processes: SsProcessRef[];
  /** The raw contents of "timer:(...)", e.g. "keepalive,119min,0". */
  timer: string | null;
  /** "cgroup:PATH" (cgroup v2 only). */
  cgroup: string | null;
}

export interface SsParseResult {
  sockets: SsSocket[];
  /** Non-blank lines that could not be parsed, as they were. */
  skipped: string[];
}

export function parseSs(text: string, kind: SsKind): SsParseResult {
  const sockets: SsSocket[] = [];
  const skipped: string[] = [];
  for (const raw of text.split("\n")) {
    // ss pads every line to the widest one with trailing spaces; CRLF if it went through a tty log.
    const line = raw.trimEnd();
    if (line === "" || line.trimStart() === "") continue;
    // A header line, when -H was forgotten (or on ss versions older than 4.15, which lack -H).
    if (/^\s*(?:Netid|State)\s+(?:State\s+)?Recv-Q\b/.test(line)) continue;
    const socket = quickLine(line, kind) ?? fullLine(line, kind);
    if (socket) sockets.push(socket);
    else skipped.push(raw);
  }
  return { sockets, skipped };
}

/** Sockets of `ss -tuwnaeH` / `ss -tuwpnaeH`; unparseable lines are dropped (see parseSs). */
export function parseSsInet(text: string): SsSocket[] {
  return parseSs(text, "inet").sockets;
}

/** Sockets of `ss -xaeH` / `ss -xpaeH`; unparseable lines are dropped (see parseSs). */
export function parseSsUnix(text: string): SsSocket[] {
  return parseSs(text, "unix").sockets;
}

/**
 * The common line, read by splitting on spaces: every extra a known `key:value` word. Anything
 * else (a path or a cgroup with spaces, users:((...)), glued columns) returns undefined and goes to
 * the full parsers below, which agree with this on every line both read (see the ss unit tests).
 * It is what makes 100k-socket hosts cheap: about 3x faster than the full parsers.
 */
export function quickLine(line: string, kind: SsKind): SsSocket | undefined {
  const t = line.split(/\s+/);
  if (t[0] === "") t.shift();
  const [netid, state, recvQ, sendQ] = t as [string, string, string, string];
  if (t.length < (kind === "inet" ? 6 : 8) || !STATE_SET.has(state) || !DIGITS.test(recvQ) || !DIGITS.test(sendQ)) return undefined;
  let first: number;
  let socket: SsSocket;
  // Object literals of one fixed shape, no spreads: this runs 100k times per snapshot on a busy host.
  if (kind === "inet") {
    const transport = INET_TRANSPORTS[netid];
    const local = parseInetEndpoint(t[4]!);
    const peer = parseInetEndpoint(t[5]!);
    if (!transport || !local || !peer) return undefined;
    socket = { transport, netid, state, recv_q: Number(recvQ), send_q: Number(sendQ), local, peer, inode: null, peer_inode: null, uid: null, processes: [], timer: null, cgroup: null };
    first = 6;
  } else {
    if (!netid.startsWith("u_") || !INODE.test(t[5]!) || !(t[7] === "*" || INODE.test(t[7]!))) return undefined;
    socket = {
      transport: "unix",
      netid,
      state,
      recv_q: Number(recvQ),
      send_q: Number(sendQ),
      local: { address: t[4]!, port: null, scope: null },
      peer: { address: t[6]!, port: null, scope: null },
      inode: unixInode(t[5]!),
      peer_inode: t[7] === "*" ? null : unixInode(t[7]!),
      uid: null,
      processes: [],
      timer: null,
      cgroup: null,
    };
    first = 8;
  }
  for (let i = first; i < t.length; i++) {
    const word = t[i]!;
    const colon = word.indexOf(":");
    const key = colon > 0 ? word.slice(0, colon) : word;
    const value = word.slice(colon + 1);
    if (key === "ino" || key === "uid") {
      if (!DIGITS.test(value)) return undefined;
      // Unix "ino:N" is the inode of the socket's file on disk (UNIX_DIAG_VFS), not the socket's: ignored.
      if (key === "uid") socket.uid = Number(value);
      else if (kind === "inet") socket.inode = Number(value) || null;
    } else if (key === "timer" && value.startsWith("(") && value.endsWith(")") && value.indexOf(")") === value.length - 1) {
      socket.timer = value.slice(1, -1);
    } else if (key === "cgroup") {
      socket.cgroup = value;
    } else if (!(colon > 0 && QUIET_KEYS.has(key)) && !SHUTDOWN_MARKS.has(word)) {
      return undefined;
    }
  }
  return socket;
}
const DIGITS = /^\d+$/;
const INODE = /^-?\d+$/;
/** Extras printed by -e that the snapshot does not use. */
const QUIET_KEYS = new Set(["sk", "v6only", "dev", "peers", "fwmark", "tos", "class", "mark"]);
const SHUTDOWN_MARKS = new Set(["<->", "-->", "<--", "---"]);

/** Any line ss prints, the slow and thorough way; null when it cannot be read. */
export function fullLine(line: string, kind: SsKind): SsSocket | null {
  return kind === "inet" ? parseInetLine(line) : parseUnixLine(line);
}

const STATES = [
  "UNKNOWN", "ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "UNCONN",
  "CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING",
];
const STATE_SET = new Set(STATES);
const HEAD = /^(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(.*)$/;
// Columns run together when a value is wider than ss's fixed column (seen in ss < 4.15 and noted
// by jc: "u_seqESTAB", "CLOSE-WAIT1"): split them on the known state names.
const GLUED_HEAD = new RegExp(`^([a-z][a-z0-9_]*?)\\s*(${STATES.join("|")})\\s*(\\d+)\\s+(\\d+)\\s+(.*)$`);

interface Head {
  netid: string;
  state: string;
  recv_q: number;
  send_q: number;
  rest: string;
}

function parseHead(line: string): Head | null {
  const match = HEAD.exec(line.trimStart()) ?? GLUED_HEAD.exec(line.trimStart());
  if (!match) return null;
  return { netid: match[1]!, state: match[2]!, recv_q: Number(match[3]), send_q: Number(match[4]), rest: match[5]! };
}

const INET_TRANSPORTS: Record<string, SsTransport> = {
  tcp: "tcp",
  udp: "udp",
  raw: "raw",
  // jc (kellyjonbrazil/jc ss parser) meets an "icmp6" netid for ICMPv6 raw sockets; ss 6.1 prints "raw".
  icmp6: "raw",
};

function parseInetLine(line: string): SsSocket | null {
  const head = parseHead(line);
  if (!head) return null;
  const transport = INET_TRANSPORTS[head.netid];
  if (!transport) return null;
  const match = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(head.rest);
  if (!match) return null;
  const local = parseInetEndpoint(match[1]!);
  const peer = parseInetEndpoint(match[2]!);
  const extras = parseExtras(match[3] ?? "");
  if (!local || !peer || !extras) return null;
  return {
    transport,
    netid: head.netid,
    state: head.state,
    recv_q: head.recv_q,
    send_q: head.send_q,
    local,
    peer,
    // ino:0 is a socket without a file: TIME-WAIT, orphaned FIN-WAIT, not yet accept()ed.
    inode: extras.ino || null,
    peer_inode: null,
    uid: extras.uid,
    processes: extras.processes,
    timer: extras.timer,
    cgroup: extras.cgroup,
  };
}

/** `127.0.0.1:80`, `[::1]:80`, `[::ffff:127.0.0.1]:80`, `0.0.0.0%lo:53`, `*%lo:53`, `[::]:*`, `*:*`. */
export function parseInetEndpoint(text: string): SsEndpoint | null {
  // The port follows the last colon; ss < 4.x printed IPv6 without brackets (":::22"), which this also reads.
  const colon = text.lastIndexOf(":");
  if (colon <= 0) return null;
  const portText = text.slice(colon + 1);
  let host = text.slice(0, colon);
  let port: number | null;
  // "*": no port (unbound, or the peer of a listener).
  if (portText === "*") port = null;
  else if (/^\d{1,5}$/.test(portText) && Number(portText) <= 65535) port = Number(portText);
  else return null; // a service name: ss was run without -n
  let scope: string | null = null;
  // The bound device is printed after the address, outside the brackets: "[::1]%lo", "0.0.0.0%lo".
  const percent = host.indexOf("%", host.startsWith("[") ? host.indexOf("]") : 0);
  if (percent >= 0) {
    scope = host.slice(percent + 1);
    host = host.slice(0, percent);
    if (scope === "") return null;
  }
  // IPv6 addresses are bracketed; "*" (no brackets) is the wildcard of a dual-stack IPv6 socket.
  if (host.startsWith("[")) {
    if (!host.endsWith("]")) return null;
    host = host.slice(1, -1);
  }
  if (host === "") return null;
  return { address: host, port, scope };
}

// Unix extras that can follow the four address columns: users:((...)) from -p, then from -e the
// shutdown mark ("<->", "-->", "<--", "---"), "ino:N dev:M/m" of a bound path and "peers: N ...".
const UNIX_EXTRAS_START = /\s+(?=users:\(\(|[<-]-[>-](?:\s|$)|(?:ino|dev|uid|peers|sk):)/;

function parseUnixLine(line: string): SsSocket | null {
  const head = parseHead(line);
  // Other socket families (p_raw, nl, v_str...) print other columns.
  if (!head || !head.netid.startsWith("u_")) return null;
  const cut = UNIX_EXTRAS_START.exec(head.rest);
  const columns = cut ? head.rest.slice(0, cut.index) : head.rest;
  const extrasText = cut ? head.rest.slice(cut.index).trimStart() : "";
  // Path, inode, peer path, peer inode; the path is whatever comes before the last three columns,
  // because ss prints it raw, spaces included.
  const chosen = /^(.+)\s+(-?\d+)\s+(\S+)\s+(-?\d+|\*)$/.exec(columns);
  const extras = parseExtras(extrasText);
  if (!chosen || !extras) return null;
  return {
    transport: "unix",
    netid: head.netid,
    state: head.state,
    recv_q: head.recv_q,
    send_q: head.send_q,
    local: { address: chosen[1]!, port: null, scope: null },
    peer: { address: chosen[3]!, port: null, scope: null },
    inode: unixInode(chosen[2]!),
    peer_inode: chosen[4] === "*" ? null : unixInode(chosen[4]!),
    uid: extras.uid,
    processes: extras.processes,
    timer: extras.timer,
    // Unix "ino:N" is the inode of the socket's file on disk (UNIX_DIAG_VFS), not the socket's: ignored.
    cgroup: extras.cgroup,
  };
}

function unixInode(text: string): number | null {
  const value = Number(text);
  // ss printed unix inodes with %d until a 2023 fix (int_to_str → uint_to_str): above 2^31 they came out negative.
  const unsigned = value < 0 ? value + 2 ** 32 : value;
  // 0: no peer (listeners, unconnected datagram sockets).
  return unsigned === 0 ? null : unsigned;
}

interface Extras {
  processes: SsProcessRef[];
  timer: string | null;
  uid: number | null;
  ino: number | null;
  cgroup: string | null;
}

/** The -p/-e tail of a line; null when users:(...) or timer:(...) is malformed. */
function parseExtras(text: string): Extras | null {
  const extras: Extras = { processes: [], timer: null, uid: null, ino: null, cgroup: null };
  let i = 0;
  while (i < text.length) {
    if (/\s/.test(text[i]!)) {
      i++;
      continue;
    }
    if (text.startsWith("users:(", i)) {
      const users = parseUsers(text, i + "users:(".length);
      if (!users) return null;
      extras.processes = users.processes;
      i = users.end;
      continue;
    }
    if (text.startsWith("timer:(", i)) {
      const close = text.indexOf(")", i);
      if (close < 0) return null;
      extras.timer = text.slice(i + "timer:(".length, close);
      i = close + 1;
      continue;
    }
    if (text.startsWith("cgroup:", i)) {
      // ss prints the path raw: it runs to the next "key:" word or shutdown mark, spaces included.
      const next = /\s+(?:[a-z_0-9]+:|[<-]-[>-](?:\s|$))/.exec(text.slice(i));
      const end = next ? i + next.index : text.length;
      extras.cgroup = text.slice(i + "cgroup:".length, end);
      i = end;
      continue;
    }
    const space = text.slice(i).search(/\s/);
    const end = space < 0 ? text.length : i + space;
    const word = text.slice(i, end);
    const number = /^(uid|ino):(\d+)$/.exec(word);
    if (number) extras[number[1] as "uid" | "ino"] = Number(number[2]);
    i = end;
  }
  return extras;
}

// ss prints each owner as ("comm",pid=N,fd=N) with the comm unescaped, so a name may contain
// quotes, commas, spaces and even `",pid=1,fd=2`. (It cannot contain ")": ss reads the comm from
// /proc/PID/stat with %[^)], which cuts it at the first ")".)
const ENTRY_END = /",pid=(\d+),fd=(\d+)\)/g;

/**
 * The owners in users:((...)), starting just after "users:(". Each name ends at the first
 * `",pid=N,fd=N)` after which the list goes on (`,("`) or ends (`)` then a space or the end of
 * the line); when the rest cannot be read that way, the next such anchor is tried.
 */
function parseUsers(text: string, start: number): { processes: SsProcessRef[]; end: number } | null {
  if (!text.startsWith('("', start)) return null;
  // Iterative with explicit backtracking (a socket can be shared by thousands of forked workers),
  // remembering where a name cannot start, so a broken line costs O(n^2) and not O(2^n).
  const stack: { nameStart: number; retryFrom: number; process: SsProcessRef }[] = [];
  const deadEnds = new Set<number>();
  let nameStart = start + 2;
  let searchFrom = nameStart;
  for (;;) {
    ENTRY_END.lastIndex = searchFrom;
    const match = deadEnds.has(nameStart) ? null : ENTRY_END.exec(text);
    if (!match) {
      // This name cannot end anywhere: go back and lengthen the previous one.
      deadEnds.add(nameStart);
      const previous = stack.pop();
      if (!previous) return null;
      nameStart = previous.nameStart;
      searchFrom = previous.retryFrom;
      continue;
    }
    const process = { name: text.slice(nameStart, match.index), pid: Number(match[1]), fd: Number(match[2]) };
    const after = match.index + match[0].length;
    if (text[after] === ")" && (after + 1 === text.length || /\s/.test(text[after + 1]!))) {
      return { processes: [...stack.map((entry) => entry.process), process], end: after + 1 };
    }
    if (text.startsWith(',("', after)) {
      stack.push({ nameStart, retryFrom: match.index + 1, process });
      nameStart = after + 3;
      searchFrom = nameStart;
      continue;
    }
    searchFrom = match.index + 1;
  }
}
