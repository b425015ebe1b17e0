/**
 * `hybrid`: fuses two or more retrievers, optionally followed by an HTTP cross-encoder rerank.
 * Options (`--opt key=value`):
 *   components=bm25,dense   retrievers to fuse (two or more; default bm25,dense)
 *   method=rrf|cc           reciprocal rank fusion (default) or convex combination of min-max scores
 *   k=60                    the RRF constant
 *   weight=0.5              cc/rrf weight of the FIRST component when there are two (the second gets 1 - weight)
 *   weights=0.6,0.4         one weight per component (overrides weight)
 *   depth=N                 candidates taken from each component (default max(100, 2 x top-k))
 *   rerank_url=URL          rerank the fused top candidates (TEI/Cohere /rerank shape); also
 *   rerank_api=tei|cohere, rerank_model, rerank_top (default max(top-k, 50)), rerank_timeout_ms
 * Every option is also passed to the components (e.g. mode=quantized reaches dense). Filters apply to
 * every component. Hits carry `explain` with each component's rank and raw score.
 */
import { UserError } from "../src/errors.ts";
import { definePlugin, type Hit, type Retriever, type SearchOptions } from "../src/plugin-api.ts";
import { convex, RRF_K, type RankedList, rrf } from "../src/retrieval/fusion.ts";
import { rerank, rerankOptions } from "../src/retrieval/rerank.ts";

/** Default weight of the first component (bm25) for method=cc, chosen on NFCorpus dev (docs/retrieval.md). */
export const CC_DEFAULT_WEIGHT = "0.5";

export const HYBRID_OPTIONS = ["components", "method", "k", "weight", "weights", "depth", "rerank_url", "rerank_api", "rerank_model", "rerank_top", "rerank_timeout_ms", "rerank_retries", "rerank_api_key_env"];

export interface HybridConfig {
  components: string[];
  method: "rrf" | "cc";
  k: number;
  weights: number[] | undefined;
  depth: number;
}

export function hybridConfig(opts: SearchOptions, defaults: { method?: "rrf" | "cc"; weight?: string } = {}): HybridConfig {
  const o = opts.options ?? {};
  // Lists take "," or "+" (`--opt` itself splits on commas: components=bm25+dense).
  const components = (o.components ?? "bm25,dense").split(/[,+]/).map((s) => s.trim()).filter(Boolean);
  if (components.length < 2) throw new UserError(`hybrid: components=${o.components} needs two or more retrievers (e.g. components=bm25,dense)`);
  if (components.includes("hybrid")) throw new UserError("hybrid: cannot fuse itself");
  if (new Set(components).size !== components.length) throw new UserError(`hybrid: components=${o.components} lists a retriever twice`);
  const method = (o.method ?? defaults.method ?? "rrf") as string;
  if (method !== "rrf" && method !== "cc") throw new UserError(`hybrid: method=${method} is not one of rrf, cc`);
  const k = Number(o.k ?? RRF_K);
  if (!(k > 0)) throw new UserError(`hybrid: k=${o.k} must be a positive number`);
  let weights: number[] | undefined;
  if (o.weights !== undefined) {
    weights = o.weights.split(/[,+]/).map(Number);
    if (weights.length !== components.length || weights.some((w) => !(w >= 0))) {
      throw new UserError(`hybrid: weights=${o.weights} needs ${components.length} non-negative numbers, one per component`);
    }
  } else if ((o.weight ?? defaults.weight) !== undefined) {
    const w = Number(o.weight ?? defaults.weight);
    if (!(w >= 0 && w <= 1)) throw new UserError(`hybrid: weight=${o.weight} must be in [0, 1]`);
    if (components.length !== 2) throw new UserError("hybrid: weight= works with two components; use weights=a,b,c for more");
    weights = [w, 1 - w];
  }
  const depth = Number(o.depth ?? Math.max(100, 2 * opts.topK));
  if (!(Number.isInteger(depth) && depth >= 1)) throw new UserError(`hybrid: depth=${o.depth} must be a positive integer`);
  return { components, method, k, weights, depth: Math.max(depth, opts.topK) };
}

/** A hybrid retriever; `defaults` fixes the method (and cc weight) unless options override them. */
export function hybridRetriever(name: string, description: string, defaults: { method?: "rrf" | "cc"; weight?: string } = {}): Retriever {
  return definePlugin({
    name,
    description,
    async search(ctx, query, opts) {
      const cfg = hybridConfig(opts, defaults);
      const rr = rerankOptions(opts.options ?? {});
      const lists: RankedList[] = [];
      for (const c of cfg.components) {
        const hits = await ctx.retriever(c).search(ctx, query, { ...opts, topK: cfg.depth });
        lists.push({ name: c, hits });
      }
      let fused: Hit[] = cfg.method === "rrf" ? rrf(lists, cfg.k, cfg.weights) : convex(lists, cfg.weights);
      if (rr) {
        const top = Math.max(opts.topK, Number(opts.options?.rerank_top ?? 50));
        fused = await rerank(query, fused.slice(0, top), rr);
      }
      return fused.slice(0, opts.topK);
    },
  });
}

/** `hybrid-rrf` and `hybrid-cc`: the two methods under their own names, for side-by-side evaluation. */
export const hybridRrf = hybridRetriever("hybrid-rrf", "hybrid with reciprocal rank fusion (k=60)", { method: "rrf" });
export const hybridCc = hybridRetriever("hybrid-cc", "hybrid with a convex combination of min-max-normalised scores", { method: "cc", weight: CC_DEFAULT_WEIGHT });

export default hybridRetriever("hybrid", "fuses retrievers (RRF or convex combination of min-max scores), optional HTTP rerank");
