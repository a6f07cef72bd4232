// send_signal_to_pid through the compiled binary over HTTP with the SDK client: off by default,
// hidden by --read-only, preview → confirm on a child this test started, every token refusal,
// the protected pids, and the audit file. Only children spawned here are ever signalled.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { alive, type HttpServer, spawnSleeper, startHttpServer } from "../helpers.ts";

const TOKEN_TTL_MS = 1500;

/** Children started by the tests; each is killed by its pid in afterAll, even when a test fails. */
const children: Bun.Subprocess[] = [];
async function sleeper(): Promise<Bun.Subprocess> {
  const child = await spawnSleeper();
  children.push(child);
  return child;
}

interface Answer {
  isError?: boolean;
  text: string;
  result: Record<string, any>;
}

async function connect(server: HttpServer): Promise<Client> {
  const client = new Client({ name: "e2e-signals", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(server.url));
  return client;
}

async function call(client: Client, args: Record<string, unknown>): Promise<Answer> {
  const result = await client.callTool({ name: "send_signal_to_pid", arguments: args });
  const text = (result.content as { type: string; text: string }[])[0]?.text ?? "";
  return { isError: result.isError === true, text, result: (result.structuredContent ?? {}) as Record<string, any> };
}

/** Starts the server with a short token lifetime (the env var exists for this). */
function startSignalServer(extra: string[]): Promise<HttpServer> {
  return startHttpServer(["--no-monitor", ...extra], { env: { IPCSCOPE_SIGNAL_TOKEN_TTL_MS: String(TOKEN_TTL_MS) } });
}

describe("send_signal_to_pid is off unless enabled", () => {
  let server: HttpServer;
  let client: Client;
  beforeAll(async () => {
    server = await startSignalServer([]);
    client = await connect(server);
  });
  afterAll(async () => {
    await client.close();
    await server.stop();
  });

  test("without --allow-signals it is listed, and a call says how to enable it and sends nothing", async () => {
    const { tools } = await client.listTools();
    const tool = tools.find((entry) => entry.name === "send_signal_to_pid");
    expect(tool?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    const child = await sleeper();
    const answer = await call(client, { pid: child.pid, sig_str: "SIGTERM" });
    expect(answer.isError).toBe(true);
    expect(answer.text).toContain("ipcscope serve --allow-signals");
    expect(alive(child.pid)).toBe(true);
    expect(server.stderr()).toContain('"result":"refused"');
  });

  test("--read-only leaves it out of the list, even with --allow-signals", async () => {
    const readOnly = await startSignalServer(["--read-only", "--allow-signals"]);
    const other = await connect(readOnly);
    try {
      const { tools } = await other.listTools();
      expect(tools.map((entry) => entry.name)).not.toContain("send_signal_to_pid");
      expect(readOnly.stderr()).toContain("--allow-signals has no effect");
    } finally {
      await other.close();
      await readOnly.stop();
    }
  });
});

describe("send_signal_to_pid with --allow-signals", () => {
  let server: HttpServer;
  let client: Client;
  let stateDir: string;
  const auditLines = () =>
    readFileSync(join(stateDir, "audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "ipcscope-signals-"));
    server = await startSignalServer(["--allow-signals", "--state-dir", stateDir]);
    client = await connect(server);
  });
  afterAll(async () => {
    await client.close();
    await server.stop();
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(stateDir, { recursive: true, force: true });
  });

  test("a preview sends nothing and shows the process; the confirmed call sends and reports the exit", async () => {
    const child = await sleeper();
    const preview = await call(client, { pid: child.pid, sig_str: "term" });
    expect(preview.isError).toBe(false);
    expect(preview.result).toMatchObject({
      step: "preview",
      pid: child.pid,
      signal: { name: "SIGTERM", number: 15 },
      process: { pid: child.pid, name: "sleep", command_line: "sleep 60", state: "S" },
      children: [],
      audit_log: join(stateDir, "audit.log"),
    });
    expect(preview.result.process.start_time_ticks).toBeGreaterThan(0);
    expect(preview.result.confirm_token).toMatch(/^[0-9a-f]{32}$/);
    expect(Array.isArray(preview.result.sockets)).toBe(true);
    expect(alive(child.pid)).toBe(true);

    const sent = await call(client, { pid: child.pid, signal: "SIGTERM", confirm_token: preview.result.confirm_token, wait_seconds: 5 });
    expect(sent.isError).toBe(false);
    expect(sent.result.step).toBe("sent");
    expect(sent.result.outcome.result).toBe("exited");
    expect(sent.result.outcome.exited_after_ms).toBeLessThan(5000);
    expect(await child.exited).toBe(143);
    expect(child.signalCode).toBe("SIGTERM");
  });

  test("a reused token is refused", async () => {
    const child = await sleeper();
    // SIGCONT leaves sleep running, so the same process can be asked again.
    const preview = await call(client, { pid: child.pid, sig_str: "SIGCONT" });
    const first = await call(client, { pid: child.pid, sig_str: "SIGCONT", confirm_token: preview.result.confirm_token, wait_seconds: 0.2 });
    expect(first.result.outcome).toMatchObject({ result: "running", state: "S", exited_after_ms: null });
    const again = await call(client, { pid: child.pid, sig_str: "SIGCONT", confirm_token: preview.result.confirm_token });
    expect(again.isError).toBe(true);
    expect(again.text).toContain("already used");
    expect(alive(child.pid)).toBe(true);
  });

  test("a wrong token, a token for another signal and a token for another pid are refused", async () => {
    const child = await sleeper();
    const other = await sleeper();
    const bogus = await call(client, { pid: child.pid, sig_str: "SIGTERM", confirm_token: "0".repeat(32) });
    expect(bogus.isError).toBe(true);
    expect(bogus.text).toContain("not one this server issued");
    const preview = await call(client, { pid: child.pid, sig_str: "SIGTERM" });
    const otherSignal = await call(client, { pid: child.pid, sig_str: "SIGKILL", confirm_token: preview.result.confirm_token });
    expect(otherSignal.isError).toBe(true);
    expect(otherSignal.text).toContain("issued for SIGTERM, not SIGKILL");
    const again = await call(client, { pid: child.pid, sig_str: "SIGTERM" });
    const otherPid = await call(client, { pid: other.pid, sig_str: "SIGTERM", confirm_token: again.result.confirm_token });
    expect(otherPid.isError).toBe(true);
    expect(otherPid.text).toContain(`issued for pid ${child.pid}, not pid ${other.pid}`);
    expect(alive(child.pid)).toBe(true);
    expect(alive(other.pid)).toBe(true);
  });

  test("an expired token is refused", async () => {
    const child = await sleeper();
    const preview = await call(client, { pid: child.pid, sig_str: "SIGTERM" });
    await Bun.sleep(TOKEN_TTL_MS + 200);
    const late = await call(client, { pid: child.pid, sig_str: "SIGTERM", confirm_token: preview.result.confirm_token });
    expect(late.isError).toBe(true);
    expect(late.text).toContain("expired");
    expect(alive(child.pid)).toBe(true);
  });

  test("a token for a process that has exited is refused, and so is its pid's next process", async () => {
    const first = await sleeper();
    const preview = await call(client, { pid: first.pid, sig_str: "SIGTERM" });
    first.kill("SIGKILL");
    await first.exited;
    const second = await sleeper();
    const answer = await call(client, { pid: first.pid, sig_str: "SIGTERM", confirm_token: preview.result.confirm_token });
    expect(answer.isError).toBe(true);
    // The pid is free (not-running) or, rarely, already reused by the next child (start-time).
    expect(answer.text).toMatch(first.pid === second.pid ? /rule "start-time"/ : /rule "not-running"/);
    expect(alive(second.pid)).toBe(true);
  });

  test("pid 1, pid 0, the server itself and its parent (this test runner) are refused by name of the rule", async () => {
    expect((await call(client, { pid: 1, sig_str: "SIGTERM" })).text).toContain('rule "init"');
    expect((await call(client, { pid: 0 })).text).toContain('rule "pid-range"');
    expect((await call(client, { pid: -1, sig_str: "KILL" })).text).toContain('rule "pid-range"');
    expect((await call(client, { pid: server.proc.pid })).text).toContain('rule "self"');
    expect((await call(client, { pid: process.pid })).text).toContain('rule "ancestor"');
  });

  test("an unknown signal is refused by name with the known ones", async () => {
    const child = await sleeper();
    const answer = await call(client, { pid: child.pid, sig_str: "SIGFOO" });
    expect(answer.isError).toBe(true);
    expect(answer.text).toContain('sig_str: unknown signal "SIGFOO"');
    expect(answer.text).toContain("SIGKILL (9)");
  });

  test("the audit log (mode 0600) holds every preview, send, outcome and refusal", () => {
    const path = join(stateDir, "audit.log");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const lines = auditLines();
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(["time", "via", "pid", "command", "user", "signal", "step", "result", "reason"]);
      expect(line.via).toBe("http");
    }
    const results = lines.map((line) => `${line.step}:${line.result}`);
    expect(results).toContain("preview:previewed");
    expect(results).toContain("send:sent");
    expect(results).toContain("outcome:exited");
    expect(results).toContain("send:refused");
    expect(results).toContain("preview:refused");
    const sent = lines.find((line) => line.result === "sent")!;
    expect(sent).toMatchObject({ command: "sleep 60", signal: "SIGTERM" });
    expect(lines.find((line) => line.pid === 1)?.reason).toContain('rule "init"');
    expect(lines.length).toBeGreaterThanOrEqual(20);
  });
});
