// bpftool's JSON, captured on the build machine (bpftool v7.1.0, kernel 6.18) while ipcscope's
// monitor probe and a `bpftrace -e 'tracepoint:syscalls:sys_enter_getppid { @c = count(); }'` ran,
// plus a hash map with BTF made by test/fixtures/bpftool/btf-map.py.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  bpftoolError,
  parseFdinfoId,
  parseMapDump,
  parseMapShow,
  parseProgShow,
  programMatches,
  splitTopLevelArray,
  takeWithinBudget,
  toMapEntry,
} from "../../../src/health/bpftool.ts";
import { ROOT } from "../../helpers.ts";

const fixture = (name: string) => readFileSync(join(ROOT, "test", "fixtures", "bpftool", name), "utf8");

describe("parseProgShow", () => {
  const programs = parseProgShow(fixture("prog-show.json"));

  test("reads every program with its fields, loaded_at as ISO time", () => {
    expect(programs).toHaveLength(9);
    expect(programs.find((program) => program.id === 8050)).toEqual({
      id: 8050,
      type: "tracepoint",
      name: "sys_enter_getpp",
      tag: "c0b1a85fb75dc74b",
      gpl_compatible: true,
      loaded_at: "2026-11-21T23:44:53.000Z",
      uid: 0,
      bytes_xlated: 240,
      jited: true,
      bytes_jited: 146,
      bytes_memlock: 4096,
      map_ids: [3652],
      btf_id: null,
      pids: [],
      run_cnt: 699,
      run_time_ns: 229440,
      avg_run_ns: 328,
    });
  });

  test("this bpftool (built without skeletons) gives no pids; one that does is read", () => {
    expect(programs.every((program) => program.pids.length === 0)).toBe(true);
    // The shape bpftool's emit_obj_refs_json() prints when it can.
    const [withPids] = parseProgShow('{"id":1,"type":"xdp","pids":[{"pid":812,"comm":"xdp-loader"}]}');
    expect(withPids).toMatchObject({ id: 1, type: "xdp", name: null, loaded_at: null, map_ids: [], pids: [{ pid: 812, comm: "xdp-loader" }] });
  });

  test("without bpf_stats_enabled there are no run counts, and an unknown type number is kept as text", () => {
    const [program] = parseProgShow('{"id":2,"type":33,"name":"new","loaded_at":0}');
    expect(program!.type).toBe("33");
    expect(program!.run_cnt).toBeUndefined();
    expect(program!.avg_run_ns).toBeUndefined();
    expect(program!.loaded_at).toBe("1970-01-01T00:00:00.000Z");
  });

  test("filters: exact type, name substring ignoring case", () => {
    expect(programs.filter((program) => programMatches(program, { type: "perf_event" })).map((program) => program.id)).toEqual([7559, 7565]);
    expect(programs.filter((program) => programMatches(program, { type: "tracepoint", name: "SYS_ENTER" })).map((program) => program.id)).toEqual([7561, 8050]);
    expect(programs.filter((program) => programMatches(program, { type: "trace" }))).toEqual([]);
  });
});

describe("parseMapShow", () => {
  test("reads every map; btf_id only where the map has BTF; names may repeat", () => {
    const maps = parseMapShow(fixture("map-show.json"));
    expect(maps).toHaveLength(12);
    expect(maps.find((map) => map.id === 3652)).toEqual({
      id: 3652,
      type: "percpu_array",
      name: "AT_c",
      flags: 0,
      key_size: 4,
      value_size: 8,
      max_entries: 1,
      bytes_memlock: 336,
      frozen: false,
      btf_id: null,
      pids: [],
    });
    expect(maps.find((map) => map.name === "ipcscope_fix")).toMatchObject({ type: "hash", key_size: 4, value_size: 32, btf_id: 18 });
    expect(maps.filter((map) => map.name === "printf").map((map) => map.id)).toEqual([3388, 3653]);
  });

  test("`map show id N` prints one object, not an array", () => {
    expect(parseMapShow('{"id":7,"type":"array","name":"x","flags":0,"bytes_key":4,"bytes_value":4,"max_entries":1,"frozen":1}')[0]).toMatchObject({ id: 7, frozen: true });
  });
});

describe("bpftoolError", () => {
  test("reads the error object bpftool prints for an unknown id, and nothing else", () => {
    expect(bpftoolError(fixture("error-no-such-map.json"))).toBe("get map by id (999999): No such file or directory");
    expect(bpftoolError(fixture("map-show.json"))).toBeNull();
    expect(bpftoolError("")).toBeNull();
  });
});

