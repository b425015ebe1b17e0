/**
 * `dense`: embedding retrieval over sqlite-vec `vec0` tables inside the KB.
 * Embedders: `lsa` (default, offline: TF-IDF + randomized SVD fitted on the KB) and `http` (any
 * OpenAI-compatible /v1/embeddings endpoint); `--embedder` chooses at build time, and a query with a
 * different embedder than the KB was built with is refused.
 * Options (`--opt key=value`): mode=exact|quantized (binary prefilter + float re-score),
 * oversample=N (quantized candidates = top-k x N, default 20), embedder=SPEC (checked against the KB).
 */
import { doctor, indexChunks, reindexAll, removeChunks, search } from "../src/dense/index.ts";
import { definePlugin } from "../src/plugin-api.ts";

export default definePlugin({
  name: "dense",
  description: "dense vectors (lsa or an http embedder) in sqlite-vec; exact or binary-quantised KNN",
  index: (ctx, chunks) => indexChunks(ctx, chunks),
  remove: (ctx, ids) => removeChunks(ctx, ids),
  reindex: (ctx, chunks) => reindexAll(ctx, chunks),
  doctor: (ctx) => doctor(ctx),
  search: (ctx, query, opts) => search(ctx, query, opts),
});
