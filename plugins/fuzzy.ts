import { definePlugin, rankHits } from "nanorag";
import Fuse from "fuse.js";

/**
 * Typo-tolerant search over titles, ids and sources with fuse.js. It keeps no index: the short
 * fields are read at query time, and each document's first chunk stands for it in the results.
 */
export default definePlugin({
  name: "fuzzy",
  description: "typo-tolerant fuse.js search over titles and short fields",
  search(ctx, query, opts) {
    const allowed = ctx.filterChunkIds(opts.filter);
    const rows = ctx.db
      .query<{ chunk_id: number; doc_id: string; title: string; source: string; text: string }, []>(
        "SELECT c.id AS chunk_id, d.id AS doc_id, d.title, d.source, c.text FROM documents d JOIN chunks c ON c.doc_id = d.id AND c.ordinal = 0 ORDER BY c.id",
      )
      .all()
      .filter((r) => !allowed || allowed.has(r.chunk_id));
    const fuse = new Fuse(rows, {
      keys: [
        { name: "title", weight: 0.7 },
        { name: "doc_id", weight: 0.2 },
        { name: "source", weight: 0.1 },
      ],
      includeScore: true,
      ignoreLocation: true,
      threshold: 0.5,
    });
    const hits = fuse.search(query, { limit: opts.topK }).map((r) => ({
      chunkId: r.item.chunk_id,
      docId: r.item.doc_id,
      // fuse.js scores 0 for a perfect match; turn it into "higher is better" in (0, 1].
      score: 1 - (r.score ?? 1) + 1e-6,
      title: r.item.title,
      text: r.item.text,
    }));
    return rankHits(hits);
  },
});
