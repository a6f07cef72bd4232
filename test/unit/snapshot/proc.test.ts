import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { listPids, mapSocketInodes, parseCgroup, parseStat, readProcess, userName } from "../../../src/snapshot/proc.ts";
import { exec, which } from "../../../src/util/exec.ts";
import { isRoot, ROOT, spawnSleeper, testIf } from "../../helpers.ts";

const FIXTURES = join(ROOT, "test/fixtures/proc");
const fixture = (...parts: string[]) => readFileSync(join(FIXTURES, ...parts), "utf8");

const PYTHON = which("python3");
const testWithPython = testIf(PYTHON !== null, "python3");

/** Children started by the tests; each is killed by its pid in afterAll, even when a test fails. */
const children: Bun.Subprocess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

/** Starts a python3 child running `code`, which prints one line when ready; returns the child and that line. */
async function startPython(code: string): Promise<{ child: Bun.Subprocess<"ignore", "pipe", "inherit">; line: string }> {
  // The sleep bounds the child's life if afterAll never runs (a crashed test runner).
  const child = Bun.spawn([PYTHON!, "-c", code], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  children.push(child);
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`python child exited before it was ready (code ${await child.exited})`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { child, line: text.trim() };
}

/** pid 2 is kthreadd only in the host's pid namespace. */
const kthreadd = (() => {
  try {
    return readFileSync("/proc/2/comm", "utf8").trim() === "kthreadd";
  } catch {
    return false;
  }
})();
const ownNetns = Number(/\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))![1]);

describe("parseCgroup", () => {
  const cases = readdirSync(join(FIXTURES, "cgroup")).filter((name) => name.endsWith(".txt")).sort();

  test("has both captured and constructed fixtures to run on", () => {
    expect(cases.some((name) => name.startsWith("captured-"))).toBe(true);
    expect(cases.some((name) => name.startsWith("constructed-rhel8-v1-"))).toBe(true);
    expect(cases.some((name) => name.startsWith("constructed-rhel9-v2-"))).toBe(true);
  });

  for (const name of cases) {
    const base = name.replace(/\.txt$/, "");
    test(`reads ${base} as its expected .json says`, () => {
      expect(parseCgroup(fixture("cgroup", name))).toEqual(JSON.parse(fixture("cgroup", `${base}.json`)));
    });
  }

  test("prefers a non-root v2 path over the v1 lines on a hybrid host", () => {
    const text = "9:name=systemd:/system.slice/sshd.service\n4:memory:/system.slice/sshd.service\n0::/system.slice/sshd.service\n";
    expect(parseCgroup(text)).toEqual({ path: "/system.slice/sshd.service", unit: "sshd.service", container: null });
  });

  test("falls back to name=systemd when the unified tree of a hybrid host is empty", () => {
    const text = "4:memory:/elsewhere\n1:name=systemd:/system.slice/crond.service\n0::/\n";
    expect(parseCgroup(text)).toEqual({ path: "/system.slice/crond.service", unit: "crond.service", container: null });
  });

  test("finds a container named only in a v1 controller line, without guessing a unit", () => {
    const id = "ab".repeat(32);
    expect(parseCgroup(`4:memory:/docker/${id}\n1:name=systemd:/system.slice/docker.service\n`)).toEqual({
      path: "/system.slice/docker.service",
      unit: null,
      container: { runtime: "docker", id },
    });
  });

  test("keeps a path that contains a colon whole", () => {
    expect(parseCgroup("0::/system.slice/a:b.service\n").path).toBe("/system.slice/a:b.service");
  });

  test("answers nulls for empty or unreadable text", () => {
    expect(parseCgroup("")).toEqual({ path: null, unit: null, container: null });
    expect(parseCgroup("garbage\n")).toEqual({ path: null, unit: null, container: null });
  });

  test("does not take a short hex id or a conmon scope for a container", () => {
    expect(parseCgroup("0::/system.slice/docker-abc123.scope\n").container).toBeNull();
    expect(parseCgroup(`0::/machine.slice/libpod-conmon-${"cd".repeat(32)}.scope\n`).container).toBeNull();
  });
});

describe("parseStat", () => {
  test("reads a captured stat whose comm has spaces and parentheses", () => {
    expect(parseStat(fixture("stat", "captured-comm-with-parens.txt"))).toEqual({ ppid: 15089, start_time_ticks: 82203, state: "R", flags: 4194304 });
  });

  test("reads a captured stat whose comm looks like the fields that follow it", () => {
    // comm is "e) Z 1 2 (3)": a parser that stops at the first ')' reads state "Z" and ppid 1.
    expect(parseStat(fixture("stat", "captured-comm-looks-like-fields.txt"))).toEqual({ ppid: 15131, start_time_ticks: 83810, state: "R", flags: 4194304 });
  });

  test("reads kthreadd's stat, whose ppid is 0", () => {
    expect(parseStat(fixture("stat", "captured-kthreadd.txt"))).toMatchObject({ ppid: 0, state: "S" });
  });

  test("returns null for text that is not a stat line", () => {
    expect(parseStat("")).toBeNull();
    expect(parseStat("123 (x) S 1")).toBeNull();
  });

  testWithPython("parses the live stat of a process that renamed itself to 'a) b (c'", async () => {
    const { child, line } = await startPython(
      "import sys,time\nopen('/proc/self/comm','w').write('a) b (c')\nprint('ready', flush=True)\ntime.sleep(30)",
    );
    expect(line).toBe("ready");
    const text = readFileSync(`/proc/${child.pid}/stat`, "utf8");
    // The state is S once python sleeps, but may still be R just after it printed.
    const state = new RegExp(`^${child.pid} \\(a\\) b \\(c\\) ([A-Z]) `).exec(text)?.[1];
    expect(state).toBeDefined();
    expect(parseStat(text)).toMatchObject({ ppid: process.pid, state });
    expect(readProcess(child.pid)?.name).toBe("a) b (c");
    child.kill("SIGKILL");
  });
});

