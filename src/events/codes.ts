// The small integers that stand for enumerated fields (type, source, protocol, family) in the
// event history's tables (events, counts): SQLite keeps them in 0 or 1 byte instead of the word.
import type { ConnectionEvent, EventSource, EventType } from "./model.ts";

// Stored codes. They are persisted in files: append new values, never renumber.
// A Record over the union makes the compiler ask for a code when model.ts gains a value.
const TYPE_CODES: Record<EventType, number> = { connect: 0, accept: 1, connect_failed: 2, close: 3, listen: 4, exec: 5, exit: 6 };
const SOURCE_CODES: Record<EventSource, number> = { ebpf: 0, "ss-poll": 1 };
type Protocol = NonNullable<ConnectionEvent["protocol"]>;
type Family = NonNullable<ConnectionEvent["family"]>;
const PROTOCOL_CODES: Record<Protocol, number> = { tcp: 0, udp: 1, unix: 2 };
const FAMILY_CODES: Record<Family, number> = { ipv4: 0, ipv6: 1, unix: 2 };

function invert<K extends string>(codes: Record<K, number>): K[] {
  const names: K[] = [];
  for (const [name, code] of Object.entries(codes) as [K, number][]) names[code] = name;
  return names;
}
const TYPE_NAMES = invert(TYPE_CODES);
const SOURCE_NAMES = invert(SOURCE_CODES);
const PROTOCOL_NAMES = invert(PROTOCOL_CODES);
const FAMILY_NAMES = invert(FAMILY_CODES);

/** The stored code of a type, protocol or source, for SQL written elsewhere (analysis.ts, counts.ts). */
export const CODES = { type: TYPE_CODES, source: SOURCE_CODES, protocol: PROTOCOL_CODES, family: FAMILY_CODES } as const;
export const NAMES = { type: TYPE_NAMES, source: SOURCE_NAMES, protocol: PROTOCOL_NAMES, family: FAMILY_NAMES } as const;

