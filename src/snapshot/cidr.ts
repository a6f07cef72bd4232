// IPv4/IPv6 addresses and CIDR blocks as bigints, for the remote_cidr filter and loopback checks.

/** 127.0.0.0/8, ::1 and v4-mapped ::ffff:127.x are loopback. */
export function isLoopbackIp(ip: string): boolean {
  return ip.startsWith("127.") || ip === "::1" || ip.toLowerCase().startsWith("::ffff:127.");
}

/** ::ffff:1.2.3.4 → 1.2.3.4 (a v4 client on a dual-stack socket), anything else unchanged. */
export function unmapV4(ip: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return match ? match[1]! : ip;
}

function v4ToBigInt(ip: string): bigint | null {
  const parts = ip.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function v6ToBigInt(ip: string): bigint | null {
  let text = ip.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4) is two groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = v4ToBigInt(dotted[2]!);
    if (v4 === null) return null;
    text = `${dotted[1]}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(group)) return null;
    value = (value << 16n) | BigInt(`0x${group}`);
  }
  return value;
}

export interface Cidr {
  text: string;
  v6: boolean;
  base: bigint;
  bits: number;
}

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128); null when malformed. */
export function parseCidr(text: string): Cidr | null {
  const [address, prefix] = text.trim().split("/");
  if (!address) return null;
  const v6 = address.includes(":");
  const value = v6 ? v6ToBigInt(address) : v4ToBigInt(address);
  const width = v6 ? 128 : 32;
  const bits = prefix === undefined ? width : Number(prefix);
  if (value === null || !/^\d*$/.test(prefix ?? "") || !Number.isInteger(bits) || bits < 0 || bits > width) return null;
  const shift = BigInt(width - bits);
  return { text, v6, base: (value >> shift) << shift, bits };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const plain = cidr.v6 ? ip : unmapV4(ip);
  const value = cidr.v6 ? (plain.includes(":") ? v6ToBigInt(plain) : null) : plain.includes(":") ? null : v4ToBigInt(plain);
  if (value === null) return false;
  const shift = BigInt((cidr.v6 ? 128 : 32) - cidr.bits);
  return (value >> shift) << shift === cidr.base;
}

/** "10.0.0.1:80", "[::1]:80", or "host:*" without a port. */
export function formatEndpoint(address: string, port: number | null): string {
  const host = address.includes(":") ? `[${address}]` : address;
  return `${host}:${port ?? "*"}`;
}

/**
 * An address from its bytes in network order (4 or 16), written as inet_ntop and bpftrace's ntop()
 * write it: dotted quad, ::ffff:a.b.c.d for a v4-mapped address, else the longest run of two or
 * more zero groups as "::" (the first of equal runs, RFC 5952).
 */
export function formatIpBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${[...bytes.subarray(12)].join(".")}`;
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
}
