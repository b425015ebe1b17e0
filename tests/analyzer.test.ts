import { describe, expect, test } from "bun:test";
import { analyzeEnglish, stem, STOPWORDS } from "../src/retrieval/analyzer.ts";
import { WordTrie } from "../src/retrieval/wordtrie.ts";

/** The analyzer's definition, written the slow obvious way, to check the trie-cached one against. */
const reference = (text: string) => (text.toLowerCase().match(/[a-z0-9]+/g) ?? []).filter((w) => !STOPWORDS.has(w)).map(stem);

describe("English analyzer", () => {
  test("matches the plain definition on varied text, including repeats, digits, stop words and non-ASCII", () => {
    const texts = [
      "The Running runners RAN; running is their thing!",
      "Vitamin D3 and B12 in 2024: the 95% CI (p<0.05) was narrow.",
      "Ünïcödé wörds, İstanbul, naïve café, 東京 and emoji 🚀 between words",
      "a an and are as at be but by for if in into is it no not of on or such",
      "running running running the the generously generous generalization",
    ];
    for (const t of texts) {
      expect(analyzeEnglish(t)).toEqual(reference(t));
      expect(analyzeEnglish(t)).toEqual(reference(t)); // second pass: every word now from the trie
    }
    const ids: number[] = [];
    analyzeEnglish.termIds.ids(texts[0]!, ids);
    expect(ids.map(analyzeEnglish.termIds.term)).toEqual(reference(texts[0]!));
  });

  test("the word trie resolves each word once and skips -1 values", () => {
    const trie = new WordTrie();
    const resolved: string[] = [];
    const resolve = (w: string) => (resolved.push(w), w === "skip" ? -1 : w.length);
    const seen: number[] = [];
    trie.scan("abc skip de abc, skip 12345", resolve, (v) => seen.push(v));
    trie.scan("abc de", resolve, (v) => seen.push(v));
    expect(seen).toEqual([3, 2, 3, 5, 3, 2]);
    expect(resolved).toEqual(["abc", "skip", "de", "12345"]);
  });
});
