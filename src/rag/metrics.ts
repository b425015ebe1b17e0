/**
 * Answer-quality metrics over a set of questions: exact match and F1 (answerable questions),
 * citation accuracy, abstention accuracy on unanswerable questions and the false-abstention rate on
 * answerable ones, retrieval recall and hops used; overall and per question type.
 */
import { citationScore, exactMatch, isAbstention, retrievalRecall, tokenF1 } from "./rewards.ts";

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
