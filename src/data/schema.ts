/**
 * The files `nanorag prepare` writes and reads.
 * - Documents: the seed's JSONL, one `{id, title, content, source, metadata}` per line (KB input).
 * - Questions: one `{id, question, answer, relevant_docs, answerable, type, hops?}` per line.
 *   `hops` (two-hop questions) lists the sub-questions in order with the document each needs.
 *   The example mode's queries.jsonl uses the seed's `{query, expected_answer, relevant_docs}`;
 *   `readQuestions` accepts both.
 */
import { InputError } from "../errors.ts";
import { readJsonl, str } from "./jsonl.ts";

export interface DocumentRow {
  id: string;
  title: string;
  content: string;
  source: string;
  metadata: Record<string, unknown>;
}

export type QuestionType = "single" | "bridge" | "unanswerable" | "comparison" | "other";

export interface Hop {
  query: string;
  doc: string;
}

export interface QuestionRow {
  id: string;
  question: string;
  answer: string;
  relevant_docs: string[];
  answerable: boolean;
  type: QuestionType;
  hops?: Hop[];
}

/** The answer a model gives when the documents do not contain one. */
export const ABSTAIN = "The documents do not say.";

const ID_RE = /^[^\n\r]{1,500}$/;

export function readDocuments(path: string): DocumentRow[] {
  const docs: DocumentRow[] = [];
  const seen = new Map<string, number>();
  for (const row of readJsonl(path)) {
    const id = str(path, row, "id")!;
    if (!ID_RE.test(id)) throw new InputError(path, row.line, "id", `"${id}" must be 1-500 characters on one line`);
    if (seen.has(id)) throw new InputError(path, row.line, "id", `duplicate id "${id}" (first on line ${seen.get(id)})`);
    seen.set(id, row.line);
    const title = str(path, row, "title", false) ?? "";
    const content = str(path, row, "content")!;
    const source = str(path, row, "source", false) ?? "";
    const metadata = row.value.metadata ?? {};
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw new InputError(path, row.line, "metadata", "must be a JSON object");
    docs.push({ id, title, content, source, metadata: metadata as Record<string, unknown> });
  }
  return docs;
}

/** Reads a QA file; with `docIds`, every relevant doc must exist. */
export function readQuestions(path: string, docIds?: Set<string>): QuestionRow[] {
  const out: QuestionRow[] = [];
  const seen = new Set<string>();
  for (const row of readJsonl(path)) {
    const v = row.value;
    const seed = v.question === undefined && v.query !== undefined;
    const question = str(path, row, seed ? "query" : "question")!;
    const answerable = v.answerable === undefined ? true : v.answerable;
    if (typeof answerable !== "boolean") throw new InputError(path, row.line, "answerable", "must be true or false");
    const answer = str(path, row, seed ? "expected_answer" : "answer", answerable) ?? ABSTAIN;
    const rel = v.relevant_docs ?? [];
    if (!Array.isArray(rel) || rel.some((d) => typeof d !== "string" || !d)) throw new InputError(path, row.line, "relevant_docs", "must be an array of document ids");
    if (answerable && rel.length === 0) throw new InputError(path, row.line, "relevant_docs", "an answerable question needs at least one relevant document");
    if (docIds) for (const d of rel as string[]) if (!docIds.has(d)) throw new InputError(path, row.line, "relevant_docs", `unknown document id "${d}"`);
    const id = v.id === undefined ? `q${out.length + 1}` : String(v.id);
    if (seen.has(id)) throw new InputError(path, row.line, "id", `duplicate id "${id}"`);
    seen.add(id);
    const type = (typeof v.type === "string" ? v.type : answerable ? (rel.length > 1 ? "other" : "single") : "unanswerable") as QuestionType;
    let hops: Hop[] | undefined;
    if (v.hops !== undefined) {
      if (!Array.isArray(v.hops) || v.hops.some((h) => typeof h?.query !== "string" || typeof h?.doc !== "string")) {
        throw new InputError(path, row.line, "hops", "must be an array of {query, doc}");
      }
      hops = v.hops as Hop[];
    }
    out.push({ id, question, answer, relevant_docs: rel as string[], answerable, type, ...(hops ? { hops } : {}) });
  }
  return out;
}
