/** `nanorag serve` endpoints through HTTP: OpenAI shapes, streaming, embeddings, retrieval, the page, bad requests. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ask, post, serve, type Served, sseData, tinyServedModel } from "./serve-helpers.ts";

let s: Served;
const QUESTION = "What is Python used for?";

beforeAll(async () => {
  s = await serve(await tinyServedModel(), ["--max-tokens", "64", "--model-name", "tiny", "--top-k", "2"]);
}, 60_000);
afterAll(async () => {
  expect(await s.stop()).toBe(0);
});

describe("nanorag serve", () => {
  test("GET /health and /v1/models", async () => {
    const h = await (await fetch(`${s.url}/health`)).json();
    expect(h.status).toBe("ok");
    expect(h.model).toBe("tiny");
    expect(h.queue).toEqual({ running: 0, waiting: 0, capacity: 64 });
    const m = await (await fetch(`${s.url}/v1/models`)).json();
    expect(m).toMatchObject({ object: "list", data: [{ id: "tiny", object: "model", owned_by: "nanorag" }] });
  });

  test("chat completion, whole and streamed: the same answer, with sources and citations", async () => {
    const res = await post(`${s.url}/v1/chat/completions`, ask(QUESTION, { max_tokens: 24, model: "anything", top_p: 1 }));
    expect(res.status).toBe(200);
    const c = await res.json();
    expect(c.object).toBe("chat.completion");
    expect(c.id).toMatch(/^chatcmpl-/);
    expect(c.model).toBe("tiny");
    const choice = c.choices[0];
    expect(choice.message.role).toBe("assistant");
    expect(typeof choice.message.content).toBe("string");
    expect(["stop", "length"]).toContain(choice.finish_reason);
    // The KB's Python document is retrieved and shown to the model as [1].
    expect(c.sources[0]).toMatchObject({ n: 1, id: "doc_007", title: "Python Programming Basics" });
    expect(c.sources[0].snippet).toContain("Python");
    expect(c.sources.length).toBe(2); // the server's --top-k
    expect(Array.isArray(c.citations)).toBe(true);
    expect(c.usage.completion_tokens).toBe(c.timings.tokens);
    expect(c.usage.completion_tokens).toBeLessThanOrEqual(24);
    expect(c.usage.prompt_tokens).toBeGreaterThan(10);
    expect(c.usage.total_tokens).toBe(c.usage.prompt_tokens + c.usage.completion_tokens);

    const sres = await post(`${s.url}/v1/chat/completions`, ask(QUESTION, { max_tokens: 24, stream: true, stream_options: { include_usage: true } }));
    expect(sres.headers.get("content-type")).toContain("text/event-stream");
    const events: string[] = [];
    for await (const d of sseData(sres)) events.push(d);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    for (const ch of chunks) expect(ch).toMatchObject({ id: chunks[0].id, object: "chat.completion.chunk", model: "tiny" });
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    const text = chunks.map((ch) => ch.choices[0]?.delta?.content ?? "").join("");
    expect(text).toBe(choice.message.content);
    const final = chunks.find((ch) => ch.choices[0]?.finish_reason);
    expect(final.choices[0].finish_reason).toBe(choice.finish_reason);
    expect(final.sources).toEqual(c.sources);
    expect(final.citations).toEqual(c.citations);
    // Sources arrive before the first token, so a page can show them while the answer streams.
    const firstSources = chunks.findIndex((ch) => ch.sources);
    const firstText = chunks.findIndex((ch) => ch.choices[0]?.delta?.content);
    if (firstText >= 0) expect(firstSources).toBeLessThan(firstText);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: c.usage });
  });

  test("per-request retriever, top_k and filter; OpenAI content parts", async () => {
    const messages = [{ role: "system", content: "be brief" }, { role: "user", content: "hello" }, { role: "assistant", content: null }, { role: "user", content: [{ type: "text", text: QUESTION }] }];
    const body = { messages, max_tokens: 4, top_k: 3, retriever: "simple" };
    const c = await (await post(`${s.url}/v1/chat/completions`, JSON.stringify(body))).json();
    expect(c.sources.length).toBe(3); // the request's top_k over the server's --top-k 2
    const none = await (await post(`${s.url}/v1/chat/completions`, JSON.stringify({ ...body, filter: { source: "no-such-source" } }))).json();
    expect(none.sources).toEqual([]);
  });

  test("POST /v1/embeddings: unit vectors of the model's width, deterministic, float or base64", async () => {
    const e = await (await post(`${s.url}/v1/embeddings`, JSON.stringify({ input: ["cats purr", "python code", "cats purr"], model: "tiny" }))).json();
    expect(e.object).toBe("list");
    expect(e.data.map((d: { index: number }) => d.index)).toEqual([0, 1, 2]);
    const [a, b, a2] = e.data.map((d: { embedding: number[] }) => d.embedding);
    expect(a.length).toBe(64);
    expect(Math.hypot(...a)).toBeCloseTo(1, 4);
    expect(a2).toEqual(a);
    expect(b).not.toEqual(a);
    expect(e.usage.prompt_tokens).toBeGreaterThan(3);
    const one = await (await post(`${s.url}/v1/embeddings`, JSON.stringify({ input: "cats purr", encoding_format: "base64" }))).json();
    const bytes = Buffer.from(one.data[0].embedding, "base64");
    const floats = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    expect(floats.map((x) => Math.fround(x))).toEqual(a.map((x: number) => Math.fround(x)));
  });

  test("POST /v1/retrieve and GET /v1/documents/{id}", async () => {
    const r = await (await post(`${s.url}/v1/retrieve`, JSON.stringify({ query: "Python programming language", top_k: 3 }))).json();
    expect(r.retriever).toBe("bm25");
    expect(r.data[0]).toMatchObject({ rank: 1, id: "doc_007", title: "Python Programming Basics" });
    expect(r.data.length).toBeLessThanOrEqual(3);
    for (let i = 1; i < r.data.length; i++) expect(r.data[i].score).toBeLessThanOrEqual(r.data[i - 1].score);
    const f = await (await post(`${s.url}/v1/retrieve`, JSON.stringify({ query: "Python programming language", retriever: "simple", filter: { source: "no-such-source" } }))).json();
    expect(f).toMatchObject({ retriever: "simple", data: [] });
    const d = await (await fetch(`${s.url}/v1/documents/doc_007`)).json();
    expect(d).toMatchObject({ object: "document", id: "doc_007", title: "Python Programming Basics" });
    expect(d.content).toContain("readable syntax");
    const missing = await fetch(`${s.url}/v1/documents/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.message).toContain('"nope"');
  });

  test("the chat page and its files are served", async () => {
    const page = await fetch(`${s.url}/`);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toBe("default-src 'self'; frame-ancestors 'none'");
    expect(await page.text()).toContain('<script src="/app.js">');
    const js = await fetch(`${s.url}/app.js`);
    expect(js.headers.get("content-type")).toContain("text/javascript");
    expect(await js.text()).toContain("/v1/chat/completions");
    expect((await fetch(`${s.url}/style.css`)).headers.get("content-type")).toContain("text/css");
  });

  test("bad requests get 4xx with a message naming the problem", async () => {
    const cases: [string, string, number, RegExp, string | null][] = [
      ["/v1/chat/completions", '{"messages": [', 400, /not valid JSON/, null],
      ["/v1/chat/completions", "", 400, /body is empty/, null],
      ["/v1/chat/completions", "[1,2]", 400, /must be a JSON object, got an array/, null],
      ["/v1/chat/completions", "{}", 400, /messages: must be a non-empty array/, "messages"],
      ["/v1/chat/completions", ask("hi", { max_tokens: 65 }), 400, /max_tokens: must be between 1 and 64, got 65/, "max_tokens"],
      ["/v1/chat/completions", ask("hi", { temperature: "hot" }), 400, /temperature/, "temperature"],
      ["/v1/chat/completions", ask("hi", { n: 2 }), 400, /n: must be between 1 and 1/, "n"],
      ["/v1/chat/completions", JSON.stringify({ messages: [{ role: "robot", content: "x" }] }), 400, /messages\[0\]\.role/, "messages[0].role"],
      ["/v1/chat/completions", ask("hi", { retriever: "bm52" }), 400, /Unknown retriever "bm52"/, null],
      ["/v1/embeddings", JSON.stringify({ input: [] }), 400, /input: must be a string or a non-empty array/, "input"],
      ["/v1/embeddings", JSON.stringify({ input: [1, 2] }), 400, /input\[0\]/, "input[0]"],
      ["/v1/retrieve", JSON.stringify({ top_k: 3 }), 400, /query: is required/, "query"],
      ["/v1/retrieve", JSON.stringify({ query: "x", top_k: 0 }), 400, /top_k: must be between 1 and 50/, "top_k"],
      ["/v1/retrieve", JSON.stringify({ query: "x", filter: { source: 3 } }), 400, /filter\.source: must be a string/, "filter.source"],
    ];
    for (const [path, body, status, message, param] of cases) {
      const res = await post(`${s.url}${path}`, body);
      const e = await res.json();
      expect({ path, body, status: res.status }).toEqual({ path, body, status });
      expect(e.error.message).toMatch(message);
      expect(e.error.param).toBe(param);
      expect(e.error.type).toBe("invalid_request_error");
    }
    // A question longer than the model's context: 400, or in a stream (status already sent) an error event.
    const long = await post(`${s.url}/v1/chat/completions`, ask("python ".repeat(900)));
    expect(long.status).toBe(400);
    expect((await long.json()).error.message).toContain("tokens even with documents trimmed");
    const events: string[] = [];
    for await (const d of sseData(await post(`${s.url}/v1/chat/completions`, ask("python ".repeat(900), { stream: true })))) events.push(d);
    expect(JSON.parse(events.at(-1)!).error).toMatchObject({ type: "invalid_request_error", message: expect.stringContaining("tokens even with documents trimmed") });
    expect(events).not.toContain("[DONE]");
    // What a form on another web page could send to a server on localhost is refused.
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await post(`${s.url}/v1/chat/completions`, ask("hi", { max_tokens: 2 }), { headers: { "content-type": type } });
      expect(res.status).toBe(415);
      expect((await res.json()).error.message).toContain("send the JSON body with Content-Type: application/json");
    }
    expect((await fetch(`${s.url}/v1/chat/completions`)).status).toBe(405);
    expect((await fetch(`${s.url}/v2/nothing`)).status).toBe(404);
    // None of these hurt the server.
    expect((await (await fetch(`${s.url}/health`)).json()).requests.server_errors).toBe(0);
  });
});
