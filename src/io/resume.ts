/**
 * Appending results to a JSONL file that a later run resumes: the rows already there are read back,
 * and a last line cut short by a crash (no newline, not parseable) is dropped from the file so the
 * next append starts on a clean line. A malformed line elsewhere is an error, not something to skip.
 */
import { appendFileSync, existsSync, readFileSync, truncateSync } from "node:fs";
import { log } from "../log.ts";
import { jsonLines, type Row } from "./jsonl.ts";

/** The complete rows of `path` (none when it does not exist), after repairing a partial last line. */
export function resumeJsonl(path: string): Row[] {
  if (!existsSync(path)) return [];
  const bytes = readFileSync(path);
  const end = bytes.lastIndexOf(0x0a) + 1;
  const tail = bytes.subarray(end).toString("utf8");
  if (tail.trim()) {
    try {
      JSON.parse(tail);
      appendFileSync(path, "\n"); // complete but unterminated: keep it
    } catch {
      log.warn(`${path}: dropping a partially written last line (${bytes.length - end} bytes); its question is answered again`);
      truncateSync(path, end);
    }
  }
  return [...jsonLines(path, readFileSync(path, "utf8"))];
}

/** Appends one row as a line. */
export function appendJsonl(path: string, row: unknown): void {
  appendFileSync(path, `${JSON.stringify(row)}\n`);
}
