import { stemmer } from "stemmer";

/** Lucene's classic 33-word English stop set (what Pyserini's BM25 baselines use). */
export const STOPWORDS: ReadonlySet<string> = new Set(
  "a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split(" "),
);

const ASCII_WORD = /[a-z0-9]+/g;
const UNICODE_WORD = /[\p{L}\p{N}]+/gu;

/** Lowercased Unicode words (letters and digits of any script), NFKC-normalised. */
export function tokenize(text: string): string[] {
  return text.normalize("NFKC").toLowerCase().match(UNICODE_WORD) ?? [];
}

const stemCache = new Map<string, string>();

/** Porter stem, memoised: corpora repeat words far more often than they introduce new ones. */
export function stem(word: string): string {
  let s = stemCache.get(word);
  if (s === undefined) {
    s = stemmer(word);
    if (stemCache.size < 1_000_000) stemCache.set(word, s);
  }
  return s;
}

/**
 * The BM25 analyzer: lowercase `[a-z0-9]+` tokens, Lucene's English stop set, Porter stemming.
 * This is the tokenisation that reproduces Pyserini's BM25 numbers on BEIR (docs/retrieval.md).
 */
export function analyzeEnglish(text: string): string[] {
  const out: string[] = [];
  for (const w of text.toLowerCase().match(ASCII_WORD) ?? []) if (!STOPWORDS.has(w)) out.push(stem(w));
  return out;
}

/** Term frequencies of a token list. */
export function termCounts(tokens: string[]): Map<string, number> {
  const tf = new Map<string, number>();
  for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
  return tf;
}
