/**
 * POST /v1/chat/completions. The request waits its turn for the engine (429 at once when the line is
 * full), then the answer is generated; streamed as server-sent events in OpenAI's chunk format, or
 * returned whole. A client that goes away aborts its generation between two tokens, which frees the
 * engine for the next request.
 */
import type { Answer } from "../answer/answer.ts";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import type { ServeContext } from "./context.ts";
import { json } from "./http.ts";
import { completion, completionIds, type CompletionIds, deltaChunk, finalChunk, SSE_DONE, sseData, usageChunk } from "./openai.ts";
import type { Ticket } from "./queue.ts";
import { chatRequest, type ChatRequest } from "./requests.ts";

/** Links the client's lifetime to the work done for it. */
function clientGone(req: Request): AbortController {
  const abort = new AbortController();
  const onAbort = () => abort.abort(new DOMException("the client disconnected", "AbortError"));
  if (req.signal.aborted) onAbort();
  else req.signal.addEventListener("abort", onAbort, { once: true });
  return abort;
}

export async function chatCompletions(req: Request, body: Record<string, unknown>, ctx: ServeContext): Promise<Response> {
  const r = chatRequest(body, ctx.limits);
  const abort = clientGone(req);
  const ticket = ctx.queue.enter(abort.signal);
  const ids = completionIds(ctx.modelName);
  const run = (onToken?: (delta: string) => void, onSources?: (s: Answer["sources"]) => void) => ctx.answer(r, { onToken, onSources, signal: abort.signal });
  if (!r.stream) {
    try {
      await ticket.ready;
      return json(completion(ids, await run()));
    } finally {
      ticket.release();
    }
  }
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (s: string) => {
        if (!abort.signal.aborted) controller.enqueue(enc.encode(s));
      };
      void streamAnswer(r, ticket, run, ids, send).finally(() => {
        if (!abort.signal.aborted) controller.close();
      });
    },
    cancel() {
      abort.abort(new DOMException("the client disconnected", "AbortError"));
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" } });
}

type Run = (onToken: (delta: string) => void, onSources: (s: Answer["sources"]) => void) => ReturnType<ServeContext["answer"]>;

async function streamAnswer(r: ChatRequest, ticket: Ticket, run: Run, ids: CompletionIds, send: (s: string) => void): Promise<void> {
  try {
    await ticket.ready;
    send(sseData(deltaChunk(ids, { role: "assistant", content: "" })));
    const a = await run(
      (delta) => send(sseData(deltaChunk(ids, { content: delta }))),
      // Sources as soon as they are known, so a page can show them while the answer streams.
      (sources) => send(sseData(deltaChunk(ids, {}, { sources }))),
    );
    send(sseData(finalChunk(ids, a)));
    if (r.includeUsage) send(sseData(usageChunk(ids, a)));
    send(SSE_DONE);
  } catch (e) {
    // The status line (200) is already sent: the error goes into the stream, as OpenAI does.
    if ((e as Error)?.name === "AbortError") return;
    if (!(e instanceof UserError)) log.error(e);
    send(sseData({ error: { message: (e as Error).message ?? String(e), type: e instanceof UserError ? "invalid_request_error" : "server_error" } }));
  } finally {
    ticket.release();
  }
}
