// The event tools' shared filter: arguments → filter (destination checked once for every tool), and
// the live predicate.
import { describe, expect, test } from "bun:test";
import { makeEvent } from "../../../src/events/model.ts";
import { eventMatches, filterOf } from "../../../src/events/view.ts";

const connect = makeEvent({ ts_ms: 1, type: "connect", source: "ebpf", pid: 7, comm: "curl", protocol: "tcp", remote_ip: "10.1.2.3", remote_port: 443, local_port: 50000 });

describe("filterOf", () => {
  test("a destination is an IP or a CIDR block; anything else is refused by name", () => {
    expect(eventMatches(connect, filterOf({ destination: "10.1.2.3" }))).toBe(true);
    expect(eventMatches(connect, filterOf({ destination: "10.0.0.0/8" }))).toBe(true);
    expect(eventMatches(connect, filterOf({ destination: "10.1.2.4" }))).toBe(false);
    expect(() => filterOf({ destination: "example.com" })).toThrow('destination: "example.com" is not an IP address or CIDR block');
  });

  test("process is an alias of command, and type may be one or several", () => {
    expect(filterOf({ process: "curl", type: "connect" })).toMatchObject({ command: "curl", types: ["connect"] });
    expect(filterOf({ type: ["connect", "close"] }).types).toEqual(["connect", "close"]);
  });
});

describe("eventMatches", () => {
  test("command matches the process name, and the program path of exec events only", () => {
    expect(eventMatches(connect, { command: "CUR" })).toBe(true);
    const unixConnect = { ...connect, protocol: "unix" as const, path: "/run/curl-helper.sock", comm: "app" };
    expect(eventMatches(unixConnect, { command: "curl" })).toBe(false);
    const exec = makeEvent({ ts_ms: 1, type: "exec", source: "ebpf", pid: 8, comm: "python3", path: "/opt/curl-wrapper/bin/python3" });
    expect(eventMatches(exec, { command: "curl" })).toBe(true);
  });

  test("port is either end", () => {
    expect(eventMatches(connect, { port: 443 })).toBe(true);
    expect(eventMatches(connect, { port: 50000 })).toBe(true);
    expect(eventMatches(connect, { port: 80 })).toBe(false);
  });
});