describe("readProcess", () => {
  test("describes the test's own child: pid, ppid, name, user, cmdline, netns", async () => {
    const child = await spawnSleeper(30);
    children.push(child);
    const info = readProcess(child.pid);
    expect(info).toMatchObject({
      pid: child.pid,
      ppid: process.pid,
      name: "sleep",
      uid: process.getuid!(),
      user: (await exec(["id", "-un"])).stdout.trim(),
      cmdline: ["sleep", "30"],
      command_line: "sleep 30",
      netns: ownNetns,
    });
    expect(info!.start_time_ticks).toBeGreaterThan(0);
    expect(readProcess(child.pid)!.start_time_ticks).toBe(info!.start_time_ticks);
    child.kill("SIGKILL");
  });

  test("returns null for a process that has exited", async () => {
    const child = Bun.spawn(["true"]);
    await child.exited; // reaped by bun, so /proc/PID is gone
    expect(readProcess(child.pid)).toBeNull();
    expect(readProcess(2 ** 22 + 1)).toBeNull(); // above pid_max's ceiling: never exists
  });

  testIf(kthreadd, "kthreadd at pid 2 (the host's pid namespace)")("shows a kernel thread in brackets with an empty cmdline", () => {
    expect(readProcess(2)).toMatchObject({ pid: 2, ppid: 0, name: "kthreadd", cmdline: [], command_line: "[kthreadd]", user: "root" });
  });

  test("reads this test process with the same cgroup as /proc/self/cgroup", () => {
    const info = readProcess(process.pid)!;
    expect(info.cgroup).toBe(parseCgroup(readFileSync("/proc/self/cgroup", "utf8")).path);
    expect(info.cmdline[0]).toContain("bun");
  });
});

describe("userName", () => {
  test("names uid 0 from /etc/passwd and gives an unknown uid back as text", () => {
    expect(userName(0)).toBe("root");
    expect(userName(3_999_999_999)).toBe("3999999999");
  });
});

describe("listPids", () => {
  test("lists this process among ascending pids", () => {
    const pids = listPids();
    expect(pids).toContain(process.pid);
    expect(pids).toEqual([...pids].sort((a, b) => a - b));
  });
});

describe("mapSocketInodes", () => {
  /** The inode of the LISTEN socket on 127.0.0.1:port, from /proc/net/tcp (local address is hex, little-endian on x86). */
  function listenInode(port: number): number | null {
    const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
    for (const row of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
      const f = row.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f[1] === local && f[3] === "0A") return Number(f[9]);
    }
    return null;
  }

  testWithPython("finds the inode of a listening socket a child holds, at the child's fd", async () => {
    const { child, line } = await startPython(
      "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\ntime.sleep(30)",
    );
    const port = Number(line);
    const inode = listenInode(port);
    expect(inode).not.toBeNull();

    const { byInode, unreadable } = mapSocketInodes([child.pid]);
    expect(unreadable).toEqual([]);
    const holders = byInode.get(inode!)!;
    expect(holders).toHaveLength(1);
    expect(holders[0]!.pid).toBe(child.pid);
    expect(readlinkSync(`/proc/${child.pid}/fd/${holders[0]!.fd}`)).toBe(`socket:[${inode}]`);

    // The full scan finds it too, and agrees with ss's own inode column.
    expect(mapSocketInodes().byInode.get(inode!)).toEqual(holders);
    const ss = await exec(["ss", "-tlneH", `sport = :${port}`]);
    if (ss.code === 0) expect(ss.stdout).toContain(`ino:${inode}`);
    child.kill("SIGKILL");
  });

  test("skips a pid that no longer exists without calling it unreadable", async () => {
    const child = Bun.spawn(["true"]);
    await child.exited;
    expect(mapSocketInodes([child.pid])).toEqual({ byInode: new Map(), unreadable: [] });
  });

  // Run as root, the unreadable case is shown by dropping to nobody in a child (setpriv, util-linux).
  testIf(isRoot && which("setpriv") !== null && PYTHON !== null, "root, setpriv and python3")(
    "reports root's process as unreadable to an unprivileged caller, but not a kernel thread",
    async () => {
      const { child } = await startPython("import socket,time\ns=socket.socket()\nprint('ready', flush=True)\ntime.sleep(30)");
      const pids = kthreadd ? [child.pid, 2] : [child.pid];
      const script = `import { mapSocketInodes } from ${JSON.stringify(join(ROOT, "src/snapshot/proc.ts"))};
        const r = mapSocketInodes(${JSON.stringify(pids)}); console.log(JSON.stringify({ size: r.byInode.size, unreadable: r.unreadable }));`;
      const result = await exec(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script],
        { env: { HOME: "/tmp", BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" }, timeoutMs: 15_000 },
      );
      expect(result.stderr).toBe("");
      expect(JSON.parse(result.stdout)).toEqual({ size: 0, unreadable: [child.pid] });
      child.kill("SIGKILL");
    },
  );
});
