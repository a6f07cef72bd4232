import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fullLine, parseInetEndpoint, parseSs, parseSsInet, parseSsUnix, quickLine, type SsSocket } from "../../../src/snapshot/ss.ts";
import { ROOT } from "../../helpers.ts";

const FIXTURES = join(ROOT, "test/fixtures/ss");
const captures = readdirSync(FIXTURES).flatMap((distro) =>
  readdirSync(join(FIXTURES, distro))
    .filter((file) => file.endsWith(".txt"))
    .map((file) => ({ distro, name: file.replace(/\.txt$/, "") })),
);
const read = (distro: string, file: string) => readFileSync(join(FIXTURES, distro, file), "utf8");
const kindOf = (name: string) => (name.startsWith("unix") ? "unix" : "inet");

/** The line of a real capture that contains every needle (ports and paths are fixed by the capture script). */
function lineWith(file: string, ...needles: string[]): string {
  const lines = read("debian-12", file).split("\n").filter((line) => needles.every((needle) => line.includes(needle)));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/** The socket of that line, parsed alone. */
function fromCapture(file: string, ...needles: string[]): SsSocket {
  const lines = [lineWith(file, ...needles)];
  expect(lines).toHaveLength(1);
  const { sockets, skipped } = parseSs(lines[0]!, kindOf(file));
  expect(skipped).toEqual([]);
  return sockets[0]!;
}

describe("parseSs on real captures", () => {
  test("there are captures for inet and unix, with and without -p", () => {
    const names = captures.filter((c) => c.distro === "debian-12").map((c) => c.name).sort();
    expect(names).toEqual(["inet", "inet-p", "unix", "unix-p"]);
  });

  test.each(captures)("$distro/$name.txt parses to the reviewed $name.json", ({ distro, name }) => {
    const expected = JSON.parse(read(distro, `${name}.json`));
    expect(parseSs(read(distro, `${name}.txt`), kindOf(name))).toEqual(expected);
  });

  test.each(captures)("$distro/$name.txt has no skipped line and one socket per line", ({ distro, name }) => {
    const text = read(distro, `${name}.txt`);
    const { sockets, skipped } = parseSs(text, kindOf(name));
    expect(skipped).toEqual([]);
    expect(sockets).toHaveLength(text.split("\n").filter((line) => line.trim()).length);
  });

  test("the captures with and without -p list the same sockets, and only -p names processes", () => {
    for (const kind of ["inet", "unix"] as const) {
      const plain = parseSs(read("debian-12", `${kind}.txt`), kind).sockets;
      const withP = parseSs(read("debian-12", `${kind}-p.txt`), kind).sockets;
      const key = (s: SsSocket) => `${s.netid} ${s.local.address} ${s.local.port} ${s.peer.address} ${s.peer.port} ${s.inode}`;
      expect(plain.map(key).sort()).toEqual(withP.map(key).sort());
      expect(plain.every((s) => s.processes.length === 0)).toBe(true);
      expect(withP.some((s) => s.processes.length > 0)).toBe(true);
    }
  });

  test("the thin wrappers return the sockets of parseSs", () => {
    expect(parseSsInet(read("debian-12", "inet-p.txt"))).toEqual(parseSs(read("debian-12", "inet-p.txt"), "inet").sockets);
    expect(parseSsUnix(read("debian-12", "unix-p.txt"))).toEqual(parseSs(read("debian-12", "unix-p.txt"), "unix").sockets);
  });
});

describe("inet quirks seen in real output", () => {
  test("trailing padding spaces and runs of spaces between columns are ignored", () => {
    const line = lineWith("inet-p.txt", "LISTEN", "127.0.0.1:47101");
    expect(line).toMatch(/\S {2,}\S/);
    expect(line).toMatch(/ {2,}$/);
    const socket = fromCapture("inet-p.txt", "LISTEN", "127.0.0.1:47101");
    expect(socket.local).toEqual({ address: "127.0.0.1", port: 47101, scope: null });
    expect(socket.peer).toEqual({ address: "0.0.0.0", port: null, scope: null });
    expect(socket.cgroup).toBe("/");
  });

  test("IPv6 addresses lose their brackets and keep their text", () => {
    const socket = fromCapture("inet-p.txt", "LISTEN", "[::1]:47102");
    expect(socket.local).toEqual({ address: "::1", port: 47102, scope: null });
    expect(socket.peer).toEqual({ address: "::", port: null, scope: null });
  });

  test("a v4-mapped address stays ::ffff:127.0.0.1, on both ends of an accepted connection", () => {
    const socket = fromCapture("inet-p.txt", "ESTAB", "[::ffff:127.0.0.1]:47103");
    expect(socket.local.address).toBe("::ffff:127.0.0.1");
    expect(socket.peer.address).toBe("::ffff:127.0.0.1");
  });

  test("* is the wildcard of a dual-stack IPv6 socket, [::] of a v6only one", () => {
    expect(fromCapture("inet-p.txt", "LISTEN", "[::ffff:127.0.0.1]:47103").peer).toEqual({ address: "*", port: null, scope: null });
    expect(fromCapture("inet-p.txt", "LISTEN", "[::1]:47102").peer.address).toBe("::");
  });

  test("the device of SO_BINDTODEVICE becomes the scope, after the address and outside brackets", () => {
    expect(fromCapture("inet-p.txt", "0.0.0.0%lo:47104").local).toEqual({ address: "0.0.0.0", port: 47104, scope: "lo" });
    expect(fromCapture("inet-p.txt", "*%lo:47105").local).toEqual({ address: "*", port: 47105, scope: "lo" });
    expect(fromCapture("inet-p.txt", "[::]%lo:47106").local).toEqual({ address: "::", port: 47106, scope: "lo" });
  });

  test("a process name keeps its quotes, commas, spaces and parentheses, cut at the first ) by ss", () => {
    // The process was named `we"ird, (x)`; ss reads /proc/PID/stat up to the first ")".
    const socket = fromCapture("inet-p.txt", "LISTEN", "127.0.0.1:47101");
    expect(socket.processes).toEqual([{ name: 'we"ird, (x', pid: expect.any(Number), fd: 3 }]);
  });

  test('a process name that imitates ss syntax (x",pid=1,fd=2) is read whole', () => {
    const socket = fromCapture("inet-p.txt", "127.0.0.1:47112");
    expect(socket.processes).toHaveLength(1);
    expect(socket.processes[0]!.name).toBe('x",pid=1,fd=2');
    expect(socket.processes[0]!.fd).toBe(3);
    expect(socket.processes[0]!.pid).not.toBe(1);
  });

  test("a socket shared after fork lists every process that holds it", () => {
    const socket = fromCapture("inet-p.txt", "127.0.0.1:47110");
    expect(socket.processes.map((p) => p.name).sort()).toEqual(["shared kid 1", "shared kid 2", "shared parent"]);
    expect(socket.processes.map((p) => p.fd)).toEqual([3, 3, 3]);
    expect(new Set(socket.processes.map((p) => p.pid)).size).toBe(3);
  });

  test("TIME-WAIT and orphaned sockets have ino:0, read as no inode, and no process or cgroup", () => {
    for (const needle of ["TIME-WAIT", "FIN-WAIT-2"]) {
      const socket = fromCapture("inet-p.txt", needle);
      expect(socket.inode).toBeNull();
      expect(socket.processes).toEqual([]);
      expect(socket.cgroup).toBeNull();
      expect(socket.timer).toMatch(/^timewait,\d+sec,0$/);
    }
  });

  test("uid is printed only for non-root owners", () => {
    expect(fromCapture("inet-p.txt", "127.0.0.1:47111").uid).toBe(65534);
    expect(fromCapture("inet-p.txt", "127.0.0.1:47110").uid).toBeNull();
  });

  test("the timer is kept raw, for keepalive and SYN retransmission", () => {
    expect(fromCapture("inet-p.txt", "keepalive").timer).toMatch(/^keepalive,\d+min,0$/);
    const synSent = parseSsInet(read("debian-12", "inet-p.txt")).filter((s) => s.state === "SYN-SENT");
    expect(synSent.length).toBeGreaterThan(0);
    for (const socket of synSent) expect(socket.timer).toMatch(/^on,\d+m?s,\d+$/);
  });

  test("raw sockets print no -e extras, so they have no inode, and their port is the IP protocol", () => {
    const icmp = fromCapture("inet-p.txt", "127.0.0.1:1 ");
    expect(icmp).toMatchObject({ transport: "raw", netid: "raw", state: "UNCONN", inode: null, cgroup: null });
    expect(icmp.local).toEqual({ address: "127.0.0.1", port: 1, scope: null });
    expect(fromCapture("inet-p.txt", "[::1]:58").local.port).toBe(58);
  });

  test("UDP queues count memory: one 3-byte datagram shows as 832 in Recv-Q", () => {
    expect(fromCapture("inet-p.txt", "UNCONN", "[::1]:47108").recv_q).toBe(832);
  });

  test("a listener's Recv-Q is its accept queue and Send-Q its backlog", () => {
    const socket = fromCapture("inet-p.txt", "LISTEN", "127.0.0.1:47115");
    expect([socket.recv_q, socket.send_q]).toEqual([1, 0]);
  });

  test("the shutdown mark (--> after the peer closed) and v6only:N are not mistaken for the cgroup", () => {
    expect(fromCapture("inet-p.txt", "CLOSE-WAIT").cgroup).toBe("/");
    expect(fromCapture("inet-p.txt", "[::]%lo:47106").cgroup).toBe("/");
  });
});

describe("unix quirks seen in real output", () => {
  test("the port column is the socket's inode and the peer's column its peer's inode", () => {
    // The accepted socket carries the listener's path; the client has none.
    const server = fromCapture("unix-p.txt", "ESTAB", "listen.sock");
    const client = parseSsUnix(read("debian-12", "unix-p.txt")).find((s) => s.inode === server.peer_inode)!;
    expect(client.peer_inode).toBe(server.inode);
    expect(server.local.address).toBe("/tmp/ipcscope-ss/listen.sock");
    expect(client.local.address).toBe("*");
    expect([server.recv_q, client.send_q]).toEqual([7, 768]); // 7 bytes unread; the sender counts memory
  });

  test("ss prints * for the peer's path even when the peer has one", () => {
    const server = fromCapture("unix-p.txt", "ESTAB", "listen.sock");
    const client = parseSsUnix(read("debian-12", "unix-p.txt")).find((s) => s.inode === server.peer_inode)!;
    expect(client.peer).toEqual({ address: "*", port: null, scope: null });
  });

  test("a listener's peer inode 0 reads as no peer", () => {
    const socket = fromCapture("unix-p.txt", "LISTEN", "listen.sock");
    expect(socket).toMatchObject({ state: "LISTEN", peer_inode: null, inode: expect.any(Number) });
  });

  test("ino:N of a bound unix socket is its file's inode, not the socket's, and is ignored", () => {
    const line = lineWith("unix.txt", "LISTEN", "listen.sock");
    const column = Number(/listen\.sock\s+(\d+)\s/.exec(line)![1]);
    const file = Number(/ ino:(\d+) /.exec(line)![1]);
    expect(column).not.toBe(file);
    expect(fromCapture("unix.txt", "LISTEN", "listen.sock").inode).toBe(column);
  });

  test("a path with a space is kept whole", () => {
    expect(fromCapture("unix-p.txt", "with space.sock").local.address).toBe("/tmp/ipcscope-ss/with space.sock");
  });

  test("abstract names start with @", () => {
    const socket = fromCapture("unix-p.txt", "LISTEN", "@ipcscope-ss-abstract");
    expect(socket).toMatchObject({ netid: "u_seq", state: "LISTEN", local: { address: "@ipcscope-ss-abstract" } });
  });

  test("a unix socket shared after fork lists every process", () => {
    const pair = parseSsUnix(read("debian-12", "unix-p.txt")).filter((s) => s.processes.some((p) => p.name === "shared parent"));
    expect(pair).toHaveLength(2);
    for (const socket of pair) expect(socket.processes.map((p) => p.name).sort()).toEqual(["shared kid 1", "shared kid 2", "shared parent"]);
  });

  test("every unix socket has transport unix and the printed netid", () => {
    const netids = new Set(parseSsUnix(read("debian-12", "unix.txt")).map((s) => `${s.transport}/${s.netid}`));
    expect([...netids].sort()).toEqual(["unix/u_dgr", "unix/u_seq", "unix/u_str"]);
  });
});

describe("quirks of other ss versions", () => {
  test("ss before 4.x printed IPv6 without brackets and * for the IPv4 wildcard", () => {
    const [socket] = parseSsInet("tcp    LISTEN     0      128    :::22    :::*    ino:1 sk:ffff8\n");
    expect(socket!.local).toEqual({ address: "::", port: 22, scope: null });
    expect(socket!.peer).toEqual({ address: "::", port: null, scope: null });
    expect(parseSsInet("tcp LISTEN 0 128 *:22 *:*")[0]!.local).toEqual({ address: "*", port: 22, scope: null });
    expect(parseSsInet("tcp ESTAB 0 0 ::ffff:127.0.0.1:8080 ::ffff:127.0.0.1:5000")[0]!.local.address).toBe("::ffff:127.0.0.1");
  });

  test("columns glued together by a too narrow column are split on the state name", () => {
    const [unix] = parseSsUnix("u_seqESTAB 0      0      * 30324 * 30323");
    expect(unix).toMatchObject({ netid: "u_seq", state: "ESTAB", inode: 30324, peer_inode: 30323 });
    const [tcp] = parseSsInet("tcp   CLOSE-WAIT1      0      127.0.0.1:1 127.0.0.1:2");
    expect(tcp).toMatchObject({ netid: "tcp", state: "CLOSE-WAIT", recv_q: 1, send_q: 0 });
  });

  test("unix inodes printed negative by older ss (%d) are read as unsigned", () => {
    const [socket] = parseSsUnix("u_str ESTAB 0 0 * -2147483000 * -1");
    expect(socket!.inode).toBe(2 ** 32 - 2147483000);
    expect(socket!.peer_inode).toBe(2 ** 32 - 1);
  });

  test("a peer inode printed as * reads as no peer", () => {
    expect(parseSsUnix("u_dgr UNCONN 0 0 /run/x.sock 123 * *")[0]!.peer_inode).toBeNull();
  });

  test("an ICMPv6 raw socket labelled icmp6 is a raw socket", () => {
    expect(parseSsInet("icmp6 UNCONN 0 0 *:58 *:*")[0]!.transport).toBe("raw");
  });

  test("a header line (ss run without -H) is ignored, not skipped", () => {
    const text = "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\ntcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n";
    expect(parseSs(text, "inet")).toMatchObject({ skipped: [], sockets: [{ local: { port: 22 } }] });
    expect(parseSs("State Recv-Q Send-Q Local Address:Port Peer Address:Port\n", "inet")).toEqual({ sockets: [], skipped: [] });
  });

  test("CRLF line ends and blank lines are harmless", () => {
    expect(parseSs("\r\n\ntcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\r\n\r\n", "inet")).toMatchObject({ skipped: [], sockets: [{ state: "LISTEN" }] });
  });

  test("a cgroup path with a space runs to the next key", () => {
    const [socket] = parseSsInet("tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* uid:1000 ino:5 sk:1 cgroup:/user.slice/my app.scope v6only:0 <->");
    expect(socket).toMatchObject({ cgroup: "/user.slice/my app.scope", uid: 1000, inode: 5 });
  });
});

describe("the users:((...)) parser", () => {
  const users = (list: string) => parseSsInet(`tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(${list}) ino:7 sk:1`)[0]!;

  test("reads several owners and what follows them", () => {
    const socket = users('("nginx",pid=10,fd=6),("nginx",pid=11,fd=6),("nginx",pid=12,fd=6)');
    expect(socket.processes.map((p) => p.pid)).toEqual([10, 11, 12]);
    expect(socket.inode).toBe(7);
  });

  test("reads a name holding ) or a fake \",pid=N,fd=N) whole, when the list only fits that way", () => {
    // ss 6.1 cuts names at ")", but another reader of the comm might not.
    expect(users('("a",pid=1,fd=2)",pid=9,fd=4)').processes).toEqual([{ name: 'a",pid=1,fd=2)', pid: 9, fd: 4 }]);
    expect(users('("x)",pid=1,fd=2),("y",pid=3,fd=4)').processes.map((p) => p.name)).toEqual(["x)", "y"]);
  });

  test("splits an ambiguous list at the first place it can: two owners rather than one strange name", () => {
    // `("a",pid=1,fd=2),("b",pid=9,fd=4)` is also one process named `a",pid=1,fd=2),("b`.
    expect(users('("a",pid=1,fd=2),("b",pid=9,fd=4)').processes.map((p) => p.name)).toEqual(["a", "b"]);
  });

  test("reads an empty name and a name that is only spaces", () => {
    expect(users('("",pid=1,fd=2),("  ",pid=3,fd=4)').processes.map((p) => p.name)).toEqual(["", "  "]);
  });

  test("reads 5000 owners quickly", () => {
    const list = Array.from({ length: 5000 }, (_, i) => `("worker ${i}",pid=${i + 1},fd=3)`).join(",");
    const started = performance.now();
    expect(users(list).processes).toHaveLength(5000);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("gives up quickly on a long broken list instead of backtracking forever", () => {
    const list = Array.from({ length: 2000 }, (_, i) => `("w",pid=${i + 1},fd=3)`).join(",");
    const started = performance.now();
    const { sockets, skipped } = parseSs(`tcp LISTEN 0 1 0.0.0.0:22 0.0.0.0:* users:(${list}x ino:1`, "inet");
    expect(sockets).toEqual([]);
    expect(skipped).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("lines that cannot be parsed", () => {
  const garbage = [
    "garbage",
    "tcp",
    "tcp LISTEN",
    "tcp LISTEN 0 128",
    "tcp LISTEN x y 0.0.0.0:22 0.0.0.0:*",
    "tcp LISTEN 0 128 0.0.0.0 0.0.0.0:*",
    "tcp LISTEN 0 128 0.0.0.0:ssh 0.0.0.0:*",
    "tcp LISTEN 0 128 :22 0.0.0.0:*",
    "tcp LISTEN 0 128 [::1:22 0.0.0.0:*",
    "tcp LISTEN 0 128 0.0.0.0%:22 0.0.0.0:*",
    "tcp LISTEN 0 128 0.0.0.0:99999 0.0.0.0:*",
    'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("broken',
    "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* timer:(on,1ms",
    "nl UNCONN 0 0 rtnl:kernel *",
    "u_str ESTAB 0 0 * 1 * 2",
    "\u0000\u0001\u0002",
    "(((((((((((",
    "users:((",
  ];

  test.each(garbage)("%p goes to skipped in inet mode, never thrown", (line) => {
    const result = parseSs(`${line}\ntcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n`, "inet");
    expect(result.skipped).toEqual([line]);
    expect(result.sockets).toHaveLength(1);
  });

  test.each(["garbage", "u_str ESTAB 0 0", "u_str ESTAB 0 0 * x * y", "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*", 'u_str ESTAB 0 0 * 1 * 2 users:(("x']) (
    "%p goes to skipped in unix mode, never thrown",
    (line) => {
      expect(parseSs(line, "unix")).toEqual({ sockets: [], skipped: [line] });
    },
  );

  test("random bytes and random cuts of real lines never throw", () => {
    const real = read("debian-12", "inet-p.txt") + read("debian-12", "unix-p.txt");
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const start = Math.floor(random() * real.length);
      const cut = real.slice(start, start + Math.floor(random() * 300));
      const noise = Array.from({ length: 40 }, () => String.fromCharCode(Math.floor(random() * 128))).join("");
      for (const text of [cut, noise, cut + noise]) {
        for (const kind of ["inet", "unix"] as const) {
          const { sockets, skipped } = parseSs(text, kind);
          expect(sockets.length + skipped.length).toBeLessThanOrEqual(text.split("\n").length);
        }
      }
    }
  });
});

describe("parseInetEndpoint", () => {
  test.each([
    { text: "127.0.0.1:80", expected: { address: "127.0.0.1", port: 80, scope: null } },
    { text: "[::1]:443", expected: { address: "::1", port: 443, scope: null } },
    { text: "[fe80::1]%eth0:546", expected: { address: "fe80::1", port: 546, scope: "eth0" } },
    { text: "*:*", expected: { address: "*", port: null, scope: null } },
    { text: "0.0.0.0%lo:53", expected: { address: "0.0.0.0", port: 53, scope: "lo" } },
  ])("$text splits into address, port and scope", ({ text, expected }) => {
    expect(parseInetEndpoint(text)).toEqual(expected);
  });
});

describe("the quick line reader agrees with the full parser", () => {
  for (const { distro, name } of captures) {
    test(`${distro}/${name}: every line it reads, it reads the same; it reads all lines without -p`, () => {
      const lines = read(distro, `${name}.txt`).split("\n").map((line) => line.trimEnd()).filter((line) => line !== "");
      let quick = 0;
      for (const line of lines) {
        const fast = quickLine(line, kindOf(name));
        if (fast === undefined) continue;
        quick++;
        expect(fast).toEqual(fullLine(line, kindOf(name))!);
      }
      // users:((...)) and paths with spaces go the full way; all else of the no-p captures goes the quick way.
      const spaced = lines.filter((line) => line.includes("with space")).length;
      if (!name.endsWith("-p")) expect(quick).toBe(lines.length - spaced);
      else expect(quick).toBeLessThan(lines.length);
    });
  }

  test("lines it cannot be sure of go to the full parser", () => {
    const cases: [string, "inet" | "unix"][] = [
      ["u_str LISTEN 0 4096 /run/my app.sock 1234 * 0", "unix"], // a path with a space
      ["tcp ESTAB 0 0 127.0.0.1:5 127.0.0.1:6 cgroup:/a b ino:7", "inet"], // a cgroup with a space
      ['tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))', "inet"],
      ["u_seqESTAB 0 0 * 1 * 2", "unix"], // glued columns of old ss
      ["tcp ESTAB 0 0 127.0.0.1:5 127.0.0.1:6 timer:(on,1sec,0) x", "inet"], // an unknown word
    ];
    for (const [line, kind] of cases) {
      expect(quickLine(line, kind)).toBeUndefined();
      expect(parseSs(line, kind).sockets).toEqual([fullLine(line, kind)!]);
    }
  });
});
