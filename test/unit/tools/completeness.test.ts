// Every answer built from events says how complete it is: the schema of each such tool carries
// lost_events, complete and note at the top, described, so clients and models can rely on them.
import { expect, test } from "bun:test";
import { z } from "zod";
import { ALL_TOOLS } from "../../../src/tools/index.ts";

/** The tools that answer from connection events (live or recorded). */
const EVENT_ANSWERS = ["list_connections", "get_connection_summary", "analyze_patterns", "get_live_network_events", "get_capture_results", "stop_capture", "wait_for_connection"];

test("every tool of the events toolset is one that answers from events (a new one must say how complete it is)", () => {
  const events = ALL_TOOLS.filter((tool) => tool.toolset === "events").map((tool) => tool.name);
  expect(events.sort()).toEqual([...EVENT_ANSWERS].sort());
});

for (const tool of ALL_TOOLS.filter((candidate) => candidate.toolset === "events" && EVENT_ANSWERS.includes(candidate.name))) {
  test(`${tool.name} has lost_events, complete and note at the top of its output schema, described`, () => {
    const schema = z.toJSONSchema(z.object(tool.output)) as { properties: Record<string, { type?: string; description?: string }> };
    expect(schema.properties.lost_events).toMatchObject({ type: "number" });
    expect(schema.properties.complete).toMatchObject({ type: "boolean" });
    expect(schema.properties.note).toMatchObject({ type: "string" });
    for (const field of ["lost_events", "complete", "note"]) expect(schema.properties[field]!.description?.length ?? 0).toBeGreaterThan(20);
  });
}
