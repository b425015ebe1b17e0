/**
 * Generation with retrieval in the loop, for evaluation, RL rollouts and answering (src/answer). The
 * prompt is rendered by the chat template (open assistant turn); the model then writes tokens. When it
 * closes a query with <|query_end|>, the runtime retrieves and injects a documents block exactly as the
 * template renders one (numbering continues), and the model goes on. Every sampled token has weight 1,
 * injected ones 0, so the returned ids/weights are a training example for policy-gradient updates.
 */
import type { InferenceState, Model } from "../engine/index.ts";
import { Sampler } from "../engine/index.ts";
import { type Conversation, docsBlockIds, type RagDoc, render, type RenderedDoc, resolveCitations, type TemplateTokenizer } from "../rag/template.ts";
import { TextStream } from "../tokenizer/stream.ts";

export { docsBlockIds };

export interface GenerateOptions {
  maxNewTokens: number;
  /** <= 0: greedy */
  temperature: number;
  sampler?: Sampler;
  /** retrieval for follow-up queries; without it queries get no documents */
  search?: (query: string) => Promise<RagDoc[]>;
  maxHops: number;
  topKPerHop: number;
  /** total sequence limit (prompt + generation + injected documents) */
  maxLen: number;
  readTwice?: boolean;
  /** Reused (reset first) instead of a state allocated per call; from generationState(model, maxLen). */
  state?: InferenceState;
  /** Each new piece of answer text as it is decoded; the pieces add up to `answer`. */
  onText?: (delta: string) => void;
  /** Every document in context, numbered as the model sees them: after rendering, then after each injection. */
  onDocs?: (docs: RenderedDoc[]) => void;
  /** Checked between tokens: once aborted, generation stops and throws the signal's reason. */
  signal?: AbortSignal;
}

export interface GenerationTimings {
  /** the rendered prompt's forward pass */
  prefillMs: number;
  /** from the call to the first sampled token */
  firstTokenMs: number;
  /** after the prefill, without time spent in search */
  decodeMs: number;
  /** follow-up searches */
  searchMs: number;
  /** sampled tokens */
  tokens: number;
}

