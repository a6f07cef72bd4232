import { z } from "zod";
import { ToolError } from "../errors.ts";
import { audit, auditPath, configureAudit, openAudit, type AuditRecord } from "../signals/audit.ts";
import {
  checkSameProcess,
  checkTarget,
  DEFAULT_POLICY,
  parseSignal,
  TokenStore,
  tokenTtlFromEnv,
  type Signal,
  type SignalPolicy,
} from "../signals/policy.ts";
import { ancestorsOf, childrenOf, readTarget, STATE_NAMES, startTimeIso, watchAfterSignal, type Target } from "../signals/target.ts";
import { buildSnapshot } from "../snapshot/build.ts";
import { collectHostSockets } from "../snapshot/collect.ts";
import { connectionSchema } from "../snapshot/model.ts";
import { defineTool } from "./types.ts";

const MAX_WAIT_S = 30;
/** Sockets shown in a preview: enough to recognise the process, bounded like every answer. */
const PREVIEW_SOCKETS = 50;

let policy: SignalPolicy = DEFAULT_POLICY;
let tokens = new TokenStore();

/** Set by `serve` from its flags; the default is off. */
export function configureSignals(options: { policy: SignalPolicy; stateDir?: string; tokenTtlMs?: number; now?: () => number }): void {
  policy = options.policy;
  tokens = new TokenStore(options.tokenTtlMs ?? tokenTtlFromEnv(process.env.IPCSCOPE_SIGNAL_TOKEN_TTL_MS), options.now);
  configureAudit(options.stateDir);
}

const processSchema = z.object({
  pid: z.number(),
  ppid: z.number(),
  name: z.string(),
  user: z.string(),
  uid: z.number(),
  real_uid: z.number(),
  command_line: z.string(),
  state: z.string().describe("R running, S sleeping, D disk wait, T stopped, Z zombie, ..."),
  state_name: z.string(),
  start_time: z.string().nullable(),
  start_time_ticks: z.number().describe("clock ticks after boot: with the pid, names this process across pid reuse"),
  unit: z.string().nullable(),
  container: z.object({ runtime: z.string(), id: z.string() }).nullable(),
});

const signalSchema = z.object({ name: z.string(), number: z.number(), effect: z.string() });

function describeProcess(target: Target) {
  const { info, stat, facts } = target;
  return {
    pid: info.pid,
    ppid: stat.ppid,
    name: info.name,
    user: info.user,
    uid: facts.effective_uid,
    real_uid: facts.real_uid,
    command_line: info.command_line.length > 1000 ? `${info.command_line.slice(0, 997)}...` : info.command_line,
    state: stat.state,
    state_name: STATE_NAMES[stat.state] ?? "unknown",
    start_time: startTimeIso(stat.start_time_ticks),
    start_time_ticks: stat.start_time_ticks,
    unit: info.unit,
    container: info.container,
  };
}

/** The target's sockets through the snapshot code (every namespace); a missing ss is a warning, not a failure. */
async function socketsOf(pid: number, warnings: string[]) {
  try {
    const snapshot = buildSnapshot(await collectHostSockets({ unix: true }), { pid, include_unix: true, limit: PREVIEW_SOCKETS });
    warnings.push(...snapshot.warnings);
    const entry = snapshot.process_connections.find((candidate) => candidate.pid === pid);
    return { sockets: entry?.connections ?? [], total: entry?.connections_total ?? 0 };
  } catch (error) {
    if (!(error instanceof ToolError)) throw error;
    warnings.push(`sockets not listed: ${error.message}`);
    return { sockets: [], total: 0 };
  }
}

