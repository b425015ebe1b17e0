/** JSONL reading with line-numbered errors, and deterministic writing. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { InputError, UserError } from "../errors.ts";

export interface Row {
  line: number;
  value: Record<string, unknown>;
}

export function readJsonl(path: string): Row[] {
  if (!existsSync(path)) throw new UserError(`${path} does not exist`);
  const rows: Row[] = [];
  const lines = readFileSync(path, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new InputError(path, i + 1, null, `not valid JSON: ${(e as Error).message}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InputError(path, i + 1, null, "each line must be a JSON object");
    rows.push({ line: i + 1, value: value as Record<string, unknown> });
  }
  return rows;
}

export function writeJsonl(path: string, rows: Iterable<unknown>): number {
  let n = 0;
  const out: string[] = [];
  for (const r of rows) {
    out.push(JSON.stringify(r));
    n++;
  }
  writeFileSync(path, out.length ? `${out.join("\n")}\n` : "");
  return n;
}

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
