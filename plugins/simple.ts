import { definePlugin, InvertedIndex, rankHits, scoreTerms, STOPWORDS, termCounts, tokenize } from "nanorag";

const analyze = (text: string) => tokenize(text).filter((t) => !STOPWORDS.has(t));
const logTf = (tf: number) => 1 + Math.log(tf);

/** Chunk vectors use log term frequency with cosine normalisation (SMART "lnc"), so their norms never depend on the collection. */
const index = new InvertedIndex("simple", analyze, (freqs) => Math.sqrt(freqs.reduce((a, f) => a + logTf(f) ** 2, 0)));

/** TF-IDF cosine similarity (SMART lnc.ltc): unstemmed Unicode words, no length prior beyond the cosine. */
export default definePlugin({
  name: "simple",
  description: "TF-IDF cosine similarity (lnc.ltc) over Unicode word tokens",
  index: (ctx, chunks) => index.add(ctx, chunks),
  remove: (ctx, ids) => index.remove(ctx, ids),
  reindex: (ctx, chunks) => index.reindex(ctx, chunks),
  doctor: (ctx) => index.doctor(ctx),
  search(ctx, query, opts) {
    const top = scoreTerms(
      index,
      ctx.db,
      termCounts(analyze(query)),
      (found, s) => {
        // Query weights (ltc): log tf times idf, normalised to unit length over the terms the KB knows.
        const weights = found.map(({ postings, queryCount }) => logTf(queryCount) * Math.log(s.n / postings.ids.length));
        const qnorm = Math.sqrt(weights.reduce((a, w) => a + w * w, 0)) || 1;
        return found.map(({ postings: p }, t) => {
          const wq = weights[t]! / qnorm;
          return wq > 0 ? (i) => (wq * logTf(p.tfs[i]!)) / s.perChunk[p.ids[i]!]! : null;
        });
      },
      opts.topK,
      ctx.filterChunkIds(opts.filter),
    );
    const rows = ctx.chunksById(top.map(([id]) => id));
    return rankHits(rows.map((c, i) => ({ chunkId: c.id, docId: c.docId, score: top[i]![1], title: c.title, text: c.text })));
  },
});
