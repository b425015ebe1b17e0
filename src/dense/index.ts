import type { Database } from "bun:sqlite";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import type { Chunk, Hit, PluginContext, SearchOptions } from "../plugin-api.ts";
import { rankHits } from "../plugin-api.ts";
import {
  checkSpecMatches,
  type DenseEnv,
  type Embedder,
  type EmbedderFactory,
  type EmbedderIdentity,
  type EmbedderSpec,
  formatIdentity,
  parseSpec,
} from "./embedder.ts";
import { httpFactory } from "./http.ts";
import { lsaFactory } from "./lsa.ts";
import { modelFactory } from "./model.ts";
import { BIT_TABLE, VectorStore } from "./store.ts";

export { parseSpec, formatIdentity };
export type { EmbedderIdentity, EmbedderSpec };

/** Embedders by name. */
export const EMBEDDERS: Record<string, EmbedderFactory> = { lsa: lsaFactory, http: httpFactory, model: modelFactory };

export function factory(name: string): EmbedderFactory {
  const f = EMBEDDERS[name];
  if (f) return f;
  throw new UserError(`unknown embedder "${name}" (valid: ${Object.keys(EMBEDDERS).join(", ")})`);
}

export const META_IDENTITY = "dense.embedder";
const META_FIT_ID = "dense.fit_id";
const META_FOLDED = "dense.folded";
const EMPTY_TABLE = "dense_empty";

let requested: EmbedderSpec | null = null;

/**
 * The embedder the current command asked for (`--embedder`); null clears it. Without one, the
 * environment variable NANORAG_EMBEDDER is used, else the KB's stored embedder, else `lsa`.
 */
export function requestEmbedder(spec: string | EmbedderSpec | null): void {
  requested = typeof spec === "string" ? parseSpec(spec) : spec;
  if (requested) factory(requested.name);
}

function requestedSpec(opts?: SearchOptions): EmbedderSpec | null {
  const o = opts?.options?.embedder;
  if (o) return parseSpec(o);
  if (requested) return requested;
  const env = process.env.NANORAG_EMBEDDER;
  return env ? parseSpec(env) : null;
}

export function storedIdentity(ctx: DenseEnv): EmbedderIdentity | null {
  const raw = ctx.getMeta(META_IDENTITY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as EmbedderIdentity;
  } catch {
    throw new UserError(`the KB's meta ${META_IDENTITY} is not valid JSON; run \`nanorag kb reindex\``);
  }
}

/** The text an embedder sees for a chunk: its document title, then the chunk text. */
export function chunkText(c: Chunk): string {
  return c.title && !c.text.startsWith(c.title) ? `${c.title}\n${c.text}` : c.text;
}

const cache = new WeakMap<Database, { key: string; embedder: Embedder }>();

async function loadEmbedder(ctx: DenseEnv, stored: EmbedderIdentity, spec: EmbedderSpec | null): Promise<Embedder> {
  const f = factory(stored.name);
  // An http embedder may be pointed at a new URL (or given longer timeouts) at query time.
  if (spec && f === httpFactory && Object.keys(spec.options).some((k) => k !== "model" && k !== "dim")) {
    const options: Record<string, string> = { model: String(stored.settings.model), api_key_env: String(stored.settings.api_key_env), dim: String(stored.dim), ...spec.options };
    return f.create({ name: "http", options }, ctx, []);
  }
  const key = `${JSON.stringify(stored)}|${ctx.getMeta(META_FIT_ID) ?? ""}`;
  const hit = cache.get(ctx.db);
  if (hit && hit.key === key) return hit.embedder;
  const embedder = await f.load(stored, ctx);
  cache.set(ctx.db, { key, embedder });
  return embedder;
}

function isZero(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false;
  return true;
}

function ensureEmptyTable(db: Database): void {
  db.run(`CREATE TABLE IF NOT EXISTS ${EMPTY_TABLE} (id INTEGER PRIMARY KEY)`);
}

/** Stores vectors; chunks with nothing the embedder knows (all-zero vectors) are listed apart. */
function write(db: Database, store: VectorStore, chunks: Chunk[], vectors: Float32Array[]): void {
  ensureEmptyTable(db);
  const ids: number[] = [];
  const vs: Float32Array[] = [];
  const empty = db.prepare(`INSERT OR REPLACE INTO ${EMPTY_TABLE} (id) VALUES (?)`);
  chunks.forEach((c, i) => {
    const v = vectors[i]!;
    if (v.length !== store.dim) throw new UserError(`embedder returned a ${v.length}-d vector for chunk ${c.id}; the KB stores ${store.dim}-d vectors`);
    if (isZero(v)) empty.run(c.id);
    else {
      ids.push(c.id);
      vs.push(v);
    }
  });
  store.insert(ids, vs);
}

