import { describe, expect, test } from "bun:test";
import { ToolError, UsageError } from "../../../src/errors.ts";
import {
  checkSameProcess,
  checkTarget,
  constantTimeEqual,
  DEFAULT_POLICY,
  DEFAULT_TOKEN_TTL_MS,
  parseNameList,
  parseSignal,
  PF_KTHREAD,
  randomToken,
  type SignalPolicy,
  type TargetFacts,
  TokenStore,
  tokenTtlFromEnv,
} from "../../../src/signals/policy.ts";

describe("parseSignal", () => {
  test.each([
    ["SIGTERM", 15],
    ["TERM", 15],
    ["sigterm", 15],
    [" term ", 15],
    ["15", 15],
    [15, 15],
    ["KILL", 9],
    ["9", 9],
    ["hup", 1],
    ["SIGIOT", 6],
    ["poll", 29],
    ["SIGSTOP", 19],
  ] as const)("%p is signal %p", (input, number) => {
    expect(parseSignal(input).number).toBe(number);
  });

  test("names are returned in their SIG form with what the signal does", () => {
    expect(parseSignal("term")).toEqual({ name: "SIGTERM", number: 15, effect: expect.stringContaining("terminate") });
  });

  test.each(["SIGFOO", "0", "32", "SIGRTMIN", "-9", "9.5", ""])("%p is refused by name with the known signals", (input) => {
    expect(() => parseSignal(input)).toThrow(ToolError);
    expect(() => parseSignal(input)).toThrow(`sig_str: unknown signal ${JSON.stringify(input)}`);
    expect(() => parseSignal(input)).toThrow("SIGTERM (15)");
  });

  test("the parameter named in the refusal is the one the caller used", () => {
    expect(() => parseSignal("nope", "signal")).toThrow('signal: unknown signal "nope"');
  });
});

describe("parseNameList", () => {
  test("splits on commas and trims", () => {
    expect(parseNameList(" systemd, sshd,,root ", "--x")).toEqual(["systemd", "sshd", "root"]);
    expect(parseNameList("", "--x")).toEqual([]);
    expect(parseNameList(undefined, "--x")).toEqual([]);
  });
  test("refuses an entry with a space, naming the flag", () => {
    expect(() => parseNameList("systemd,ssh d", "--signal-deny-commands")).toThrow(UsageError);
    expect(() => parseNameList("systemd,ssh d", "--signal-deny-commands")).toThrow('--signal-deny-commands: "ssh d"');
  });
});

const users: Record<number, string> = { 0: "root", 1000: "alice", 1001: "bob" };
function facts(over: Partial<TargetFacts> = {}): TargetFacts {
  return {
    pid: 4242,
    tgid: over.pid ?? 4242,
    ppid: 900,
    name: "sleep",
    cmdline: ["/usr/bin/sleep", "60"],
    state: "S",
    flags: 0x00400000,
    real_uid: 1000,
    effective_uid: 1000,
    userOf: (uid) => users[uid] ?? String(uid),
    ...over,
  };
}
const enabled: SignalPolicy = { ...DEFAULT_POLICY, enabled: true };
const self = { pid: 500, ancestors: new Set([400, 300, 1]) };
const check = (pid: number, f: TargetFacts | null, policy: SignalPolicy = enabled) => checkTarget(pid, f, policy, self);
const ruleOf = (verdict: ReturnType<typeof checkTarget>) => (verdict.ok ? "ok" : verdict.rule);