export default defineTool({
  name: "send_signal_to_pid",
  title: "Send a signal to a process",
  description:
    "Sends a signal (SIGTERM, SIGHUP, SIGKILL, ...) to one process, in two steps. Off unless the server runs with " +
    "--allow-signals. 1) Call without confirm_token: nothing is sent; the answer previews the process (user, command " +
    "line, start time, state, sockets, children) and gives a confirm_token valid for 60 s. Show the preview to the " +
    "user. 2) Call again with the same pid and signal and that confirm_token: the signal is sent (the token is " +
    "single-use and bound to this process instance, so a reused pid is refused) and the answer says whether the " +
    "process exited, became a zombie or still runs after wait_seconds. Never signalled: pid 1, kernel threads, " +
    "ipcscope and its parents, and the commands and users the server's policy protects. Every call is audited.",
  toolset: "actions",
  input: {
    pid: z.number().int().describe("The process to signal"),
    sig_str: z
      .union([z.string().min(1), z.number().int()])
      .optional()
      .describe('Signal name or number, case-insensitive: "SIGTERM", "TERM", "15" (default SIGTERM)'),
    signal: z.union([z.string().min(1), z.number().int()]).optional().describe("Alias of sig_str"),
    confirm_token: z.string().min(1).optional().describe("The token of the preview call; without it nothing is sent"),
    wait_seconds: z
      .number()
      .min(0)
      .max(MAX_WAIT_S)
      .default(3)
      .describe(`After sending, how long to watch whether the process exits (0 to ${MAX_WAIT_S})`),
  },
  output: {
    step: z.enum(["preview", "sent"]).describe("preview: nothing was sent; sent: the signal was delivered"),
    pid: z.number(),
    signal: signalSchema,
    process: processSchema.describe("The process as it was before the signal"),
    sockets: z.array(connectionSchema).optional().describe("preview: the process's sockets (TCP, UDP, raw, Unix)"),
    sockets_total: z.number().optional(),
    children: z
      .array(z.object({ pid: z.number(), name: z.string(), command_line: z.string() }))
      .optional()
      .describe("preview: its child processes (a signal to the parent does not reach them)"),
    children_total: z.number().optional(),
    confirm_token: z.string().optional().describe("preview: pass it back with the same pid and signal to send"),
    expires_at: z.string().optional(),
    outcome: z
      .object({
        result: z.enum(["exited", "zombie", "running"]).describe("exited: gone; zombie: exited, its parent has not reaped it; running: still there"),
        state: z.string().nullable().describe("state letter at the end of the wait; null when gone"),
        exited_after_ms: z.number().nullable(),
        waited_ms: z.number(),
        sent_at: z.string(),
      })
      .optional(),
    audit_log: z.string().nullable().describe("the audit file this call was written to; null: the server log only (no --state-dir)"),
    warnings: z.array(z.string()),
    next_step: z.string(),
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  handler: async (args, ctx) => {
    const step = args.confirm_token === undefined ? "preview" : "send";
    let target: Target | null = null;
    let signal: Signal | null = null;
    const record = (result: string, reason: string | null): AuditRecord =>
      audit({
        via: ctx.via,
        pid: args.pid,
        command: target?.info.command_line ?? null,
        user: target?.info.user ?? null,
        signal: signal?.name ?? (args.sig_str ?? args.signal ?? null)?.toString() ?? null,
        step,
        result,
        reason,
      });
    // Typed explicitly so that TypeScript narrows after a call (a function returning never).
    const refuse: (message: string) => never = (message) => {
      record("refused", message);
      throw new ToolError(message);
    };

    if (!policy.enabled) {
      refuse(
        "send_signal_to_pid is off on this server: it sends signals only when an operator starts it with " +
          "`ipcscope serve --allow-signals` (see the README's Security section for the protections and the audit log). " +
          "Ask the operator, or tell the user the kill command to run themselves.",
      );
    }
    if (args.sig_str !== undefined && args.signal !== undefined && String(args.sig_str) !== String(args.signal)) {
      refuse(`sig_str ${JSON.stringify(args.sig_str)} and signal ${JSON.stringify(args.signal)} disagree: give one of them`);
    }
    try {
      signal = parseSignal(args.sig_str ?? args.signal ?? "SIGTERM", args.sig_str === undefined && args.signal !== undefined ? "signal" : "sig_str");
    } catch (error) {
      if (error instanceof ToolError) refuse(error.message);
      throw error;
    }
    const sig = signal!;

    target = readTarget(args.pid);
    const verdict = checkTarget(args.pid, target?.facts ?? null, policy, { pid: process.pid, ancestors: ancestorsOf(process.pid) });
    if (!verdict.ok) refuse(`pid ${args.pid} refused by rule "${verdict.rule}": ${verdict.reason}`);
    const found = target!;

    if (args.confirm_token === undefined) return preview(found, sig, record);

    const redeemed = tokens.redeem(args.confirm_token, { pid: args.pid, signal: sig.name });
    if (!redeemed.ok) refuse(`pid ${args.pid}: ${redeemed.reason}`);
    const same = checkSameProcess(redeemed.binding, found.stat.start_time_ticks);
    if (!same.ok) refuse(`pid ${args.pid} refused by rule "${same.rule}": ${same.reason}`);

    // No signal without its audit record: a file that cannot be written refuses the send.
    try {
      openAudit();
    } catch (error) {
      if (error instanceof ToolError) refuse(error.message);
      throw error;
    }
    const sentAt = performance.now();
    const sentAtIso = new Date().toISOString();
    try {
      process.kill(args.pid, sig.number);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      const message =
        code === "ESRCH"
          ? `pid ${args.pid} exited before the signal reached it (ESRCH); nothing was sent`
          : code === "EPERM"
            ? `pid ${args.pid}: not permitted to signal it (EPERM): ipcscope runs as uid ${process.geteuid?.()}, the process as ${found.info.user}; run ipcscope as root`
            : `pid ${args.pid}: kill failed (${code})`;
      record("failed", message);
      throw new ToolError(message);
    }
    const audited = record("sent", null);
    const watched = await watchAfterSignal(args.pid, found.stat.start_time_ticks, args.wait_seconds * 1000, sentAt, ctx.signal);
    audit({ ...audited, step: "outcome", result: watched.outcome, reason: `after ${watched.waited_ms} ms` });
    const next =
      watched.outcome === "exited"
        ? `pid ${args.pid} exited ${watched.exited_after_ms} ms after ${sig.name}.`
        : watched.outcome === "zombie"
          ? `pid ${args.pid} exited but is a zombie: its parent (pid ${found.stat.ppid}) has not reaped it.`
          : `pid ${args.pid} still runs (state ${watched.state}) ${watched.waited_ms} ms after ${sig.name}; ` +
            "it may be shutting down slowly, or handle or ignore the signal. Check again, or preview a stronger signal (SIGKILL) if the user agrees.";
    return {
      step: "sent" as const,
      pid: args.pid,
      signal: sig,
      process: describeProcess(found),
      outcome: { result: watched.outcome, state: watched.state, exited_after_ms: watched.exited_after_ms, waited_ms: watched.waited_ms, sent_at: sentAtIso },
      audit_log: auditPath(),
      warnings: [],
      next_step: next,
    };
  },
});

async function preview(target: Target, signal: Signal, record: (result: string, reason: string | null) => AuditRecord) {
  const warnings: string[] = [];
  const { sockets, total } = await socketsOf(target.info.pid, warnings);
  const { children, total: childrenTotal } = childrenOf(target.info.pid);
  const issued = tokens.issue({ pid: target.info.pid, start_time_ticks: target.stat.start_time_ticks, signal: signal.name });
  record("previewed", null);
  const seconds = Math.round(tokens.ttlMs / 1000);
  return {
    step: "preview" as const,
    pid: target.info.pid,
    signal,
    process: describeProcess(target),
    sockets,
    sockets_total: total,
    children,
    children_total: childrenTotal,
    confirm_token: issued.token,
    expires_at: new Date(issued.expiresAt).toISOString(),
    audit_log: auditPath(),
    warnings,
    next_step:
      `Nothing was sent. Show this to the user; to send ${signal.name} (${signal.effect}) to pid ${target.info.pid}, call ` +
      `send_signal_to_pid again with pid ${target.info.pid}, sig_str "${signal.name}" and confirm_token within ${seconds} s.`,
  };
}
