// The one logger. consola writes info to stdout by default, which would corrupt MCP over stdio,
// so both of its streams point at stderr. Nothing else in src/ writes logs.
import { createConsola, type LogObject } from "consola";
import { UsageError } from "./errors.ts";

export const LOG_LEVELS = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 } as const;
export type LogLevelName = keyof typeof LOG_LEVELS;

export const logger = createConsola({
  stdout: process.stderr,
  stderr: process.stderr,
  level: LOG_LEVELS.info,
  formatOptions: { date: true, colors: process.stderr.isTTY ?? false },
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
