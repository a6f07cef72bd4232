import { z } from "zod";
import { parseCidr } from "../snapshot/cidr.ts";
import { collectHostSockets } from "../snapshot/collect.ts";
import { buildSnapshot, DEFAULT_LIMIT } from "../snapshot/build.ts";
import { snapshotSchema } from "../snapshot/model.ts";
import { showValue } from "../util/zod-errors.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export const snapshotInput = {
  pid: z.number().int().positive().optional().describe("Only this process"),
  command: z.string().min(1).optional().describe("Only processes whose name or command line contains this (case-insensitive)"),
  process: z.string().min(1).optional().describe("Alias of command"),
  user: z.string().min(1).optional().describe("Only processes of this user (name or uid)"),
  port: z.number().int().min(0).max(65535).optional().describe("Only sockets with this local or remote port"),
  state: z.string().min(1).optional().describe("Only sockets in this state: LISTEN, ESTAB (or ESTABLISHED), TIME-WAIT, UNCONN, SYN-SENT, CLOSE-WAIT, ..."),
  protocol: z.string().min(1).optional().describe("Only this transport (tcp, udp, raw, unix) or application protocol (ssh, https, postgresql, ...)"),
  listening: z.boolean().default(false).describe("Only sockets waiting for connections"),
  remote_cidr: z
    .string()
    .refine((value) => parseCidr(value) !== null, {
      error: (issue) => `not a CIDR block such as 10.0.0.0/8 or 2001:db8::/32, got ${showValue(issue.input)}`,
    })
    .optional()
    .describe("Only connections whose remote address is in this block"),
  include_unix: z.boolean().default(false).describe("Also list Unix sockets (many on a busy host)"),
  limit: z.number().int().min(1).max(2000).default(DEFAULT_LIMIT).describe("Most sockets to return; the answer is also cut to fit ~60k characters"),
};

export default defineTool({
  name: "get_process_connection_snapshot",
  title: "Process connection snapshot",
  description:
    "Every process on this host with its TCP, UDP, raw (and with include_unix, Unix) sockets, right now: pid, ppid, " +
    "user, command line, systemd unit or container, and per socket the addresses, state, direction (listen, inbound, " +
    "outbound), queues, network namespace and the application protocol guessed from the service port with the reason. " +
    "Covers every network namespace (containers). Busiest processes first; the answer carries totals and says " +
    "truncated with a hint when it was cut: narrow it with pid, command, port, state, protocol, listening or remote_cidr.",
  toolset: "snapshot",
  input: snapshotInput,
  output: snapshotSchema.shape,
  annotations: READ_ONLY,
  shareConcurrentCalls: true,
  handler: async (args) => {
    const includeUnix = args.include_unix || args.protocol?.toLowerCase() === "unix";
    const host = await collectHostSockets({ unix: includeUnix });
    return buildSnapshot(host, {
      ...args,
      command: args.command ?? args.process,
      include_unix: includeUnix,
      remote_cidr: args.remote_cidr === undefined ? undefined : parseCidr(args.remote_cidr)!,
    });
  },
});
