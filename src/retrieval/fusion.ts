import { type Hit, rankHits } from "../plugin-api.ts";

/**
 * Score fusion for hybrid retrieval. Two methods, both documented in docs/retrieval.md:
 *  - reciprocal rank fusion (Cormack et al. 2009): score = sum_i w_i / (k + rank_i), k = 60;
 *  - convex combination of min-max-normalised scores (Bruch et al. 2023):
 *    score = sum_i w_i * (s_i - min_i) / (max_i - min_i), a hit missing from a list contributing 0.
 * Raw scores of different retrievers are never averaged: BM25 and cosine live on unrelated scales.
 * Each fused hit carries `explain[name] = { rank, score }` for every list it appeared in
 * (1-based rank, the retriever's raw score).
 */
export interface RankedList {
  name: string;
  /** Best first, as a retriever returns them. */
  hits: Hit[];
}

export const RRF_K = 60;

/** Min-max normalisation to [0, 1]; a list whose scores are all equal maps to 1. */
export function minMax(scores: number[]): number[] {
  if (scores.length === 0) return [];
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of scores) {
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const span = hi - lo;
  return scores.map((s) => (span > 0 ? (s - lo) / span : 1));
}

function checkWeights(lists: RankedList[], weights?: number[]): number[] {
  const w = weights ?? lists.map(() => 1);
  if (w.length !== lists.length) throw new Error(`fusion: ${w.length} weights for ${lists.length} lists`);
  return w;
}

function fuse(lists: RankedList[], contribution: (listIndex: number, rank: number, hit: Hit, normalized: number) => number): Hit[] {
  const fused = new Map<number, Hit>();
  lists.forEach((list, li) => {
    const norm = minMax(list.hits.map((h) => h.score));
    list.hits.forEach((h, i) => {
      let f = fused.get(h.chunkId);
      if (!f) {
        f = { chunkId: h.chunkId, docId: h.docId, score: 0, title: h.title, text: h.text, explain: {} };
        fused.set(h.chunkId, f);
      }
      // A retriever listing the same chunk twice counts once, at its best rank.
      if (f.explain![list.name]) return;
      f.explain![list.name] = { rank: i + 1, score: h.score };
      f.score += contribution(li, i + 1, h, norm[i]!);
    });
  });
  return rankHits([...fused.values()]);
}

/** Reciprocal rank fusion. */
export function rrf(lists: RankedList[], k = RRF_K, weights?: number[]): Hit[] {
  const w = checkWeights(lists, weights);
  return fuse(lists, (li, rank) => w[li]! / (k + rank));
}

/**
 * Convex combination of min-max-normalised scores. With weights summing to 1 the fused score is in
 * [0, 1]. A hit that is the weakest in every list it appears in scores 0 and, as "no evidence", is
 * dropped (fetch more candidates than you return).
 */
export function convex(lists: RankedList[], weights?: number[]): Hit[] {
  const w = checkWeights(lists, weights ?? lists.map(() => 1 / lists.length));
  return fuse(lists, (li, _rank, _hit, normalized) => w[li]! * normalized);
}
