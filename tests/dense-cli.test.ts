import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BUN, cli, PETS, ROOT, sha256, tempDir, writeJsonl } from "./helpers.ts";

const dir = tempDir("nanorag-dense-cli-");
const docs = writeJsonl(join(dir, "pets.jsonl"), PETS);
const kb = join(dir, "pets.db");
let server: Server<unknown>;

/** The CLI, asynchronously (a server in this process must keep answering while it runs). */
async function cliAsync(args: string[]) {
  const p = Bun.spawn([BUN, join(ROOT, "src/cli/main.ts"), ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

beforeAll(() => {
  expect(cli(["kb", "build", "--input", docs, "--kb", kb]).code).toBe(0);
  server = Bun.serve({
    port: 0,
    async fetch(req) {
      const { input } = (await req.json()) as { input: string[] };
      const vec = (t: string) => Array.from({ length: 8 }, (_, i) => (t.toLowerCase().includes("mice") ? (i === 0 ? 1 : 0) : (t.length % 7) + i));
      return Response.json({ data: input.map((t, index) => ({ index, embedding: vec(t) })) });
    },
  });
});
afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("dense and hybrid through the CLI", () => {
  test("a default build indexes dense (lsa); search, filters and --explain work", () => {
    const stats = JSON.parse(cli(["kb", "stats", "--kb", kb, "--json"]).stdout);
    expect(stats.indexed).toContain("dense");
    expect(JSON.parse(stats.meta["dense.embedder"]).name).toBe("lsa");
    const d = JSON.parse(cli(["kb", "search", "--kb", kb, "-r", "dense", "--json", "mice that purr"]).stdout);
    expect(d.hits[0].docId).toBe("cats");
    const f = JSON.parse(cli(["kb", "search", "--kb", kb, "-r", "dense", "--filter", "source=book", "--json", "mice that purr"]).stdout);
    expect(f.hits.every((h: { docId: string }) => h.docId === "dogs")).toBe(true);
    const q = JSON.parse(cli(["kb", "search", "--kb", kb, "-r", "dense", "--opt", "mode=quantized,oversample=3", "--json", "mice that purr"]).stdout);
    expect(q.hits[0].docId).toBe("cats");
    const h = cli(["kb", "search", "--kb", kb, "-r", "hybrid", "--opt", "components=bm25+dense,method=cc,weight=0.6", "--explain", "mice that purr"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/explain: bm25 #1 \([0-9.]+\), dense #1 \(/);
    const hj = JSON.parse(cli(["kb", "search", "--kb", kb, "-r", "hybrid-rrf", "--filter", "source=web", "--json", "mice"]).stdout);
    expect(hj.hits[0].explain.bm25.rank).toBe(1);
    expect(hj.hits.map((x: { docId: string }) => x.docId).sort()).toEqual(["cats"]);
  });

  test("another embedder is refused at search and add time, and the KB file is untouched", () => {
    const before = sha256(kb);
    const s = cli(["kb", "search", "--kb", kb, "-r", "dense", "--embedder", "lsa:dim=8", "cats"]);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain("embedder mismatch");
    const a = cli(["kb", "add", "--kb", kb, "--input", writeJsonl(join(dir, "more.jsonl"), [{ id: "owl", content: "owls hunt mice" }]), "--embedder", "http:url=http://127.0.0.1:1/v1"]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("embedder mismatch");
    expect(sha256(kb)).toBe(before);
  });

  test("an unreachable http embedder fails the build clearly and writes no KB", () => {
    const out = join(dir, "http-down.db");
    const r = cli(["kb", "build", "--input", docs, "--kb", out, "--embedder", "http:url=http://127.0.0.1:1/v1,model=m,retries=0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot reach http://127.0.0.1:1/v1/embeddings");
    expect(existsSync(out)).toBe(false);
  });

  test("an http-embedded KB through the CLI, then reindex switches it to lsa", async () => {
    const out = join(dir, "http.db");
    const b = await cliAsync(["kb", "build", "--input", docs, "--kb", out, "--embedder", `http:url=http://localhost:${server.port}/v1,model=toy`]);
    expect(b.code).toBe(0);
    const s = await cliAsync(["kb", "search", "--kb", out, "-r", "dense", "--json", "mice"]);
    expect(JSON.parse(s.stdout).hits[0].docId).toBe("cats");
    expect((await cliAsync(["kb", "search", "--kb", out, "-r", "dense", "--embedder", "http:model=other", "mice"])).stderr).toContain("model other != toy");
    expect((await cliAsync(["kb", "reindex", "--kb", out, "--embedder", "lsa:dim=8"])).code).toBe(0);
    const meta = JSON.parse((await cliAsync(["kb", "stats", "--kb", out, "--json"])).stdout).meta;
    expect(JSON.parse(meta["dense.embedder"])).toMatchObject({ name: "lsa", dim: 8 });
    expect((await cliAsync(["kb", "doctor", "--kb", out])).code).toBe(0);
  });
});
