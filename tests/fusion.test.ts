import { describe, expect, test } from "bun:test";
import type { Hit } from "../src/plugin-api.ts";
import { convex, minMax, rrf } from "../src/retrieval/fusion.ts";

const hit = (chunkId: number, score: number): Hit => ({ chunkId, docId: `d${chunkId}`, score, title: "", text: "" });

// bm25: 1 (12.0), 2 (8.0), 3 (4.0)      dense: 3 (0.9), 4 (0.8), 1 (0.5)
const bm25 = { name: "bm25", hits: [hit(1, 12), hit(2, 8), hit(3, 4)] };
const dense = { name: "dense", hits: [hit(3, 0.9), hit(4, 0.8), hit(1, 0.5)] };

describe("min-max normalisation", () => {
  test("maps to [0, 1]; equal scores map to 1", () => {
    expect(minMax([12, 8, 4])).toEqual([1, 0.5, 0]);
    expect(minMax([0.9, 0.8, 0.5]).map((x) => Number(x.toFixed(10)))).toEqual([1, 0.75, 0]);
    expect(minMax([3, 3])).toEqual([1, 1]);
    expect(minMax([])).toEqual([]);
  });
});

describe("reciprocal rank fusion", () => {
  test("k = 60 on a hand-computed case", () => {
    const out = rrf([bm25, dense]);
    // 1: 1/61 + 1/63 = 0.032266; 3: 1/63 + 1/61 = the same; 2: 1/62 = 0.016129; 4: 1/62 = 0.016129
    expect(out.map((h) => h.chunkId)).toEqual([1, 3, 2, 4]); // ties by chunk id
    expect(out[0]!.score).toBeCloseTo(1 / 61 + 1 / 63, 12);
    expect(out[1]!.score).toBeCloseTo(1 / 63 + 1 / 61, 12);
    expect(out[2]!.score).toBeCloseTo(1 / 62, 12);
    expect(out[3]!.score).toBeCloseTo(1 / 62, 12);
    expect(out[0]!.explain).toEqual({ bm25: { rank: 1, score: 12 }, dense: { rank: 3, score: 0.5 } });
    expect(out[3]!.explain).toEqual({ dense: { rank: 2, score: 0.8 } });
  });

  test("other k and weights", () => {
    const out = rrf([bm25, dense], 1, [2, 1]);
    // 1: 2/2 + 1/4 = 1.25; 2: 2/3 = 0.6667; 3: 2/4 + 1/2 = 1.0; 4: 1/3
    expect(out.map((h) => [h.chunkId, Number(h.score.toFixed(4))])).toEqual([
      [1, 1.25],
      [3, 1],
      [2, 0.6667],
      [4, 0.3333],
    ]);
  });

  test("a retriever listing a chunk twice counts it once, at its best rank", () => {
    const out = rrf([{ name: "a", hits: [hit(1, 3), hit(1, 2)] }, { name: "b", hits: [hit(2, 1)] }]);
    expect(out.find((h) => h.chunkId === 1)!.score).toBeCloseTo(1 / 61, 12);
  });
});

describe("convex combination", () => {
  test("equal weights on a hand-computed case", () => {
    const out = convex([bm25, dense]);
    // normalised bm25: 1->1, 2->0.5, 3->0; dense: 3->1, 4->0.75, 1->0
    // 1: 0.5*1 + 0.5*0 = 0.5; 2: 0.25; 3: 0 + 0.5 = 0.5; 4: 0.375
    expect(out.map((h) => [h.chunkId, Number(h.score.toFixed(6))])).toEqual([
      [1, 0.5],
      [3, 0.5],
      [4, 0.375],
      [2, 0.25],
    ]);
    expect(out[1]!.explain).toEqual({ bm25: { rank: 3, score: 4 }, dense: { rank: 1, score: 0.9 } });
  });

  test("weight 0.7 for the first list", () => {
    const out = convex([bm25, dense], [0.7, 0.3]);
    // 1: 0.7; 2: 0.35; 3: 0.3; 4: 0.225
    expect(out.map((h) => [h.chunkId, Number(h.score.toFixed(6))])).toEqual([
      [1, 0.7],
      [2, 0.35],
      [3, 0.3],
      [4, 0.225],
    ]);
  });

  test("never averages raw scores: rescaling one retriever's scores changes nothing", () => {
    const scaled = { name: "bm25", hits: bm25.hits.map((h) => ({ ...h, score: h.score * 1000 + 7 })) };
    const a = convex([bm25, dense], [0.4, 0.6]).map((h) => [h.chunkId, h.score.toFixed(9)]);
    const b = convex([scaled, dense], [0.4, 0.6]).map((h) => [h.chunkId, h.score.toFixed(9)]);
    expect(b).toEqual(a);
  });

  test("a hit weakest in every list it is in scores 0 and is dropped; weights must match lists", () => {
    const out = convex([{ name: "a", hits: [hit(1, 2), hit(2, 1)] }, { name: "b", hits: [hit(3, 5)] }]);
    expect(out.map((h) => h.chunkId)).toEqual([1, 3]);
    expect(() => convex([bm25, dense], [1])).toThrow("1 weights for 2 lists");
  });
});
