import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import type { Hit } from "../plugin-api.ts";

/**
 * A rerank stage behind an HTTP endpoint (a cross-encoder served by Hugging Face TEI, Cohere, Jina,
 * Infinity, vLLM...). Two request shapes:
 *  - `tei` (default): POST {url} `{query, texts, truncate: true}` -> `[{index, score}]`
 *  - `cohere`:        POST {url} `{model, query, documents, top_n}` -> `{results: [{index, relevance_score}]}`
 * Either response shape is accepted from either request. A url without a path ending in /rerank
 * gets `/rerank` appended.
 */
export interface RerankOptions {
  url: string;
  api: "tei" | "cohere";
  model?: string;
  apiKeyEnv: string;
  timeoutMs: number;
  retries: number;
}

export function rerankEndpoint(url: string): string {
  const u = url.replace(/\/+$/, "");
  return /\/rerank$/.test(u) ? u : `${u}/rerank`;
}

/** Reads rerank_* keys of SearchOptions.options; null when no rerank_url is given. */
export function rerankOptions(o: Record<string, string>): RerankOptions | null {
  const url = o.rerank_url;
  if (!url) return null;
  if (!/^https?:\/\//.test(url)) throw new UserError(`rerank_url "${url}" must start with http:// or https://`);
  const api = (o.rerank_api ?? "tei") as string;
  if (api !== "tei" && api !== "cohere") throw new UserError(`rerank_api=${api} is not one of tei, cohere`);
  const timeoutMs = Number(o.rerank_timeout_ms ?? 30_000);
  const retries = Number(o.rerank_retries ?? 2);
  if (!(timeoutMs > 0)) throw new UserError(`rerank_timeout_ms=${o.rerank_timeout_ms} must be a positive number`);
  if (!(retries >= 0)) throw new UserError(`rerank_retries=${o.rerank_retries} must be >= 0`);
  return { url, api, model: o.rerank_model, apiKeyEnv: o.rerank_api_key_env ?? "NANORAG_RERANK_API_KEY", timeoutMs, retries };
}

async function scores(query: string, texts: string[], o: RerankOptions): Promise<number[]> {
  const url = rerankEndpoint(o.url);
  const body =
    o.api === "cohere"
      ? { model: o.model ?? "rerank", query, documents: texts, top_n: texts.length }
      : { query, texts, truncate: true, ...(o.model ? { model: o.model } : {}) };
  const headers: Record<string, string> = { "content-type": "application/json" };
  const key = process.env[o.apiKeyEnv];
  if (key) headers.authorization = `Bearer ${key}`;
  let lastError = "";
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    if (attempt > 0) await Bun.sleep(Math.min(200 * 2 ** (attempt - 1), 5000));
    let res: Response;
    try {
      res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(o.timeoutMs) });
    } catch (err) {
      const e = err as Error;
      lastError = e.name === "TimeoutError" ? `no answer within ${o.timeoutMs} ms` : e.message;
      log.debug(`rerank request to ${url} failed (attempt ${attempt + 1}): ${lastError}`);
      continue;
    }
    if (res.status === 429 || res.status >= 500) {
      lastError = `HTTP ${res.status}`;
      continue;
    }
    if (!res.ok) throw new UserError(`reranker ${url} answered HTTP ${res.status}: ${(await res.text().catch(() => "")).slice(0, 300)}`);
    const json = (await res.json().catch(() => null)) as unknown;
    const items = Array.isArray(json) ? json : (json as { results?: unknown[] } | null)?.results;
    if (!Array.isArray(items)) throw new UserError(`reranker ${url}: expected [{index, score}] or {results: [{index, relevance_score}]}`);
    const out = new Array<number>(texts.length).fill(Number.NaN);
    for (const it of items as { index?: number; score?: number; relevance_score?: number }[]) {
      const s = it.score ?? it.relevance_score;
      if (typeof it.index !== "number" || typeof s !== "number" || it.index < 0 || it.index >= texts.length) {
        throw new UserError(`reranker ${url}: malformed item ${JSON.stringify(it).slice(0, 100)}`);
      }
      out[it.index] = s;
    }
    if (out.some(Number.isNaN)) throw new UserError(`reranker ${url} scored ${items.length} of ${texts.length} texts`);
    return out;
  }
  throw new UserError(`reranker: cannot reach ${url} after ${o.retries + 1} attempt(s): ${lastError}`);
}

/**
 * Re-orders `hits` by the endpoint's relevance scores (ties: earlier fused rank first). Each hit's
 * explain gains `fusion` (its rank and score before reranking) and `rerank` (its new rank and score).
 */
export async function rerank(query: string, hits: Hit[], o: RerankOptions): Promise<Hit[]> {
  if (hits.length === 0) return [];
  const s = await scores(
    query,
    hits.map((h) => (h.title && !h.text.startsWith(h.title) ? `${h.title}\n${h.text}` : h.text)),
    o,
  );
  const order = hits.map((h, i) => ({ h, i, s: s[i]! })).sort((a, b) => b.s - a.s || a.i - b.i);
  return order.map(({ h, i, s: score }, r) => ({
    ...h,
    score,
    explain: { ...(h.explain ?? {}), fusion: { rank: i + 1, score: h.score }, rerank: { rank: r + 1, score } },
  }));
}
