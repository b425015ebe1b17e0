/**
 * Generation with retrieval in the loop, for evaluation and RL rollouts. The prompt is rendered by
 * the chat template (open assistant turn); the model then writes tokens. When it closes a query with
 * <|query_end|>, the runtime retrieves and injects a documents block exactly as the template renders
 * one (numbering continues), and the model goes on. Every sampled token has weight 1, injected ones 0,
 * so the returned ids/weights are a training example for policy-gradient updates.
 */
import type { Model } from "../engine/index.ts";
import { Sampler } from "../engine/index.ts";
import { type Conversation, type RagDoc, parseCitations, render, type RenderedDoc, type TemplateTokenizer } from "../rag/template.ts";

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
}

/** Token ids of a documents block, exactly as render() writes one. */
export function docsBlockIds(tok: TemplateTokenizer, docs: RagDoc[], firstN: number): number[] {
  const ids = [tok.specialId("<|docs_start|>")];
  docs.forEach((d, i) => {
    ids.push(...tok.encode(`${i === 0 ? "" : "\n\n"}[${firstN + i}] ${d.title}\n`), ...tok.encode(d.text));
  });
  ids.push(tok.specialId("<|docs_end|>"));
  return ids;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

export async function generate(model: Model, tok: TemplateTokenizer, conv: Conversation, o: GenerateOptions): Promise<Generation> {
  const r = render(tok, conv, { open: true, readTwice: o.readTwice ?? true, maxTokens: Math.max(16, o.maxLen - o.maxNewTokens) });
  const ids = [...r.ids];
  const w: number[] = new Array(ids.length).fill(0);
  const promptLen = ids.length;
  const docs = [...r.docs];
  const V = model.config.vocab_size;
  const AE = tok.specialId("<|assistant_end|>"), QS = tok.specialId("<|query_start|>"), QE = tok.specialId("<|query_end|>");
  const state = model.newState(1, o.maxLen + 8);
  const queries: string[] = [];
  const text: number[] = [];
  let inQuery = false;
  let qbuf: number[] = [];
  let hops = 0;
  let finished = false;
  try {
    let logits = state.forward(ids, ids.length);
    for (let n = 0; n < o.maxNewTokens && ids.length < o.maxLen; n++) {
      const t = o.temperature <= 0 || !o.sampler ? argmax(logits) : o.sampler.sample(logits, 1, V, { temperature: o.temperature })[0]!;
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
        let block: number[] | null = null;
        if (o.search && hops <= o.maxHops) {
          const seen = new Set(docs.map((d) => d.id));
          const found = (await o.search(q)).filter((d) => !seen.has(d.id)).slice(0, o.topKPerHop);
          if (found.length) {
            const b = docsBlockIds(tok, found, docs.length + 1);
            if (ids.length + b.length + 4 < o.maxLen) {
              block = b;
              found.forEach((d, i) => docs.push({ n: docs.length + 1, original: docs.length + 1 + i * 0, id: d.id, title: d.title, truncated: false }));
            }
          }
        }
        if (block) {
          ids.push(...block);
          for (let i = 0; i < block.length; i++) w.push(0);
          logits = state.forward([t, ...block], block.length + 1);
          continue;
        }
      } else if (inQuery) qbuf.push(t);
      else if (!tokIsSpecial(tok, t)) text.push(t);
      logits = state.forward([t], 1);
    }
  } finally {
    state.free();
  }
  return { ids, weights: Float32Array.from(w), promptLen, answer: tok.decode(text).trim(), queries, docs, hops, finished };
}

function tokIsSpecial(tok: TemplateTokenizer, id: number): boolean {
  const t = tok as TemplateTokenizer & { isSpecial?: (id: number) => boolean };
  return t.isSpecial ? t.isSpecial(id) : false;
}

/** Document ids cited by an answer through the numbering it saw, and the count of numbers that named none. */
export function citedIds(answer: string, docs: RenderedDoc[]): { ids: string[]; invalid: number } {
  const byN = new Map(docs.map((d) => [d.n, d.id]));
  const ids: string[] = [];
  let invalid = 0;
  for (const n of parseCitations(answer)) {
    const id = byN.get(n);
    if (id === undefined) invalid++;
    else ids.push(id);
  }
  return { ids, invalid };
}
