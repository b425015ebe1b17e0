/**
 * Questions to answer in batch (`nanorag ask`): one JSON object per line with `question` (or the
 * seed's `query`) and an optional `id` (default: q1, q2, ... by position). Gold answers are not needed
 * here; `nanorag eval qa` reads full question rows (src/data/schema.ts).
 */
import { InputError } from "../errors.ts";
import { readJsonl, str } from "../data/jsonl.ts";

export interface AskQuestion {
  id: string;
  question: string;
}

export function readAskQuestions(path: string): AskQuestion[] {
  const out: AskQuestion[] = [];
  const seen = new Map<string, number>();
  for (const row of readJsonl(path)) {
    const v = row.value;
    const question = str(path, row, v.question === undefined && v.query !== undefined ? "query" : "question")!;
    if (v.id !== undefined && typeof v.id !== "string" && typeof v.id !== "number") throw new InputError(path, row.line, "id", "must be a string or a number");
    const id = v.id === undefined ? `q${out.length + 1}` : String(v.id);
    if (seen.has(id)) throw new InputError(path, row.line, "id", `duplicate id "${id}" (first on line ${seen.get(id)})`);
    seen.set(id, row.line);
    out.push({ id, question });
  }
  return out;
}