describe("checkTarget", () => {
  test("an ordinary process of an ordinary user passes", () => {
    expect(check(4242, facts())).toEqual({ ok: true });
  });

  test.each([0, -1, -4242])("pid %p is refused: it would signal a group or everything", (pid) => {
    const verdict = check(pid, facts({ pid }));
    expect(ruleOf(verdict)).toBe("pid-range");
    expect(!verdict.ok && verdict.reason).toContain("process group");
  });

  test("pid 1 is refused even when a policy would allow its user", () => {
    expect(ruleOf(check(1, facts({ pid: 1, name: "systemd", real_uid: 0, effective_uid: 0 }), { ...enabled, denyCommands: [] }))).toBe("init");
  });

  test("a pid that runs nothing is refused as not running", () => {
    expect(ruleOf(check(4242, null))).toBe("not-running");
  });

  test("a thread id is refused: kill() would reach its whole process", () => {
    const verdict = check(4243, facts({ pid: 4243, tgid: 4242 }));
    expect(ruleOf(verdict)).toBe("thread");
    expect(!verdict.ok && verdict.reason).toContain("thread of process 4242");
  });

  test("kernel threads are refused by PF_KTHREAD, by parent kthreadd, as kthreadd, and by an empty command line", () => {
    expect(ruleOf(check(4242, facts({ flags: PF_KTHREAD | 0x40, cmdline: [] })))).toBe("kernel-thread");
    expect(ruleOf(check(4242, facts({ ppid: 2, cmdline: [] })))).toBe("kernel-thread");
    expect(ruleOf(check(2, facts({ pid: 2, ppid: 0, cmdline: [] })))).toBe("kernel-thread");
    expect(ruleOf(check(4242, facts({ cmdline: [] })))).toBe("kernel-thread");
  });

  test("a zombie is refused and the parent that must reap it is named", () => {
    const verdict = check(4242, facts({ state: "Z", cmdline: [] }));
    expect(ruleOf(verdict)).toBe("zombie");
    expect(!verdict.ok && verdict.reason).toContain("pid 900");
  });

  test("ipcscope itself and each of its ancestors are refused", () => {
    expect(ruleOf(check(500, facts({ pid: 500 })))).toBe("self");
    expect(ruleOf(check(400, facts({ pid: 400 })))).toBe("ancestor");
    expect(ruleOf(check(300, facts({ pid: 300 })))).toBe("ancestor");
  });

  test("deny-commands match the comm (cut to 15 characters) or the program's basename", () => {
    expect(ruleOf(check(4242, facts({ name: "sshd", cmdline: ["sshd: alice [priv]"] })))).toBe("deny-command");
    // comm is "systemd-journal": the kernel cuts "systemd-journald" to 15 characters.
    expect(ruleOf(check(4242, facts({ name: "systemd-journal", cmdline: ["/usr/lib/systemd/systemd-journald"] })))).toBe("deny-command");
    // A process that renamed its comm is still caught by its program.
    expect(ruleOf(check(4242, facts({ name: "worker", cmdline: ["/usr/sbin/auditd"] })))).toBe("deny-command");
    const verdict = check(4242, facts({ name: "sleep" }), { ...enabled, denyCommands: ["sleep"] });
    expect(!verdict.ok && verdict.reason).toContain('matches "sleep" in --signal-deny-commands');
    expect(check(4242, facts({ name: "sshd" }), { ...enabled, denyCommands: [] })).toEqual({ ok: true });
  });

  test("deny-users match a name or a uid, on the real or the effective uid", () => {
    expect(ruleOf(check(4242, facts(), { ...enabled, denyUsers: ["alice"] }))).toBe("deny-user");
    expect(ruleOf(check(4242, facts(), { ...enabled, denyUsers: ["1000"] }))).toBe("deny-user");
    // sudo: real alice, effective root
    expect(ruleOf(check(4242, facts({ effective_uid: 0 }), { ...enabled, denyUsers: ["root"] }))).toBe("deny-user");
    expect(check(4242, facts(), { ...enabled, denyUsers: ["bob"] })).toEqual({ ok: true });
  });

  test("allow-users, when set, need both uids on the list; deny wins over allow", () => {
    expect(check(4242, facts(), { ...enabled, allowUsers: ["alice"] })).toEqual({ ok: true });
    expect(check(4242, facts(), { ...enabled, allowUsers: ["1000"] })).toEqual({ ok: true });
    const other = check(4242, facts({ real_uid: 1001, effective_uid: 1001 }), { ...enabled, allowUsers: ["alice"] });
    expect(ruleOf(other)).toBe("allow-user");
    expect(!other.ok && other.reason).toContain("runs as bob (uid 1001), which is not in --signal-allow-users (alice)");
    expect(ruleOf(check(4242, facts({ effective_uid: 0 }), { ...enabled, allowUsers: ["alice"] }))).toBe("allow-user");
    expect(ruleOf(check(4242, facts(), { ...enabled, allowUsers: ["alice"], denyUsers: ["alice"] }))).toBe("deny-user");
  });
});

