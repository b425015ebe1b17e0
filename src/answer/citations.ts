/**
 * What an answer shows next to its text: the documents it saw (sources, numbered as the model saw
 * them) and the [n] citations it wrote, each mapped to its document. Numbers that name no document
 * in context are kept apart as invalid.
 */
import { parseCitations, type RenderedDoc } from "../rag/template.ts";

export interface Source {
  n: number;
  id: string;
  title: string;
  snippet: string;
}

export interface Citation {
  n: number;
  id: string;
  title: string;
}

export const SNIPPET_CHARS = 200;

/** The start of a text, cut at a word boundary, with an ellipsis when cut. */
export function snippet(text: string, max = SNIPPET_CHARS): string {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max);
  const space = cut.lastIndexOf(" ");
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** The documents in context as sources, with a snippet of each one's text (from `texts`, by id). */
export function sourcesOf(docs: RenderedDoc[], texts: ReadonlyMap<string, string>): Source[] {
  return docs.map((d) => ({ n: d.n, id: d.id, title: d.title, snippet: snippet(texts.get(d.id) ?? "") }));
}

/** The answer's citations in order of first appearance, mapped to documents; unknown numbers apart. */
export function mapCitations(answer: string, docs: RenderedDoc[]): { citations: Citation[]; invalid: number[] } {
  const byN = new Map(docs.map((d) => [d.n, d]));
  const citations: Citation[] = [];
  const invalid: number[] = [];
  for (const n of parseCitations(answer)) {
    const d = byN.get(n);
    if (d) citations.push({ n, id: d.id, title: d.title });
    else invalid.push(n);
  }
  return { citations, invalid };
}
