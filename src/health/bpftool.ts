// Loaded BPF programs and maps, from bpftool's JSON (`bpftool prog show -j`, `map show -j`,
// `map dump id N -j`): parsers without I/O, and at the end the one function that runs bpftool,
// so both BPF tools report a missing bpftool, missing privileges and bpftool's own errors alike.
//
// bpftool's JSON is not a stable interface (its man page says so): fields are read leniently,
// and a field it stops printing becomes null rather than a failure.
import { z } from "zod";
import { ToolError } from "../errors.ts";
import { exec, which } from "../util/exec.ts";

// ---------------------------------------------------------------------------------------------
// Programs and maps

export const bpfHolderSchema = z.object({ pid: z.number(), comm: z.string() });
export type BpfHolder = z.infer<typeof bpfHolderSchema>;

export const bpfProgramSchema = z.object({
  id: z.number(),
  type: z.string().describe("tracepoint, kprobe, perf_event, xdp, sched_cls, cgroup_skb, ..."),
  name: z.string().nullable().describe("At most 15 characters (the kernel cuts longer names)"),
  tag: z.string().nullable(),
  gpl_compatible: z.boolean().nullable(),
  loaded_at: z.string().nullable().describe("ISO time the program was loaded"),
  uid: z.number().nullable().describe("Who loaded it"),
  bytes_xlated: z.number().nullable(),
  jited: z.boolean().nullable(),
  bytes_jited: z.number().nullable(),
  bytes_memlock: z.number().nullable(),
  map_ids: z.array(z.number()),
  btf_id: z.number().nullable(),
  pids: z.array(bpfHolderSchema).describe("Processes holding the program open (a file descriptor or a link)"),
  run_cnt: z.number().optional().describe("Runs since load (only while kernel.bpf_stats_enabled=1)"),
  run_time_ns: z.number().optional().describe("Total run time (only while kernel.bpf_stats_enabled=1)"),
  avg_run_ns: z.number().optional().describe("run_time_ns / run_cnt"),
});
export type BpfProgram = z.infer<typeof bpfProgramSchema>;

export const bpfMapSchema = z.object({
  id: z.number(),
  type: z.string().describe("hash, array, percpu_array, perf_event_array, ringbuf, lru_hash, ..."),
  name: z.string().nullable(),
  flags: z.number().nullable(),
  key_size: z.number().nullable().describe("Bytes"),
  value_size: z.number().nullable().describe("Bytes"),
  max_entries: z.number().nullable(),
  bytes_memlock: z.number().nullable(),
  frozen: z.boolean().nullable(),
  btf_id: z.number().nullable().describe("Set when the map has type information: its dump is formatted"),
  pids: z.array(bpfHolderSchema),
});
export type BpfMap = z.infer<typeof bpfMapSchema>;

// What bpftool prints: every field optional, unknown ones kept out.
const num = z.number().optional().catch(undefined);
const rawProgramSchema = z.object({
  id: z.number(),
  // A type newer than this bpftool is printed as its number.
  type: z.union([z.string(), z.number()]),
  name: z.string().optional().catch(undefined),
  tag: z.string().optional().catch(undefined),
  gpl_compatible: z.boolean().optional().catch(undefined),
  // Wall-clock seconds since the epoch in JSON mode (bpftool converts the kernel's boot-time ns).
  loaded_at: num,
  uid: num,
  bytes_xlated: num,
  jited: z.boolean().optional().catch(undefined),
  bytes_jited: num,
  bytes_memlock: num,
  map_ids: z.array(z.number()).optional().catch(undefined),
  btf_id: num,
  pids: z.array(bpfHolderSchema).optional().catch(undefined),
  run_cnt: num,
  run_time_ns: num,
});
const rawMapSchema = z.object({
  id: z.number(),
  type: z.union([z.string(), z.number()]),
  name: z.string().optional().catch(undefined),
  flags: num,
  bytes_key: num,
  bytes_value: num,
  max_entries: num,
  bytes_memlock: num,
  frozen: z.union([z.number(), z.boolean()]).optional().catch(undefined),
  btf_id: num,
  pids: z.array(bpfHolderSchema).optional().catch(undefined),
});

/** bpftool -j prints `{"error": "..."}` (and exits 255) when it fails; the message, else null. */
export function bpftoolError(text: string): string | null {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return null;
  try {
    const parsed = JSON.parse(trimmed) as { error?: unknown };
    return typeof parsed.error === "string" ? parsed.error : null;
  } catch {
    return null;
  }
}

