import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { ANALYZER, termCounts } from "./analyzer.ts";
import { type Csr, randomizedSvd, rng } from "./linalg.ts";
import { type DenseEnv, type Embedder, type EmbedderFactory, type EmbedderIdentity, type EmbedderSpec, normalize } from "./embedder.ts";

/**
 * `lsa`: latent semantic analysis. TF-IDF (1 + ln tf, smoothed idf, L2 rows) over the analyzer's
 * terms, then a randomized truncated SVD to `dim` dimensions. A text's vector is its TF-IDF row times
 * the stored projection V (terms x dim), L2-normalised; that is U*Sigma for the fitted chunks and the
 * standard fold-in for new ones, so added documents and queries land in the same space.
 * The projection lives in the KB table `dense_lsa_terms` (term, idf, vec float32[dim]).
 */
const TABLE = "dense_lsa_terms";

interface LsaSettings {
  dim: number;
  min_df: number;
  max_terms: number;
  fit_sample: number;
  seed: number;
  power_iters: number;
  oversample: number;
}

const DEFAULTS: LsaSettings = { dim: 256, min_df: 2, max_terms: 100_000, fit_sample: 20_000, seed: 42, power_iters: 2, oversample: 10 };

function intOption(spec: EmbedderSpec, key: keyof LsaSettings, min: number): number {
  const raw = spec.options[key];
  if (raw === undefined) return DEFAULTS[key];
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new UserError(`lsa embedder: option ${key}=${raw} must be an integer >= ${min}`);
  return v;
}

export class LsaModel implements Embedder {
  readonly identity: EmbedderIdentity;
  constructor(
    readonly settings: LsaSettings,
    readonly terms: Map<string, number>,
    readonly idf: Float64Array,
    /** terms x dim, row-major. */
    readonly proj: Float32Array,
  ) {
    this.identity = {
      name: "lsa",
      dim: settings.dim,
      settings: {
        analyzer: ANALYZER,
        weighting: "logtf-smoothidf-l2",
        min_df: settings.min_df,
        max_terms: settings.max_terms,
        fit_sample: settings.fit_sample,
        seed: settings.seed,
        power_iters: settings.power_iters,
        oversample: settings.oversample,
      },
    };
  }

  embedOne(text: string): Float32Array {
    const d = this.settings.dim;
    const out = new Float64Array(d);
    const counts = termCounts(text);
    let norm = 0;
    const ws: [number, number][] = [];
    for (const [t, tf] of counts) {
      const j = this.terms.get(t);
      if (j === undefined) continue;
      const w = (1 + Math.log(tf)) * this.idf[j]!;
      ws.push([j, w]);
      norm += w * w;
    }
    if (norm > 0) {
      const inv = 1 / Math.sqrt(norm);
      const proj = this.proj;
      for (const [j, w] of ws) {
        const o = j * d;
        const ww = w * inv;
        let c = 0;
        for (; c + 3 < d; c += 4) {
          out[c]! += ww * proj[o + c]!;
          out[c + 1]! += ww * proj[o + c + 1]!;
          out[c + 2]! += ww * proj[o + c + 2]!;
          out[c + 3]! += ww * proj[o + c + 3]!;
        }
        for (; c < d; c++) out[c]! += ww * proj[o + c]!;
      }
    }
    const v = Float32Array.from(out);
    normalize(v);
    return v;
  }

  /** Vectors of the texts the model was fitted on, in order (set by fitLsa; used once by the build). */
  fitted: Float32Array[] | null = null;
  private fittedTexts: string[] | null = null;

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (this.fitted && this.fittedTexts === texts) {
      const out = this.fitted;
      this.fitted = null;
      this.fittedTexts = null;
      return out;
    }
    return texts.map((t) => this.embedOne(t));
  }

  /** Marks `texts` (the exact array fitted on) as answerable from the fit's own rows. */
  adoptFitted(texts: string[]): void {
    this.fittedTexts = this.fitted ? texts : null;
  }
}

