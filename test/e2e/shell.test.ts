// `ipcscope shell` as a person uses it: the compiled binary in a real terminal (tmux, on a socket of
// its own) against a real server, typed into key by key: help, tools, snapshot, list, a bad
// argument, tab completion, history, Ctrl-C cancelling a long call, insights through an
// OpenAI-compatible endpoint (the one fake: there is no model here), quit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChatRequest, ensureBinary, type HttpServer, startChatEndpoint, startHttpServer, until } from "../helpers.ts";

const hasTmux = Bun.which("tmux") !== null;
/** A tmux server of our own: other sessions on this machine may use the default one. */
const SOCKET = `ipcscope-shell-test-${process.pid}`;
const SESSION = "shell";
const PROMPT = "ipcscope> ";

function tmux(...args: string[]): string {
  const result = Bun.spawnSync(["tmux", "-L", SOCKET, ...args], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`tmux ${args.join(" ")}: ${result.stderr.toString()}`);
  return result.stdout.toString();
}

/** The terminal's text, wrapped lines joined, with the scrollback. */
function screen(): string {
  return tmux("capture-pane", "-p", "-J", "-S", "-1000", "-t", SESSION);
}

/** The last non-empty line on the screen: where the prompt and what is being typed are. */
function lastLine(): string {
  return screen().trimEnd().split("\n").at(-1) ?? "";
}

const keys = (...keys: string[]) => tmux("send-keys", "-t", SESSION, ...keys);
/** Types text literally (-l: no key names), so "--listening" is not read as a tmux flag. */
const type = (text: string) => tmux("send-keys", "-t", SESSION, "-l", "--", text);

/** Waits until the screen shows `pattern` `times` times (commands repeat: count, do not just search). */
async function see(pattern: RegExp | string, times = 1, timeoutMs = 15_000): Promise<string> {
  const count = (text: string) => (typeof pattern === "string" ? text.split(pattern).length - 1 : [...text.matchAll(new RegExp(pattern, "g"))].length);
  return until(`${pattern} ${times}x on the screen`, () => {
    const text = screen();
    return count(text) >= times ? text : undefined;
  }, timeoutMs);
}

/** Runs a command line and waits for the prompt that follows its answer. */
async function run(line: string, timeoutMs = 15_000): Promise<string> {
  const prompts = screen().split(PROMPT).length - 1;
  type(line);
  keys("Enter");
  await see(PROMPT, prompts + 1, timeoutMs);
  const text = screen();
  // What the command printed: from its line to the new prompt.
  return text.slice(text.lastIndexOf(`${PROMPT}${line}`) + PROMPT.length + line.length, text.lastIndexOf(PROMPT)).trim();
}

