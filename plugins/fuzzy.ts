import { definePlugin, rankHits, type PluginContext } from "nanorag";
import Fuse from "fuse.js";

interface Row {
  chunk_id: number;
  doc_id: string;
  title: string;
  source: string;
  text: string;
}

/** The fuse.js index of a KB, rebuilt only when the KB has been written since (meta.updated_at). */
const indexes = new WeakMap<object, { stamp: string; fuse: Fuse<Row> }>();

function fuseFor(ctx: PluginContext): Fuse<Row> {
  const stamp = ctx.getMeta("updated_at") ?? "";
  const cached = indexes.get(ctx.db);
  if (cached?.stamp === stamp) return cached.fuse;
  const rows = ctx.db
    .query<Row, []>("SELECT c.id AS chunk_id, d.id AS doc_id, d.title, d.source, c.text FROM documents d JOIN chunks c ON c.doc_id = d.id AND c.ordinal = 0 ORDER BY c.id")
    .all();
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
  indexes.set(ctx.db, { stamp, fuse });
  return fuse;
}

/**
 * Typo-tolerant search over titles, ids and sources with fuse.js. It keeps no index: the short
 * fields are read at query time, and each document's first chunk stands for it in the results.
 */
export default definePlugin({
  name: "fuzzy",
  description: "typo-tolerant fuse.js search over titles and short fields",
  search(ctx, query, opts) {
    const allowed = ctx.filterChunkIds(opts.filter);
    const fuse = fuseFor(ctx);
    // Without a filter, fuse.js can stop at topK; with one, filter first and cut after.
    const found = allowed ? fuse.search(query).filter((r) => allowed.has(r.item.chunk_id)).slice(0, opts.topK) : fuse.search(query, { limit: opts.topK });
    const hits = found.map((r) => ({
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
