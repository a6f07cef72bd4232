// The audit trail of send_signal_to_pid: one JSON line per preview, per send and per refusal, to
// the logger (stderr, so journald keeps it under systemd) always, and to <state-dir>/audit.log
// (mode 0600, appended) when serve has a --state-dir. A send is refused when that file cannot be
// written: no action without its record.
import { closeSync, fchmodSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ToolError } from "../errors.ts";
import { logger } from "../logger.ts";

export interface AuditRecord {
  time: string;
  /** The transport of the call (ToolContext.via): stdio, http, rest or cli. */
  via: string;
  pid: number;
  /** Command line of the target when it could be read, else null. */
  command: string | null;
  user: string | null;
  signal: string | null;
  /** preview: the first call; send: the confirmed call; outcome: what the process did after the signal. */
  step: "preview" | "send" | "outcome";
  /** previewed, refused, sent, failed (kill(2) failed), exited, zombie, running. */
  result: string;
  reason: string | null;
}

let auditDir: string | undefined;
let fd: number | null = null;

/** Where the audit file goes (serve's --state-dir); undefined: the logger only. */
export function configureAudit(stateDir: string | undefined): void {
  if (fd !== null) closeSync(fd);
  fd = null;
  auditDir = stateDir;
}

export function auditPath(): string | null {
  return auditDir === undefined ? null : join(auditDir, "audit.log");
}

/**
 * Opens the audit file if one is configured; a ToolError when it cannot be, so that a send is
 * refused rather than left unrecorded. Opened once and kept: O_APPEND writes of one line each do
 * not interleave with another writer.
 */
export function openAudit(): void {
  const path = auditPath();
  if (path === null || fd !== null) return;
  try {
    fd = openSync(path, "a", 0o600);
    // The mode of open() applies only to a new file; an existing one is tightened too.
    fchmodSync(fd, 0o600);
  } catch (error) {
    fd = null;
    throw new ToolError(`cannot write the audit log ${path} (${(error as Error).message}); no signal is sent without its audit record: fix the --state-dir`);
  }
}

/**
 * Writes one record. Previews log at info, sends and refusals at warn (a change to the host, or an
 * attempt at one, should reach an operator who filters warnings). A failure to write the file is
 * logged as an error; callers that must not act without a record call openAudit() first.
 */
export function audit(record: Omit<AuditRecord, "time">): AuditRecord {
  const full: AuditRecord = { time: new Date().toISOString(), ...record };
  const line = JSON.stringify(full);
  if (record.step === "preview" && record.result === "previewed") logger.info(`audit ${line}`);
  else logger.warn(`audit ${line}`);
  if (auditPath() !== null) {
    try {
      openAudit();
      writeSync(fd!, `${line}\n`);
    } catch (error) {
      logger.error(`audit log ${auditPath()}: ${(error as Error).message}`);
    }
  }
  return full;
}