describe("parseMapDump", () => {
  test("a plain hash map: hex key and value as bpftool prints them", () => {
    const dump = parseMapDump(fixture("map-dump-hash.json"), 100);
    expect(dump).toEqual({
      entries: [{ key: ["0x00", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00"], value: ["0xc2", "0xc0", "0xb2", "0x43", "0xac", "0x0a", "0x00", "0x00"] }],
      total_entries: 1,
      format: "hex",
      cut: null,
    });
  });

  test("a per-CPU array: one value per CPU", () => {
    const [entry] = parseMapDump(fixture("map-dump-percpu-array.json"), 100).entries;
    expect(entry!.key).toEqual(["0x00", "0x00", "0x00", "0x00"]);
    expect(entry!.values).toEqual([
      { cpu: 0, value: ["0x2d", "0x01", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00"] },
      { cpu: 1, value: ["0xbe", "0x01", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00"] },
    ]);
    expect(entry!.value).toBeUndefined();
  });

  test("a map with BTF: typed keys and values instead of bytes", () => {
    const dump = parseMapDump(fixture("map-dump-hash-btf.json"), 100);
    expect(dump.format).toBe("btf");
    // (In the kernel's hash order, as bpftool walks the map.)
    expect(dump.entries).toEqual([
      { key: 4242, value: { comm: "python3", packets: -1, bytes: 0 } },
      { key: 1234, value: { comm: "curl", packets: 12, bytes: 3400 } },
      { key: 80, value: { comm: "nginx", packets: 7, bytes: 900 } },
    ]);
  });

  test("entries whose value cannot be read keep the key and say why (perf_event_array: ENOTSUPP)", () => {
    const dump = parseMapDump(fixture("map-dump-perf-event-array.json"), 100);
    expect(dump.entries).toEqual([
      { key: ["0x00", "0x00", "0x00", "0x00"], error: "not readable from user space (ENOTSUPP, 524)" },
      { key: ["0x01", "0x00", "0x00", "0x00"], error: "not readable from user space (ENOTSUPP, 524)" },
    ]);
    expect(toMapEntry({ key: [], value: { error: "Permission denied" } }).error).toBe("Permission denied");
  });

  test("max_entries cuts the entries and the total still counts them all", () => {
    const dump = parseMapDump(fixture("map-dump-hash-btf.json"), 2);
    expect(dump.entries.map((entry) => entry.key)).toEqual([4242, 1234]);
    expect(dump).toMatchObject({ total_entries: 3, cut: "max_entries" });
    expect(parseMapDump("[]", 10)).toEqual({ entries: [], total_entries: 0, format: "hex", cut: null });
  });

  test("the character budget cuts a big map, keeping at least one entry", () => {
    const one = JSON.parse(fixture("map-dump-hash-btf.json"))[0];
    const big = JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ ...one, formatted: { key: i, value: one.formatted.value } })));
    const dump = parseMapDump(big, 5000, 10_000);
    expect(dump.cut).toBe("size");
    expect(dump.total_entries).toBe(5000);
    expect(dump.entries.length).toBeGreaterThan(100);
    expect(JSON.stringify(dump.entries).length).toBeLessThanOrEqual(10_000);
    expect(parseMapDump(big, 5000, 10).entries).toHaveLength(1);
  });
});

describe("splitTopLevelArray", () => {
  test("counts top-level objects without being fooled by brackets and quotes inside strings", () => {
    const text = '[{"key":"}{[","v":{"a":[1,{"b":2}]}},{"key":"\\"}"},\n{"key":3}]';
    const { items, total } = splitTopLevelArray(text, 2);
    expect(total).toBe(3);
    expect(items.map((item) => JSON.parse(item).key)).toEqual(["}{[", '"}']);
  });

  test("refuses text that is not an array", () => {
    expect(() => splitTopLevelArray('{"error":"x"}', 1)).toThrow("not a JSON array");
  });
});

describe("helpers", () => {
  test("parseFdinfoId reads a prog or map id from /proc/PID/fdinfo/FD", () => {
    const prog = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\nprog_type:\t5\nprog_jited:\t1\nprog_tag:\tc0b1a85fb75dc74b\nmemlock:\t4096\nprog_id:\t8050\nrun_time_ns:\t198161\n";
    const map = "pos:\t0\nmap_type:\t6\nkey_size:\t4\nmemlock:\t336\nmap_id:\t3652\nfrozen:\t0\n";
    expect(parseFdinfoId(prog, "prog_id")).toBe(8050);
    expect(parseFdinfoId(map, "map_id")).toBe(3652);
    expect(parseFdinfoId(map, "prog_id")).toBeNull();
  });

  test("takeWithinBudget keeps whole items up to the budget, and always one", () => {
    const items = Array.from({ length: 10 }, (_, i) => ({ id: i, pad: "x".repeat(20) }));
    expect(takeWithinBudget(items, 100).length).toBe(2);
    expect(takeWithinBudget(items, 1)).toHaveLength(1);
    expect(takeWithinBudget([], 1)).toEqual([]);
  });
});
