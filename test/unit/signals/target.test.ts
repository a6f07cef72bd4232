import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PF_KTHREAD } from "../../../src/signals/policy.ts";
import { parseStat } from "../../../src/snapshot/proc.ts";
import { ancestorsOf, childrenOf, readTarget, startTimeIso, watchAfterSignal } from "../../../src/signals/target.ts";
import { ROOT, spawnSleeper } from "../../helpers.ts";

const stat = (name: string) => readFileSync(join(ROOT, "test/fixtures/proc/stat", name), "utf8");

/** Children started by the tests; each is killed by its pid in afterAll, even when a test fails. */
const children: Bun.Subprocess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});
async function sleeper(): Promise<Bun.Subprocess> {
  const child = await spawnSleeper();
  children.push(child);
  return child;
}
const never = new AbortController().signal;

describe("parseStat", () => {
  test("reads state, ppid, flags and start time after a comm with parentheses and a fake state", () => {
    expect(parseStat(stat("captured-comm-looks-like-fields.txt"))).toEqual({ state: "R", ppid: 15131, flags: 4194304, start_time_ticks: 83810 });
    expect(parseStat(stat("captured-comm-with-parens.txt"))).toEqual({ state: "R", ppid: 15089, flags: 4194304, start_time_ticks: 82203 });
  });

  test("kthreadd carries PF_KTHREAD; a user process does not", () => {
    expect(parseStat(stat("captured-kthreadd.txt"))!.flags & PF_KTHREAD).toBe(PF_KTHREAD);
    expect(parseStat(stat("captured-comm-with-parens.txt"))!.flags & PF_KTHREAD).toBe(0);
  });

  test("truncated or garbled text is null", () => {
    expect(parseStat("42 (x) S 1 2 3")).toBeNull();
    expect(parseStat("no parenthesis")).toBeNull();
  });
});

describe("the live process table", () => {
  test("readTarget reads a child: its comm, argv, uids, thread group and start time", async () => {
    const child = await sleeper();
    const target = readTarget(child.pid)!;
    expect(target.facts).toMatchObject({ pid: child.pid, tgid: child.pid, ppid: process.pid, name: "sleep", cmdline: ["sleep", "60"] });
    expect(target.facts.effective_uid).toBe(process.geteuid!());
    expect(target.facts.real_uid).toBe(process.getuid!());
    expect(target.stat.start_time_ticks).toBeGreaterThan(0);
    expect(Date.parse(startTimeIso(target.stat.start_time_ticks)!)).toBeGreaterThan(Date.now() - 60_000);
  });

  test("readTarget of a pid that runs nothing, or of pid ≤ 0, is null", () => {
    expect(readTarget(0)).toBeNull();
    expect(readTarget(-1)).toBeNull();
    expect(readTarget(2 ** 22 + 1)).toBeNull();
  });

  test("ancestorsOf walks to pid 1 and childrenOf finds a child", async () => {
    const ancestors = ancestorsOf(process.pid);
    expect(ancestors.has(process.ppid)).toBe(true);
    expect(ancestors.has(1)).toBe(true);
    expect(ancestors.has(process.pid)).toBe(false);
    const child = await sleeper();
    expect(childrenOf(process.pid).children.map((entry) => entry.pid)).toContain(child.pid);
  });

  test("watchAfterSignal reports running, then exited once the child is gone", async () => {
    const child = await sleeper();
    const start = readTarget(child.pid)!.stat.start_time_ticks;
    const running = await watchAfterSignal(child.pid, start, 60, performance.now(), never);
    expect(running).toMatchObject({ outcome: "running", state: "S", exited_after_ms: null });
    expect(running.waited_ms).toBeGreaterThanOrEqual(60);
    const sent = performance.now();
    child.kill("SIGTERM");
    const exited = await watchAfterSignal(child.pid, start, 3000, sent, never);
    expect(exited.outcome).toBe("exited");
    expect(exited.exited_after_ms).toBeLessThan(3000);
  });

  test("watchAfterSignal reports a zombie that its parent does not reap", async () => {
    // sh starts sleep and execs into a sleep that never waits: the first child stays a zombie.
    const parent = Bun.spawn(["sh", "-c", "sleep 0.05 & exec sleep 60"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    children.push(parent);
    let zombiePid = 0;
    for (let i = 0; i < 100 && zombiePid === 0; i++) {
      await Bun.sleep(20);
      zombiePid = childrenOf(parent.pid).children[0]?.pid ?? 0;
    }
    expect(zombiePid).toBeGreaterThan(0);
    const start = readTarget(zombiePid)?.stat.start_time_ticks ?? 0;
    const watched = await watchAfterSignal(zombiePid, start, 500, performance.now(), never);
    expect(watched).toMatchObject({ outcome: "zombie", state: "Z" });
  });
});
