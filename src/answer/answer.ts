/**
 * Answering one question: retrieve (unless closed-book), render, generate with streaming and, in
 * refrag mode, follow-up queries answered by the retriever; then map citations to documents. The
 * one path behind `chat`, `ask`, `serve` (through Answerer) and the quality tables (src/eval/answers.ts).
 */
import type { InferenceState, Model, Sampler } from "../engine/index.ts";
import type { Conversation, RagDoc, RenderedDoc, TemplateTokenizer } from "../rag/template.ts";
import { generate } from "../train/generate.ts";
import { type Citation, mapCitations, type Source, sourcesOf } from "./citations.ts";

/** none: closed-book; rag: documents retrieved for the question; refrag: and the model may ask for more. */
export type AnswerMode = "none" | "rag" | "refrag";
export const ANSWER_MODES: AnswerMode[] = ["none", "rag", "refrag"];

export type Retrieve = (query: string, topK: number) => Promise<RagDoc[]>;

export interface AnswerSettings {
  topK: number;
  maxHops: number;
  topKPerHop: number;
  maxNewTokens: number;
  /** prompt + generation + injected documents */
  maxLen: number;
  readTwice: boolean;
}

export interface AnswerOptions extends AnswerSettings {
  mode: AnswerMode;
  retrieve?: Retrieve;
  /** <= 0 or without a sampler: greedy */
  temperature?: number;
  sampler?: Sampler;
  /** reused across calls (from generationState(model, maxLen)) */
  state?: InferenceState;
  onToken?: (delta: string) => void;
  /** the documents in context: once after rendering, again after each follow-up retrieval */
  onSources?: (sources: Source[]) => void;
  signal?: AbortSignal;
}

export interface AnswerTimings {
  /** tokens of the rendered prompt (question and documents) */
  prompt_tokens: number;
  retrieve_ms: number;
  prefill_ms: number;
  /** from the call to the first generated token (retrieval and prefill included) */
  ttft_ms: number;
  decode_ms: number;
  tokens: number;
  tokens_per_s: number;
}

export interface Answer {
  answer: string;
  citations: Citation[];
  /** cited numbers that name no document in context */
  invalid_citations: number[];
  sources: Source[];
  hops: number;
  queries: string[];
  /** the model closed its turn (not cut by the token limit) */
  finished: boolean;
  timings: AnswerTimings;
  /** every document in context, numbered as the model saw them */
  docs: RenderedDoc[];
  /** their titles and texts as retrieved (what groundedness is checked against) */
  contextText: string;
}

/** Extra documents asked for per follow-up query: some may already be in context and are skipped. */
const HOP_SLACK = 2;

const ms = (x: number) => Math.round(x * 100) / 100;

export async function answerQuestion(model: Model, tok: TemplateTokenizer, question: string, o: AnswerOptions): Promise<Answer> {
  const t0 = performance.now();
  const texts = new Map<string, string>();
  const retrieve = async (q: string, k: number) => {
    const docs = await o.retrieve!(q, k);
    for (const d of docs) texts.set(d.id, d.text);
    return docs;
  };
  const conv: Conversation = { messages: [{ role: "user", content: question }] };
  if (o.mode !== "none" && o.retrieve) {
    const docs = await retrieve(question, o.topK);
    conv.messages.push({ role: "docs", docs });
  }
  const retrieveMs = performance.now() - t0;
  const refrag = o.mode === "refrag" && o.retrieve !== undefined;
  const g = await generate(model, tok, conv, {
    maxNewTokens: o.maxNewTokens,
    temperature: o.temperature ?? 0,
    sampler: o.sampler,
    search: refrag ? (q) => retrieve(q, o.topKPerHop + HOP_SLACK) : undefined,
    maxHops: refrag ? o.maxHops : 0,
    topKPerHop: o.topKPerHop,
    maxLen: o.maxLen,
    readTwice: o.readTwice,
    state: o.state,
    onText: o.onToken,
    onDocs: o.onSources && ((docs) => o.onSources!(sourcesOf(docs, texts))),
    signal: o.signal,
  });
  const { citations, invalid } = mapCitations(g.answer, g.docs);
  const t = g.timings;
  return {
    answer: g.answer,
    citations,
    invalid_citations: invalid,
    sources: sourcesOf(g.docs, texts),
    hops: g.hops,
    queries: g.queries,
    finished: g.finished,
    docs: g.docs,
    contextText: g.docs.map((d) => `${d.title}\n${texts.get(d.id) ?? ""}`).join("\n\n"),
    timings: {
      prompt_tokens: g.promptLen,
      retrieve_ms: ms(retrieveMs + t.searchMs),
      prefill_ms: ms(t.prefillMs),
      ttft_ms: ms(t.tokens ? retrieveMs + t.firstTokenMs : 0),
      decode_ms: ms(t.decodeMs),
      tokens: t.tokens,
      tokens_per_s: t.decodeMs > 0 ? Math.round((t.tokens / t.decodeMs) * 1e4) / 10 : 0,
    },
  };
}
