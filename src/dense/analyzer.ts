import { stemmer } from "stemmer";

/**
 * The LSA embedder's analyzer: lowercase `[a-z0-9]+` tokens, Lucene's 33-word English stoplist,
 * Porter stemming (the `stemmer` package). Its name is recorded in the KB's embedder identity, so a
 * change here must change ANALYZER and old KBs are then refused until `kb reindex`.
 */
export const ANALYZER = "porter-v1";

const STOP = new Set(
  "a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split(" "),
);

const cache = new Map<string, string>();

export function analyze(text: string): string[] {
  const out: string[] = [];
  const re = /[a-z0-9]+/g;
  const lower = text.toLowerCase();
  for (let m = re.exec(lower); m; m = re.exec(lower)) {
    const w = m[0];
    if (STOP.has(w)) continue;
    let s = cache.get(w);
    if (s === undefined) {
      s = w.length > 2 && !/^[0-9]+$/.test(w) ? stemmer(w) : w;
      if (cache.size > 500_000) cache.clear();
      cache.set(w, s);
    }
    out.push(s);
  }
  return out;
}

/** Term frequencies of one text. */
export function termCounts(text: string): Map<string, number> {
  const tf = new Map<string, number>();
  for (const t of analyze(text)) tf.set(t, (tf.get(t) ?? 0) + 1);
  return tf;
}
