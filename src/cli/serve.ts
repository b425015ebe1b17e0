import { defineCommand } from "citty";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { serveContext } from "../serve/context.ts";
import { startServer } from "../serve/server.ts";
import { askOptions, modelArgs, openAnswerer, retrievalArgs } from "./answering.ts";
import { intFlag } from "./common.ts";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** The API key is read from an environment variable, so it never shows in `ps` or shell history. */
function apiKeyFrom(varName: string | undefined): string | undefined {
  if (!varName) return undefined;
  const key = process.env[varName];
  if (!key) throw new UserError(`--api-key-env ${varName}: that environment variable is not set or empty`);
  return key;
}

export default defineCommand({
  meta: { name: "serve", description: "Serve a model over an OpenAI-compatible HTTP API, with a chat page at /" },
  args: {
    ...modelArgs,
    // Server-wide defaults for every answer; a request's own fields (retriever, top_k, filter, max_hops, max_tokens) win.
    ...retrievalArgs,
    host: { type: "string", description: "Address to bind (default 127.0.0.1: this machine only)", valueHint: "ADDR" },
    port: { type: "string", description: "Port (default 8080; 0 picks a free one)", valueHint: "N" },
    refrag: { type: "boolean", description: "Let the model ask follow-up queries (requests may set \"refrag\")" },
    "api-key-env": { type: "string", description: "Require `Authorization: Bearer KEY` with KEY read from this environment variable", valueHint: "VAR" },
    "max-body-bytes": { type: "string", description: "Largest request body (default 1048576)", valueHint: "N" },
    "max-tokens": { type: "string", description: "Largest max_tokens a request may ask (default 512, at most half the model's context)", valueHint: "N" },
    "max-top-k": { type: "string", description: "Largest top_k a request may ask (default 50)", valueHint: "N" },
    queue: { type: "string", description: "Requests that may wait for the model while one runs; more get 429 (default 64)", valueHint: "N" },
    "model-name": { type: "string", description: "The model id reported by the API (default: the --model path)", valueHint: "NAME" },
  },
  async run({ args }) {
    const host = args.host ?? "127.0.0.1";
    const port = intFlag("port", args.port, 8080, 0);
    if (port > 65535) throw new UserError(`--port must be at most 65535, got ${port}`);
    const apiKey = apiKeyFrom(args["api-key-env"]);
    const limits = {
      maxBodyBytes: intFlag("max-body-bytes", args["max-body-bytes"], 1 << 20, 64),
      maxTokens: intFlag("max-tokens", args["max-tokens"], 512),
      maxTopK: intFlag("max-top-k", args["max-top-k"], 50),
      maxEmbedInputs: 64,
      queueCapacity: intFlag("queue", args.queue, 64, 0),
    };
    const defaults = { ...askOptions(args), mode: args.refrag ? ("refrag" as const) : ("rag" as const) };
    const answerer = await openAnswerer(args);
    try {
      const ctx = serveContext(answerer, { modelName: args["model-name"] ?? args.model, apiKey, limits, defaults });
      const server = startServer(ctx, { host, port });
      if (!LOOPBACK.has(host) && !apiKey) log.warn(`listening on ${host} without an API key: anyone who can reach this port can use the model (see --api-key-env)`);
      log.info(`serving ${ctx.modelName} with ${args.kb}; chat page at ${server.url}`);
      process.stdout.write(`${server.url.origin}\n`);
      const signal = await new Promise<string>((done) => {
        process.once("SIGINT", () => done("SIGINT"));
        process.once("SIGTERM", () => done("SIGTERM"));
      });
      log.info(`${signal}: stopping`);
      // Closing every connection aborts the answers in flight; the model is freed once they have stopped.
      await server.stop(true);
      await ctx.queue.idle();
    } finally {
      answerer.close();
    }
  },
});