async function build(ctx: PluginContext, chunks: Chunk[], spec: EmbedderSpec): Promise<void> {
  const f = factory(spec.name);
  const texts = chunks.map(chunkText);
  const t0 = performance.now();
  const embedder = await f.create(spec, ctx, texts);
  // Embed everything before touching the vector tables: a failing endpoint leaves them untouched
  // (and the host's transaction rolls back whatever else this write did).
  const vectors = await embedder.embed(texts, "document");
  const identity = embedder.identity;
  if (!identity.dim) throw new UserError(`embedder ${spec.name} did not report a dimension`);
  const store = new VectorStore(ctx.db, identity.dim);
  store.create();
  write(ctx.db, store, chunks, vectors);
  ctx.setMeta(META_IDENTITY, JSON.stringify(identity));
  ctx.setMeta(META_FIT_ID, `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
  ctx.setMeta(META_FOLDED, "0");
  log.info(`dense: embedded ${chunks.length} chunks with ${formatIdentity(identity)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

export async function indexChunks(ctx: PluginContext, chunks: Chunk[]): Promise<void> {
  if (chunks.length === 0) return;
  const stored = storedIdentity(ctx);
  const spec = requestedSpec();
  if (!stored || !VectorStore.exists(ctx.db)) {
    await build(ctx, chunks, spec ?? { name: "lsa", options: {} });
    return;
  }
  if (spec) checkSpecMatches(spec, stored, EMBEDDERS[spec.name], ctx.kbPath);
  const embedder = await loadEmbedder(ctx, stored, spec);
  const vectors = await embedder.embed(chunks.map(chunkText), "document");
  write(ctx.db, new VectorStore(ctx.db, stored.dim), chunks, vectors);
  if (stored.name === "lsa") {
    const folded = Number(ctx.getMeta(META_FOLDED) ?? 0) + chunks.length;
    ctx.setMeta(META_FOLDED, String(folded));
    const fit = JSON.parse(ctx.getMeta("dense.lsa.fit") ?? "{}") as { fitted_on?: number };
    const fitted = Number(fit.fitted_on ?? 0);
    // Worth a refit only when it would see more text than the current fit did.
    if (folded > fitted && fitted < Number(stored.settings.fit_sample ?? Infinity)) log.warn(`dense: ${folded} chunks were folded into an lsa space fitted on ${fitted}; \`nanorag kb reindex\` refits it`);
  }
}

export function removeChunks(ctx: PluginContext, ids: number[]): void {
  const stored = storedIdentity(ctx);
  if (!stored || !VectorStore.exists(ctx.db)) return;
  new VectorStore(ctx.db, stored.dim).delete(ids);
  ensureEmptyTable(ctx.db);
  const del = ctx.db.prepare(`DELETE FROM ${EMPTY_TABLE} WHERE id = ?`);
  for (const id of ids) del.run(id);
}

/** Spec that refits/re-embeds with the stored embedder's settings. */
function specFromIdentity(id: EmbedderIdentity): EmbedderSpec {
  const f = factory(id.name);
  const options: Record<string, string> = {};
  for (const k of f.options) {
    if (k === "dim") options.dim = String(id.dim);
    else if (id.settings[k] !== undefined) options[k] = String(id.settings[k]);
  }
  return { name: id.name, options };
}

/** `kb reindex`: drops the vectors (and the lsa projection) and rebuilds them from every chunk. */
export async function reindexAll(ctx: PluginContext, chunks: Chunk[]): Promise<void> {
  const stored = storedIdentity(ctx);
  const spec = requestedSpec() ?? (stored ? specFromIdentity(stored) : { name: "lsa", options: {} });
  if (stored && EMBEDDERS[stored.name]?.drop) EMBEDDERS[stored.name]!.drop!(ctx);
  VectorStore.drop(ctx.db);
  ctx.db.run(`DROP TABLE IF EXISTS ${EMPTY_TABLE}`);
  cache.delete(ctx.db);
  if (chunks.length) await build(ctx, chunks, spec);
}

/** Quantized-mode candidates per result: recall@10 vs exact 0.954 on NFCorpus lsa vectors (0.916 at 10). */
export const DEFAULT_OVERSAMPLE = 20;

export interface DenseSearchOptions {
  mode: "exact" | "quantized";
  oversample: number;
}

export function searchOptions(opts: SearchOptions): DenseSearchOptions {
  const o = opts.options ?? {};
  const mode = (o.mode ?? "exact") as string;
  if (mode !== "exact" && mode !== "quantized") throw new UserError(`dense: mode=${mode} is not one of exact, quantized`);
  const oversample = Number(o.oversample ?? DEFAULT_OVERSAMPLE);
  if (!(oversample >= 1)) throw new UserError(`dense: oversample=${o.oversample} must be a number >= 1`);
  return { mode, oversample };
}

export async function search(ctx: PluginContext, query: string, opts: SearchOptions): Promise<Hit[]> {
  const stored = storedIdentity(ctx);
  if (!stored || !VectorStore.exists(ctx.db)) {
    throw new UserError(`${ctx.kbPath} has no dense vectors; build it with the dense retriever enabled or run \`nanorag kb reindex --kb ${ctx.kbPath}\``);
  }
  const spec = requestedSpec(opts);
  if (spec) checkSpecMatches(spec, stored, EMBEDDERS[spec.name], ctx.kbPath);
  const { mode, oversample } = searchOptions(opts);
  const embedder = await loadEmbedder(ctx, stored, spec);
  const [qv] = await embedder.embed([query], "query");
  if (!qv || isZero(qv)) return [];
  const allowed = ctx.filterChunkIds(opts.filter);
  const store = new VectorStore(ctx.db, stored.dim);
  const nn = mode === "quantized" ? store.quantized(qv, opts.topK, oversample, allowed) : store.exact(qv, opts.topK, allowed);
  const chunks = ctx.chunksById(nn.map((n) => n.id));
  const byId = new Map(chunks.map((c) => [c.id, c]));
  const hits: Hit[] = [];
  for (const n of nn) {
    const c = byId.get(n.id);
    // A cosine at or below zero (up to rounding) is no evidence of relevance.
    if (c && n.score > 1e-6) hits.push({ chunkId: c.id, docId: c.docId, score: n.score, title: c.title, text: c.text });
  }
  return rankHits(hits);
}

export function doctor(ctx: PluginContext): string[] {
  const problems: string[] = [];
  const chunkIds = (ctx.db.query("SELECT id FROM chunks ORDER BY id").all() as { id: number }[]).map((r) => r.id);
  const stored = storedIdentity(ctx);
  if (!stored) {
    if (chunkIds.length && VectorStore.exists(ctx.db)) problems.push(`dense: vector tables exist but meta ${META_IDENTITY} is missing`);
    else if (chunkIds.length) problems.push("dense: no vectors (run `nanorag kb reindex`)");
    return problems;
  }
  if (!EMBEDDERS[stored.name]) problems.push(`dense: unknown embedder ${stored.name} in meta`);
  if (!VectorStore.exists(ctx.db)) return [...problems, "dense: meta names an embedder but the vector table is missing"];
  const store = new VectorStore(ctx.db, stored.dim);
  ensureEmptyTable(ctx.db);
  const empty = new Set((ctx.db.query(`SELECT id FROM ${EMPTY_TABLE}`).all() as { id: number }[]).map((r) => r.id));
  const vecIds = store.ids();
  const have = new Set([...vecIds, ...empty]);
  const want = new Set(chunkIds);
  const missing = chunkIds.filter((id) => !have.has(id));
  const extra = [...have].filter((id) => !want.has(id));
  if (missing.length) problems.push(`dense: ${missing.length} chunk(s) have no vector (e.g. ${missing.slice(0, 5).join(", ")})`);
  if (extra.length) problems.push(`dense: ${extra.length} vector(s) belong to no chunk (e.g. ${extra.slice(0, 5).join(", ")})`);
  if (store.hasBits && !ctx.db.query("SELECT 1 FROM sqlite_master WHERE name = ?").get(BIT_TABLE)) {
    problems.push(`dense: the quantized table ${BIT_TABLE} is missing (quantized mode falls back to exact); run \`nanorag kb reindex\``);
  } else if (store.hasBits) {
    const nb = store.count(BIT_TABLE);
    if (nb !== vecIds.length) problems.push(`dense: ${nb} quantised vectors for ${vecIds.length} float vectors`);
  }
  if (stored.name === "lsa" && !ctx.db.query("SELECT 1 FROM sqlite_master WHERE name = 'dense_lsa_terms'").get()) {
    problems.push("dense: the lsa projection table dense_lsa_terms is missing");
  }
  return problems;
}

/** For `kb stats`. */
export function stats(ctx: DenseEnv): Record<string, unknown> {
  const stored = storedIdentity(ctx);
  if (!stored || !VectorStore.exists(ctx.db)) return { embedder: null };
  const store = new VectorStore(ctx.db, stored.dim);
  return {
    embedder: formatIdentity(stored),
    vectors: store.count(),
    folded: Number(ctx.getMeta(META_FOLDED) ?? 0),
    fit: stored.name === "lsa" ? JSON.parse(ctx.getMeta("dense.lsa.fit") ?? "null") : undefined,
  };
}
