/**
 * A model, its tokenizer and a knowledge base, loaded once, answering questions one at a time. The
 * contract `chat`, `ask` and `serve` build on (docs/answering.md): calls may overlap (they queue;
 * one inference state is reused), each streams its text through `onToken` and stops at its
 * AbortSignal between tokens, so an abandoned request frees the model for the next one.
 */
import { UserError } from "../errors.ts";
import { Sampler } from "../engine/index.ts";
import { Kb } from "../kb/kb.ts";
import type { RagDoc } from "../rag/template.ts";
import { getRetriever, loadPlugins } from "../retrieval/host.ts";
import { type Answer, type AnswerMode, answerQuestion, type AnswerSettings } from "./answer.ts";
import type { Source } from "./citations.ts";
import { type LoadedModel, loadModel } from "./load.ts";
import { generationState } from "../train/generate.ts";
import { pooledEmbeddings } from "../dense/model.ts";

export interface OpenOptions {
  /** checkpoint or run folder */
  model: string;
  /** knowledge-base file; without it only closed-book answers and embeddings */
  kb?: string;
  /** default: the tokenizer the checkpoint names */
  tokenizer?: string;
  plugins?: string;
}

export interface RetrieveOptions {
  /** default: the retriever the model was trained with */
  retriever?: string;
  topK?: number;
  /** exact-match metadata filter, e.g. {source: "web"} */
  filter?: Record<string, string>;
}

export interface AskOptions extends RetrieveOptions {
  /** default "rag" ("none" without a KB) */
  mode?: AnswerMode;
  maxHops?: number;
  maxNewTokens?: number;
  /** 0 (default): greedy */
  temperature?: number;
  /** sampling seed (temperature > 0) */
  seed?: number;
  onToken?: (delta: string) => void;
  onSources?: (sources: Source[]) => void;
  signal?: AbortSignal;
}

export interface Embeddings {
  /** one unit-length vector per text (mean of the final hidden states over its tokens) */
  vectors: Float32Array[];
  /** tokens read, over all texts */
  tokens: number;
}

function positiveInt(name: string, v: number | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < min) throw new UserError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

export class Answerer {
  #tail: Promise<unknown> = Promise.resolve();
  #state: ReturnType<LoadedModel["model"]["newState"]> | null = null;

  private constructor(
    readonly loaded: LoadedModel,
    readonly kb: Kb | null,
  ) {}

  static async open(o: OpenOptions): Promise<Answerer> {
    await loadPlugins(o.plugins);
    const kb = o.kb === undefined ? null : await Kb.open(o.kb);
    try {
      return new Answerer(loadModel(o.model, o.tokenizer), kb);
    } catch (e) {
      kb?.close();
      throw e;
    }
  }

  /** Settings from the model's training config; per-call options override them. */
  get settings(): AnswerSettings & { retriever: string } {
    return { ...this.loaded.settings, retriever: this.loaded.retriever };
  }

  /** Refuses an unknown retriever or one whose index the KB lacks, before any question is asked. */
  checkRetriever(name = this.loaded.retriever): void {
    const r = getRetriever(name);
    if (this.kb && r.index && !this.kb.retrievers().includes(name)) {
      throw new UserError(`${this.kb.path}: this KB keeps no "${name}" index (it has: ${this.kb.retrievers().join(", ") || "none"}); pick another --retriever`);
    }
  }

  /** The top documents for a query (each document once, at its best chunk). */
  async retrieve(query: string, o: RetrieveOptions = {}): Promise<RagDoc[]> {
    if (!this.kb) throw new UserError("no knowledge base is open (pass --kb)");
    const topK = positiveInt("topK", o.topK, this.loaded.settings.topK);
    const hits = await this.kb.search(o.retriever ?? this.loaded.retriever, query, { topK, group: "doc", filter: o.filter });
    return hits.map((h) => ({ id: h.docId, title: h.title, text: h.text }));
  }

  async answer(question: string, o: AskOptions = {}): Promise<Answer> {
    const s = this.loaded.settings;
    const mode = o.mode ?? (this.kb ? "rag" : "none");
    if (mode !== "none" && !this.kb) throw new UserError(`mode ${mode} needs a knowledge base (pass --kb)`);
    if (!question.trim()) throw new UserError("the question is empty");
    const maxNewTokens = positiveInt("maxNewTokens", o.maxNewTokens, s.maxNewTokens);
    const most = Math.floor(s.maxLen / 2);
    if (maxNewTokens > most) throw new UserError(`maxNewTokens must be at most ${most} for this model, got ${maxNewTokens}`);
    const temperature = o.temperature ?? 0;
    if (!(temperature >= 0 && temperature <= 10)) throw new UserError(`temperature must be in [0, 10], got ${temperature}`);
    const settings = { ...s, topK: positiveInt("topK", o.topK, s.topK), maxHops: positiveInt("maxHops", o.maxHops, s.maxHops, 0), maxNewTokens };
    return this.#exclusive(async () => {
      if (o.signal?.aborted) throw o.signal.reason ?? new DOMException("answer aborted", "AbortError");
      this.#state ??= generationState(this.loaded.model, s.maxLen);
      return answerQuestion(this.loaded.model, this.loaded.tokenizer, question, {
        ...settings,
        mode,
        retrieve: this.kb ? (q, k) => this.retrieve(q, { retriever: o.retriever, topK: k, filter: o.filter }) : undefined,
        temperature,
        sampler: temperature > 0 ? new Sampler(o.seed ?? 0) : undefined,
        state: this.#state,
        onToken: o.onToken,
        onSources: o.onSources,
        signal: o.signal,
      });
    });
  }

  /** Text embeddings from the model's pooled final hidden states (texts cut at the trained length). */
  embed(texts: string[]): Promise<Embeddings> {
    return this.#exclusive(async () => pooledEmbeddings(this.loaded, texts));
  }

  close(): void {
    this.#state?.free();
    this.#state = null;
    this.loaded.model.free();
    this.kb?.close();
  }

  /** Runs `fn` after every call queued before it: the model and its inference state serve one at a time. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
