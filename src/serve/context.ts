/**
 * What every endpoint shares: the loaded Answerer (model, tokenizer, KB), the engine queue, the limits,
 * the API key and the request counters shown by /health.
 */
import type { Answer } from "../answer/answer.ts";
import type { Answerer, AskOptions, Embeddings } from "../answer/answerer.ts";
import type { Kb } from "../kb/kb.ts";
import type { Hit } from "../plugin-api.ts";
import { UserError } from "../errors.ts";
import { EngineQueue } from "./queue.ts";
import type { ChatRequest, Limits, RetrieveRequest } from "./requests.ts";

export interface ServeSettings {
  modelName: string;
  apiKey?: string;
  limits: Limits;
  /** server-wide answer options (retriever, top-k, filter, hops, tokens, mode); a request's own fields win */
  defaults: AskOptions;
}

/** Counts of answered requests by outcome. */
export class Stats {
  private byStatus = new Map<number, number>();
  aborted = 0;
  tokens = 0;

  count(status: number): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
  }

  snapshot() {
    const n = (pred: (s: number) => boolean) => [...this.byStatus].filter(([s]) => pred(s)).reduce((a, [, c]) => a + c, 0);
    return { ok: n((s) => s < 400), client_errors: n((s) => s >= 400 && s < 500 && s !== 429), rejected_busy: n((s) => s === 429), server_errors: n((s) => s >= 500), aborted: this.aborted, tokens_generated: this.tokens };
  }
}

export interface ServeContext extends ServeSettings {
  kb: Kb;
  queue: EngineQueue;
  stats: Stats;
  /** unix seconds */
  startedAt: number;
  answer(r: ChatRequest, hooks: Pick<AskOptions, "onToken" | "onSources" | "signal">): Promise<Answer>;
  embed(texts: string[]): Promise<Embeddings>;
  search(r: RetrieveRequest): Promise<{ retriever: string; hits: Hit[] }>;
}

export function serveContext(answerer: Answerer, s: ServeSettings): ServeContext {
  const kb = answerer.kb;
  if (!kb) throw new UserError("nanorag serve needs a knowledge base (--kb)");
  const retrieverOf = (name: string | undefined) => {
    const r = name ?? s.defaults.retriever ?? answerer.settings.retriever;
    answerer.checkRetriever(r);
    return r;
  };
  retrieverOf(undefined);
  const stats = new Stats();
  return {
    ...s,
    // A request may not ask for more tokens than the model can hold beside its prompt.
    limits: { ...s.limits, maxTokens: Math.min(s.limits.maxTokens, Math.floor(answerer.settings.maxLen / 2)) },
    kb,
    queue: new EngineQueue(s.limits.queueCapacity),
    stats,
    startedAt: Math.floor(Date.now() / 1000),
    async answer(r, hooks) {
      const retriever = retrieverOf(r.retriever);
      try {
        const d = s.defaults;
        const a = await answerer.answer(r.question, {
          retriever,
          topK: r.topK ?? d.topK,
          filter: r.filter ?? d.filter,
          mode: r.refrag === undefined ? d.mode : r.refrag ? "refrag" : "rag",
          maxHops: r.maxHops ?? d.maxHops,
          maxNewTokens: r.maxTokens ?? d.maxNewTokens,
          temperature: r.temperature,
          ...hooks,
        });
        stats.tokens += a.timings.tokens;
        return a;
      } catch (e) {
        if ((e as Error)?.name === "AbortError") stats.aborted++;
        throw e;
      }
    },
    embed: (texts) => answerer.embed(texts),
    async search(r) {
      const retriever = retrieverOf(r.retriever);
      const hits = await kb.search(retriever, r.query, { topK: r.topK ?? s.defaults.topK ?? answerer.settings.topK, filter: r.filter ?? s.defaults.filter });
      return { retriever, hits };
    },
  };
}
