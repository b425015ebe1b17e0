/**
 * HotpotQA to a KB input plus a QA set. Reads the original JSON array
 * (`{_id, question, answer, supporting_facts: [[title, sent_id]], context: [[title, [sentences]]], type, level}`)
 * or the Hugging Face JSONL rows (`context: {title: [...], sentences: [[...]]}`,
 * `supporting_facts: {title: [...], sent_id: [...]}`). Each paragraph becomes one document whose id
 * and title are the paragraph title (as `kb build` does with HotpotQA rows), deduplicated across
 * questions; a question's relevant documents are the titles of its supporting facts.
 */
import { readFileSync } from "node:fs";
import { InputError, UserError } from "../errors.ts";
import type { DocumentRow, QuestionRow } from "./schema.ts";

function paragraphs(file: string, where: { line: number | null; field: string }, ctx: unknown): [string, string[]][] {
  const bad = (detail: string) => new InputError(file, where.line, where.field, detail);
  if (Array.isArray(ctx)) {
    return ctx.map((p, i) => {
      if (!Array.isArray(p) || typeof p[0] !== "string" || !Array.isArray(p[1]) || p[1].some((s: unknown) => typeof s !== "string")) throw bad(`context[${i}] must be [title, [sentences]]`);
      return [p[0], p[1] as string[]];
    });
  }
  const c = ctx as { title?: unknown; sentences?: unknown } | null;
  if (!c || !Array.isArray(c.title) || !Array.isArray(c.sentences) || c.title.length !== c.sentences.length) throw bad("expected [[title, [sentences]], ...] or {title: [...], sentences: [[...]]}");
  return c.title.map((t, i) => {
    const s = (c.sentences as unknown[])[i];
    if (typeof t !== "string" || !Array.isArray(s) || s.some((x) => typeof x !== "string")) throw bad(`context paragraph ${i} must be a title and a list of sentences`);
    return [t, s as string[]];
  });
}

function supportingTitles(file: string, where: { line: number | null; field: string }, sf: unknown): string[] {
  if (sf === undefined || sf === null) return [];
  if (Array.isArray(sf)) {
    return sf.map((f, i) => {
      if (!Array.isArray(f) || typeof f[0] !== "string") throw new InputError(file, where.line, `${where.field}[${i}]`, "must be [title, sentence_id]");
      return f[0];
    });
  }
  const t = (sf as { title?: unknown }).title;
  if (!Array.isArray(t) || t.some((x) => typeof x !== "string")) throw new InputError(file, where.line, where.field, "must be [[title, sentence_id], ...] or {title: [...], sent_id: [...]}");
  return t as string[];
}

export function readHotpot(file: string): { documents: DocumentRow[]; questions: QuestionRow[] } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new UserError(`Cannot read ${file}`);
  }
  const rows: { line: number | null; index: number; row: Record<string, unknown> }[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[")) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw new InputError(file, null, null, `not valid JSON: ${(e as Error).message}`);
    }
    (arr as unknown[]).forEach((row, index) => {
      if (typeof row !== "object" || row === null) throw new InputError(file, null, `[${index}]`, "each entry must be an object");
      rows.push({ line: null, index, row: row as Record<string, unknown> });
    });
  } else {
    text.split("\n").forEach((l, i) => {
      if (!l.trim()) return;
      try {
        rows.push({ line: i + 1, index: rows.length, row: JSON.parse(l) });
      } catch (e) {
        throw new InputError(file, i + 1, null, `not valid JSON: ${(e as Error).message}`);
      }
    });
  }
  const docs = new Map<string, DocumentRow>();
  const questions: QuestionRow[] = [];
  const ids = new Set<string>();
  for (const { line, index, row } of rows) {
    const at = (field: string) => ({ line, field: line === null ? `[${index}].${field}` : field });
    const q = row.question;
    if (typeof q !== "string" || !q.trim()) throw new InputError(file, line, at("question").field, "must be a non-empty string");
    const a = row.answer;
    if (typeof a !== "string") throw new InputError(file, line, at("answer").field, "must be a string (test files without answers cannot be prepared)");
    const paras = paragraphs(file, at("context"), row.context);
    for (const [title, sentences] of paras) {
      const content = sentences.join("").trim();
      if (!content || docs.has(title)) continue;
      docs.set(title, { id: title, title, content, source: "hotpotqa", metadata: {} });
    }
    const rel = [...new Set(supportingTitles(file, at("supporting_facts"), row.supporting_facts))];
    for (const t of rel) if (!paras.some(([title]) => title === t)) throw new InputError(file, line, at("supporting_facts").field, `title "${t}" is not among the question's context paragraphs`);
    const id = String(row._id ?? row.id ?? `hotpot_${index + 1}`);
    if (ids.has(id)) throw new InputError(file, line, at("_id").field, `duplicate id "${id}"`);
    ids.add(id);
    questions.push({ id, question: q, answer: a, relevant_docs: rel, answerable: true, type: row.type === "comparison" ? "comparison" : "bridge" });
  }
  return { documents: [...docs.values()], questions };
}
