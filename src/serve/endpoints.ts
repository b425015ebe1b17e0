/** The endpoints besides chat completions: embeddings, retrieval, documents, models and health. */
import type { ServeContext } from "./context.ts";
import { HttpError, json } from "./http.ts";
import { embeddingRequest, retrieveRequest } from "./requests.ts";

/** POST /v1/embeddings: the model's pooled hidden states, in OpenAI's shape. */
export async function embeddings(req: Request, body: Record<string, unknown>, ctx: ServeContext): Promise<Response> {
  const { inputs, base64 } = embeddingRequest(body, ctx.limits);
  const ticket = ctx.queue.enter(req.signal);
  try {
    await ticket.ready;
    const { vectors, tokens } = await ctx.embed(inputs);
    const data = vectors.map((v, index) => ({ object: "embedding", index, embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : Array.from(v) }));
    return json({ object: "list", data, model: ctx.modelName, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  } finally {
    ticket.release();
  }
}

/** POST /v1/retrieve: `{query, top_k?, retriever?, filter?}` -> ranked passages. */
export async function retrieve(_req: Request, body: Record<string, unknown>, ctx: ServeContext): Promise<Response> {
  const r = retrieveRequest(body, ctx.limits);
  const { retriever, hits } = await ctx.search(r);
  const data = hits.map((h, i) => ({ rank: i + 1, id: h.docId, chunk_id: h.chunkId, title: h.title, text: h.text, score: h.score }));
  return json({ object: "list", query: r.query, retriever, data });
}

/** GET /v1/documents/{id}: a whole document, so a cited passage can be read in full. */
export function document(id: string, ctx: ServeContext): Response {
  const row = ctx.kb.db.query<{ id: string; title: string; content: string; source: string | null; metadata: string | null }, [string]>("SELECT id, title, content, source, metadata FROM documents WHERE id = ?").get(id);
  if (!row) throw new HttpError(404, `no document with id ${JSON.stringify(id)} in the knowledge base`, "id", "document_not_found");
  return json({ object: "document", id: row.id, title: row.title, content: row.content, source: row.source, metadata: row.metadata ? JSON.parse(row.metadata) : {} });
}

export function models(ctx: ServeContext): Response {
  return json({ object: "list", data: [{ id: ctx.modelName, object: "model", created: ctx.startedAt, owned_by: "nanorag" }] });
}

export function health(ctx: ServeContext): Response {
  return json({
    status: "ok",
    model: ctx.modelName,
    kb: ctx.kb.path,
    uptime_s: Math.round(Date.now() / 1000 - ctx.startedAt),
    queue: { running: ctx.queue.running, waiting: ctx.queue.queued, capacity: ctx.queue.capacity },
    requests: ctx.stats.snapshot(),
  });
}