describe("checkSameProcess", () => {
  test("the same start time passes; another start time is a reused pid", () => {
    const binding = { pid: 4242, start_time_ticks: 1000, signal: "SIGTERM" };
    expect(checkSameProcess(binding, 1000)).toEqual({ ok: true });
    const verdict = checkSameProcess(binding, 2000);
    expect(ruleOf(verdict)).toBe("start-time");
    expect(!verdict.ok && verdict.reason).toContain("pid was reused");
  });
});

describe("confirmation tokens", () => {
  function store(ttl = 60_000) {
    let now = 1_000_000;
    let n = 0;
    const tokens = new TokenStore(ttl, () => now, () => `token-${++n}`);
    return { tokens, advance: (ms: number) => (now += ms) };
  }
  const binding = { pid: 4242, start_time_ticks: 777, signal: "SIGTERM" };
  const request = { pid: 4242, signal: "SIGTERM" };

  test("a token is redeemed once, for the pid and signal it was issued for, and carries the start time", () => {
    const { tokens } = store();
    const { token, expiresAt } = tokens.issue(binding);
    expect(expiresAt).toBe(1_000_000 + 60_000);
    expect(tokens.redeem(token, request)).toEqual({ ok: true, binding });
  });

  test("a reused token is refused", () => {
    const { tokens, advance } = store();
    const { token } = tokens.issue(binding);
    expect(tokens.redeem(token, request).ok).toBe(true);
    advance(2_000);
    const again = tokens.redeem(token, request);
    expect(!again.ok && again.reason).toContain("already used 2 s ago");
  });

  test("an expired token is refused, and a late one is spent", () => {
    const { tokens, advance } = store();
    const { token } = tokens.issue(binding);
    advance(60_000);
    const late = tokens.redeem(token, request);
    expect(!late.ok && late.reason).toContain("expired 0.0 s ago (tokens last 60 s)");
    expect(tokens.redeem(token, request).ok).toBe(false);
  });

  test("a token just inside its lifetime is accepted", () => {
    const { tokens, advance } = store();
    const { token } = tokens.issue(binding);
    advance(59_999);
    expect(tokens.redeem(token, request).ok).toBe(true);
  });

  test("a wrong signal or a wrong pid is refused and spends the token", () => {
    const { tokens } = store();
    const first = tokens.issue(binding).token;
    const wrongSignal = tokens.redeem(first, { pid: 4242, signal: "SIGKILL" });
    expect(!wrongSignal.ok && wrongSignal.reason).toContain("issued for SIGTERM, not SIGKILL");
    expect(tokens.redeem(first, request).ok).toBe(false);
    const second = tokens.issue(binding).token;
    const wrongPid = tokens.redeem(second, { pid: 4343, signal: "SIGTERM" });
    expect(!wrongPid.ok && wrongPid.reason).toContain("issued for pid 4242, not pid 4343");
    expect(tokens.redeem(second, request).ok).toBe(false);
  });

  test("an unknown token is refused, and so is a forgotten one long after expiry", () => {
    const { tokens, advance } = store();
    const unknown = tokens.redeem("not-a-token", request);
    expect(!unknown.ok && unknown.reason).toContain("not one this server issued");
    const { token } = tokens.issue(binding);
    advance(10 * 60_000);
    const forgotten = tokens.redeem(token, request);
    expect(!forgotten.ok && forgotten.reason).toContain("not one this server issued");
  });

  test("real tokens are 128 random bits in hex and compare in constant time", () => {
    const a = randomToken();
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(randomToken()).not.toBe(a);
    expect(constantTimeEqual(a, a)).toBe(true);
    expect(constantTimeEqual(a, `${a.slice(0, -1)}x`)).toBe(false);
    expect(constantTimeEqual(a, a.slice(1))).toBe(false);
  });

  test("IPCSCOPE_SIGNAL_TOKEN_TTL_MS can only shorten the lifetime", () => {
    expect(tokenTtlFromEnv(undefined)).toBe(DEFAULT_TOKEN_TTL_MS);
    expect(tokenTtlFromEnv("500")).toBe(500);
    expect(() => tokenTtlFromEnv("600000")).toThrow("IPCSCOPE_SIGNAL_TOKEN_TTL_MS");
    expect(() => tokenTtlFromEnv("abc")).toThrow(UsageError);
  });
});
