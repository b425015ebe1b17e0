import { InputError, UserError } from "../errors.ts";
import type { Kb } from "../kb/kb.ts";
import { jsonLines, readUtf8 } from "../io/jsonl.ts";
import { progress } from "../log.ts";
import { allFoundAt, averagePrecision, type Judgments, mrrAt, ndcgAt, precisionAt, recallAt } from "./metrics.ts";

export interface EvalQuery {
  id: string;
  text: string;
  relevant: Judgments;
}

export type QuerySetKind = "beir" | "seed" | "hotpotqa";

/**
 * Loads queries with their judgments from BEIR (queries.jsonl + qrels TSV), the seed's queries
 * JSONL (`query, relevant_docs`), or HotpotQA rows (the supporting paragraphs' titles are the gold).
 * Only queries with at least one relevant judgment are kept, as trec_eval does.
 */
export function loadQueries(queriesFile: string, qrelsFile?: string): { kind: QuerySetKind; queries: EvalQuery[] } {
  const text = readUtf8(queriesFile);
  if (!text.trim()) throw new InputError(queriesFile, null, null, "empty file");
  const rows = [...jsonLines(queriesFile, text)];
  const first = rows[0]!.value;
  let kind: QuerySetKind;
  let queries: EvalQuery[];
  if ("_id" in first) {
    kind = "beir";
    if (!qrelsFile) throw new UserError(`${queriesFile} is a BEIR queries file: pass its judgments with --qrels FILE`);
    const qrels = loadQrels(qrelsFile);
    queries = rows.map(({ line, value: row }) => {
      if (typeof row.text !== "string") throw new InputError(queriesFile, line, "text", "missing required field");
      const id = String(row._id);
      return { id, text: row.text, relevant: qrels.get(id) ?? new Map() };
    });
  } else if ("supporting_facts" in first) {
    kind = "hotpotqa";
    queries = rows.map(({ line, value: row }) => {
      const facts = row.supporting_facts as { title?: unknown } | undefined;
      if (!facts || !Array.isArray(facts.title)) throw new InputError(queriesFile, line, "supporting_facts", "expected {title: [...], sent_id: [...]}");
      if (typeof row.question !== "string") throw new InputError(queriesFile, line, "question", "missing required field");
      return { id: String(row.id ?? row._id ?? line), text: row.question, relevant: new Map(facts.title.map((t) => [String(t), 1])) };
    });
  } else {
    kind = "seed";
    queries = rows.map(({ line, value: row }, i) => {
      const q = row.query ?? row.question;
      if (typeof q !== "string") throw new InputError(queriesFile, line, "query", "missing required field");
      if (!Array.isArray(row.relevant_docs)) throw new InputError(queriesFile, line, "relevant_docs", "expected a list of document ids");
      return { id: String(row.id ?? `q_${i}`), text: q, relevant: new Map(row.relevant_docs.map((d) => [String(d), 1])) };
    });
  }
  return { kind, queries: queries.filter((q) => [...q.relevant.values()].some((g) => g > 0)) };
}

/** Reads a BEIR/TREC qrels TSV: `query-id corpus-id score`, with or without the header line. */
export function loadQrels(file: string): Map<string, Judgments> {
  const out = new Map<string, Judgments>();
  readUtf8(file)
    .split("\n")
    .forEach((raw, i) => {
      const line = raw.trim();
      if (!line || (i === 0 && /^query[-_]id/i.test(line))) return;
      const parts = line.split(/\s+/);
      // TREC qrels have 4 columns (qid, iteration, docid, rel); BEIR has 3.
      const [qid, docId, grade] = parts.length >= 4 ? [parts[0], parts[2], parts[3]] : parts;
      const g = Number(grade);
      if (!qid || !docId || !Number.isFinite(g)) throw new InputError(file, i + 1, "score", `expected "query-id corpus-id score", got "${line}"`);
      let m = out.get(qid);
      if (!m) out.set(qid, (m = new Map()));
      m.set(docId, g);
    });
  if (out.size === 0) throw new InputError(file, null, null, "no judgments");
  return out;
}

export type Metrics = Record<string, number>;

/** Runs every query through a retriever (grouped to documents) and averages the metrics. */
export async function evaluateRetriever(
  kb: Kb,
  retriever: string,
  set: { kind: QuerySetKind; queries: EvalQuery[] },
  k: number,
  searchOptions: { filter?: Record<string, string>; options?: Record<string, string> } = {},
): Promise<Metrics> {
  const depth = Math.max(k, 100, set.kind === "beir" ? 1000 : 100);
  const sums: Record<string, number> = {};
  const add = (name: string, v: number) => (sums[name] = (sums[name] ?? 0) + v);
  const bar = set.queries.length >= 100 ? progress(`eval ${retriever}`, set.queries.length, "queries") : undefined;
  const t0 = performance.now();
  for (const [i, q] of set.queries.entries()) {
    const hits = await kb.search(retriever, q.text, { topK: depth, group: "doc", ...searchOptions });
    const ranked = hits.map((h) => h.docId);
    add(`ndcg@${k}`, ndcgAt(ranked, q.relevant, k));
    add("recall@100", recallAt(ranked, q.relevant, 100));
    add(`mrr@${k}`, mrrAt(ranked, q.relevant, k));
    add("map", averagePrecision(ranked, q.relevant));
    add(`precision@${k}`, precisionAt(ranked, q.relevant, k));
    if (set.kind === "hotpotqa") for (const at of [2, 5, 10]) add(`all_gold@${at}`, allFoundAt(ranked, q.relevant, at));
    bar?.tick(i + 1);
  }
  bar?.done();
  const n = set.queries.length;
  const out: Metrics = {};
  for (const [name, s] of Object.entries(sums)) out[name] = Number((s / Math.max(n, 1)).toFixed(4));
  out.queries = n;
  out.ms_per_query = Number(((performance.now() - t0) / Math.max(n, 1)).toFixed(2));
  return out;
}
