// buildSnapshot on a constructed busy host: the answer stays within what an agent accepts, says
// it was cut, and describes directions by the listening-port rule.
import { describe, expect, test } from "bun:test";
import { buildSnapshot, MAX_ANSWER_CHARS, normalizeState } from "../../../src/snapshot/build.ts";
import { parseCidr } from "../../../src/snapshot/cidr.ts";
import type { HostSocket, HostSockets } from "../../../src/snapshot/collect.ts";
import type { ProcessInfo } from "../../../src/snapshot/proc.ts";

const NETNS = 4026531840;

function processInfo(pid: number, name: string): ProcessInfo {
  return {
    pid, ppid: 1, name, uid: 0, user: "root", cmdline: [`/usr/sbin/${name}`, "--flag"], command_line: `/usr/sbin/${name} --flag`,
    cgroup: `/system.slice/${name}.service`, unit: `${name}.service`, container: null, netns: NETNS, start_time_ticks: 1,
  };
}

function tcp(pid: number, inode: number, state: string, local: [string, number], peer: [string, number | null]): HostSocket {
  return {
    transport: "tcp", netid: "tcp", state, recv_q: 0, send_q: 0,
    local: { address: local[0], port: local[1], scope: null },
    peer: { address: peer[0], port: peer[1], scope: null },
    inode, peer_inode: null, uid: null, processes: [], timer: null, cgroup: null,
    netns: NETNS, owners: [{ pid, fd: 3 }],
  };
}

/** 60 processes, one postgres listener with 3000 inbound connections, each client with outbound ones. */
function busyHost(): HostSockets {
  const processes = new Map<number, ProcessInfo>([[100, processInfo(100, "postgres")]]);
  const sockets: HostSocket[] = [tcp(100, 1, "LISTEN", ["0.0.0.0", 5432], ["0.0.0.0", null])];
  let inode = 2;
  for (let i = 0; i < 3000; i++) {
    const pid = 200 + (i % 60);
    processes.set(pid, processInfo(pid, `app${pid}`));
    sockets.push(tcp(100, inode++, "ESTAB", ["10.0.0.5", 5432], ["10.1.0.9", 40000 + i]));
    sockets.push(tcp(pid, inode++, "ESTAB", ["10.0.0.5", 40000 + i], ["10.9.9.9", 5432]));
  }
  sockets.push({ ...tcp(0, 0, "TIME-WAIT", ["10.0.0.5", 33333], ["10.9.9.9", 443]), inode: null, owners: [] });
  return { sockets, processes, namespaces: [], warnings: [], elapsedMs: 5 };
}

describe("buildSnapshot", () => {
  test("on a busy host the default answer fits the budget, keeps totals, and says it was cut", () => {
    const answer = buildSnapshot(busyHost());
    expect(JSON.stringify(answer).length).toBeLessThan(MAX_ANSWER_CHARS + 2_000);
    expect(answer.totals).toMatchObject({ sockets: 6002, listening: 1, sockets_without_process: 1, processes: 61 });
    expect(answer.matched.sockets).toBe(6001);
    expect(answer.truncated).toBe(true);
    expect(answer.returned.sockets).toBeLessThanOrEqual(200);
    expect(answer.hint).toContain("narrow with pid, command");
    // Busiest first: postgres with its 3001 sockets, the listener first among them.
    expect(answer.process_connections[0]!.name).toBe("postgres");
    expect(answer.process_connections[0]!.connections_total).toBe(3001);
    expect(answer.process_connections[0]!.connections[0]).toMatchObject({ direction: "listen", identified_application_protocol: "postgresql" });
  });

  test("accepted connections are inbound, the clients' are outbound to the service port", () => {
    const answer = buildSnapshot(busyHost(), { port: 40001 });
    const byName = Object.fromEntries(answer.process_connections.map((entry) => [entry.name, entry.connections]));
    expect(byName.postgres).toEqual([expect.objectContaining({ direction: "inbound", local_port: 5432, remote_port: 40001, identified_application_protocol: "postgresql" })]);
    expect(byName.app201).toEqual([expect.objectContaining({ direction: "outbound", remote_address: "10.9.9.9:5432", identified_application_protocol: "postgresql" })]);
    expect(answer.truncated).toBe(false);
    expect(answer.hint).toBeUndefined();
  });

  test("filters by state alias, listening, CIDR and process", () => {
    expect(buildSnapshot(busyHost(), { listening: true }).matched.sockets).toBe(1);
    expect(buildSnapshot(busyHost(), { state: "established", command: "postgres" }).matched.sockets).toBe(3000);
    expect(buildSnapshot(busyHost(), { user: "nobody" }).matched.sockets).toBe(0);
    expect(buildSnapshot(busyHost(), { remote_cidr: parseCidr("10.1.0.0/16")! }).matched.sockets).toBe(3000);
    expect(buildSnapshot(busyHost(), { remote_cidr: parseCidr("10.9.9.9")! }).matched.processes).toBe(60);
    expect(buildSnapshot(busyHost(), { pid: 205, limit: 3 }).returned.sockets).toBe(3);
  });

  test("normalizeState accepts the spellings people use", () => {
    expect(normalizeState("established")).toBe("ESTAB");
    expect(normalizeState("TIME_WAIT")).toBe("TIME-WAIT");
    expect(normalizeState("listen")).toBe("LISTEN");
    expect(normalizeState("fin-wait-1")).toBe("FIN-WAIT-1");
  });
});
