import { defineCommand } from "citty";
import type { IpcGraph } from "../snapshot/graph.ts";
import { applyLogLevel, jsonArg, logLevelArg, print, runToolFromFlags } from "./_shared.ts";

/** One line per edge: client (pid) --transport endpoint protocol xN--> server (pid). */
export function formatGraph(graph: IpcGraph): string {
  const names = new Map(graph.nodes.map((node) => [node.id, `${node.name} (${node.pid})`]));
  const lines = graph.edges.map(
    (edge) =>
      `${names.get(edge.from)} --${edge.transport} ${edge.endpoint}${edge.protocol === "unknown" ? "" : ` ${edge.protocol}`}` +
      `${edge.count > 1 ? ` x${edge.count}` : ""}--> ${names.get(edge.to)}`,
  );
  if (lines.length === 0) lines.push("no local connections between processes");
  lines.push("", `${graph.totals.edges} edge(s) between ${graph.totals.nodes} process(es), ${graph.totals.connections} connection(s); ${graph.totals.unresolved} unresolved`);
  if (graph.truncated) lines.push("truncated: narrow with --pid or --command");
  for (const warning of graph.warnings) lines.push(`warning: ${warning}`);
  return lines.join("\n");
}

export default defineCommand({
  meta: { name: "graph", description: "Who talks to whom on this host (the get_ipc_graph tool)" },
  args: {
    pid: { type: "string", description: "Only edges touching this process", valueHint: "pid" },
    command: { type: "string", description: "Only edges touching processes whose name or command line contains this", valueHint: "text" },
    mermaid: { type: "boolean", description: "Print a Mermaid flowchart instead of lines", default: false },
    ...jsonArg,
    ...logLevelArg,
  },
  async run({ args }) {
    applyLogLevel(args["log-level"]);
    const { json, "log-level": _level, ...flags } = args;
    const graph = (await runToolFromFlags("get_ipc_graph", flags)) as IpcGraph;
    print(json ? JSON.stringify(graph, null, 2) : args.mermaid ? graph.mermaid! : formatGraph(graph));
  },
});