function parseArray(text: string, what: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${what}: not JSON (${String(error)}): ${text.slice(0, 120)}`);
  }
  // `show id N` prints one object; `show` prints an array.
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** `bpftool prog show -j` → programs (also `prog show id N -j`, one object). */
export function parseProgShow(text: string): BpfProgram[] {
  return parseArray(text, "bpftool prog show").map((item) => {
    const raw = rawProgramSchema.parse(item);
    const program: BpfProgram = {
      id: raw.id,
      type: String(raw.type),
      name: raw.name ?? null,
      tag: raw.tag ?? null,
      gpl_compatible: raw.gpl_compatible ?? null,
      loaded_at: raw.loaded_at === undefined ? null : new Date(raw.loaded_at * 1000).toISOString(),
      uid: raw.uid ?? null,
      bytes_xlated: raw.bytes_xlated ?? null,
      jited: raw.jited ?? null,
      bytes_jited: raw.bytes_jited ?? null,
      bytes_memlock: raw.bytes_memlock ?? null,
      map_ids: raw.map_ids ?? [],
      btf_id: raw.btf_id ?? null,
      pids: raw.pids ?? [],
    };
    if (raw.run_cnt !== undefined) program.run_cnt = raw.run_cnt;
    if (raw.run_time_ns !== undefined) program.run_time_ns = raw.run_time_ns;
    if (raw.run_cnt && raw.run_time_ns !== undefined) program.avg_run_ns = Math.round(raw.run_time_ns / raw.run_cnt);
    return program;
  });
}

/** `bpftool map show -j` → maps (also `map show id N -j`, one object). */
export function parseMapShow(text: string): BpfMap[] {
  return parseArray(text, "bpftool map show").map((item) => {
    const raw = rawMapSchema.parse(item);
    return {
      id: raw.id,
      type: String(raw.type),
      name: raw.name ?? null,
      flags: raw.flags ?? null,
      key_size: raw.bytes_key ?? null,
      value_size: raw.bytes_value ?? null,
      max_entries: raw.max_entries ?? null,
      bytes_memlock: raw.bytes_memlock ?? null,
      frozen: raw.frozen === undefined ? null : Boolean(raw.frozen),
      btf_id: raw.btf_id ?? null,
      pids: raw.pids ?? [],
    };
  });
}

/**
 * The program or map id in /proc/PID/fdinfo/FD of a BPF file descriptor: `prog_id:` for a program
 * or a link (a link holds its program), `map_id:` for a map; null when absent.
 */
export function parseFdinfoId(text: string, field: "prog_id" | "map_id"): number | null {
  const match = new RegExp(`^${field}:\\s*(\\d+)\\s*$`, "m").exec(text);
  return match ? Number(match[1]) : null;
}

export interface ProgramFilter {
  type?: string;
  name?: string;
}

/** Exact type, name substring (case-insensitive). */
export function programMatches(program: BpfProgram, filter: ProgramFilter): boolean {
  if (filter.type !== undefined && program.type !== filter.type) return false;
  if (filter.name !== undefined && !(program.name ?? "").toLowerCase().includes(filter.name.toLowerCase())) return false;
  return true;
}

/** The first items whose JSON fits in `budget` characters (at least one, if any). */
export function takeWithinBudget<T>(items: readonly T[], budget: number): T[] {
  const kept: T[] = [];
  let chars = 2;
  for (const item of items) {
    chars += JSON.stringify(item).length + 1;
    if (chars > budget && kept.length > 0) break;
    kept.push(item);
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------
// Map dumps

export const mapEntrySchema = z.object({
  key: z.unknown().describe("Hex bytes as bpftool prints them, or the typed key when the map has BTF"),
  value: z.unknown().optional().describe("Hex bytes, or the typed value when the map has BTF"),
  values: z.array(z.object({ cpu: z.number(), value: z.unknown() })).optional().describe("Per-CPU maps: one value per possible CPU"),
  error: z.string().optional().describe("Why this entry's value could not be read"),
});
export type MapEntry = z.infer<typeof mapEntrySchema>;

/**
 * The text of the first `keep` objects of a top-level JSON array, and how many objects it holds,
 * without parsing the rest: a 65536-entry map dumps to ~60 MB of `"0x00"` strings, and parsing
 * all of it to return a hundred entries would cost seconds and hundreds of MB.
 */
export function splitTopLevelArray(text: string, keep: number): { items: string[]; total: number } {
  const items: string[] = [];
  let total = 0;
  let depth = 0;
  let inString = false;
  let itemStart = -1;
  const start = text.indexOf("[");
  if (start < 0) throw new Error(`not a JSON array: ${text.slice(0, 120)}`);
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (depth === 2 && c === 123) itemStart = i;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
      if (depth === 1 && c === 125) {
        total++;
        if (items.length < keep) items.push(text.slice(itemStart, i + 1));
      }
      if (depth === 0) break;
    }
  }
  return { items, total };
}

interface RawEntry {
  key?: unknown;
  value?: unknown;
  values?: { cpu: number; value: unknown }[];
  formatted?: { key?: unknown; value?: unknown; values?: { cpu: number; value: unknown }[] };
}

/** Lookup errors bpftool prints as strerror(); 524 is the kernel-internal ENOTSUPP, which libc does not name. */
function describeLookupError(message: string): string {
  if (message === "Unknown error 524") return "not readable from user space (ENOTSUPP, 524)";
  return message;
}

/** One element of `bpftool map dump -j` → an entry: the BTF-formatted form when bpftool gave one. */
export function toMapEntry(raw: RawEntry): MapEntry {
  // A failed lookup: {"key": [...], "value": {"error": "..."}}.
  if (raw.value !== null && typeof raw.value === "object" && !Array.isArray(raw.value) && typeof (raw.value as { error?: unknown }).error === "string") {
    return { key: raw.key, error: describeLookupError((raw.value as { error: string }).error) };
  }
  const source = raw.formatted ?? raw;
  const entry: MapEntry = { key: source.key };
  if (source.value !== undefined) entry.value = source.value;
  if (source.values !== undefined) entry.values = source.values;
  return entry;
}

/** Same budget as the snapshot's answers: about 15k tokens. */
export const MAX_DUMP_CHARS = 60_000;

export interface MapDump {
  entries: MapEntry[];
  total_entries: number;
  format: "btf" | "hex";
  /** Why fewer entries than total_entries came back, or null. */
  cut: "max_entries" | "size" | null;
}

/** `bpftool map dump id N -j` → at most maxEntries entries within budgetChars of JSON, and the total. */
export function parseMapDump(text: string, maxEntries: number, budgetChars = MAX_DUMP_CHARS): MapDump {
  const { items, total } = splitTopLevelArray(text, maxEntries);
  const entries: MapEntry[] = [];
  let chars = 2;
  let format: MapDump["format"] = "hex";
  let cutBySize = false;
  for (const item of items) {
    const raw = JSON.parse(item) as RawEntry;
    if (raw.formatted !== undefined) format = "btf";
    const entry = toMapEntry(raw);
    chars += JSON.stringify(entry).length + 1;
    if (chars > budgetChars && entries.length > 0) {
      cutBySize = true;
      break;
    }
    entries.push(entry);
  }
  const cut = entries.length >= total ? null : cutBySize ? "size" : "max_entries";
  return { entries, total_entries: total, format, cut };
}

// ---------------------------------------------------------------------------------------------
// Running bpftool (the one function here with I/O)

/** Listing is instant; a dump walks the map key by key with one syscall per step (65k entries: ~1 s). */
export const BPFTOOL_TIMEOUT_MS = 20_000;

export const BPFTOOL_INSTALL =
  "install it with `dnf install -y bpftool` (RHEL, Fedora) or `apt-get install -y bpftool` (Debian, Ubuntu; " +
  "linux-tools-common on older Ubuntu)";

/**
 * Runs `bpftool -j ARGS` and returns its stdout. Expected failures become ToolErrors that say what
 * to do: bpftool missing, not privileged, or bpftool's own error (an unknown id). `describe`
 * names the request in messages, e.g. `id 7`; `whatToDo` follows bpftool's own error.
 */
export async function runBpftool(args: readonly string[], describe: string, whatToDo = ""): Promise<string> {
  const bpftool = which("bpftool");
  if (!bpftool) throw new ToolError(`bpftool is not installed (looked in PATH and the sbin directories): ${BPFTOOL_INSTALL}`);
  // Spooled: a dump can be tens of MB, more than a pipe should hold while we wait.
  const result = await exec([bpftool, "-j", ...args], { timeoutMs: BPFTOOL_TIMEOUT_MS, spool: true });
  if (result.timedOut) throw new ToolError(`${describe}: bpftool ${args.join(" ")} did not finish within ${BPFTOOL_TIMEOUT_MS / 1000} s`);
  const error = bpftoolError(result.stdout) ?? (result.code === 0 ? null : result.stderr.trim() || `exit code ${result.code}`);
  if (error === null) return result.stdout;
  if (/Operation not permitted|EPERM|Permission denied/i.test(error)) {
    throw new ToolError(`${describe}: bpftool was refused (${error}): listing BPF objects needs root (CAP_SYS_ADMIN, or CAP_BPF on 5.8+); run ipcscope as root`);
  }
  throw new ToolError(`${describe}: bpftool failed: ${error}${whatToDo ? `; ${whatToDo}` : ""}`);
}
