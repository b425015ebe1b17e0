import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkpointDir, type LoadedModel, loadModel } from "../answer/load.ts";
import { UserError } from "../errors.ts";
import { progress } from "../log.ts";
import { type Embedder, type EmbedderFactory, type EmbedderIdentity, type EmbedderSpec, normalize } from "./embedder.ts";

/**
 * `model`: a nanorag checkpoint's own view of a text, the mean of its final (normalised) hidden
 * states over the text's tokens (the engine's nr_embed), L2-normalised; dimension n_embd. Texts are
 * tokenised with the checkpoint's tokenizer behind a BOS (read, as in training, but left out of the
 * mean) and cut at the trained context length. The identity names the checkpoint folder and the hash
 * of its weights (from its config.json), so a KB built with one checkpoint refuses another, including
 * a retrained one at the same path.
 */
const KEYS = ["checkpoint", "tokenizer", "batch", "dim"];
const DEFAULT_BATCH = 16;

/** The checkpoint folder a `checkpoint=` option names (a checkpoint, or a run folder holding one). */
function folder(path: string | undefined): string {
  if (!path) throw new UserError(`model embedder: option checkpoint is required (e.g. --embedder "model:checkpoint=runs/main/rag")`);
  try {
    return resolve(checkpointDir(path));
  } catch (e) {
    throw new UserError(`model embedder: ${(e as Error).message.replace(/^--model /, "checkpoint=")}`);
  }
}

/** The hash of the checkpoint's weights file, as its config.json records it (loading verifies the file). */
function weightsHash(dir: string): string {
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { files?: Record<string, { hash?: string }> };
  return String(cfg.files?.["model.safetensors"]?.hash ?? "");
}

class ModelEmbedder implements Embedder {
  readonly identity: EmbedderIdentity;

  constructor(
    private readonly loaded: LoadedModel,
    private readonly batch: number,
  ) {
    this.identity = { name: "model", dim: loaded.model.config.n_embd, settings: { checkpoint: loaded.dir, weights: weightsHash(loaded.dir) } };
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    return pooledEmbeddings(this.loaded, texts, this.batch).vectors;
  }
}

/**
 * Each text's pooled, L2-normalised embedding, and the tokens read (BOS not counted). Rows of similar
 * length share a batch, so little of it is padding. Also behind the answering core's embed()
 * (serve's /v1/embeddings).
 */
export function pooledEmbeddings(loaded: LoadedModel, texts: string[], batch = DEFAULT_BATCH): { vectors: Float32Array[]; tokens: number } {
  const { model, tokenizer, seqLen } = loaded;
  const bos = tokenizer.specialId("<|bos|>");
  const seqs = texts.map((t) => [bos, ...tokenizer.encode(t)].slice(0, Math.max(2, seqLen)));
  const order = seqs.map((_, i) => i).sort((a, b) => seqs[a]!.length - seqs[b]!.length);
  const out: Float32Array[] = new Array(texts.length);
  const C = model.config.n_embd;
  const bar = texts.length > batch ? progress("model embedder", texts.length, "texts") : null;
  for (let s = 0; s < order.length; s += batch) {
    const rows = order.slice(s, s + batch);
    const T = seqs[rows[rows.length - 1]!]!.length;
    // Padding follows each text and the model is causal, so it changes nothing the mask keeps.
    const tokens = new Int32Array(rows.length * T);
    const mask = new Float32Array(rows.length * T);
    rows.forEach((i, b) => {
      const ids = seqs[i]!;
      tokens.set(ids, b * T);
      mask.fill(1, b * T + (ids.length > 1 ? 1 : 0), b * T + ids.length);
    });
    const pooled = model.embed(tokens, rows.length, T, mask);
    rows.forEach((i, b) => {
      const v = pooled.slice(b * C, (b + 1) * C);
      normalize(v);
      out[i] = v;
    });
    bar?.tick(Math.min(order.length, s + batch));
  }
  return { vectors: out, tokens: seqs.reduce((n, ids) => n + ids.length - 1, 0) };
}

function open(checkpoint: string, options: Record<string, string | number | undefined>): ModelEmbedder {
  for (const k of Object.keys(options)) if (!KEYS.includes(k)) throw new UserError(`model embedder: unknown option "${k}" (valid: ${KEYS.join(", ")})`);
  const batch = options.batch === undefined ? DEFAULT_BATCH : Number(options.batch);
  if (!Number.isInteger(batch) || batch < 1) throw new UserError(`model embedder: option batch=${options.batch} must be an integer >= 1`);
  const embedder = new ModelEmbedder(loadModel(checkpoint, options.tokenizer === undefined ? undefined : String(options.tokenizer)), batch);
  if (options.dim !== undefined && Number(options.dim) !== embedder.identity.dim) {
    throw new UserError(`model embedder: dim=${options.dim}, but ${checkpoint} has n_embd ${embedder.identity.dim}`);
  }
  return embedder;
}

export const modelFactory: EmbedderFactory = {
  name: "model",
  description: "pooled final hidden states of a nanorag checkpoint (checkpoint, tokenizer, batch)",
  options: KEYS,
  identityKeys: ["checkpoint", "weights", "dim"],
  canonical(spec: EmbedderSpec): EmbedderSpec {
    if (spec.options.checkpoint === undefined) return spec;
    const dir = folder(spec.options.checkpoint);
    return { name: spec.name, options: { ...spec.options, checkpoint: dir, weights: weightsHash(dir) } };
  },
  async create(spec) {
    return open(folder(spec.options.checkpoint), spec.options);
  },
  async load(identity: EmbedderIdentity) {
    const dir = folder(String(identity.settings.checkpoint));
    const embedder = open(dir, {});
    if (embedder.identity.settings.weights !== identity.settings.weights) {
      throw new UserError(`model embedder: the checkpoint ${dir} is not the one this KB was embedded with (its weights changed); re-embed with \`nanorag kb reindex --embedder model:checkpoint=${dir}\``);
    }
    return embedder;
  },
};
