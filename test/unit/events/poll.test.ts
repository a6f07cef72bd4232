// The ss-poll fallback's diff on hand-made snapshots: what appeared, what changed, what vanished.
import { describe, expect, test } from "bun:test";
import { diffPolls } from "../../../src/events/poll.ts";
import type { HostSocket, HostSockets } from "../../../src/snapshot/collect.ts";
import type { ProcessInfo } from "../../../src/snapshot/proc.ts";

const NETNS = 1;
const info = (pid: number, name: string): ProcessInfo => ({
  pid, ppid: 1, name, uid: 0, user: "root", cmdline: [name], command_line: name, cgroup: null, unit: null, container: null, netns: NETNS, start_time_ticks: 1,
});
const processes = new Map([[10, info(10, "nginx")], [20, info(20, "curl")]]);

function tcp(pid: number, state: string, local: [string, number], peer: [string, number | null]): HostSocket {
  return {
    transport: "tcp", netid: "tcp", state, recv_q: 0, send_q: 0,
    local: { address: local[0], port: local[1], scope: null }, peer: { address: peer[0], port: peer[1], scope: null },
    inode: 1, peer_inode: null, uid: 0, processes: [], timer: null, cgroup: null, netns: NETNS, owners: [{ pid, fd: 3 }],
  };
}
const host = (...sockets: HostSocket[]): HostSockets => ({ sockets, processes, namespaces: [], warnings: [], elapsedMs: 1 });

const listener = tcp(10, "LISTEN", ["0.0.0.0", 80], ["0.0.0.0", null]);
const client = tcp(20, "ESTAB", ["127.0.0.1", 50000], ["127.0.0.1", 80]);
const server = tcp(10, "ESTAB", ["127.0.0.1", 80], ["127.0.0.1", 50000]);

describe("diffPolls", () => {
  test("the first poll reports nothing; it only learns what exists", () => {
    expect(diffPolls(null, host(listener, client, server), 1000).events).toEqual([]);
  });

  test("a new connection is a connect for its client and an accept for the listener's process, with pids", () => {
    const first = diffPolls(null, host(listener), 1000);
    const { events } = diffPolls(first.seen, host(listener, client, server), 2000);
    expect(events.map((e) => [e.type, e.pid, e.comm, e.remote_port, e.source])).toEqual([
      ["connect", 20, "curl", 80, "ss-poll"],
      ["accept", 10, "nginx", 50000, "ss-poll"],
    ]);
  });

  test("a connection that vanished is a close, a SYN-SENT that vanished a failure; a new listener is a listen", () => {
    const syn = tcp(20, "SYN-SENT", ["127.0.0.1", 50001], ["127.0.0.1", 81]);
    const first = diffPolls(null, host(listener, client, server, syn), 1000);
    const newListener = tcp(10, "LISTEN", ["0.0.0.0", 8080], ["0.0.0.0", null]);
    const { events } = diffPolls(first.seen, host(listener, newListener), 2000);
    expect(events.map((e) => [e.type, e.pid, e.local_port, e.remote_port])).toEqual([
      ["listen", 10, 8080, null],
      ["close", 20, 50000, 80],
      ["close", 10, 80, 50000],
      ["connect_failed", 20, 50001, 81],
    ]);
  });

  test("SYN-SENT then ESTAB is reported once, as a connect", () => {
    const syn = tcp(20, "SYN-SENT", ["127.0.0.1", 50000], ["127.0.0.1", 80]);
    const first = diffPolls(null, host(listener), 1000);
    const second = diffPolls(first.seen, host(listener, syn), 2000);
    expect(second.events).toEqual([]);
    const third = diffPolls(second.seen, host(listener, client, server), 3000);
    expect(third.events.filter((e) => e.pid === 20).map((e) => e.type)).toEqual(["connect"]);
  });
});
