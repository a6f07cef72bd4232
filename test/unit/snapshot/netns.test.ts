import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { inNamespace, listNetworkNamespaces, NETNS_RUN_DIR, type NetNamespace } from "../../../src/snapshot/netns.ts";
import { exec, which } from "../../../src/util/exec.ts";
import { firstLine, isRoot, testIf } from "../../helpers.ts";

const ownNetns = Number(/\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))![1]);

describe("inNamespace", () => {
  const other = { inode: ownNetns + 1, is_host: false, process_count: 1 };

  test("leaves the argv alone for our own namespace", () => {
    const own: NetNamespace = { inode: ownNetns, pid: process.pid, name: null, is_host: true, process_count: 1 };
    expect(inNamespace(own, ["ss", "-tlnH"])).toEqual(["ss", "-tlnH"]);
  });

  test("enters a namespace known only by a pid through that pid's ns/net", () => {
    expect(inNamespace({ ...other, pid: 4242, name: null }, ["ss", "-tlnH"])).toEqual(["nsenter", "--net=/proc/4242/ns/net", "--", "ss", "-tlnH"]);
  });

  testIf(which("nsenter") !== null, "nsenter")("enters a named namespace by its /run/netns file, even when a pid is known", () => {
    expect(inNamespace({ ...other, pid: 4242, name: "blue" }, ["ss", "-xaH"])).toEqual(["nsenter", "--net=/run/netns/blue", "--", "ss", "-xaH"]);
    expect(inNamespace({ ...other, pid: null, name: "blue" }, ["ss"])).toEqual(["nsenter", "--net=/run/netns/blue", "--", "ss"]);
  });

  test("refuses a namespace with neither a pid nor a name", () => {
    expect(() => inNamespace({ ...other, pid: null, name: null }, ["ss"])).toThrow(/neither a process nor a name/);
  });
});

describe("listNetworkNamespaces", () => {
  test("lists our own namespace first, with this process counted in it", () => {
    const list = listNetworkNamespaces();
    const own = list.find((ns) => ns.inode === ownNetns);
    expect(own).toBeDefined();
    expect(own!.process_count).toBeGreaterThanOrEqual(1);
    expect(new Set(list.map((ns) => ns.inode)).size).toBe(list.length);
    // Run by CI in the host's namespace; is_host then marks ours and sorts it first.
    if (own!.is_host) expect(list[0]).toBe(own!);
  });
});

// A real namespace made with `ip netns add`, a listener inside it, and ss run through inNamespace.
const testAsRoot = testIf(isRoot && which("ip") !== null && which("nsenter") !== null && which("python3") !== null, "root, ip, nsenter and python3");

describe("listNetworkNamespaces and inNamespace on a real `ip netns` namespace", () => {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const name = `ipcscope-test-${suffix}`;
  const emptyName = `ipcscope-test-empty-${suffix}`;
  const staleName = `ipcscope-test-stale-${suffix}`;
  let listener: Bun.Subprocess<"ignore", "pipe", "inherit"> | null = null;
  let port = 0;
  let setupError: string | null = null;

  beforeAll(async () => {
    if (!isRoot) return;
    for (const ns of [name, emptyName]) {
      const added = await exec(["ip", "netns", "add", ns]);
      if (added.code !== 0) {
        setupError = `ip netns add ${ns}: ${added.stderr}`;
        return;
      }
    }
    // A fresh namespace's loopback is down, and 127.0.0.1 is unusable until it is up.
    await exec(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]);
    // `ip netns exec` execs python in place, so the child's pid is the listener's. The sleep
    // bounds its life should afterAll never run.
    listener = Bun.spawn(
      ["ip", "netns", "exec", name, which("python3")!, "-c",
        "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\ntime.sleep(60)"],
      { stdin: "ignore", stdout: "pipe", stderr: "inherit" },
    );
    port = Number((await firstLine(listener.stdout)).trim());
    if (!port) setupError = `the listener in ${name} did not print its port (exit ${listener.exitCode})`;
  });

  afterAll(async () => {
    if (listener && listener.exitCode === null) {
      listener.kill("SIGKILL");
      await listener.exited;
    }
    rmSync(`${NETNS_RUN_DIR}/${staleName}`, { force: true });
    if (isRoot) {
      await exec(["ip", "netns", "del", name]);
      await exec(["ip", "netns", "del", emptyName]);
    }
  });

  const find = (ns: string) => listNetworkNamespaces().find((n) => n.name === ns);

  testAsRoot("finds the namespace by name, with its inode and the listener's pid", () => {
    expect(setupError).toBeNull();
    const ns = find(name);
    expect(ns).toEqual({
      inode: statSync(`${NETNS_RUN_DIR}/${name}`).ino,
      pid: listener!.pid,
      name,
      is_host: false,
      process_count: 1,
    });
    expect(readlinkSync(`/proc/${listener!.pid}/ns/net`)).toBe(`net:[${ns!.inode}]`);
  });

  testAsRoot("runs ss inside it and sees the listener that the host's ss does not", async () => {
    expect(setupError).toBeNull();
    const ns = find(name)!;
    const inside = await exec(inNamespace(ns, ["ss", "-tlnH"]));
    expect(inside.code).toBe(0);
    expect(inside.stdout).toContain(`127.0.0.1:${port} `);
    // Entering by pid reaches the same namespace as entering by name.
    const byPid = await exec(inNamespace({ ...ns, name: null }, ["ss", "-tlnH"]));
    expect(byPid.stdout).toContain(`127.0.0.1:${port} `);
    const host = await exec(["ss", "-tlnH", `sport = :${port}`]);
    expect(host.code).toBe(0);
    expect(host.stdout).not.toContain(`127.0.0.1:${port} `);
  });

  testAsRoot("lists a named namespace that no process is in, with pid null, and can enter it", async () => {
    expect(setupError).toBeNull();
    const ns = find(emptyName);
    expect(ns).toMatchObject({ inode: statSync(`${NETNS_RUN_DIR}/${emptyName}`).ino, pid: null, is_host: false, process_count: 0 });
    const inside = await exec(inNamespace(ns!, ["ss", "-tlnH"]));
    expect(inside).toMatchObject({ code: 0, stdout: "" });
  });

  testAsRoot("ignores a leftover file in /run/netns that is no longer a namespace mount", () => {
    expect(setupError).toBeNull();
    mkdirSync(NETNS_RUN_DIR, { recursive: true });
    writeFileSync(`${NETNS_RUN_DIR}/${staleName}`, "");
    expect(find(staleName)).toBeUndefined();
  });
});