describe.skipIf(!hasTmux)("ipcscope shell in a terminal", () => {
  let server: HttpServer;
  let llm: ReturnType<typeof Bun.serve>;
  let requests: ChatRequest[] = [];
  const home = mkdtempSync(join(tmpdir(), "ipcscope-shell-home-"));
  const exitFile = join(home, "exit-code");

  beforeAll(async () => {
    server = await startHttpServer();
    // The OpenAI-compatible endpoint: records what it was sent and answers like a model.
    ({ server: llm, requests } = startChatEndpoint("FINDING: the host listens on one loopback port."));
    // An earlier session's history, to be recalled with the Up arrow.
    writeFileSync(join(home, ".ipcscope_history"), "graph\n", { mode: 0o600 });
    const command = [
      `HOME=${home}`,
      await ensureBinary(),
      "shell",
      "--server",
      server.url.toString(),
      "--llm-url",
      `http://127.0.0.1:${llm.port}/v1`,
      "--model",
      "tiny-test-model",
    ].join(" ");
    // OPENAI_API_KEY is unset: a local model server needs no key, and none may be sent.
    tmux("new-session", "-d", "-s", SESSION, "-x", "200", "-y", "50", `env -u OPENAI_API_KEY ${command}; echo "exit=$?" > ${exitFile}; sleep 30`);
    await see(PROMPT);
  });

  afterAll(async () => {
    Bun.spawnSync(["tmux", "-L", SOCKET, "kill-server"]);
    // kill-server leaves the socket file behind.
    rmSync(join(process.env.TMUX_TMPDIR ?? "/tmp", `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
    llm?.stop(true);
    if (server?.proc.exitCode === null) await server.stop();
  });

  test("it greets with where it is connected", () => {
    expect(screen()).toContain(`Connected to ${server.url} (ipcscope `);
  });

  test("help lists every command with one line each", async () => {
    const text = await run("help");
    for (const command of ["summary", "list", "analyze", "snapshot", "graph", "drops", "insights", "tools", "call", "help", "quit"]) {
      expect(text).toMatch(new RegExp(`^${command} `, "m"));
    }
  });

  test("tools lists the server's tools", async () => {
    const text = await run("tools");
    expect(text).toMatch(/^TOOL\s+WHAT/);
    expect(text).toContain("get_process_connection_snapshot");
    expect(text).toContain("send_signal_to_pid");
  });

  test("tab completes a command, then the tool's flag", async () => {
    type("sna");
    keys("Tab");
    await until("snapshot completed", () => (lastLine() === `${PROMPT}snapshot` ? true : undefined));
    type("--listen");
    keys("Tab");
    await until("--listening completed", () => (lastLine() === `${PROMPT}snapshot --listening` ? true : undefined));
    const prompts = screen().split(PROMPT).length - 1;
    keys("Enter");
    await see(PROMPT, prompts + 1);
    const text = screen();
    expect(text.slice(text.lastIndexOf("snapshot --listening"))).toMatch(/PID\s+NAME\s+USER[\s\S]*LISTEN[\s\S]*matching sockets shown/);
  });

  test("snapshot and list answer with tables and sentences", async () => {
    expect(await run("snapshot --process ipcscope --limit 5")).toMatch(/^PID\s+NAME[\s\S]*ipcscope[\s\S]*matching sockets shown/);
    expect(await run("list --limit 3")).toMatch(/recorded events? over the last 10 minutes, newest first/);
  });

  test("a bad argument is a clear error, and the shell goes on", async () => {
    expect(await run("snapshot --port abc")).toBe('error: --port: "abc" is not a whole number from 0 to 65535');
    expect(await run("snapshot --prot 80")).toStartWith("error: unknown option --prot for get_process_connection_snapshot; get_process_connection_snapshot takes --pid,");
    expect(await run("frobnicate")).toStartWith('error: unknown command "frobnicate"; commands: summary, list');
  });

  test("Up recalls the previous command, also from an earlier session's history", async () => {
    await run("tools");
    keys("Up");
    await until("tools recalled", () => (lastLine() === `${PROMPT}tools` ? true : undefined));
    // Further back, one step at a time, to the line from the history file the shell started with.
    let found = false;
    for (let step = 0; step < 20 && !found; step++) {
      const shown = lastLine();
      keys("Up");
      await until("the previous history line", () => (lastLine() !== shown ? true : undefined), 2_000).catch(() => {});
      found = lastLine() === `${PROMPT}graph`;
    }
    expect(lastLine()).toBe(`${PROMPT}graph`);
    keys("C-u");
    await until("line cleared", () => (lastLine() === PROMPT.trimEnd() ? true : undefined));
  });

  test("Ctrl-C cancels a long call at once and the shell still answers; at an empty prompt it says how to leave", async () => {
    const before = screen().split("cancelled").length - 1;
    type("call get_live_network_events --duration 30");
    keys("Enter");
    // Let the call reach the server and start its capture.
    await Bun.sleep(1500);
    const started = performance.now();
    keys("C-c");
    await see("cancelled", before + 1, 10_000);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await run("tools")).toContain("get_system_info");
    keys("C-c");
    await see("(To leave, type quit or press Ctrl-D)");
  });

  test("insights sends the server's analysis prompt to the model and prints its answer", async () => {
    const text = await run("insights --max-tokens 800");
    expect(text).toContain("FINDING: the host listens on one loopback port.");
    expect(requests.length).toBe(1);
    const [request] = requests;
    expect(request!.method).toBe("POST");
    expect(request!.path).toBe("/v1/chat/completions");
    expect(request!.authorization).toBeNull();
    expect(request!.body.model).toBe("tiny-test-model");
    expect(request!.body.messages.map((message) => message.role)).toEqual(["system", "user"]);
    expect(request!.body.messages[1]!.content).toStartWith("# Task (analysis)");
    expect(request!.body.messages[1]!.content).toContain("## Listening sockets");
  });

  test("quit leaves with exit code 0 and the history file keeps the commands", async () => {
    type("quit");
    keys("Enter");
    await until("the shell's exit code", () => (existsSync(exitFile) ? readFileSync(exitFile, "utf8").trim() : undefined));
    expect(readFileSync(exitFile, "utf8").trim()).toBe("exit=0");
    const history = readFileSync(join(home, ".ipcscope_history"), "utf8").split("\n");
    expect(history).toContain("snapshot --listening");
    expect(history).toContain("call get_live_network_events --duration 30");
    expect(history.at(-2)).toBe("quit");
  });

  test("lines piped in run in order without prompts, and the shell exits 0 at their end", async () => {
    const proc = Bun.spawn([await ensureBinary(), "shell", "--server", server.url.toString()], {
      stdin: new TextEncoder().encode("snapshot --listening\nsnapshot --port x\ntools\n"),
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, HOME: home },
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    expect(stdout).not.toContain(PROMPT);
    expect(stdout).toMatch(/^PID\s+NAME[\s\S]*matching sockets shown[\s\S]*\nTOOL\s+WHAT\n/);
    expect(stderr).toContain(`Connected to ${server.url}`);
    expect(stderr).toContain('error: --port: "x" is not a whole number from 0 to 65535');
  });
});
