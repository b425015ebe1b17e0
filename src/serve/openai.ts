/**
 * OpenAI's chat-completion shapes, with nanorag's extra fields: `sources` (the documents the model saw,
 * numbered as it saw them), `citations` (each [n] in the answer mapped to its document), `hops`,
 * `queries` and `timings`. Clients that know only OpenAI's fields ignore the extras.
 */
import type { Answer } from "../answer/answer.ts";

export interface CompletionIds {
  id: string;
  created: number;
  model: string;
}

export function completionIds(model: string): CompletionIds {
  return { id: `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`, created: Math.floor(Date.now() / 1000), model };
}

export function usage(a: Answer) {
  const { prompt_tokens, tokens } = a.timings;
  return { prompt_tokens, completion_tokens: tokens, total_tokens: prompt_tokens + tokens };
}

const finishReason = (a: Answer) => (a.finished ? "stop" : "length");

function extras(a: Answer) {
  return { sources: a.sources, citations: a.citations, invalid_citations: a.invalid_citations, hops: a.hops, queries: a.queries, timings: a.timings };
}

/** The non-streaming response. */
export function completion(ids: CompletionIds, a: Answer) {
  return {
    ...ids,
    object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: a.answer }, finish_reason: finishReason(a) }],
    usage: usage(a),
    ...extras(a),
  };
}

/** One server-sent event carrying a chunk. */
export function sseData(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

export function deltaChunk(ids: CompletionIds, delta: { role?: string; content?: string }, more: Record<string, unknown> = {}) {
  return { ...ids, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: null }], ...more };
}

/** The last content chunk: the finish reason, and the sources and citations of the whole answer. */
export function finalChunk(ids: CompletionIds, a: Answer) {
  return { ...ids, object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, finish_reason: finishReason(a) }], ...extras(a) };
}

/** Sent when `stream_options.include_usage` is set, as OpenAI does: no choices, only usage. */
export function usageChunk(ids: CompletionIds, a: Answer) {
  return { ...ids, object: "chat.completion.chunk", choices: [], usage: usage(a) };
}

export const SSE_DONE = "data: [DONE]\n\n";
