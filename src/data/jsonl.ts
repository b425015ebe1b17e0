/** Field access for dataset rows, with line-numbered errors. */
import { InputError } from "../errors.ts";
import type { Row } from "../io/jsonl.ts";

export { readJsonl, type Row, writeJsonl } from "../io/jsonl.ts";

/** A required non-empty string field. */
export function str(path: string, row: Row, field: string, required = true): string | undefined {
  const v = row.value[field];
  if (v === undefined || v === null) {
    if (required) throw new InputError(path, row.line, field, "is missing");
    return undefined;
  }
  if (typeof v !== "string") throw new InputError(path, row.line, field, `must be a string, got ${JSON.stringify(v).slice(0, 40)}`);
  if (required && !v.trim()) throw new InputError(path, row.line, field, "is empty");
  return v;
}
