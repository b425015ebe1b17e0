/**
 * Answer-quality metrics over a set of questions: exact match and F1 (answerable questions),
 * citation accuracy, abstention accuracy on unanswerable questions and the false-abstention rate on
 * answerable ones, retrieval recall and hops used; overall and per question type.
 */
import { citationScore, exactMatch, isAbstention, normalizeAnswer, retrievalRecall, tokenF1 } from "./rewards.ts";

export interface AnswerRecord {
  id: string;
  type: string;
  question: string;
  gold: string;
  answerable: boolean;
  relevant_docs: string[];
  prediction: string;
  citedIds: string[];
  invalidCitations: number;
  contextIds: string[];
  hops: number;
  /** the text of every document in context (for groundedness) */
  contextText?: string;
  timings?: { ttft_ms: number; tokens_per_s: number };
}

export interface QualitySummary {
  n: number;
  /** over answerable questions */
  em: number;
  f1: number;
  /** citation F1 against gold docs (answerable), or no citation (unanswerable) */
  citation: number;
  /** unanswerable questions answered with the abstention */
  abstention: number | null;
  /** answerable questions answered with the abstention */
  falseAbstention: number | null;
  recall: number;
  hops: number;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

export function summarize(rs: AnswerRecord[]): QualitySummary {
  const ans = rs.filter((r) => r.answerable);
  const un = rs.filter((r) => !r.answerable);
  return {
    n: rs.length,
    em: mean(ans.map((r) => exactMatch(r.prediction, r.gold))),
    f1: mean(ans.map((r) => tokenF1(r.prediction, r.gold))),
    citation: mean(rs.map((r) => citationScore(r.citedIds, r.invalidCitations, r.relevant_docs, r.answerable))),
    abstention: un.length ? mean(un.map((r) => (isAbstention(r.prediction) ? 1 : 0))) : null,
    falseAbstention: ans.length ? mean(ans.map((r) => (isAbstention(r.prediction) ? 1 : 0))) : null,
    recall: mean(rs.map((r) => retrievalRecall(r.contextIds, r.relevant_docs, r.answerable))),
    hops: mean(rs.map((r) => r.hops)),
  };
}

/** Summaries per question type plus "all". */
export function summarizeByType(rs: AnswerRecord[]): Record<string, QualitySummary> {
  const out: Record<string, QualitySummary> = {};
  for (const t of [...new Set(rs.map((r) => r.type))].sort()) out[t] = summarize(rs.filter((r) => r.type === t));
  out.all = summarize(rs);
  return out;
}

/**
 * Groundedness of an answer in the text it was shown: its words (SQuAD-normalised, citation markers
 * removed) that appear nowhere in that text are unsupported. An abstention claims nothing and is not
 * counted.
 */
export function unsupportedWords(answer: string, context: string): { unsupported: number; words: number } {
  if (isAbstention(answer)) return { unsupported: 0, words: 0 };
  const shown = new Set(normalizeAnswer(context).split(" "));
  const words = normalizeAnswer(answer).split(" ").filter(Boolean);
  return { unsupported: words.filter((w) => !shown.has(w)).length, words: words.length };
}

/** The `eval qa` row for one (model, mode): definitions in docs/answering.md. Null where nothing was measured. */
export interface QaSummary {
  questions: number;
  em: number | null;
  f1: number | null;
  citation_precision: number | null;
  citation_recall: number | null;
  citation_validity: number | null;
  hallucination_rate: number | null;
  abstention_accuracy: number | null;
  mean_hops: number | null;
  ttft_ms: number | null;
  tokens_per_s: number | null;
}

const orNull = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);
const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function qaSummary(rs: AnswerRecord[]): QaSummary {
  const ans = rs.filter((r) => r.answerable);
  const goldCited = (r: AnswerRecord) => new Set(r.citedIds.filter((id) => r.relevant_docs.includes(id))).size;
  const citations = (r: AnswerRecord) => r.citedIds.length + r.invalidCitations;
  const ground = rs.map((r) => unsupportedWords(r.prediction, r.contextText ?? ""));
  const timed = rs.filter((r) => r.timings);
  return {
    questions: rs.length,
    em: orNull(mean(ans.map((r) => exactMatch(r.prediction, r.gold)))),
    f1: orNull(mean(ans.map((r) => tokenF1(r.prediction, r.gold)))),
    citation_precision: orNull(ratio(sum(ans.map(goldCited)), sum(ans.map(citations)))),
    citation_recall: orNull(mean(ans.map((r) => ratio(goldCited(r), new Set(r.relevant_docs).size)))),
    citation_validity: orNull(ratio(sum(rs.map((r) => r.citedIds.length)), sum(rs.map(citations)))),
    hallucination_rate: orNull(ratio(sum(ground.map((g) => g.unsupported)), sum(ground.map((g) => g.words)))),
    abstention_accuracy: orNull(mean(rs.map((r) => (isAbstention(r.prediction) === !r.answerable ? 1 : 0)))),
    mean_hops: orNull(mean(rs.map((r) => r.hops))),
    ttft_ms: orNull(mean(timed.map((r) => r.timings!.ttft_ms))),
    tokens_per_s: orNull(mean(timed.map((r) => r.timings!.tokens_per_s))),
  };
}
