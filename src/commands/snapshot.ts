import { defineCommand } from "citty";
import type { Snapshot } from "../snapshot/model.ts";
import { applyLogLevel, jsonArg, logLevelArg, print, runToolFromFlags, table } from "./_shared.ts";

/** The snapshot for people: one row per socket, then what was left out. */
export function formatSnapshot(snapshot: Snapshot): string {
  const rows: string[][] = [];
  for (const process of snapshot.process_connections) {
    for (const connection of process.connections) {
      rows.push([
        String(process.pid),
        process.name,
        process.user,
        connection.transport_protocol,
        connection.local_address,
        connection.remote_address,
        connection.status,
        connection.direction,
        connection.identified_application_protocol === "unknown" ? "-" : `${connection.identified_application_protocol} (${connection.protocol_confidence})`,
      ]);
    }
  }
  const lines = [
    rows.length > 0 ? table(["PID", "NAME", "USER", "PROTO", "LOCAL", "REMOTE", "STATE", "DIR", "PROTOCOL"], rows) : "no sockets match",
    "",
    `${snapshot.returned.sockets} of ${snapshot.matched.sockets} matching sockets shown, from ${snapshot.returned.processes} of ` +
      `${snapshot.matched.processes} processes; host total ${snapshot.totals.sockets} sockets in ${snapshot.totals.namespaces} ` +
      `namespace(s), ${snapshot.totals.sockets_without_process} without a process`,
  ];
  if (snapshot.hint) lines.push(snapshot.hint);
  for (const warning of snapshot.warnings) lines.push(`warning: ${warning}`);
  return lines.join("\n");
}

export default defineCommand({
  meta: { name: "snapshot", description: "Every process with its sockets right now (the get_process_connection_snapshot tool)" },
  args: {
    pid: { type: "string", description: "Only this process", valueHint: "pid" },
    command: { type: "string", description: "Only processes whose name or command line contains this", valueHint: "text" },
    user: { type: "string", description: "Only processes of this user (name or uid)", valueHint: "user" },
    port: { type: "string", description: "Only sockets with this local or remote port", valueHint: "port" },
    state: { type: "string", description: "Only sockets in this state (LISTEN, ESTAB, TIME-WAIT, ...)", valueHint: "state" },
    protocol: { type: "string", description: "Only this transport (tcp, udp, raw, unix) or application protocol (ssh, ...)", valueHint: "name" },
    listening: { type: "boolean", description: "Only sockets waiting for connections", default: false },
    "remote-cidr": { type: "string", description: "Only connections to or from this block, e.g. 10.0.0.0/8", valueHint: "cidr" },
    "include-unix": { type: "boolean", description: "Also list Unix sockets", default: false },
    limit: { type: "string", description: "Most sockets to show (default 200)", valueHint: "n" },
    ...jsonArg,
    ...logLevelArg,
  },
  async run({ args }) {
    applyLogLevel(args["log-level"]);
    const { json, "log-level": _level, ...flags } = args;
    const snapshot = (await runToolFromFlags("get_process_connection_snapshot", flags)) as Snapshot;
    print(json ? JSON.stringify(snapshot, null, 2) : formatSnapshot(snapshot));
  },
});
