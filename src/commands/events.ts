import { defineCommand } from "citty";
import ndjson from "ndjson";
import { UsageError } from "../errors.ts";
import { logger } from "../logger.ts";
import { EVENT_TYPES, type EventType } from "../events/model.ts";
import { getMonitor, stopMonitor } from "../events/monitor.ts";
import { eventMatches, viewOf, type EventFilter, type EventView } from "../events/view.ts";
import { formatEndpoint } from "../snapshot/cidr.ts";
import { applyLogLevel, jsonArg, lineWriter, logLevelArg, print } from "./_shared.ts";

/** One event as a line for people: time, type, who, and what it reached. */
export function formatEventLine(view: EventView): string {
  const time = view.wall_time.slice(11, 23);
  const who = `${view.command || "?"}[${view.pid}]`;
  const remote = view.path ?? (view.destination_ip !== undefined ? formatEndpoint(view.destination_ip, view.destination_port ?? null) : "");
  const local = view.local_port !== undefined && view.type !== "connect" ? `${view.local_ip}:${view.local_port}` : "";
  const details = [
    view.protocol,
    view.type === "accept" ? `${remote} -> ${local}` : view.type === "listen" ? local : remote,
    view.latency_us !== undefined ? `${(view.latency_us / 1000).toFixed(2)} ms` : "",
    view.duration_ms !== undefined ? `up ${view.duration_ms} ms` : "",
    view.bytes_sent !== undefined ? `sent ${view.bytes_sent} B, received ${view.bytes_received ?? 0} B` : "",
    view.reason ?? "",
    view.return_code !== undefined && view.return_code !== 0 ? `ret ${view.return_code}` : "",
    view.exit_code !== undefined ? `exit ${view.exit_code}` : "",
  ].filter(Boolean);
  return `${time}  ${view.type.padEnd(14)} ${who.padEnd(24)} ${details.join("  ")}`;
}

function parseNumber(flag: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || number <= 0 || number > max) throw new UsageError(`--${flag}: "${value}" is not a number between 0 and ${max}`);
  return number;
}

export default defineCommand({
  meta: {
    name: "events",
    description: "Stream connection events live (eBPF when possible, else ss polling) until Ctrl-C or --duration",
  },
  args: {
    duration: { type: "string", description: "Stop after this many seconds (default: run until Ctrl-C)", valueHint: "s" },
    pid: { type: "string", description: "Only this process", valueHint: "pid" },
    command: { type: "string", description: "Only processes whose name contains this", valueHint: "text" },
    port: { type: "string", description: "Only events with this local or remote port", valueHint: "port" },
    type: { type: "string", description: `Only these types, comma-separated: ${EVENT_TYPES.join(", ")}`, valueHint: "list" },
    ...jsonArg,
    ...logLevelArg,
  },
  async run({ args }) {
    applyLogLevel(args["log-level"]);
    const types = args.type?.split(",").map((type) => type.trim());
    for (const type of types ?? []) {
      if (!(EVENT_TYPES as readonly string[]).includes(type)) throw new UsageError(`--type: unknown event type "${type}"; use ${EVENT_TYPES.join(", ")}`);
    }
    const filter: EventFilter = {
      pid: parseNumber("pid", args.pid, 2 ** 22),
      command: args.command,
      port: parseNumber("port", args.port, 65535),
      types: types as EventType[] | undefined,
    };
    const duration = parseNumber("duration", args.duration, 86_400);

    const monitor = getMonitor();
    const out = ndjson.stringify();
    out.pipe(process.stdout);
    if (!args.json) print(`${"TIME".padEnd(12)}  ${"TYPE".padEnd(14)} ${"PROCESS[PID]".padEnd(24)} DETAILS`);
    const watchedFrom = Date.now();
    const unsubscribe = monitor.subscribe((event) => {
      if (!eventMatches(event, filter)) return;
      const view = viewOf(event);
      if (args.json) out.write(view);
      else print(formatEventLine(view));
    });
    if (await monitor.ready()) logger.info(`watching connection events from ${monitor.source}${duration ? ` for ${duration} s` : ""}; Ctrl-C stops`);
    else logger.warn(`the event source is not ready yet (${JSON.stringify(monitor.status().probe?.last_error ?? "starting")}); waiting anyway`);

    await new Promise<void>((resolve) => {
      const timer = duration ? setTimeout(resolve, duration * 1000) : null;
      const stop = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    unsubscribe();
    const completeness = monitor.completeness(watchedFrom, Date.now());
    await stopMonitor();
    // On stderr whatever --log-level says, and with --json too: stdout stays the events alone.
    if (!completeness.complete && completeness.note) lineWriter(process.stderr)(`warning: ${completeness.note}`);
    await new Promise<void>((resolve) => out.end(resolve));
  },
});
