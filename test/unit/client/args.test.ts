import { describe, expect, test } from "bun:test";
import { convertValue, describeParams, parseToolArgs, splitFlags, splitWords, type ToolSchema } from "../../../src/client/args.ts";
import { UsageError } from "../../../src/errors.ts";
import events from "../../__toolsnaps__/get_live_network_events.json" with { type: "json" };
import signal from "../../__toolsnaps__/send_signal_to_pid.json" with { type: "json" };
import snapshot from "../../__toolsnaps__/get_process_connection_snapshot.json" with { type: "json" };
import syscalls from "../../__toolsnaps__/trace_syscall_errors.json" with { type: "json" };
import captureResults from "../../__toolsnaps__/get_capture_results.json" with { type: "json" };

// The schemas as tools/list serves them (the toolsnaps), so the conversion meets what servers send.
const tool = (snap: unknown) => snap as ToolSchema;

describe("flags → tool arguments, typed by the served JSON Schema", () => {
  test("integers, numbers, booleans and text take their schema's types, in kebab or snake case", () => {
    expect(parseToolArgs(tool(snapshot), ["--pid", "42", "--remote-cidr", "10.0.0.0/8", "--include_unix", "--listening=false", "--limit=5"])).toEqual({
      pid: 42,
      remote_cidr: "10.0.0.0/8",
      include_unix: true,
      listening: false,
      limit: 5,
    });
    expect(parseToolArgs(tool(events), ["--duration", "1.5", "--max-events", "10"])).toEqual({ duration: 1.5, max_events: 10 });
  });

  test("a boolean flag reads the next word only when it is a boolean, and --no-flag is false", () => {
    expect(parseToolArgs(tool(snapshot), ["--listening", "true", "--include-unix", "--port", "22"])).toEqual({ listening: true, include_unix: true, port: 22 });
    expect(parseToolArgs(tool(snapshot), ["--no-listening"])).toEqual({ listening: false });
    expect(parseToolArgs(tool(events), ["--background", "no"])).toEqual({ background: false });
  });

  test("anyOf: an enum value stays text, a comma list becomes an array; sig_str keeps the text the server parses", () => {
    expect(parseToolArgs(tool(events), ["--type", "connect"])).toEqual({ type: "connect" });
    expect(parseToolArgs(tool(events), ["--type", "connect,close"])).toEqual({ type: ["connect", "close"] });
    expect(parseToolArgs(tool(signal), ["--pid", "-5", "--sig-str", "15"])).toEqual({ pid: -5, sig_str: "15" });
  });

  test("--arg key=value and --args-json add parameters; later ones win", () => {
    expect(parseToolArgs(tool(events), ["--arg", "pid=7", "--args-json", '{"port": 443, "type": ["listen"]}', "--arg=port=80"])).toEqual({ pid: 7, port: 80, type: ["listen"] });
  });

  test("--process means command where the tool has command but not process; where it has process, it stays", () => {
    expect(parseToolArgs(tool(syscalls), ["--process", "curl"])).toEqual({ command: "curl" });
    expect(parseToolArgs(tool(snapshot), ["--process", "curl"])).toEqual({ process: "curl" });
  });

  test.each([
    [["--prot", "80"], "unknown option --prot for get_live_network_events; get_live_network_events takes --duration, --pid, --command, --process, --port, --type, --max-events, --background"],
    [["--port", "http"], '--port: "http" is not a whole number from 0 to 65535'],
    [["--port", "70000"], '--port: "70000" is not a whole number from 0 to 65535'],
    [["--pid", "1.5"], '--pid: "1.5" is not a whole number greater than 0'],
    [["--duration", "0"], '--duration: "0" is not a number greater than 0 and at most 3600'],
    [["--type", "conect"], '--type: "conect" is not one or more of connect, accept, connect_failed, close, listen, exec, exit (comma-separated)'],
    [["--background", "maybe"], 'unexpected argument "maybe"'],
    [["--pid"], "--pid needs a value: a whole number greater than 0"],
    [["42"], 'unexpected argument "42" (parameters are flags: --name value)'],
    [["--arg", "pid"], "--arg needs key=value"],
    [["--arg", "nope=1"], "unknown option --arg nope for get_live_network_events"],
    [["--args-json", "{pid"], "--args-json: not JSON"],
    [["--args-json", "[1]"], "--args-json: [1] is not a JSON object"],
    [["--args-json", '{"nope": 1}'], 'unknown option "nope" in --args-json'],
  ])("%p is a usage error naming the flag and the value", (argv, message) => {
    expect(() => parseToolArgs(tool(events), argv)).toThrow(UsageError);
    expect(() => parseToolArgs(tool(events), argv)).toThrow(message);
  });

  test("a missing required parameter is named", () => {
    expect(() => parseToolArgs(tool(captureResults), [])).toThrow("get_capture_results needs --job-id; get_capture_results takes --job-id");
    expect(parseToolArgs(tool(captureResults), ["--job-id", "job-1"])).toEqual({ job_id: "job-1" });
  });

  test("convertValue: no type means any JSON value, else the text; nullable types accept null", () => {
    expect(convertValue("--x", '{"a":1}', {})).toEqual({ a: 1 });
    expect(convertValue("--x", "plain", {})).toBe("plain");
    expect(convertValue("--x", "null", { type: ["integer", "null"] })).toBeNull();
    expect(convertValue("--x", "3", { type: ["integer", "null"] })).toBe(3);
    expect(() => convertValue("--x", "ab", { type: "string", minLength: 3 })).toThrow('--x: "ab" is not text');
  });

  test("describeParams gives one line per parameter with its type, description and default", () => {
    const lines = describeParams(tool(events));
    expect(lines[0]).toBe("--duration (a number greater than 0 and at most 3600): Seconds to capture (inline at most 55) [default 10]");
    expect(lines).toContain("--background: Run as a background job and return its job_id at once [default false]");
  });
});

describe("the client's own flags and shell words", () => {
  test("splitFlags takes out the client's flags and leaves the tool's in order, values included", () => {
    const { flags, rest } = splitFlags(["get_tcp_health", "--server", "http://h:8000/mcp", "--port", "443", "--json", "--token-file=/t", "--listening"], {
      server: "string",
      "token-file": "string",
      json: "boolean",
    });
    expect(flags).toEqual({ server: "http://h:8000/mcp", json: true, "token-file": "/t" });
    expect(rest).toEqual(["get_tcp_health", "--port", "443", "--listening"]);
    expect(() => splitFlags(["--server"], { server: "string" })).toThrow("--server needs a value");
  });

  test("splitWords handles quotes and escapes like a shell", () => {
    expect(splitWords(`list --command "HTTP Client"  --port 80`)).toEqual(["list", "--command", "HTTP Client", "--port", "80"]);
    expect(splitWords(`call x --args-json '{"pid": 1}'`)).toEqual(["call", "x", "--args-json", '{"pid": 1}']);
    expect(splitWords(String.raw`a\ b "c\"d" ''`)).toEqual(["a b", 'c"d', ""]);
    expect(() => splitWords(`list --command "open`)).toThrow('unterminated " quote');
  });
});
