/**
 * Validation of request bodies. Each reader checks one endpoint's fields and throws a 400 that names
 * the field (`param`) and what was wrong, so a client sees its mistake instead of a server error.
 * Fields OpenAI clients send that do not apply here (model, top_p, user, ...) are accepted and ignored.
 */
import { HttpError } from "./http.ts";

export interface Limits {
  /** largest request body, bytes */
  maxBodyBytes: number;
  /** largest max_tokens a request may ask for */
  maxTokens: number;
  /** largest top_k (per request, for retrieval and answers) */
  maxTopK: number;
  /** most inputs in one embeddings request */
  maxEmbedInputs: number;
  /** requests that may wait while one runs on the engine */
  queueCapacity: number;
}

/** What a request may override of the server's answering settings. */
export interface RetrievalChoice {
  retriever?: string;
  topK?: number;
  filter?: Record<string, string>;
}

export interface ChatRequest extends RetrievalChoice {
  question: string;
  maxTokens?: number;
  temperature: number;
  stream: boolean;
  includeUsage: boolean;
  refrag?: boolean;
  maxHops?: number;
}

export interface RetrieveRequest extends RetrievalChoice {
  query: string;
}

const bad = (param: string, message: string) => new HttpError(400, `${param}: ${message}`, param, "invalid_value");

function optInt(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) throw bad(key, `must be an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) throw bad(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

function optBool(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw bad(key, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || !v.trim()) throw bad(key, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function retrievalChoice(body: Record<string, unknown>, limits: Limits): RetrievalChoice {
  const filter = body.filter;
  if (filter !== undefined && filter !== null) {
    if (typeof filter !== "object" || Array.isArray(filter)) throw bad("filter", 'must be an object of metadata key -> value, e.g. {"source": "web"}');
    for (const [k, v] of Object.entries(filter)) if (typeof v !== "string") throw bad(`filter.${k}`, `must be a string, got ${JSON.stringify(v)}`);
  }
  return { retriever: optString(body, "retriever"), topK: optInt(body, "top_k", 1, limits.maxTopK), filter: (filter as Record<string, string>) ?? undefined };
}

/** The text of a message: a string, or OpenAI's array of content parts of which the text parts count. */
function messageText(m: Record<string, unknown>, i: number): string {
  const c = m.content;
  if (typeof c === "string") return c;
  if (Array.isArray(c)) {
    return c
      .map((p, j) => {
        const part = p as Record<string, unknown>;
        if (part?.type !== "text" || typeof part.text !== "string") throw bad(`messages[${i}].content[${j}]`, 'only {"type": "text", "text": "..."} parts are supported');
        return part.text;
      })
      .join("");
  }
  throw bad(`messages[${i}].content`, "must be a string or an array of text parts");
}

/**
 * POST /v1/chat/completions. The models answer one question from retrieved documents, so the
 * question is the last user message; system messages and earlier turns are accepted and not used.
 */
export function chatRequest(body: Record<string, unknown>, limits: Limits): ChatRequest {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw bad("messages", 'must be a non-empty array of {"role", "content"} objects');
  let question = "";
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null) throw bad(`messages[${i}]`, "must be an object");
    const role = (m as Record<string, unknown>).role;
    if (!["system", "developer", "user", "assistant"].includes(role as string)) throw bad(`messages[${i}].role`, `must be "system", "user" or "assistant", got ${JSON.stringify(role)}`);
    // OpenAI lets earlier assistant turns carry no content (tool calls); only the question must have text.
    if (role !== "user" && (m as Record<string, unknown>).content == null) return;
    const text = messageText(m as Record<string, unknown>, i);
    if (role === "user") question = text;
  });
  if (!question.trim()) throw bad("messages", "needs a user message with non-empty content (the question)");
  optInt(body, "n", 1, 1); // one choice per request: the engine generates one answer
  const temperature = body.temperature ?? 0;
  if (typeof temperature !== "number" || temperature < 0 || temperature > 2) throw bad("temperature", `must be a number from 0 to 2, got ${JSON.stringify(temperature)}`);
  const streamOptions = body.stream_options as Record<string, unknown> | undefined;
  return {
    question,
    maxTokens: optInt(body, "max_tokens", 1, limits.maxTokens) ?? optInt(body, "max_completion_tokens", 1, limits.maxTokens),
    temperature,
    stream: optBool(body, "stream") ?? false,
    includeUsage: streamOptions?.include_usage === true,
    refrag: optBool(body, "refrag"),
    maxHops: optInt(body, "max_hops", 0, 8),
    ...retrievalChoice(body, limits),
  };
}

/** POST /v1/embeddings: `input` is a string or an array of strings. */
export function embeddingRequest(body: Record<string, unknown>, limits: Limits): { inputs: string[]; base64: boolean } {
  const input = body.input;
  const list = typeof input === "string" ? [input] : input;
  if (!Array.isArray(list) || list.length === 0) throw bad("input", "must be a string or a non-empty array of strings");
  if (list.length > limits.maxEmbedInputs) throw bad("input", `at most ${limits.maxEmbedInputs} inputs per request, got ${list.length}`);
  list.forEach((s, i) => {
    if (typeof s !== "string" || !s.trim()) throw bad(`input[${i}]`, "must be a non-empty string (token-id arrays are not supported)");
  });
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") throw bad("encoding_format", `must be "float" or "base64", got ${JSON.stringify(format)}`);
  return { inputs: list as string[], base64: format === "base64" };
}

/** POST /v1/retrieve: `{query, top_k?, retriever?, filter?}`. */
export function retrieveRequest(body: Record<string, unknown>, limits: Limits): RetrieveRequest {
  const query = optString(body, "query");
  if (!query) throw bad("query", "is required: the text to search for");
  return { query, ...retrievalChoice(body, limits) };
}
