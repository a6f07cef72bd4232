// The one logger: consola's core with one reporter of ours that writes plain lines to stderr
// (stdout carries MCP in stdio mode). Not consola's default reporters: they load node:util,
// node:tty and node:stream, 8 ms of every start-up, which one-shot commands like `snapshot` feel.
// Nothing else in src/ writes logs.
import { writeSync } from "node:fs";
import { createConsola, type LogObject } from "consola/core";
import { UsageError } from "./errors.ts";

export const LOG_LEVELS = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 } as const;
export type LogLevelName = keyof typeof LOG_LEVELS;

const LEVEL_NAMES: Record<number, string> = { 0: "error", 1: "warn", 2: "info", 3: "info", 4: "debug", 5: "trace" };

function formatArg(arg: unknown, level: number): string {
  if (typeof arg === "string") return arg;
  if (arg instanceof Error) return level >= LOG_LEVELS.debug && arg.stack ? arg.stack : arg.message;
  try {
    return JSON.stringify(arg) ?? String(arg);
  } catch {
    return String(arg);
  }
}

/** "[21:04:05] warn  message": the time for people at a terminal; journald adds its own date. */
export function formatRecord(record: LogObject): string {
  const time = record.date.toTimeString().slice(0, 8);
  const level = (LEVEL_NAMES[record.level] ?? record.type).padEnd(5);
  return `[${time}] ${level} ${record.args.map((arg) => formatArg(arg, logger.level)).join(" ")}\n`;
}

export const logger = createConsola({
  level: LOG_LEVELS.info,
  reporters: [
    {
      log(record) {
        try {
          writeSync(2, formatRecord(record));
        } catch {
          // stderr closed (EPIPE) or full (EAGAIN): a lost log line must not take the server down.
        }
      },
    },
  ],
});

export function parseLogLevel(value: string): LogLevelName {
  if (value in LOG_LEVELS) return value as LogLevelName;
  throw new UsageError(
    `--log-level: unknown level "${value}"; use one of ${Object.keys(LOG_LEVELS).join(", ")}`,
  );
}

export function setLogLevel(name: LogLevelName): void {
  logger.level = LOG_LEVELS[name];
}

/** A listener that sees every log record that passes the level (the MCP logging bridge uses it). */
export type LogListener = (record: LogObject) => void;
const listeners = new Set<LogListener>();
logger.addReporter({
  log(record) {
    for (const listener of listeners) listener(record);
  },
});
export function onLog(listener: LogListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
