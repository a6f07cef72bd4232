import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { complete, helpText, HISTORY_SIZE, loadHistory, oneLine, SHELL_COMMANDS } from "../../../src/commands/shell.ts";
import events from "../../__toolsnaps__/get_live_network_events.json" with { type: "json" };
import snapshot from "../../__toolsnaps__/get_process_connection_snapshot.json" with { type: "json" };

const tools = [events, snapshot] as unknown as Tool[];

describe("shell completion", () => {
  test("commands at the start of a line; one match completes with a space", () => {
    expect(complete("sna", tools)).toEqual([["snapshot "], "sna"]);
    expect(complete("", tools)[0]).toEqual(Object.keys(SHELL_COMMANDS));
    expect(complete("q", tools)).toEqual([["quit "], "q"]);
  });

  test("tool names after call and help", () => {
    expect(complete("call get_l", tools)).toEqual([["get_live_network_events "], "get_l"]);
    expect(complete("help sn", tools)).toEqual([["snapshot "], "sn"]);
  });

  test("the tool's flags, then the values of an enum or boolean flag", () => {
    expect(complete("snapshot --li", tools)).toEqual([["--listening", "--limit"], "--li"]);
    expect(complete("call get_live_network_events --max", tools)).toEqual([["--max-events "], "--max"]);
    expect(complete("call get_live_network_events --type ac", tools)).toEqual([["accept "], "ac"]);
    expect(complete("snapshot --listening ", tools)).toEqual([["true", "false"], ""]);
    expect(complete("snapshot --json --inc", tools)).toEqual([["--include-unix "], "--inc"]);
    expect(complete("call nope --p", tools)).toEqual([[], "--p"]);
  });
});

describe("shell history and help", () => {
  test("history keeps the newest lines and rewrites a file grown past twice the bound", () => {
    const path = join(mkdtempSync(join(tmpdir(), "ipcscope-history-")), "history");
    expect(loadHistory(path)).toEqual([]);
    writeFileSync(path, Array.from({ length: 2 * HISTORY_SIZE + 5 }, (_, i) => `line ${i}`).join("\n"));
    const lines = loadHistory(path);
    expect(lines.length).toBe(HISTORY_SIZE);
    expect(lines.at(-1)).toBe(`line ${2 * HISTORY_SIZE + 4}`);
    expect(readFileSync(path, "utf8").split("\n").filter(Boolean).length).toBe(HISTORY_SIZE);
  });

  test("help lists every command with one line, naming its tool", () => {
    const text = helpText();
    for (const [name, command] of Object.entries(SHELL_COMMANDS)) {
      expect(text).toMatch(new RegExp(`^${name} .*${command.tool ?? ""}`, "m"));
    }
  });

  test("oneLine keeps a description's first sentence, cut at a word", () => {
    expect(oneLine("Who talks to whom on this host: processes as nodes.", 80)).toBe("Who talks to whom on this host");
    expect(oneLine("Packets the kernel dropped over duration seconds, counted in the kernel and grouped by reason.", 40)).toBe("Packets the kernel dropped over…");
  });
});
