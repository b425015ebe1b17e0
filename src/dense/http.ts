import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { type Embedder, type EmbedderFactory, type EmbedderIdentity, type EmbedderSpec, normalize } from "./embedder.ts";

/**
 * `http`: any OpenAI-compatible embeddings endpoint (`POST {url}/embeddings` with
 * `{model, input: [...]}`, answering `{data: [{index, embedding}]}`). Batched, with a per-request
 * timeout and retries (exponential backoff) on network errors, 429 and 5xx. The API key is read from
 * the environment variable named by `api_key_env` (never stored in the KB).
 */
interface HttpSettings {
  url: string;
  model: string;
  api_key_env: string;
  batch: number;
  timeout_ms: number;
  retries: number;
  dim?: number;
}

const KEYS = ["url", "model", "api_key_env", "batch", "timeout_ms", "retries", "dim"];

export function endpoint(url: string): string {
  const u = url.replace(/\/+$/, "");
  return u.endsWith("/embeddings") ? u : `${u}/embeddings`;
}

function settingsFromSpec(spec: EmbedderSpec): HttpSettings {
  for (const k of Object.keys(spec.options)) {
    if (!KEYS.includes(k)) throw new UserError(`http embedder: unknown option "${k}" (valid: ${KEYS.join(", ")})`);
  }
  const o = spec.options;
  const url = o.url ?? process.env.NANORAG_EMBED_URL;
  if (!url) throw new UserError(`http embedder: option url is required (e.g. --embedder "http:url=http://localhost:8080/v1,model=bge-small-en")`);
  if (!/^https?:\/\//.test(url)) throw new UserError(`http embedder: url "${url}" must start with http:// or https://`);
  const num = (k: string, d: number, min: number) => {
    if (o[k] === undefined) return d;
    const v = Number(o[k]);
    if (!Number.isInteger(v) || v < min) throw new UserError(`http embedder: option ${k}=${o[k]} must be an integer >= ${min}`);
    return v;
  };
  return {
    url,
    model: o.model ?? "default",
    api_key_env: o.api_key_env ?? "NANORAG_EMBED_API_KEY",
    batch: num("batch", 64, 1),
    timeout_ms: num("timeout_ms", 30_000, 1),
    retries: num("retries", 3, 0),
    dim: o.dim !== undefined ? num("dim", 0, 1) : undefined,
  };
}

export class HttpEmbedder implements Embedder {
  identity: EmbedderIdentity;
  constructor(readonly s: HttpSettings) {
    this.identity = { name: "http", dim: s.dim ?? 0, settings: { model: s.model, url: s.url, api_key_env: s.api_key_env } };
  }

  private async request(input: string[]): Promise<Float32Array[]> {
    const url = endpoint(this.s.url);
    const headers: Record<string, string> = { "content-type": "application/json" };
    const key = process.env[this.s.api_key_env];
    if (key) headers.authorization = `Bearer ${key}`;
    let lastError = "";
    for (let attempt = 0; attempt <= this.s.retries; attempt++) {
      if (attempt > 0) await Bun.sleep(Math.min(200 * 2 ** (attempt - 1), 5000));
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers,
          body: JSON.stringify({ model: this.s.model, input }),
          signal: AbortSignal.timeout(this.s.timeout_ms),
        });
      } catch (err) {
        const e = err as Error;
        lastError = e.name === "TimeoutError" ? `no answer within ${this.s.timeout_ms} ms` : e.message;
        log.debug(`embeddings request to ${url} failed (attempt ${attempt + 1}): ${lastError}`);
        continue;
      }
      if (res.status === 429 || res.status >= 500) {
        lastError = `HTTP ${res.status} ${(await res.text().catch(() => "")).slice(0, 200)}`;
        continue;
      }
      if (!res.ok) {
        const body = (await res.text().catch(() => "")).slice(0, 300);
        throw new UserError(`http embedder: ${url} answered HTTP ${res.status}${res.status === 401 || res.status === 403 ? ` (is ${this.s.api_key_env} set?)` : ""}: ${body}`);
      }
      let json: { data?: { index?: number; embedding?: number[] }[] };
      try {
        json = (await res.json()) as typeof json;
      } catch {
        throw new UserError(`http embedder: ${url} did not answer JSON`);
      }
      const data = json.data;
      if (!Array.isArray(data) || data.length !== input.length) {
        throw new UserError(`http embedder: ${url} answered ${Array.isArray(data) ? data.length : "no"} embeddings for ${input.length} inputs (expected {data: [{index, embedding}]})`);
      }
      const out: Float32Array[] = new Array(input.length);
      data.forEach((d, pos) => {
        const i = typeof d.index === "number" ? d.index : pos;
        if (!Array.isArray(d.embedding) || i < 0 || i >= input.length) throw new UserError(`http embedder: ${url} answered a malformed embedding at position ${pos}`);
        const v = Float32Array.from(d.embedding);
        normalize(v);
        out[i] = v;
      });
      return out;
    }
    throw new UserError(`http embedder: cannot reach ${url} after ${this.s.retries + 1} attempt(s): ${lastError}. Nothing was written.`);
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.s.batch) {
      const vs = await this.request(texts.slice(i, i + this.s.batch).map((t) => (t.trim() === "" ? " " : t)));
      for (const v of vs) {
        const dim = this.identity.dim || v.length;
        if (v.length !== dim) throw new UserError(`http embedder: ${this.s.model} answered a ${v.length}-d embedding, expected ${dim}`);
        this.identity.dim = dim;
        out.push(v);
      }
    }
    return out;
  }
}

export const httpFactory: EmbedderFactory = {
  name: "http",
  description: "an OpenAI-compatible /v1/embeddings endpoint (url, model, api_key_env, batch, timeout_ms, retries)",
  options: KEYS,
  identityKeys: ["model", "dim"],
  async create(spec) {
    return new HttpEmbedder(settingsFromSpec(spec));
  },
  async load(identity: EmbedderIdentity) {
    const s = identity.settings;
    // The URL may be overridden at query time (the server moved) without changing the identity.
    return new HttpEmbedder({
      url: process.env.NANORAG_EMBED_URL ?? String(s.url),
      model: String(s.model),
      api_key_env: String(s.api_key_env ?? "NANORAG_EMBED_API_KEY"),
      batch: 64,
      timeout_ms: 30_000,
      retries: 3,
      dim: identity.dim,
    });
  },
};
