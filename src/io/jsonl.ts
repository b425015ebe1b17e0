/** JSON Lines and UTF-8 text files, read with line-numbered errors and written deterministically. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { InputError, UserError } from "../errors.ts";

/** One parsed line: its 1-based line number and the object on it. */
export interface Row {
  line: number;
  value: Record<string, unknown>;
}

/** Reads a file as UTF-8, refusing invalid bytes with the line they are on. */
export function readUtf8(file: string): string {
  const bytes = readFileSync(file);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const decoded = new TextDecoder("utf-8").decode(bytes);
    const bad = decoded.indexOf("\uFFFD");
    const line = bad < 0 ? 1 : decoded.slice(0, bad).split("\n").length;
    throw new InputError(file, line, null, "not valid UTF-8 text");
  }
}

/** Parses JSON Lines, skipping blank lines; yields each object with its 1-based line number. */
export function* jsonLines(file: string, text: string): Generator<Row> {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw) continue;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch (e) {
      throw new InputError(file, i + 1, null, `malformed JSON (${(e as Error).message})`);
    }
    if (typeof row !== "object" || row === null || Array.isArray(row)) throw new InputError(file, i + 1, null, "expected a JSON object");
    yield { line: i + 1, value: row as Record<string, unknown> };
  }
}

/** Reads a whole JSONL file (UTF-8 checked), skipping blank lines. */
export function readJsonl(path: string): Row[] {
  if (!existsSync(path)) throw new UserError(`${path} does not exist`);
  return [...jsonLines(path, readUtf8(path))];
}

/** Writes one JSON object per line; returns the number written. */
export function writeJsonl(path: string, rows: Iterable<unknown>): number {
  const out: string[] = [];
  for (const r of rows) out.push(JSON.stringify(r));
  writeFileSync(path, out.length ? `${out.join("\n")}\n` : "");
  return out.length;
}
