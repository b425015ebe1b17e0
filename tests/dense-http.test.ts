import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import dense from "../plugins/dense.ts";
import { requestEmbedder, storedIdentity } from "../src/dense/index.ts";
import { TestKb } from "../src/dense/testkit.ts";
import { UserError } from "../src/errors.ts";

/** A real embeddings server: hashed bag of words in 16 dims, OpenAI response shape. */
const DIM = 16;
function embed(text: string): number[] {
  const v = new Array<number>(DIM).fill(0);
  for (const w of text.toLowerCase().match(/[a-z]+/g) ?? []) v[Number(Bun.hash(w) % BigInt(DIM))] += 1;
  return v;
}
let server: Server<unknown>;
let requests: { path: string; inputs: string[]; model: string; auth: string | null }[] = [];
let failNext = 0;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const body = (await req.json()) as { model: string; input: string[] };
      requests.push({ path, inputs: body.input, model: body.model, auth: req.headers.get("authorization") });
      if (failNext > 0) {
        failNext--;
        return new Response("overloaded", { status: 503 });
      }
      if (path.startsWith("/slow")) await Bun.sleep(400);
      if (path.startsWith("/bad")) return new Response("no such model", { status: 404 });
      const dim = path.startsWith("/wide") && body.input[0] === "odd" ? DIM + 1 : DIM;
      // Answer out of order, as some servers do: the index field says which input each belongs to.
      return Response.json({ object: "list", model: body.model, data: body.input.map((t, index) => ({ index, embedding: embed(t).concat(dim > DIM ? [1] : []) })).reverse() });
    },
  });
});
afterAll(() => server.stop(true));

let kb: TestKb | undefined;
afterEach(() => {
  kb?.close();
  kb = undefined;
  requestEmbedder(null);
  requests = [];
  failNext = 0;
});

const DOCS = [
  { id: "cats", title: "Cats", content: "cats purr and chase mice" },
  { id: "dogs", title: "Dogs", content: "dogs bark and fetch sticks" },
  { id: "rust", title: "Rust", content: "rust programs are memory safe" },
  { id: "bees", title: "Bees", content: "bees make honey in hives" },
  { id: "owls", title: "Owls", content: "owls hunt mice at night" },
];
const base = () => `http://localhost:${server.port}/v1`;

describe("http embedder", () => {
  test("embeds in batches, records its identity, and serves queries", async () => {
    requestEmbedder(`http:url=${base()},model=hash16,batch=2`);
    kb = new TestKb(":memory:", [dense]);
    await kb.add(DOCS);
    expect(requests.map((r) => r.inputs.length)).toEqual([2, 2, 1]);
    expect(requests[0]!.path).toBe("/v1/embeddings");
    expect(requests[0]!.inputs[0]).toBe("Cats\ncats purr and chase mice");
    expect(storedIdentity(kb.ctx)).toMatchObject({ name: "http", dim: DIM, settings: { model: "hash16" } });
    requestEmbedder(null);
    const hits = await dense.search(kb.ctx, "mice that purr", { topK: 2 });
    expect(hits[0]!.docId).toBe("cats");
    expect(await dense.doctor!(kb.ctx)).toEqual([]);
  });

  test("retries a 503 and sends the API key from the named environment variable", async () => {
    process.env.TEST_EMBED_KEY = "k-123";
    requestEmbedder(`http:url=${base()},model=hash16,api_key_env=TEST_EMBED_KEY`);
    kb = new TestKb(":memory:", [dense]);
    failNext = 2;
    await kb.add(DOCS);
    expect(requests).toHaveLength(3);
    expect(requests[2]!.auth).toBe("Bearer k-123");
    expect(JSON.stringify(storedIdentity(kb.ctx))).not.toContain("k-123");
  });

  test("an unreachable endpoint is a clear error and nothing is written", async () => {
    requestEmbedder("http:url=http://127.0.0.1:1/v1,model=hash16,retries=1");
    kb = new TestKb(":memory:", [dense]);
    const err = await kb.add(DOCS).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain("cannot reach http://127.0.0.1:1/v1/embeddings after 2 attempt(s)");
    expect(err.message).toContain("Nothing was written");
    expect(kb.count("documents")).toBe(0);
    expect(kb.count("chunks")).toBe(0);
    expect(kb.ctx.getMeta("dense.embedder")).toBeUndefined();
    expect(kb.db.query("SELECT name FROM sqlite_master WHERE name LIKE 'dense%'").all()).toEqual([]);
  });

  test("a failure while adding to an existing KB leaves it as it was", async () => {
    requestEmbedder(`http:url=${base()},model=hash16`);
    kb = new TestKb(":memory:", [dense]);
    await kb.add(DOCS.slice(0, 3));
    requestEmbedder(`http:url=http://localhost:${server.port}/slow,model=hash16,timeout_ms=100,retries=0`);
    const err = await kb.add(DOCS.slice(3)).catch((e) => e);
    expect(err.message).toContain("no answer within 100 ms");
    expect(kb.count("chunks")).toBe(3);
    expect(kb.count("dense_vec")).toBe(3);
    requestEmbedder(`http:url=http://localhost:${server.port}/bad,model=hash16`);
    expect((await kb.add(DOCS.slice(3)).catch((e) => e)).message).toContain("answered HTTP 404");
    requestEmbedder(`http:url=http://localhost:${server.port}/wide,model=hash16`);
    expect((await kb.add([{ id: "x", title: "", content: "odd" }]).catch((e) => e)).message).toContain("17-d embedding, expected 16");
    expect(kb.count("chunks")).toBe(3);
  });

  test("a KB built with one model refuses queries with another model or embedder", async () => {
    requestEmbedder(`http:url=${base()},model=hash16`);
    kb = new TestKb(":memory:", [dense]);
    await kb.add(DOCS);
    requestEmbedder(null);
    const other = await Promise.resolve(dense.search(kb.ctx, "mice", { topK: 2, options: { embedder: "http:model=minilm" } })).catch((e) => e);
    expect(other).toBeInstanceOf(UserError);
    expect(other.message).toContain("model minilm != hash16");
    const lsa = await Promise.resolve(dense.search(kb.ctx, "mice", { topK: 2, options: { embedder: "lsa" } })).catch((e) => e);
    expect(lsa.message).toContain("embedder lsa != http");
    // Pointing the same model at a new URL is allowed (the server moved).
    const moved = await dense.search(kb.ctx, "mice", { topK: 1, options: { embedder: `http:url=${base()}/,model=hash16` } });
    expect(moved).toHaveLength(1);
  });

  test("bad http options are refused before any request", async () => {
    requestEmbedder("http:model=x");
    kb = new TestKb(":memory:", [dense]);
    await expect(kb.add(DOCS)).rejects.toThrow("option url is required");
    expect(() => requestEmbedder("http:url=ftp://x")).not.toThrow(); // parsed here, validated at use
  });
});
