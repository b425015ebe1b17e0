/**
 * The public API of retriever plugins: what a plugin file imports from the module "nanorag".
 * Built-in plugins (plugins/*.ts) and users' drop-in files use exactly this surface.
 * Keep it small and typed; plugins/nanorag.d.ts is generated from it (src/scripts/plugin-types.ts).
 */
import type { Database } from "bun:sqlite";

export * from "./retrieval/analyzer.ts";
export { InvertedIndex, scoreTerms, topK, type IndexStats, type Postings, type QueryTerm, type TermIdSource } from "./retrieval/inverted.ts";
export { WordTrie } from "./retrieval/wordtrie.ts";

/** One ranked search result. Best first; ties broken deterministically (by chunkId ascending). */
export interface Hit {
  chunkId: number;
  docId: string;
  score: number;
  title: string;
  text: string;
  /** For fused results: each component retriever's 1-based rank and raw score. */
  explain?: Record<string, { rank: number; score: number }>;
}

/** A chunk as handed to a plugin's index hook. */
export interface Chunk {
  id: number;
  docId: string;
  ordinal: number;
  title: string;
  text: string;
}

export interface SearchOptions {
  topK: number;
  /** Exact-match metadata filter: `source` or any top-level key of a document's metadata JSON. */
  filter?: Record<string, string>;
  /** Free-form plugin options from `--opt key=value` (e.g. hybrid components, fusion weights). */
  options?: Record<string, string>;
}

/** What the host gives every hook: the open KB and helpers that keep plugins consistent. */
export interface PluginContext {
  readonly db: Database;
  readonly kbPath: string;
  /** The KB's `meta` table, as strings. Plugins store their settings under keys prefixed by their name. */
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  /** Chunk ids whose document matches every key of the filter, or null when there is no filter. */
  filterChunkIds(filter: Record<string, string> | undefined): Set<number> | null;
  /** Loads chunk rows (with their document title) by id, in the order given. */
  chunksById(ids: number[]): Chunk[];
  /** Another registered retriever, for plugins that compose (hybrid). */
  retriever(name: string): Retriever;
}

export interface Retriever {
  /** Unique name used by `--retriever NAME`. */
  name: string;
  description?: string;
  /** Called inside the KB's write transaction with newly added chunks. Throwing rolls the write back. */
  index?(ctx: PluginContext, chunks: Chunk[]): void | Promise<void>;
  /** Called inside the write transaction before chunks are deleted (their rows are still readable). */
  remove?(ctx: PluginContext, chunkIds: number[]): void | Promise<void>;
  /** Drops and rebuilds the plugin's own tables from every chunk (`kb reindex`). */
  reindex?(ctx: PluginContext, chunks: Chunk[]): void | Promise<void>;
  /** Consistency check for `kb doctor`: return problems found (empty when healthy). */
  doctor?(ctx: PluginContext): string[] | Promise<string[]>;
  search(ctx: PluginContext, query: string, opts: SearchOptions): Hit[] | Promise<Hit[]>;
}

/** Identity helper that gives plugin authors type checking. */
export function definePlugin(plugin: Retriever): Retriever {
  return plugin;
}

/**
 * Drops zero and NaN scores (a zero score means "no evidence") and sorts best first, breaking ties
 * by chunk id so results never depend on iteration order.
 */
export function rankHits(hits: Hit[]): Hit[] {
  return hits.filter((h) => h.score !== 0 && !Number.isNaN(h.score)).sort((a, b) => b.score - a.score || a.chunkId - b.chunkId);
}
