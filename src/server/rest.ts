// Query strings carry only text; the REST mirror turns `?pid=42&listening=true` into the types the
// tool's zod schema expects before the same validation MCP calls get.
import type { z } from "zod";

/** The base type of a schema field, seen through optional/default/nullable wrappers. */
function baseType(schema: z.ZodType): string {
  let current = schema as unknown as { def: { type: string; innerType?: unknown } };
  while (current.def.innerType && ["optional", "default", "nullable", "prefault"].includes(current.def.type)) {
    current = current.def.innerType as typeof current;
  }
  return current.def.type;
}

export function coerceQuery(shape: z.ZodRawShape, params: URLSearchParams): Record<string, unknown> {
  // No prototype: `?__proto__=1` becomes a parameter the schema refuses by name, not a prototype
  // change; and only the shape's own keys are fields (shape["constructor"] is Object, not a schema).
  const args: Record<string, unknown> = Object.create(null);
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
    const type = field ? baseType(field as z.ZodType) : "unknown";
    const one = values[values.length - 1]!;
    switch (type) {
      case "number":
      case "int":
        // A value that is not a number stays text, so the schema's error names it.
        args[key] = one.trim() !== "" && !Number.isNaN(Number(one)) ? Number(one) : one;
        break;
      case "boolean":
        args[key] = one === "" || one === "true" || one === "1" ? true : one === "false" || one === "0" ? false : one;
        break;
      case "array":
        args[key] = values.flatMap((value) => value.split(",")).filter(Boolean);
        break;
      default:
        args[key] = one;
    }
  }
  return args;
}
