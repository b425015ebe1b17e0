/**
 * `nanorag serve` under misuse and load: API key, body size, a client that disconnects mid-stream,
 * many concurrent requests (queued, all answered) and a full queue (429, never a crash).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli } from "./helpers.ts";
import { ask, type Fixture, post, serve, type Served, sseData, tinyServedModel } from "./serve-helpers.ts";

let f: Fixture;
const servers: Served[] = [];
const started = async (extra: string[], env: Record<string, string> = {}) => {
  const s = await serve(f, extra, env);
  servers.push(s);
  return s;
};
const health = async (s: Served) => (await fetch(`${s.url}/health`)).json();

beforeAll(async () => {
  f = await tinyServedModel();
}, 60_000);
afterAll(async () => {
  for (const s of servers) expect(await s.stop()).toBe(0);
});

describe("nanorag serve limits", () => {
  test("API key: required on /v1 when set, compared exactly; the page and /health stay open", async () => {
    const s = await started(["--api-key-env", "TEST_NANORAG_KEY"], { TEST_NANORAG_KEY: "s3cret-key" });
    const body = JSON.stringify({ query: "python" });
    const missing = await post(`${s.url}/v1/retrieve`, body);
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe("Bearer");
    expect((await missing.json()).error).toMatchObject({ type: "authentication_error", code: "missing_api_key" });
    for (const wrong of ["s3cret-kez", "s3cret-key2", "s3cret"]) {
      const r = await post(`${s.url}/v1/retrieve`, body, { headers: { authorization: `Bearer ${wrong}` } });
      expect(r.status).toBe(401);
      expect((await r.json()).error.code).toBe("invalid_api_key");
    }
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(401);
    expect((await post(`${s.url}/v1/chat/completions`, ask("hi", { max_tokens: 2 }))).status).toBe(401);
    const ok = await post(`${s.url}/v1/retrieve`, body, { headers: { authorization: "Bearer s3cret-key" } });
    expect(ok.status).toBe(200);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    expect((await fetch(`${s.url}/`)).status).toBe(200);
  });

  test("bound to loopback, only loopback Host names are served (DNS rebinding)", async () => {
    const s = await started([]);
    const port = new URL(s.url).port;
    for (const host of [`evil.example:${port}`, "evil.example", `127.0.0.1.evil.example:${port}`]) {
      const r = await fetch(`${s.url}/v1/models`, { headers: { host } });
      expect(r.status).toBe(421);
      expect((await r.json()).error.code).toBe("misdirected_request");
    }
    expect((await fetch(`${s.url}/`, { headers: { host: "rebound.example" } })).status).toBe(421);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) expect((await fetch(`${s.url}/v1/models`, { headers: { host } })).status).toBe(200);
  });

  test("bad flags: exit 2 with a clear message, nothing listening", () => {
    const base = ["serve", "--model", f.model, "--kb", f.kb];
    const noKey = cli([...base, "--api-key-env", "TEST_NANORAG_UNSET"], { env: { TEST_NANORAG_UNSET: "" } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("--api-key-env TEST_NANORAG_UNSET: that environment variable is not set or empty");
    const port = cli([...base, "--port", "70000"]);
    expect(port.code).toBe(2);
    expect(port.stderr).toContain("--port must be at most 65535");
    const model = cli(["serve", "--model", `${f.dir}/nope`, "--kb", f.kb]);
    expect(model.code).toBe(2);
    expect(model.stderr).toContain("nope: no such file or folder");
    const retriever = cli([...base, "--retriever", "bm52"]);
    expect(retriever.code).toBe(2);
    expect(retriever.stderr).toContain('Unknown retriever "bm52"');
  });

  test("request bodies over --max-body-bytes get 413, declared or streamed", async () => {
    const s = await started(["--max-body-bytes", "4096"]);
    const big = ask("x".repeat(5000));
    const declared = await post(`${s.url}/v1/chat/completions`, big);
    expect(declared.status).toBe(413);
    expect((await declared.json()).error.message).toContain("larger than the limit of 4096 bytes");
    // No Content-Length: the limit holds while reading the stream.
    const chunks = [new TextEncoder().encode(big.slice(0, 3000)), new TextEncoder().encode(big.slice(3000))];
    const streamed = await fetch(`${s.url}/v1/embeddings`, {
      method: "POST",
      body: new ReadableStream({
        pull(c) {
          const next = chunks.shift();
          if (next) c.enqueue(next);
          else c.close();
        },
      }),
    });
    expect(streamed.status).toBe(413);
    const fits = await post(`${s.url}/v1/embeddings`, JSON.stringify({ input: "cats ".repeat(700) }));
    expect(fits.status).toBe(200);
  });

  test("a client that disconnects mid-stream stops its generation; the next request is served", async () => {
    const s = await started(["--max-tokens", "480"]);
    const question = ask("What is Python used for?", { max_tokens: 480 });
    // The same greedy answer, not cut: it runs to the 480-token limit.
    const whole = await (await post(`${s.url}/v1/chat/completions`, question)).json();
    expect(whole.choices[0].finish_reason).toBe("length");
    expect(whole.usage.completion_tokens).toBe(480);
    const before = (await health(s)).requests;

    const controller = new AbortController();
    const res = await post(`${s.url}/v1/chat/completions`, ask("What is Python used for?", { max_tokens: 480, stream: true }), { signal: controller.signal });
    let received = 0;
    try {
      for await (const d of sseData(res)) {
        if (JSON.parse(d).choices[0]?.delta?.content && ++received === 3) {
          controller.abort();
          break;
        }
      }
    } catch (e) {
      expect((e as Error).name).toBe("AbortError");
    }
    expect(received).toBe(3);
    // The generation was cut short (it ended in an abort, not at its limit) and frees the engine.
    let h = await health(s);
    for (let i = 0; i < 100 && (h.requests.aborted === before.aborted || h.queue.running); i++) {
      await Bun.sleep(20);
      h = await health(s);
    }
    expect(h.requests.aborted).toBe(before.aborted + 1);
    expect(h.queue).toMatchObject({ running: 0, waiting: 0 });
    expect(h.requests.tokens_generated).toBe(before.tokens_generated);
    const next = await post(`${s.url}/v1/chat/completions`, ask("What is a cat?", { max_tokens: 3 }));
    expect(next.status).toBe(200);
    expect((await next.json()).usage.completion_tokens).toBe(3);
    expect((await health(s)).requests.server_errors).toBe(0);
  });

  test("a client that gives up while waiting in line leaves it without running", async () => {
    const s = await started(["--max-tokens", "480"]);
    const until = async (pred: (h: { queue: { running: number; waiting: number } }) => boolean) => {
      for (let i = 0; i < 500 && !pred(await health(s)); i++) await Bun.sleep(5);
    };
    const first = post(`${s.url}/v1/chat/completions`, ask("What is Python used for?", { max_tokens: 480 }));
    await until((h) => h.queue.running === 1);
    const controller = new AbortController();
    const second = post(`${s.url}/v1/chat/completions`, ask("What is a cat?", { max_tokens: 480 }), { signal: controller.signal }).catch((e: Error) => e.name);
    await until((h) => h.queue.waiting === 1);
    controller.abort();
    expect(await second).toBe("AbortError");
    await until((h) => h.queue.waiting === 0);
    expect((await health(s)).queue.waiting).toBe(0);
    expect((await (await first).json()).usage.completion_tokens).toBe(480);
    await until((h) => h.queue.running === 0);
    // Only the first answer was generated; the second never started, so it was not an abort mid-answer.
    expect((await health(s)).requests).toMatchObject({ ok: 1, aborted: 0, tokens_generated: 480, server_errors: 0 });
  });

  test("SIGTERM during an answer: the answer is cut, the server exits 0", async () => {
    const s = await serve(f, ["--max-tokens", "480"]);
    const res = await post(`${s.url}/v1/chat/completions`, ask("What is Python used for?", { max_tokens: 480, stream: true }));
    const events: string[] = [];
    try {
      for await (const d of sseData(res)) {
        events.push(d);
        if (events.length === 3) s.proc.kill("SIGTERM");
      }
    } catch {
      /* the connection is closed under the reader */
    }
    expect(await s.proc.exited).toBe(0);
    expect(events).not.toContain("[DONE]");
    expect(s.stderr()).toContain("SIGTERM: stopping");
  });

  test("24 concurrent requests (streamed and not) wait their turn and are all answered", async () => {
    const s = await started(["--max-tokens", "480"]);
    const one = async (i: number) => {
      const stream = i % 2 === 0;
      const res = await post(`${s.url}/v1/chat/completions`, ask(`Question number ${i}: what is Python?`, { max_tokens: 16, stream }));
      expect(res.status).toBe(200);
      if (!stream) return (await res.json()).usage.completion_tokens as number;
      const events: string[] = [];
      for await (const d of sseData(res)) events.push(d);
      expect(events.at(-1)).toBe("[DONE]");
      return events.filter((e) => e !== "[DONE]" && JSON.parse(e).choices[0]?.finish_reason).length;
    };
    const peak = { waiting: 0 };
    const watch = setInterval(async () => (peak.waiting = Math.max(peak.waiting, (await health(s)).queue.waiting)), 5);
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => one(i)));
    clearInterval(watch);
    expect(results.filter((r, i) => (i % 2 === 0 ? r === 1 : r > 0 && r <= 16)).length).toBe(24);
    expect(peak.waiting).toBeGreaterThan(0);
    const h = await health(s);
    expect(h.queue).toMatchObject({ running: 0, waiting: 0 });
    expect(h.requests).toMatchObject({ ok: 24, rejected_busy: 0, server_errors: 0 });
  });

  test("a full queue answers 429 at once; the requests it took are answered; the server carries on", async () => {
    const s = await started(["--queue", "2", "--max-tokens", "480"]);
    const statuses = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const res = await post(`${s.url}/v1/chat/completions`, ask("What is Python used for?", { max_tokens: 480 }));
        if (res.status === 429) {
          expect(res.headers.get("retry-after")).toBe("1");
          expect((await res.json()).error).toMatchObject({ type: "rate_limit_error", code: "queue_full" });
        } else expect((await res.json()).usage.completion_tokens).toBe(480);
        return res.status;
      }),
    );
    // One runs and two wait; the other five are turned away at once.
    expect(statuses.filter((x) => x === 200).length).toBe(3);
    expect(statuses.filter((x) => x === 429).length).toBe(5);
    expect((await post(`${s.url}/v1/chat/completions`, ask("hi", { max_tokens: 2 }))).status).toBe(200);
    expect((await health(s)).requests).toMatchObject({ ok: 4, rejected_busy: 5, server_errors: 0 });
  });
});