export interface Generation {
  ids: number[];
  weights: Float32Array;
  /** index in ids where the generation starts */
  promptLen: number;
  /** the assistant's final text (outside queries), decoded */
  answer: string;
  queries: string[];
  /** every document in context, numbered as the model saw them */
  docs: RenderedDoc[];
  hops: number;
  finished: boolean;
  timings: GenerationTimings;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/** Positions an inference state holds beyond maxLen (the token that reaches the limit is still fed). */
const STATE_SLACK = 8;

/** The longest sequence generate() runs: maxLen, capped by the positions the model has. */
export function usableLen(model: Model, maxLen: number): number {
  return Math.min(maxLen, model.config.sequence_len - STATE_SLACK);
}

/** An inference state generate() can reuse for sequences up to maxLen. */
export function generationState(model: Model, maxLen: number): InferenceState {
  return model.newState(1, usableLen(model, maxLen) + STATE_SLACK);
}

/** Lets timers, sockets and abort events run between tokens (the engine's forward is synchronous). */
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

export async function generate(model: Model, tok: TemplateTokenizer, conv: Conversation, opts: GenerateOptions): Promise<Generation> {
  const t0 = performance.now();
  const o = { ...opts, maxLen: usableLen(model, opts.maxLen) };
  const r = render(tok, conv, { open: true, readTwice: o.readTwice ?? true, maxTokens: Math.max(16, o.maxLen - o.maxNewTokens) });
  const ids = [...r.ids];
  const w: number[] = new Array(ids.length).fill(0);
  const promptLen = ids.length;
  const docs = [...r.docs];
  const V = model.config.vocab_size;
  const AE = tok.specialId("<|assistant_end|>"), QS = tok.specialId("<|query_start|>"), QE = tok.specialId("<|query_end|>");
  const interactive = Boolean(o.onText || o.signal);
  const state = o.state ?? generationState(model, o.maxLen);
  if (o.state) state.reset();
  const queries: string[] = [];
  const text = new TextStream((x) => tok.decode(x));
  const timings: GenerationTimings = { prefillMs: 0, firstTokenMs: 0, decodeMs: 0, searchMs: 0, tokens: 0 };
  let inQuery = false;
  let qbuf: number[] = [];
  let hops = 0;
  let finished = false;
  const stopIfAborted = () => {
    if (o.signal?.aborted) throw o.signal.reason ?? new DOMException("generation aborted", "AbortError");
  };
  try {
    stopIfAborted();
    o.onDocs?.([...docs]);
    let logits = state.forward(ids, ids.length);
    const tPrefilled = performance.now();
    timings.prefillMs = tPrefilled - t0;
    for (let n = 0; n < o.maxNewTokens && ids.length < o.maxLen; n++) {
      if (interactive) await yieldToEventLoop();
      stopIfAborted();
      const t = o.temperature <= 0 || !o.sampler ? argmax(logits) : o.sampler.sample(logits, 1, V, { temperature: o.temperature })[0]!;
      if (timings.tokens++ === 0) timings.firstTokenMs = performance.now() - t0;
      ids.push(t);
      w.push(1);
      if (t === AE) {
        finished = true;
        break;
      }
      if (t === QS) {
        inQuery = true;
        qbuf = [];
      } else if (t === QE && inQuery) {
        inQuery = false;
        const q = tok.decode(qbuf).trim();
        queries.push(q);
        hops++;
        const tSearch = performance.now();
        const block = o.search && hops <= o.maxHops ? await injectable(tok, o, q, docs, ids.length) : null;
        timings.searchMs += performance.now() - tSearch;
        if (block) {
          o.onDocs?.([...docs]);
          ids.push(...block.ids);
          for (let i = 0; i < block.ids.length; i++) w.push(0);
          logits = state.forward([t, ...block.ids], block.ids.length + 1);
          continue;
        }
      } else if (inQuery) qbuf.push(t);
      else if (!tokIsSpecial(tok, t)) {
        const delta = text.push(t);
        if (delta) o.onText?.(delta);
      }
      logits = state.forward([t], 1);
    }
    const rest = text.end();
    if (rest) o.onText?.(rest);
    timings.decodeMs = performance.now() - tPrefilled - timings.searchMs;
  } finally {
    if (!o.state) state.free();
  }
  return { ids, weights: Float32Array.from(w), promptLen, answer: text.text(), queries, docs, hops, finished, timings };
}

/** Tokens kept free after an injected block, so the model can still answer (short, cited answers). */
const ANSWER_ROOM = 16;
/** A hop document cut shorter than this is not worth injecting. */
const MIN_DOC_TOKENS = 8;

/**
 * Searches for a follow-up query and returns the documents block to inject (new documents only,
 * numbered after those in context, appended to `docs`), or null when nothing new fits. Like render()
 * in training, a block too long for what is left of maxLen drops its lowest-ranked documents, then
 * cuts the text of the one left; skipping it instead would leave the query unanswered whenever the
 * context is nearly full (RL rollouts run at the trained length, where a whole block never fits).
 */
async function injectable(tok: TemplateTokenizer, o: GenerateOptions, query: string, docs: RenderedDoc[], used: number): Promise<{ ids: number[] } | null> {
  const seen = new Set(docs.map((d) => d.id));
  let pick = (await o.search!(query)).filter((d) => !seen.has(d.id)).slice(0, o.topKPerHop);
  const room = o.maxLen - used - ANSWER_ROOM;
  const block = () => docsBlockIds(tok, pick, docs.length + 1);
  let ids = block();
  while (ids.length > room && pick.length > 1) {
    pick = pick.slice(0, -1);
    ids = block();
  }
  let truncated = false;
  if (pick.length === 1 && ids.length > room) {
    const text = tok.encode(pick[0]!.text);
    const keep = text.length - (ids.length - room);
    if (keep < MIN_DOC_TOKENS) return null;
    pick = [{ ...pick[0]!, text: tok.decode(text.slice(0, keep)) }];
    ids = block();
    truncated = true;
  }
  if (!pick.length || ids.length > room) return null;
  for (const d of pick) docs.push({ n: docs.length + 1, original: docs.length + 1, id: d.id, title: d.title, truncated });
  return { ids };
}

function tokIsSpecial(tok: TemplateTokenizer, id: number): boolean {
  const t = tok as TemplateTokenizer & { isSpecial?: (id: number) => boolean };
  return t.isSpecial ? t.isSpecial(id) : false;
}

/** Document ids cited by an answer through the numbering it saw, and the count of numbers that named none. */
export function citedIds(answer: string, docs: RenderedDoc[]): { ids: string[]; invalid: number } {
  const r = resolveCitations(answer, docs);
  return { ids: r.docIds, invalid: r.invalid.length };
}
