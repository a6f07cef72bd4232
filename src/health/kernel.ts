// What the health tools need to name what a probe counted: tracepoint format files (which fields a
// kernel has, and the names behind an enum), interface names by ifindex, protocol names, and the
// processes holding socket inodes. Pure parsers plus thin readers of /sys and /proc.
import { readdirSync, readFileSync } from "node:fs";
import { mapSocketInodes, readProcess } from "../snapshot/proc.ts";

const TRACEFS = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/** The format file of a tracepoint ("skb:kfree_skb"), or null when tracefs or the event is missing. */
export function tracepointFormat(tracepoint: string): string | null {
  const [category, event] = tracepoint.split(":");
  for (const root of TRACEFS) {
    try {
      return readFileSync(`${root}/events/${category}/${event}/format`, "utf8");
    } catch {
      // next root
    }
  }
  return null;
}

/** Whether a format file declares a field of that name. */
export function hasField(format: string, field: string): boolean {
  return new RegExp(`field:[^;]*[\\s*]${field}(\\[\\d+\\])?;`).test(format);
}

/** Value → name of `__print_symbolic(REC->field, { 2, "NAME" }, ...)` in a format file's print fmt. */
export function symbolicNames(format: string, field: string): Map<number, string> {
  const names = new Map<number, string>();
  const start = format.indexOf(`__print_symbolic(REC->${field},`);
  if (start < 0) return names;
  const end = format.indexOf(")", start + 18);
  const body = format.slice(start, end < 0 ? undefined : end);
  for (const match of body.matchAll(/\{\s*(-?\d+|0x[0-9a-fA-F]+)\s*,\s*"([^"]*)"\s*\}/g)) names.set(Number(match[1]), match[2]!);
  return names;
}

/** ifindex → interface name in ipcscope's network namespace, from /sys/class/net. */
export function interfaceNames(): Map<number, string> {
  const names = new Map<number, string>();
  let entries: string[] = [];
  try {
    entries = readdirSync("/sys/class/net");
  } catch {
    return names;
  }
  for (const name of entries) {
    try {
      names.set(Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim()), name);
    } catch {
      // gone since the listing
    }
  }
  return names;
}

const ETHERTYPES: Record<number, string> = { 0x0800: "ipv4", 0x86dd: "ipv6", 0x0806: "arp", 0x8100: "vlan", 0x88cc: "lldp" };
const IP_PROTOCOLS: Record<number, string> = { 1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp" };

export function ethertypeName(value: number): string {
  return ETHERTYPES[value] ?? (value === 0 ? "none" : `0x${value.toString(16).padStart(4, "0")}`);
}

export function ipProtocolName(value: number): string {
  return IP_PROTOCOLS[value] ?? (value === 0 ? "none" : `ip-proto-${value}`);
}

export interface SocketOwner {
  pid: number;
  command: string;
}

/**
 * Socket inodes → the process holding each (the lowest pid). Looks each inode up once, scanning
 * /proc only when some inode is new, so a socket named while it was open keeps its process after
 * it closed, and one already closed when first seen is not looked for again.
 */
export class SocketOwners {
  private readonly owners = new Map<number, SocketOwner>();
  private readonly tried = new Set<number>();

  resolve(inodes: Iterable<number>): this {
    const wanted = [...new Set(inodes)].filter((inode) => inode > 0 && !this.tried.has(inode));
    if (wanted.length === 0) return this;
    const { byInode } = mapSocketInodes();
    for (const inode of wanted) {
      this.tried.add(inode);
      const holders = byInode.get(inode);
      if (!holders?.length) continue;
      const pid = Math.min(...holders.map((holder) => holder.pid));
      this.owners.set(inode, { pid, command: readProcess(pid)?.name ?? "" });
    }
    return this;
  }

  get(inode: number): SocketOwner | undefined {
    return this.owners.get(inode);
  }
}

/** Splits a `bpftrace -f json` map key "a,b,c" into numbers (keys that are all numbers). */
export function numericKey(key: string): number[] {
  return key.split(",").map(Number);
}
