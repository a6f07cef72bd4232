import { z } from "zod";
import { ToolError } from "../errors.ts";
import { type BpfMap, bpfMapSchema, MAX_DUMP_CHARS, mapEntrySchema, parseMapDump, parseMapShow, runBpftool } from "../health/bpftool.ts";
import { defineTool, READ_ONLY } from "./types.ts";

const MAX_ENTRIES = 10_000;
const LIST_MAPS = "list maps with list_bpf_programs include_maps=true";

function describeMap(map: BpfMap): string {
  return `${map.id} (${map.name ?? "no name"}, ${map.type})`;
}

/** The one map called `name`, or a ToolError listing the candidates. */
function pickByName(maps: BpfMap[], name: string): BpfMap {
  const exact = maps.filter((map) => map.name === name);
  if (exact.length === 1) return exact[0]!;
  if (exact.length > 1) {
    throw new ToolError(`name: ${exact.length} maps are called "${name}": ${exact.map(describeMap).join(", ")}; pass id instead`);
  }
  const similar = maps.filter((map) => (map.name ?? "").toLowerCase().includes(name.toLowerCase()));
  const shown = (similar.length > 0 ? similar : maps).slice(0, 30);
  const which = similar.length > 0 ? "maps with similar names" : maps.length > shown.length ? `some of the ${maps.length} maps` : "maps loaded";
  throw new ToolError(
    maps.length === 0
      ? `name: no map called "${name}": no BPF map is loaded`
      : `name: no map called "${name}" (names are exact, at most 15 characters); ${which}: ${shown.map(describeMap).join(", ")}`,
  );
}

export default defineTool({
  name: "dump_bpf_map",
  title: "Dump a BPF map",
  description:
    "The entries of one BPF map (from bpftool map dump), chosen by id or exact name: map info (type, key and value " +
    "size, max_entries) and up to max_entries entries. Keys and values are bpftool's hex byte arrays, or typed " +
    "values when the map carries BTF; per-CPU maps give one value per CPU. Says total_entries and whether the " +
    `answer was cut (max_entries or ~${MAX_DUMP_CHARS / 1000}k characters). Find ids with list_bpf_programs. Needs root and bpftool.`,
  toolset: "health",
  input: {
    id: z.number().int().positive().optional().describe("Map id (see list_bpf_programs map_ids)"),
    name: z.string().min(1).optional().describe("Exact map name, when only one map has it"),
    max_entries: z.number().int().positive().max(MAX_ENTRIES).default(100).describe(`Most entries to return (at most ${MAX_ENTRIES})`),
  },
  output: {
    map: bpfMapSchema.omit({ pids: true }),
    entries: z.array(mapEntrySchema),
    total_entries: z.number().describe("Entries in the map now"),
    returned: z.number(),
    format: z.enum(["btf", "hex"]).describe("btf: keys and values typed from the map's BTF; hex: raw bytes (little-endian on x86 and arm64)"),
    truncated: z.boolean(),
    hint: z.string().optional(),
  },
  annotations: READ_ONLY,
  handler: async (args) => {
    if ((args.id === undefined) === (args.name === undefined)) {
      throw new ToolError(
        args.id === undefined
          ? `give id or name of the map to dump; ${LIST_MAPS}`
          : `give id or name, not both (got id ${args.id} and name "${args.name}")`,
      );
    }
    let map: BpfMap;
    if (args.id !== undefined) {
      const text = await runBpftool(["map", "show", "id", String(args.id)], `id ${args.id}`, `no such map? ${LIST_MAPS}`);
      map = parseMapShow(text)[0]!;
    } else {
      map = pickByName(parseMapShow(await runBpftool(["map", "show"], `name "${args.name}"`)), args.name!);
    }
    const dump = parseMapDump(await runBpftool(["map", "dump", "id", String(map.id)], `map ${describeMap(map)}`, LIST_MAPS), args.max_entries);
    const { pids: _pids, ...info } = map;
    const hint =
      dump.cut === "size"
        ? `cut to ${dump.entries.length} of ${dump.total_entries} entries at ~${MAX_DUMP_CHARS / 1000}k characters; for all of them run \`bpftool -j map dump id ${map.id}\` on the host`
        : dump.cut === "max_entries"
          ? `${dump.entries.length} of ${dump.total_entries} entries: raise max_entries (at most ${MAX_ENTRIES}) for more`
          : undefined;
    return {
      map: info,
      entries: dump.entries,
      total_entries: dump.total_entries,
      returned: dump.entries.length,
      // An empty dump shows no formatted entry to tell; the map's BTF id does.
      format: dump.entries.length > 0 ? dump.format : map.btf_id !== null ? ("btf" as const) : ("hex" as const),
      truncated: dump.cut !== null,
      ...(hint ? { hint } : {}),
    };
  },
});
