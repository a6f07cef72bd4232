import { z } from "zod";
import { peekMonitor } from "../events/monitor.ts";
import { collectSystemInfo, systemInfoSchema } from "../system/info.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_system_info",
  title: "System info",
  description:
    "What this host is and what ipcscope can do on it: kernel, distro, architecture, BTF, tracefs, " +
    "lockdown, cgroup version, SELinux, effective capabilities, bpftrace/bcc/bpftool/ss versions, and " +
    "for each eBPF probe whether it can run here and why not, with a list of checks and fixes, and the state of " +
    "the connection-event monitor (source, restarts, lost events, last error). " +
    "Call it first when another tool says a probe or privilege is missing.",
  toolset: "system",
  input: {
    verify_probes: z
      .boolean()
      .default(false)
      .describe("Really load and attach each probe once (about 0.5 s per probe) instead of only checking its requirements"),
  },
  output: {
    ...systemInfoSchema.shape,
    monitor: z
      .looseObject({ source: z.string() })
      .nullable()
      .describe("The connection-event monitor: its source (ebpf or ss-poll), the probe's state, restarts, lost events, last error, gaps, and the event store; null when not started"),
  },
  annotations: READ_ONLY,
  shareConcurrentCalls: true,
  handler: async ({ verify_probes }) => ({ ...(await collectSystemInfo({ verifyProbes: verify_probes })), monitor: peekMonitor() }),
});
