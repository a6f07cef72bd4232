// Packet drops: the trace_drops probe's in-kernel counts and samples, named (drop reasons from the
// tracepoint's own format, interfaces, protocols, socket owners) and grouped for the two drop tools.
import { z } from "zod";
import { formatEndpoint } from "../snapshot/cidr.ts";
import { ethertypeName, hasField, interfaceNames, ipProtocolName, numericKey, SocketOwners, symbolicNames, tracepointFormat } from "./kernel.ts";
import { type ProbeWindow, windowFields } from "./window.ts";

export const DROPS_PROBE = "trace_drops";
const TRACEPOINT = "skb:kfree_skb";

export const dropSampleSchema = z.object({
  type: z.literal("drop"),
  ts_ns: z.number(),
  reason: z.number(),
  ethertype: z.number(),
  ipproto: z.number(),
  ifindex: z.number(),
  saddr: z.string(),
  sport: z.number(),
  daddr: z.string(),
  dport: z.number(),
  inode: z.number(),
  pid: z.number(),
  comm: z.string(),
});
export type DropSample = z.infer<typeof dropSampleSchema>;

/** What this kernel's skb:kfree_skb offers: a reason field, and the names of its values. */
export interface DropKernel {
  reasons: boolean;
  names: Map<number, string>;
}

export function dropKernel(): DropKernel {
  const format = tracepointFormat(TRACEPOINT) ?? "";
  return { reasons: hasField(format, "reason"), names: symbolicNames(format, "reason") };
}

/** On a kernel whose kfree_skb has no reason (before 5.17), the probe counts reason 0. */
export function rewriteForKernel(kernel: DropKernel): ((source: string) => string) | undefined {
  return kernel.reasons ? undefined : (source) => source.replaceAll("args->reason", "0");
}

export function reasonName(code: number, kernel: DropKernel): string {
  if (!kernel.reasons) return "unknown (this kernel's kfree_skb has no reason: 5.17+)";
  return kernel.names.get(code) ?? `reason ${code}`;
}

const count = z.number();
const byReason = z.object({ reason: z.string(), code: z.number(), drops: count });
const byInterface = z.object({ interface: z.string(), ifindex: z.number(), drops: count });
const byPort = z.object({ protocol: z.string(), port: z.number(), drops: count });
const byProcess = z.object({ pid: z.number().nullable(), command: z.string(), socket_inode: z.number(), drops: count });
const dropRow = z.object({
  reason: z.string(),
  network: z.string(),
  protocol: z.string(),
  interface: z.string(),
  dport: z.number(),
  pid: z.number().nullable(),
  command: z.string().nullable(),
  drops: count,
  per_second: z.number(),
});

export const dropSummarySchema = z.object({
  ...windowFields,
  kernel_has_reasons: z.boolean().describe("false on kernels before 5.17: drops are counted without a reason"),
  port_filter: z.number().nullable(),
  total_drops: count,
  by_reason: z.array(byReason),
  by_interface: z.array(byInterface),
  by_port: z.array(byPort).describe("TCP and UDP drops by destination port"),
  by_process: z.array(byProcess).describe("Drops whose socket was known, by the process holding it now (pid null: the socket is closed)"),
  rows: z.array(dropRow).describe("Each (reason, protocol, interface, port, socket) combination, most drops first"),
  truncated: z.boolean(),
  note: z.string(),
});
export type DropSummary = z.infer<typeof dropSummarySchema>;

interface Key {
  reason: number;
  ethertype: number;
  ipproto: number;
  ifindex: number;
  dport: number;
  inode: number;
}

function parseKey(key: string): Key {
  const [reason = 0, ethertype = 0, ipproto = 0, ifindex = 0, dport = 0, inode = 0] = numericKey(key);
  return { reason, ethertype, ipproto, ifindex, dport, inode };
}

function add<K>(map: Map<K, number>, key: K, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

function top<K>(map: Map<K, number>, limit: number): [K, number][] {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, limit);
}

export interface DropNaming {
  kernel: DropKernel;
  interfaces: Map<number, string>;
  owners: SocketOwners;
}

export function namingFor(inodes: Iterable<number>, kernel: DropKernel, owners = new SocketOwners()): DropNaming {
  return { kernel, interfaces: interfaceNames(), owners: owners.resolve(inodes) };
}

const ifName = (ifindex: number, naming: DropNaming) => (ifindex === 0 ? "none" : naming.interfaces.get(ifindex) ?? `ifindex ${ifindex}`);

