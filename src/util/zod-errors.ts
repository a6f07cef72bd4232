// zod's default messages say "expected boolean, received string" without the value; a person
// fixing a call needs to see what they sent. Installed once, globally, so the MCP SDK's own
// validation of tool arguments speaks the same way as ours.
import { z } from "zod";

const SHOWN_CHARS = 60;

/**
 * JSON of a value, written only as far as it is shown: a client can send a 1 MiB string or
 * 100k nested arrays, and serializing those whole for a 60-character message took 0.7 s of the
 * event loop per message (JSON.stringify and String() both overflow the stack on deep nesting).
 */
function clippedJson(value: unknown, room: number): string {
  if (typeof value === "string") return JSON.stringify(value.length > room ? value.slice(0, room) : value);
  if (typeof value !== "object" || value === null) {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return String(value); // a bigint
    }
  }
  const array = Array.isArray(value);
  let text = array ? "[" : "{";
  let first = true;
  for (const key in value) {
    if (text.length > room) break;
    const item = (value as Record<string, unknown>)[key];
    if (!array && (item === undefined || typeof item === "function")) continue;
    text += `${first ? "" : ","}${array ? "" : `${JSON.stringify(key)}:`}${clippedJson(item, room - text.length)}`;
    first = false;
  }
  return text + (array ? "]" : "}");
}

/** JSON of a value, cut to a readable length. */
export function showValue(value: unknown): string {
  const text = value === undefined ? "nothing" : clippedJson(value, SHOWN_CHARS + 1);
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS - 3)}...` : text;
}

z.config({
  customError: (issue) => {
    const got = `got ${showValue(issue.input)}`;
    switch (issue.code) {
      case "invalid_type":
        return `expected ${issue.expected}, ${got}`;
      case "too_big":
        return issue.origin === "number" || issue.origin === "int"
          ? `must be at most ${issue.maximum}, ${got}`
          : `must have at most ${issue.maximum} ${issue.origin === "string" ? "characters" : "items"}, ${got}`;
      case "too_small":
        return issue.origin === "number" || issue.origin === "int"
          ? `must be ${issue.inclusive === false ? "more than" : "at least"} ${issue.minimum}, ${got}`
          : `must have at least ${issue.minimum} ${issue.origin === "string" ? "characters" : "items"}, ${got}`;
      case "invalid_value":
        return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, ${got}`;
      case "unrecognized_keys":
        return `unknown parameter(s) ${issue.keys.join(", ")}`;
      case "invalid_union": {
        // zod's own message is "Invalid input", without the value. Each branch's first issue says
        // why that form did not fit; the branch the value's type matched (deepest issue first) says it best.
        const firsts = issue.errors.map((branch) => branch[0]).filter((first) => first !== undefined);
        const fitting = firsts
          .filter((first) => !(first.code === "invalid_type" && first.path.length === 0))
          .sort((a, b) => b.path.length - a.path.length)[0];
        if (fitting) return `${fitting.path.length > 0 ? `at ${fitting.path.join(".")}: ` : ""}${fitting.message}`;
        const types = firsts.map((first) => (first.code === "invalid_type" ? first.expected : undefined)).filter(Boolean);
        return types.length > 0 ? `expected ${types.join(" or ")}, ${got}` : `fits none of the accepted forms, ${got}`;
      }
      default:
        return undefined;
    }
  },
});
