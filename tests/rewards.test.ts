import { describe, expect, test } from "bun:test";
import { summarize, type AnswerRecord } from "../src/rag/metrics.ts";
import { answerScore, citationScore, exactMatch, groupAdvantages, isAbstention, normalizeAnswer, retrievalRecall, reward, tokenF1 } from "../src/rag/rewards.ts";

describe("answer metrics", () => {
  test("normalisation drops citations, case, punctuation and articles", () => {
    expect(normalizeAnswer("The Zulora Labs [2][3].")).toBe("zulora labs");
    expect(exactMatch("Kalomi [1].", "kalomi")).toBe(1);
    expect(exactMatch("Kalomi Works [1].", "Kalomi")).toBe(0);
  });
  test("token F1 by hand", () => {
    // pred {kalomi, works}, gold {kalomi}: P = 1/2, R = 1 -> F1 = 2/3
    expect(tokenF1("Kalomi Works", "Kalomi")).toBeCloseTo(2 / 3, 10);
    expect(tokenF1("x y c", "c d")).toBeCloseTo((2 * (1 / 3) * (1 / 2)) / (1 / 3 + 1 / 2), 10);
    expect(tokenF1("x", "y")).toBe(0);
  });
  test("abstention", () => {
    expect(isAbstention("The documents do not say.")).toBe(true);
    expect(isAbstention("the documents do not say [1]")).toBe(true);
    expect(isAbstention("Paris")).toBe(false);
    expect(answerScore("The documents do not say.", "x", false)).toBe(1);
    expect(answerScore("Paris", "x", false)).toBe(0);
    expect(answerScore("The documents do not say.", "Paris", true)).toBe(0);
  });
});

describe("citations and retrieval", () => {
  test("citation F1 against gold ids", () => {
    expect(citationScore(["a"], 0, ["a"], true)).toBe(1);
    expect(citationScore(["a", "b"], 0, ["a"], true)).toBeCloseTo(2 / 3, 10); // P 1/2 R 1
    expect(citationScore(["a"], 0, ["a", "b"], true)).toBeCloseTo(2 / 3, 10); // P 1 R 1/2
    expect(citationScore(["a"], 1, ["a"], true)).toBeCloseTo(2 / 3, 10); // an invalid number counts as a wrong citation
    expect(citationScore([], 0, ["a"], true)).toBe(0);
    expect(citationScore([], 0, ["a"], false)).toBe(1);
    expect(citationScore(["a"], 0, ["a"], false)).toBe(0);
  });
  test("retrieval recall", () => {
    expect(retrievalRecall(["a", "c"], ["a", "b"])).toBe(0.5);
    expect(retrievalRecall([], ["a"], false)).toBe(1);
  });
});

describe("reward", () => {
  const w = { wAnswer: 0.6, wCite: 0.2, wRetrieval: 0.2, wHop: 0.1, maxHops: 2 };
  const gold = { answer: "Kalomi", relevant_docs: ["p1", "c1"], answerable: true };
  test("weighted parts, every weight used", () => {
    const t = { answer: "Kalomi [2].", citedIds: ["c1"], invalidCitations: 0, contextIds: ["p1", "x", "c1"], hops: 1 };
    const r = reward(t, gold, w);
    expect(r.answer).toBe(1);
    expect(r.cite).toBeCloseTo(2 / 3, 10);
    expect(r.retrieval).toBe(1);
    expect(r.total).toBeCloseTo(0.6 * 1 + 0.2 * (2 / 3) + 0.2 * 1 - 0.1 * (1 / 2), 10);
    for (const k of ["wAnswer", "wCite", "wRetrieval", "wHop"] as const) {
      const r2 = reward(t, gold, { ...w, [k]: w[k] + 1 });
      expect(r2.total).not.toBeCloseTo(r.total, 6);
    }
  });
  test("a wrong answer without retrieval scores low", () => {
    const r = reward({ answer: "Paris", citedIds: [], invalidCitations: 0, contextIds: ["x"], hops: 0 }, gold, w);
    expect(r.total).toBe(0);
  });
});

describe("GRPO advantages", () => {
  test("normalised within each group", () => {
    const a = groupAdvantages([1, 0, 0.5, 0.5, 3, 1], 2);
    // group 1: mean .5, std .5 -> +1, -1; group 2: all equal -> 0; group 3: mean 2, std 1 -> +1, -1
    expect(a[0]).toBeCloseTo(1, 5);
    expect(a[1]).toBeCloseTo(-1, 5);
    expect(a[2]).toBe(0);
    expect(a[3]).toBe(0);
    expect(a[4]).toBeCloseTo(1, 5);
    expect(a[5]).toBeCloseTo(-1, 5);
  });
  test("groups of 4 sum to zero and have unit variance", () => {
    const a = groupAdvantages([0.1, 0.7, 0.4, 0.2], 4);
    expect(a.reduce((x, y) => x + y, 0)).toBeCloseTo(0, 9);
    expect(a.reduce((x, y) => x + y * y, 0) / 4).toBeCloseTo(1, 4);
  });
  test("size mismatch is an error", () => {
    expect(() => groupAdvantages([1, 2, 3], 2)).toThrow();
  });
});

describe("quality summary", () => {
  test("EM, abstention and false abstention by hand", () => {
    const base = { type: "single", question: "q", relevant_docs: ["d"], citedIds: ["d"], invalidCitations: 0, contextIds: ["d"], hops: 0 };
    const rs: AnswerRecord[] = [
      { ...base, id: "1", gold: "A", answerable: true, prediction: "A [1]." },
      { ...base, id: "2", gold: "B", answerable: true, prediction: "The documents do not say." },
      { ...base, id: "3", gold: "The documents do not say.", answerable: false, prediction: "The documents do not say.", citedIds: [] },
      { ...base, id: "4", gold: "The documents do not say.", answerable: false, prediction: "C", citedIds: [] },
    ];
    const s = summarize(rs);
    expect(s.em).toBe(0.5);
    expect(s.falseAbstention).toBe(0.5);
    expect(s.abstention).toBe(0.5);
    // every record cites correctly for its kind (gold doc, or nothing when unanswerable)
    expect(s.citation).toBe(1);
  });
});
