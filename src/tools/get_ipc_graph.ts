import { z } from "zod";
import { collectHostSockets } from "../snapshot/collect.ts";
import { buildIpcGraph, graphSchema } from "../snapshot/graph.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_ipc_graph",
  title: "IPC graph",
  description:
    "Who talks to whom on this host: processes as nodes, and an edge from client to server for every local " +
    "connection whose both ends are on this host (loopback TCP/UDP, matched by the reversed 4-tuple, and connected " +
    "Unix stream sockets, matched by peer inode), with transport, the server's port or socket path, the protocol and " +
    "the number of connections. Filter by pid or command; mermaid=true adds a Mermaid flowchart for people.",
  toolset: "snapshot",
  input: {
    pid: z.number().int().positive().optional().describe("Only edges touching this process"),
    command: z.string().min(1).optional().describe("Only edges touching processes whose name or command line contains this"),
    process: z.string().min(1).optional().describe("Alias of command"),
    mermaid: z.boolean().default(false).describe("Add the graph as Mermaid flowchart text"),
  },
  output: graphSchema.shape,
  annotations: READ_ONLY,
  shareConcurrentCalls: true,
  handler: async (args) =>
    buildIpcGraph(await collectHostSockets({ unix: true }), { pid: args.pid, command: args.command ?? args.process, mermaid: args.mermaid }),
});