/** The drop summary from the probe's @drops counts (pure but for the naming given). */
export function summarizeDrops(counts: Map<string, number>, total: number, naming: DropNaming, durationS: number, limit: number) {
  const reasons = new Map<number, number>();
  const interfaces = new Map<number, number>();
  const ports = new Map<string, number>();
  const processes = new Map<number, number>();
  const rows: z.infer<typeof dropRow>[] = [];
  let keyed = 0;
  for (const [text, n] of counts) {
    const key = parseKey(text);
    keyed += n;
    add(reasons, key.reason, n);
    add(interfaces, key.ifindex, n);
    if (key.ipproto === 6 || key.ipproto === 17) add(ports, `${ipProtocolName(key.ipproto)}/${key.dport}`, n);
    if (key.inode) add(processes, key.inode, n);
    const owner = naming.owners.get(key.inode);
    rows.push({
      reason: reasonName(key.reason, naming.kernel),
      network: ethertypeName(key.ethertype),
      protocol: ipProtocolName(key.ipproto),
      interface: ifName(key.ifindex, naming),
      dport: key.dport,
      pid: owner?.pid ?? null,
      command: owner?.command ?? null,
      drops: n,
      per_second: durationS > 0 ? Math.round((n / durationS) * 10) / 10 : 0,
    });
  }
  rows.sort((a, b) => b.drops - a.drops);
  return {
    kernel_has_reasons: naming.kernel.reasons,
    total_drops: Math.max(total, keyed),
    by_reason: top(reasons, 30).map(([code, drops]) => ({ reason: reasonName(code, naming.kernel), code, drops })),
    by_interface: top(interfaces, 30).map(([ifindex, drops]) => ({ interface: ifName(ifindex, naming), ifindex, drops })),
    by_port: top(ports, 30).map(([text, drops]) => {
      const [protocol, port] = text.split("/");
      return { protocol: protocol!, port: Number(port), drops };
    }),
    by_process: top(processes, 30).map(([inode, drops]) => {
      const owner = naming.owners.get(inode);
      return { pid: owner?.pid ?? null, command: owner?.command ?? "(socket closed)", socket_inode: inode, drops };
    }),
    rows: rows.slice(0, limit),
    truncated: rows.length > limit,
    note:
      total > keyed
        ? `${total - keyed} drop(s) did not fit the probe's per-key map (4096 keys) and are only in total_drops`
        : "Only drops are counted (skb:kfree_skb); normal frees go through consume_skb. dport is the packet's destination port.",
  };
}

/** The socket inodes in a @drops map (to name their processes while they are open). */
export function dropInodes(counts: Map<string, number>): number[] {
  return [...counts.keys()].map((key) => parseKey(key).inode);
}

/** The answer of get_packet_drop_summary at any moment of the window. */
export function dropSummary(window: ProbeWindow<DropSample>, kernel: DropKernel, port: number | null, limit: number, owners?: SocketOwners): DropSummary {
  const counts = window.counts("@drops");
  const total = window.counts("@total").get("") ?? 0;
  const inodes = dropInodes(counts);
  const fields = window.fields();
  return { ...fields, port_filter: port, ...summarizeDrops(counts, total, namingFor(inodes, kernel, owners), fields.duration_s, limit) };
}

export const dropListSchema = z.object({
  ...windowFields,
  kernel_has_reasons: z.boolean(),
  port_filter: z.number().nullable(),
  total_drops: count.describe("Every drop in the window (counted in the kernel)"),
  sampled: count.describe("Drops printed one by one: the kernel prints at most 100 a second"),
  returned: count,
  truncated: z.boolean(),
  drops: z.array(
    z.object({
      time: z.string(),
      reason: z.string(),
      network: z.string(),
      protocol: z.string(),
      interface: z.string(),
      source: z.string(),
      destination: z.string(),
      socket_inode: z.number(),
      pid: z.number().nullable().describe("The process holding the packet's socket (now), else null"),
      command: z.string().nullable(),
      running: z.string().describe("pid/comm of whoever ran when the packet was dropped: the sender for local output, often unrelated for input"),
    }),
  ),
});
export type DropList = z.infer<typeof dropListSchema>;

/** A packet's address and port; the address alone for protocols without ports (port 0). */
const endpoint = (addr: string, port: number) => (port ? formatEndpoint(addr, port) : addr);

/** The answer of list_packet_drops at any moment of the window. */
export function dropList(window: ProbeWindow<DropSample>, kernel: DropKernel, port: number | null, owners?: SocketOwners): DropList {
  const fields = window.fields();
  const naming = namingFor(window.samples.map((sample) => sample.inode), kernel, owners);
  return {
    ...fields,
    kernel_has_reasons: kernel.reasons,
    port_filter: port,
    total_drops: window.counts("@total").get("") ?? 0,
    sampled: window.samplesSeen,
    returned: window.samples.length,
    truncated: window.samplesSeen > window.samples.length,
    drops: window.samples.map((sample) => {
      const owner = naming.owners.get(sample.inode);
      return {
        time: new Date(window.wallTime(sample.ts_ns)).toISOString(),
        reason: reasonName(sample.reason, kernel),
        network: ethertypeName(sample.ethertype),
        protocol: ipProtocolName(sample.ipproto),
        interface: ifName(sample.ifindex, naming),
        source: endpoint(sample.saddr, sample.sport),
        destination: endpoint(sample.daddr, sample.dport),
        socket_inode: sample.inode,
        pid: owner?.pid ?? null,
        command: owner?.command ?? null,
        running: `${sample.pid}/${sample.comm}`,
      };
    }),
  };
}
