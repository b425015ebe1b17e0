import { analyzeEnglish, definePlugin, InvertedIndex, rankHits, scoreTerms, termCounts, type PluginContext } from "nanorag";

/** Pyserini's defaults, which BEIR baselines use (Lucene's own are 1.2 / 0.75). */
export const BM25_DEFAULTS = { k1: 0.9, b: 0.4 };

const index = new InvertedIndex("bm25", analyzeEnglish, (freqs) => freqs.reduce((a, f) => a + f, 0));

function params(ctx: PluginContext) {
  const k1 = Number(ctx.getMeta("bm25.k1") ?? BM25_DEFAULTS.k1);
  const b = Number(ctx.getMeta("bm25.b") ?? BM25_DEFAULTS.b);
  return { k1, b };
}

/** Okapi BM25 with Lucene's idf, over chunks (title + text); k1 and b are stored in the KB's meta. */
export default definePlugin({
  name: "bm25",
  description: "Okapi BM25 (k1/b persisted, default 0.9/0.4), [a-z0-9]+ tokens, English stop words, Porter stemming",
  index(ctx, chunks) {
    for (const [k, v] of Object.entries(params(ctx))) ctx.setMeta(`bm25.${k}`, String(v));
    index.add(ctx, chunks);
  },
  remove: (ctx, ids) => index.remove(ctx, ids),
  reindex: (ctx, chunks) => index.reindex(ctx, chunks),
  doctor: (ctx) => index.doctor(ctx),
  search(ctx, query, opts) {
    const { k1, b } = params(ctx);
    const terms = termCounts(analyzeEnglish(query));
    const top = scoreTerms(
      index,
      ctx.db,
      terms,
      (found, s) => {
        const avgdl = s.total / Math.max(s.n, 1);
        return found.map(({ postings: p, queryCount }) => {
          const idf = Math.log(1 + (s.n - p.ids.length + 0.5) / (p.ids.length + 0.5));
          return (i) => {
            const tf = p.tfs[i]!;
            const len = s.perChunk[p.ids[i]!]!;
            return (queryCount * idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * len) / avgdl));
          };
        });
      },
      opts.topK,
      ctx.filterChunkIds(opts.filter),
    );
    const rows = ctx.chunksById(top.map(([id]) => id));
    return rankHits(rows.map((c, i) => ({ chunkId: c.id, docId: c.docId, score: top[i]![1], title: c.title, text: c.text })));
  },
});
