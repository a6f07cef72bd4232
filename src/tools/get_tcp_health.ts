import { z } from "zod";
import { SocketOwners } from "../health/kernel.ts";
import { TCP_PROBE, tcpHealth, tcpHealthSchema, tcpInodes } from "../health/tcp.ts";
import { runWindow } from "../health/window.ts";
import { MAX_INLINE_SECONDS, MAX_JOB_SECONDS } from "../jobs.ts";
import { isIP } from "node:net";
import { cidrContains, parseCidr } from "../snapshot/cidr.ts";
import { ToolError } from "../errors.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_tcp_health",
  title: "TCP retransmits and resets",
  description:
    "TCP retransmits and resets (sent and received) over `duration` seconds, counted in the kernel (eBPF tracepoints " +
    "tcp_retransmit_skb, tcp_send_reset, tcp_receive_reset), per connection with the process holding it, and rolled " +
    "up per process and per destination, as counts and rates. Use it when a connection is slow (retransmits: loss " +
    "or congestion) or failing (resets: closed ports, aborts). Filters: port (local or remote), pid, remote address. " +
    `Inline at most ${MAX_INLINE_SECONDS} s; background=true returns a job_id (get_capture_results, stop_capture).`,
  toolset: "health",
  input: {
    duration: z.number().positive().max(MAX_JOB_SECONDS).default(5).describe(`Seconds to count (inline at most ${MAX_INLINE_SECONDS})`),
    port: z.number().int().min(1).max(65535).optional().describe("Only connections with this local or remote port"),
    pid: z.number().int().positive().optional().describe("Only connections whose socket this process holds"),
    remote: z.string().optional().describe("Only connections to this remote IP address"),
    limit: z.number().int().positive().max(1000).default(50).describe("Most connections to return"),
    background: z.boolean().default(false).describe("Run as a background job and return its job_id at once"),
  },
  output: tcpHealthSchema.shape,
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    let remote: ((ip: string) => boolean) | null = null;
    if (args.remote !== undefined) {
      const version = isIP(args.remote);
      const cidr = version ? parseCidr(`${args.remote}/${version === 4 ? 32 : 128}`) : null;
      if (!cidr) throw new ToolError(`remote: "${args.remote}" is not an IP address (give e.g. 10.0.0.5 or 2001:db8::1)`);
      remote = (ip) => cidrContains(cidr, ip);
    }
    const owners = new SocketOwners();
    const filter = { port: args.port ?? null, pid: args.pid ?? null, remote };
    return runWindow(
      "get_tcp_health",
      {
        probe: TCP_PROBE,
        args: [String(args.port ?? 0)],
        durationS: args.duration,
        background: args.background,
        // Sockets are named as they show up, while their processes still hold them.
        onMap: (name, counts) => name === "@tcp" && owners.resolve(tcpInodes(counts)),
      },
      (window) => tcpHealth(window, owners, filter, args.limit),
      ctx,
    );
  },
});
