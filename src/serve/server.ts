/**
 * The HTTP server: routes, API-key check, body limits and the mapping of errors to status codes.
 * Endpoints that run the engine (chat completions, embeddings) take turns through the engine queue;
 * retrieval and the static page do not need it.
 */
import type { Server } from "bun";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { chatCompletions } from "./chat.ts";
import type { ServeContext } from "./context.ts";
import { document, embeddings, health, models, retrieve } from "./endpoints.ts";
import { checkApiKey, checkLoopbackHost, errorResponse, HttpError, isLoopback, readJsonBody } from "./http.ts";
import { PAGE } from "./page.ts";
import { QueueFull } from "./queue.ts";

export interface Listen {
  host: string;
  /** 0 picks a free port */
  port: number;
}

type Handler = (req: Request, ctx: ServeContext, server: Server<undefined>) => Promise<Response> | Response;

const withBody =
  (fn: (req: Request, body: Record<string, unknown>, ctx: ServeContext) => Promise<Response> | Response): Handler =>
  async (req, ctx, server) => {
    const body = await readJsonBody(req, ctx.limits.maxBodyBytes);
    // Answers may wait in the queue and stream for long: no idle cut-off once the body is in.
    server.timeout(req, 0);
    return fn(req, body, ctx);
  };

/** method -> path -> handler; `open` routes need no API key (the page must load to ask for one). */
const ROUTES: Record<string, { method: string; open?: boolean; handler: Handler }> = {
  "/": { method: "GET", open: true, handler: () => PAGE.html() },
  "/app.js": { method: "GET", open: true, handler: () => PAGE.js() },
  "/style.css": { method: "GET", open: true, handler: () => PAGE.css() },
  "/health": { method: "GET", open: true, handler: (_r, ctx) => health(ctx) },
  "/v1/models": { method: "GET", handler: (_r, ctx) => models(ctx) },
  "/v1/chat/completions": { method: "POST", handler: withBody(chatCompletions) },
  "/v1/embeddings": { method: "POST", handler: withBody(embeddings) },
  "/v1/retrieve": { method: "POST", handler: withBody(retrieve) },
};
const DOCUMENT_PREFIX = "/v1/documents/";

function route(req: Request): { method: string; open?: boolean; handler: Handler } | undefined {
  const path = new URL(req.url).pathname;
  if (path.startsWith(DOCUMENT_PREFIX) && path.length > DOCUMENT_PREFIX.length) {
    return { method: "GET", handler: (_r, ctx) => document(decodeURIComponent(path.slice(DOCUMENT_PREFIX.length)), ctx) };
  }
  return ROUTES[path];
}

function toResponse(e: unknown): Response {
  if (e instanceof HttpError) return errorResponse(e);
  if (e instanceof QueueFull) return errorResponse(new HttpError(429, `${e.message}; retry later`, null, "queue_full"));
  if (e instanceof UserError) return errorResponse(new HttpError(400, e.message));
  if ((e as Error)?.name === "AbortError") return new Response(null, { status: 499 });
  log.error(e);
  return errorResponse(new HttpError(500, `internal error: ${(e as Error)?.message ?? String(e)}`));
}

export function startServer(ctx: ServeContext, listen: Listen): Server<undefined> {
  const loopback = isLoopback(listen.host);
  return Bun.serve({
    hostname: listen.host,
    port: listen.port,
    // Bun's own cap sits above ours so that our reader answers oversize bodies with a clear 413.
    maxRequestBodySize: ctx.limits.maxBodyBytes + 1024,
    idleTimeout: 60,
    async fetch(req, server) {
      const r = route(req);
      // /health and the page are not API requests: polling them must not move the counters.
      const counted = (res: Response) => {
        if (new URL(req.url).pathname.startsWith("/v1/")) ctx.stats.count(res.status);
        return res;
      };
      try {
        if (loopback) checkLoopbackHost(req);
        if (!r) throw new HttpError(404, `no such endpoint: ${req.method} ${new URL(req.url).pathname}`, null, "not_found");
        if (req.method !== r.method) throw new HttpError(405, `${new URL(req.url).pathname} accepts ${r.method}, not ${req.method}`, null, "method_not_allowed");
        if (!r.open) checkApiKey(req, ctx.apiKey);
        return counted(await r.handler(req, ctx, server));
      } catch (e) {
        return counted(toResponse(e));
      }
    },
  });
}
