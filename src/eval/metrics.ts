/**
 * Ranking metrics computed trec_eval style: graded relevance with linear gains, over a ranked list
 * of document ids, against the judged relevance of one query. Only grades > 0 count as relevant.
 */
export type Judgments = Map<string, number>;

export function ndcgAt(ranked: string[], rel: Judgments, k: number): number {
  let dcg = 0;
  ranked.slice(0, k).forEach((id, i) => {
    const g = rel.get(id) ?? 0;
    if (g > 0) dcg += g / Math.log2(i + 2);
  });
  const ideal = [...rel.values()].filter((g) => g > 0).sort((a, b) => b - a).slice(0, k);
  const idcg = ideal.reduce((s, g, i) => s + g / Math.log2(i + 2), 0);
  return idcg > 0 ? dcg / idcg : 0;
}

const relevantCount = (rel: Judgments) => [...rel.values()].filter((g) => g > 0).length;

export function recallAt(ranked: string[], rel: Judgments, k: number): number {
  const n = relevantCount(rel);
  return n ? ranked.slice(0, k).filter((id) => (rel.get(id) ?? 0) > 0).length / n : 0;
}

export function precisionAt(ranked: string[], rel: Judgments, k: number): number {
  return ranked.slice(0, k).filter((id) => (rel.get(id) ?? 0) > 0).length / k;
}

export function mrrAt(ranked: string[], rel: Judgments, k: number): number {
  const i = ranked.slice(0, k).findIndex((id) => (rel.get(id) ?? 0) > 0);
  return i < 0 ? 0 : 1 / (i + 1);
}

/** Average precision over the whole ranked list (trec_eval's `map`). */
export function averagePrecision(ranked: string[], rel: Judgments): number {
  const n = relevantCount(rel);
  if (!n) return 0;
  let hits = 0;
  let sum = 0;
  ranked.forEach((id, i) => {
    if ((rel.get(id) ?? 0) > 0) sum += ++hits / (i + 1);
  });
  return sum / n;
}

/** 1 when every relevant document is within the first k, else 0 (multi-hop "both gold found"). */
export function allFoundAt(ranked: string[], rel: Judgments, k: number): number {
  const top = new Set(ranked.slice(0, k));
  return [...rel].every(([id, g]) => g <= 0 || top.has(id)) ? 1 : 0;
}
