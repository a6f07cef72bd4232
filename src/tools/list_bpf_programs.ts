import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { z } from "zod";
import {
  type BpfHolder,
  bpfMapSchema,
  bpfProgramSchema,
  MAX_DUMP_CHARS,
  parseFdinfoId,
  parseMapShow,
  parseProgShow,
  programMatches,
  runBpftool,
  takeWithinBudget,
} from "../health/bpftool.ts";
import { listPids } from "../snapshot/proc.ts";
import { defineTool, READ_ONLY } from "./types.ts";

const MAX_LIMIT = 10_000;

function readOrNull<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    // Gone (exited mid-scan) or not ours to see.
    return null;
  }
}

/**
 * Who holds each program and map, from /proc/PID/fd links ("anon_inode:bpf-prog", "bpf-map",
 * "bpf_link") and their fdinfo ids. bpftool finds this itself only when built with skeletons
 * (the pid iterator); Debian's and some RHEL builds are not, so their `pids` are missing.
 */
function holdersFromProc(): { programs: Map<number, BpfHolder[]>; maps: Map<number, BpfHolder[]> } {
  const programs = new Map<number, BpfHolder[]>();
  const maps = new Map<number, BpfHolder[]>();
  const add = (table: Map<number, BpfHolder[]>, id: number, holder: BpfHolder) => {
    const list = table.get(id) ?? [];
    if (!list.some((h) => h.pid === holder.pid)) list.push(holder);
    table.set(id, list);
  };
  for (const pid of listPids()) {
    const fds = readOrNull(() => readdirSync(`/proc/${pid}/fd`));
    if (!fds) continue;
    let comm: string | null = null;
    for (const fd of fds) {
      const link = readOrNull(() => readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (link === null || !link.startsWith("anon_inode:bpf")) continue;
      const isMap = link === "anon_inode:bpf-map";
      if (!isMap && link !== "anon_inode:bpf-prog" && link !== "anon_inode:bpf_link") continue;
      const fdinfo = readOrNull(() => readFileSync(`/proc/${pid}/fdinfo/${fd}`, "latin1"));
      const id = fdinfo === null ? null : parseFdinfoId(fdinfo, isMap ? "map_id" : "prog_id");
      if (id === null) continue;
      comm ??= readOrNull(() => readFileSync(`/proc/${pid}/comm`, "utf8").trim()) ?? "?";
      add(isMap ? maps : programs, id, { pid, comm });
    }
  }
  return { programs, maps };
}

export default defineTool({
  name: "list_bpf_programs",
  title: "Loaded BPF programs",
  description:
    "Every BPF program loaded in the kernel (from bpftool), newest first: id, type (tracepoint, kprobe, xdp, " +
    "sched_cls, cgroup_skb, ...), name, tag, load time, uid, sizes, memlock, the maps it uses, the processes holding " +
    "it, and run count/time when kernel.bpf_stats_enabled=1. Filters: type (exact), name (substring), limit. " +
    "include_maps=true adds the maps (those of the returned programs when filtered, else all). Needs root and bpftool.",
  toolset: "health",
  input: {
    type: z.string().min(1).optional().describe("Only programs of this type, e.g. tracepoint, kprobe, xdp, sched_cls"),
    name: z.string().min(1).optional().describe("Only programs whose name contains this (case-insensitive)"),
    limit: z.number().int().positive().max(MAX_LIMIT).default(200).describe("Most programs (and maps) to return"),
    include_maps: z.boolean().default(false).describe("Add the BPF maps"),
  },
  output: {
    programs: z.array(bpfProgramSchema),
    maps: z.array(bpfMapSchema).optional(),
    totals: z.object({
      programs: z.number().describe("Loaded programs, all of them"),
      by_type: z.record(z.string(), z.number()).describe("Loaded programs per type"),
      matched: z.number().describe("Programs passing the filters"),
      returned: z.number(),
      maps: z.number().optional().describe("Maps that qualified for the answer (see include_maps)"),
      maps_returned: z.number().optional(),
    }),
    truncated: z.boolean(),
    pids_source: z.enum(["bpftool", "proc"]).describe("Where the pids come from: bpftool itself, or /proc/*/fdinfo when this bpftool cannot tell"),
    hint: z.string().optional(),
  },
  annotations: READ_ONLY,
  handler: async (args) => {
    const [programText, mapText] = await Promise.all([
      runBpftool(["prog", "show"], "list_bpf_programs"),
      args.include_maps ? runBpftool(["map", "show"], "list_bpf_programs") : Promise.resolve(null),
    ]);
    const all = parseProgShow(programText).sort((a, b) => b.id - a.id);
    const allMaps = mapText === null ? null : parseMapShow(mapText).sort((a, b) => b.id - a.id);

    // bpftool with skeleton support gives pids for every program that has a holder; if none has one, it cannot.
    const bpftoolHasPids = all.some((program) => program.pids.length > 0);
    if (!bpftoolHasPids && all.length > 0) {
      const holders = holdersFromProc();
      for (const program of all) program.pids = holders.programs.get(program.id) ?? [];
      for (const map of allMaps ?? []) map.pids = holders.maps.get(map.id) ?? [];
    }

    const byType: Record<string, number> = {};
    for (const program of all) byType[program.type] = (byType[program.type] ?? 0) + 1;
    const filtered = args.type !== undefined || args.name !== undefined;
    const matched = all.filter((program) => programMatches(program, args));
    const programs = takeWithinBudget(matched.slice(0, args.limit), allMaps === null ? MAX_DUMP_CHARS : MAX_DUMP_CHARS / 2);

    let maps: typeof allMaps = null;
    let mapsQualified = 0;
    if (allMaps !== null) {
      const used = new Set(programs.flatMap((program) => program.map_ids));
      const qualified = filtered ? allMaps.filter((map) => used.has(map.id)) : allMaps;
      mapsQualified = qualified.length;
      maps = takeWithinBudget(qualified.slice(0, args.limit), MAX_DUMP_CHARS / 2);
    }
    const truncated = programs.length < matched.length || (maps !== null && maps.length < mapsQualified);

    const hints: string[] = [];
    if (truncated) hints.push(`cut to ${programs.length} of ${matched.length} programs${maps ? ` and ${maps.length} of ${mapsQualified} maps` : ""} (limit ${args.limit}, ~${MAX_DUMP_CHARS / 1000}k characters): narrow with type or name`);
    if (matched.length === 0 && all.length > 0) hints.push(`no program matches; types loaded: ${Object.keys(byType).sort().join(", ")}`);
    if (all.length > 0 && all.every((program) => program.run_cnt === undefined)) hints.push("run_cnt and run_time_ns appear while `sysctl kernel.bpf_stats_enabled=1` (it costs a little per run)");

    return {
      programs,
      ...(maps !== null ? { maps } : {}),
      totals: {
        programs: all.length,
        by_type: byType,
        matched: matched.length,
        returned: programs.length,
        ...(maps !== null ? { maps: mapsQualified, maps_returned: maps.length } : {}),
      },
      truncated,
      pids_source: bpftoolHasPids ? ("bpftool" as const) : ("proc" as const),
      ...(hints.length > 0 ? { hint: hints.join("; ") } : {}),
    };
  },
});