export function fitLsa(corpus: string[], settings: LsaSettings): { model: LsaModel; stats: Record<string, number> } {
  const t0 = performance.now();
  let sample = corpus;
  if (corpus.length > settings.fit_sample) {
    const rand = rng(settings.seed);
    const idx = [...corpus.keys()];
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    sample = idx.slice(0, settings.fit_sample).sort((a, b) => a - b).map((i) => corpus[i]!);
  }
  const docs = sample.map(termCounts);
  const df = new Map<string, number>();
  for (const d of docs) for (const t of d.keys()) df.set(t, (df.get(t) ?? 0) + 1);
  const n = docs.length;
  const minDf = n < 50 ? 1 : settings.min_df;
  const vocab = [...df].filter(([, c]) => c >= minDf).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, settings.max_terms);
  vocab.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const terms = new Map<string, number>();
  const idf = new Float64Array(vocab.length);
  vocab.forEach(([t, c], j) => {
    terms.set(t, j);
    idf[j] = Math.log((1 + n) / (1 + c)) + 1;
  });
  // CSR of L2-normalised TF-IDF rows.
  const ptr = new Int32Array(n + 1);
  const idxs: number[] = [];
  const vals: number[] = [];
  docs.forEach((d, i) => {
    const row: [number, number][] = [];
    let s = 0;
    for (const [t, tf] of d) {
      const j = terms.get(t);
      if (j === undefined) continue;
      const w = (1 + Math.log(tf)) * idf[j]!;
      row.push([j, w]);
      s += w * w;
    }
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (const [j, w] of row) {
      idxs.push(j);
      vals.push(w * inv);
    }
    ptr[i + 1] = idxs.length;
  });
  const x: Csr = { rows: n, cols: vocab.length, ptr, idx: Int32Array.from(idxs), vals: Float64Array.from(vals) };
  const tPrep = performance.now();
  const svd = randomizedSvd(x, settings.dim, { oversample: settings.oversample, powerIters: settings.power_iters, seed: settings.seed });
  const d = settings.dim;
  const proj = new Float32Array(vocab.length * d);
  for (let j = 0; j < vocab.length; j++) for (let t = 0; t < svd.k; t++) proj[j * d + t] = svd.v[j * svd.k + t]!;
  const t1 = performance.now();
  const stats = {
    fitted_on: n,
    corpus: corpus.length,
    vocab: vocab.length,
    nnz: idxs.length,
    rank: svd.k,
    sigma_first: Number((svd.sigma[0] ?? 0).toFixed(4)),
    sigma_last: Number((svd.sigma[svd.k - 1] ?? 0).toFixed(4)),
    fit_ms: Math.round(t1 - t0),
    svd_ms: Math.round(t1 - tPrep),
  };
  log.debug(`lsa fit: ${JSON.stringify(stats)}`);
  const model = new LsaModel(settings, terms, idf, proj);
  // The fitted chunks' vectors straight from the TF-IDF rows (the same sums embedOne would do).
  if (sample === corpus) {
    model.fitted = docs.map((_, i) => {
      const out = new Float64Array(d);
      for (let p = ptr[i]!; p < ptr[i + 1]!; p++) {
        const w = x.vals[p]!;
        const o = x.idx[p]! * d;
        for (let c = 0; c < d; c++) out[c]! += w * proj[o + c]!;
      }
      const v = Float32Array.from(out);
      normalize(v);
      return v;
    });
  }
  return { model, stats };
}

function settingsFromSpec(spec: EmbedderSpec): LsaSettings {
  for (const k of Object.keys(spec.options)) {
    if (!(k in DEFAULTS)) throw new UserError(`lsa embedder: unknown option "${k}" (valid: ${Object.keys(DEFAULTS).join(", ")})`);
  }
  return {
    dim: intOption(spec, "dim", 1),
    min_df: intOption(spec, "min_df", 1),
    max_terms: intOption(spec, "max_terms", 1),
    fit_sample: intOption(spec, "fit_sample", 1),
    seed: intOption(spec, "seed", 0),
    power_iters: intOption(spec, "power_iters", 0),
    oversample: intOption(spec, "oversample", 0),
  };
}

function persist(env: DenseEnv, model: LsaModel): void {
  env.db.run(`DROP TABLE IF EXISTS ${TABLE}`);
  env.db.run(`CREATE TABLE ${TABLE} (term TEXT PRIMARY KEY, idf REAL NOT NULL, vec BLOB NOT NULL)`);
  const ins = env.db.prepare(`INSERT INTO ${TABLE} (term, idf, vec) VALUES (?, ?, ?)`);
  const d = model.settings.dim;
  for (const [t, j] of model.terms) ins.run(t, model.idf[j]!, model.proj.subarray(j * d, (j + 1) * d));
}

export const lsaFactory: EmbedderFactory = {
  name: "lsa",
  description: "TF-IDF + randomized truncated SVD, fitted on the KB (offline, no model files)",
  options: Object.keys(DEFAULTS),
  identityKeys: ["dim", "min_df", "max_terms", "fit_sample", "seed", "power_iters", "oversample"],
  async create(spec, env, corpus) {
    const { model, stats } = fitLsa(corpus, settingsFromSpec(spec));
    model.adoptFitted(corpus);
    persist(env, model);
    env.setMeta("dense.lsa.fit", JSON.stringify(stats));
    return model;
  },
  async load(identity, env) {
    const d = identity.dim;
    const s = identity.settings;
    const settings: LsaSettings = {
      dim: d,
      min_df: Number(s.min_df),
      max_terms: Number(s.max_terms),
      fit_sample: Number(s.fit_sample),
      seed: Number(s.seed),
      power_iters: Number(s.power_iters),
      oversample: Number(s.oversample),
    };
    if (s.analyzer !== ANALYZER) {
      throw new UserError(`this KB's lsa embedder used analyzer ${s.analyzer}, this nanorag has ${ANALYZER}; run \`nanorag kb reindex\` to refit`);
    }
    const exists = env.db.query("SELECT 1 FROM sqlite_master WHERE name = ?").get(TABLE);
    if (!exists) throw new UserError(`the KB records the lsa embedder but its projection table ${TABLE} is missing; run \`nanorag kb reindex\``);
    const rows = env.db.query(`SELECT term, idf, vec FROM ${TABLE} ORDER BY rowid`).all() as { term: string; idf: number; vec: Uint8Array }[];
    const terms = new Map<string, number>();
    const idf = new Float64Array(rows.length);
    const proj = new Float32Array(rows.length * d);
    rows.forEach((r, j) => {
      terms.set(r.term, j);
      idf[j] = r.idf;
      proj.set(new Float32Array(r.vec.slice().buffer, 0, d), j * d);
    });
    return new LsaModel(settings, terms, idf, proj);
  },
  drop(env) {
    env.db.run(`DROP TABLE IF EXISTS ${TABLE}`);
  },
};
