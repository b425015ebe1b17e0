/**
 * Rewards for answers with retrieval in the loop, and GRPO-style advantages.
 *
 * reward = wAnswer * answerScore + wCite * citationScore + wRetrieval * retrievalRecall - wHop * hops / maxHops
 *
 * - answerScore: token F1 against the gold answer; for an unanswerable question, 1 if the model
 *   abstained and 0 otherwise; abstaining on an answerable question scores 0.
 * - citationScore: F1 of the cited document ids against the gold ones (citing a number that names no
 *   document in context counts as a wrong citation); unanswerable: 1 when nothing is cited.
 * - retrievalRecall: share of the gold documents that were in context (1 for unanswerable questions).
 * - hops: follow-up queries the model wrote.
 */
import { ABSTAIN } from "../data/schema.ts";

const ARTICLES = new Set(["a", "an", "the"]);

/** SQuAD-style normalisation, with citation markers [n] removed first. */
export function normalizeAnswer(s: string): string {
  return s
    .replace(/\[\d+\]/g, " ")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, " ")
    .split(/\s+/)
    .filter((w) => w && !ARTICLES.has(w))
    .join(" ");
}

const ABSTAIN_NORM = normalizeAnswer(ABSTAIN);

/** Whether an answer is the abstention ("The documents do not say."). */
export function isAbstention(answer: string): boolean {
  const n = normalizeAnswer(answer);
  return n === ABSTAIN_NORM || n.includes("documents do not say");
}

export function exactMatch(pred: string, gold: string): number {
  return normalizeAnswer(pred) === normalizeAnswer(gold) ? 1 : 0;
}

export function tokenF1(pred: string, gold: string): number {
  const p = normalizeAnswer(pred).split(" ").filter(Boolean);
  const g = normalizeAnswer(gold).split(" ").filter(Boolean);
  if (p.length === 0 || g.length === 0) return p.length === g.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of g) counts.set(w, (counts.get(w) ?? 0) + 1);
  let same = 0;
  for (const w of p) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      same++;
      counts.set(w, c - 1);
    }
  }
  if (same === 0) return 0;
  const prec = same / p.length, rec = same / g.length;
  return (2 * prec * rec) / (prec + rec);
}

/** Answer score: EM-free F1 for answerable questions, abstention correctness for unanswerable ones. */
export function answerScore(pred: string, gold: string, answerable: boolean): number {
  const abst = isAbstention(pred);
  if (!answerable) return abst ? 1 : 0;
  if (abst) return 0;
  return tokenF1(pred, gold);
}

/** F1 of cited ids vs gold ids; `invalid` counts citation numbers that named no document. */
export function citationScore(cited: string[], invalid: number, gold: string[], answerable: boolean): number {
  const c = new Set(cited);
  if (!answerable) return c.size === 0 && invalid === 0 ? 1 : 0;
  const g = new Set(gold);
  const n = c.size + invalid;
  if (n === 0 || g.size === 0) return 0;
  let hit = 0;
  for (const id of c) if (g.has(id)) hit++;
  if (hit === 0) return 0;
  const prec = hit / n, rec = hit / g.size;
  return (2 * prec * rec) / (prec + rec);
}

/** Share of gold documents present in the context (1 when there are none to find). */
export function retrievalRecall(contextIds: string[], gold: string[], answerable = true): number {
  if (!answerable || gold.length === 0) return 1;
  const ctx = new Set(contextIds);
  return gold.filter((g) => ctx.has(g)).length / gold.length;
}

export interface RewardWeights {
  wAnswer: number;
  wCite: number;
  wRetrieval: number;
  wHop: number;
  maxHops: number;
}

export interface Trajectory {
  answer: string;
  citedIds: string[];
  invalidCitations: number;
  contextIds: string[];
  hops: number;
}

export interface Gold {
  answer: string;
  relevant_docs: string[];
  answerable: boolean;
}

export interface RewardParts {
  answer: number;
  cite: number;
  retrieval: number;
  hops: number;
  total: number;
}

export function reward(t: Trajectory, g: Gold, w: RewardWeights): RewardParts {
  const answer = answerScore(t.answer, g.answer, g.answerable);
  const cite = citationScore(t.citedIds, t.invalidCitations, g.relevant_docs, g.answerable);
  const retrieval = retrievalRecall(t.contextIds, g.relevant_docs, g.answerable);
  const hops = t.hops;
  const total = w.wAnswer * answer + w.wCite * cite + w.wRetrieval * retrieval - (w.maxHops > 0 ? (w.wHop * hops) / w.maxHops : 0);
  return { answer, cite, retrieval, hops, total };
}

/**
 * GRPO advantages: rewards come in consecutive groups of `groupSize` (the samples for one question);
 * each is centred on its group's mean and divided by the group's standard deviation (population) plus
 * eps. A group whose rewards are all equal carries no signal: its advantages are 0.
 */
export function groupAdvantages(rewards: number[], groupSize: number, eps = 1e-6): number[] {
  if (groupSize < 1 || rewards.length % groupSize !== 0) throw new Error(`groupAdvantages: ${rewards.length} rewards do not split into groups of ${groupSize}`);
  const out = new Array<number>(rewards.length);
  for (let g = 0; g < rewards.length; g += groupSize) {
    const xs = rewards.slice(g, g + groupSize);
    const mean = xs.reduce((a, b) => a + b, 0) / groupSize;
    const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / groupSize);
    for (let i = 0; i < groupSize; i++) out[g + i] = std < 1e-9 ? 0 : (xs[i]! - mean) / (std + eps);
  }
  return out;
}
