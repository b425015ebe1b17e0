import { stemmer } from "stemmer";
import { WordTrie } from "./wordtrie.ts";

/** Lucene's classic 33-word English stop set (what Pyserini's BM25 baselines use). */
export const STOPWORDS: ReadonlySet<string> = new Set(
  "a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split(" "),
);

const UNICODE_WORD = /[\p{L}\p{N}]+/gu;

/** Lowercased Unicode words (letters and digits of any script), NFKC-normalised. */
export function tokenize(text: string): string[] {
  return text.normalize("NFKC").toLowerCase().match(UNICODE_WORD) ?? [];
}

/** Porter stem of one lowercase word. */
export function stem(word: string): string {
  return stemmer(word);
}

/**
 * The English analyzer's vocabulary: every stem it has produced gets a process-wide id, and the word
 * trie remembers each raw word's stem id (or -1 for a stop word), so a known word costs no allocation.
 */
const englishWords = new WordTrie();
const englishStems: string[] = [];
const englishStemIds = new Map<string, number>();

function englishTermId(word: string): number {
  if (STOPWORDS.has(word)) return -1;
  const s = stemmer(word);
  let id = englishStemIds.get(s);
  if (id === undefined) {
    id = englishStems.length;
    englishStems.push(s);
    englishStemIds.set(s, id);
  }
  return id;
}

/**
 * The BM25 analyzer: lowercase `[a-z0-9]+` tokens, Lucene's English stop set, Porter stemming.
 * This is the tokenisation that reproduces Pyserini's BM25 numbers on BEIR (docs/retrieval.md).
 */
export function analyzeEnglish(text: string): string[] {
  const out: string[] = [];
  englishWords.scan(text.toLowerCase(), englishTermId, (id) => out.push(englishStems[id]!));
  return out;
}

/**
 * The same analysis as term ids, for indexers: `termIds(text)` gives ids, `term(id)` the stem.
 * InvertedIndex uses it when an analyzer carries it, to count terms without strings.
 */
analyzeEnglish.termIds = {
  ids(text: string, out: number[]): void {
    englishWords.scan(text.toLowerCase(), englishTermId, (id) => out.push(id));
  },
  term: (id: number): string => englishStems[id]!,
};

/** Term frequencies of a token list. */
export function termCounts(tokens: string[]): Map<string, number> {
  const tf = new Map<string, number>();
  for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
  return tf;
}
