import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, cli, ROOT } from "./helpers.ts";
import { type AnswerFixture, answerFixture } from "./answer-fixture.ts";

let f: AnswerFixture;
beforeAll(() => {
  f = answerFixture();
});

describe("nanorag chat", () => {
  test("-p answers once: the streamed answer, then sources and the citation map", () => {
    const r = cli(["chat", "--model", f.refrag, "--kb", f.exampleKb, "-p", "What is machine learning?"]);
    expect(r.code).toBe(0);
    const [answer, rest] = r.stdout.split("\n\nSources:\n");
    expect(answer!.length).toBeGreaterThan(0);
    expect(rest).toMatch(/^ {2}\[1\] doc_\d+: /);
    expect(rest).toContain("\nCitations:\n");
    // the same answer as --json gives, which also carries the contract's keys
    const j = JSON.parse(cli(["chat", "--model", f.refrag, "--kb", f.exampleKb, "-p", "What is machine learning?", "--json"]).stdout);
    expect(Object.keys(j).sort()).toEqual(["answer", "citations", "finished", "hops", "invalid_citations", "queries", "sources", "timings"]);
    expect(j.answer).toBe(answer);
    expect(j.sources[0]).toMatchObject({ n: 1, id: expect.stringMatching(/^doc_/), title: expect.any(String), snippet: expect.any(String) });
    expect(Object.keys(j.timings)).toEqual(expect.arrayContaining(["retrieve_ms", "prefill_ms", "ttft_ms", "decode_ms", "tokens", "tokens_per_s"]));
  });

  test("retrieval flags reach the retriever: --top-k, --filter, --refrag", () => {
    const one = JSON.parse(cli(["chat", "--model", f.refrag, "--kb", f.exampleKb, "-p", "neural networks", "--top-k", "1", "--json"]).stdout);
    expect(one.sources).toHaveLength(1);
    const none = JSON.parse(cli(["chat", "--model", f.refrag, "--kb", f.exampleKb, "-p", "neural networks", "--filter", "source=nowhere", "--json"]).stdout);
    expect(none.sources).toEqual([]);
    const refrag = cli(["chat", "--model", f.refrag, "--kb", f.kb, "--refrag", "--max-hops", "2", "-p", "Who founded Felmor Corporation?", "--json"]);
    expect(refrag.code).toBe(0);
    expect(JSON.parse(refrag.stdout).hops).toBeLessThanOrEqual(2);
  });

  test("interactive: one turn per stdin line, each retrieving; --json gives one object per line", () => {
    const p = Bun.spawnSync([BUN, join(ROOT, "src/cli/main.ts"), "chat", "--model", f.refrag, "--kb", f.exampleKb, "--json"], {
      stdin: Buffer.from("What is machine learning?\n\nWhat is SQL?\n"),
      env: { ...process.env, NO_COLOR: "1" },
    });
    expect(p.exitCode).toBe(0);
    const turns = p.stdout.toString().trim().split("\n").map((l) => JSON.parse(l));
    expect(turns).toHaveLength(2);
    expect(turns[0].sources.map((s: { id: string }) => s.id)).not.toEqual(turns[1].sources.map((s: { id: string }) => s.id));
  });

  test("--device: cuda without a CUDA library is refused (exit 2); auto takes a library that reports a device", () => {
    const args = ["chat", "--model", f.refrag, "--kb", f.exampleKb, "-p", "What is machine learning?", "--json"];
    const refused = cli([...args, "--device", "cuda"], { env: { NANORAG_CUDA_LIB: "/nonexistent/libnanorag_cuda.so" } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--device cuda: no libnanorag_cuda.so (searched /nonexistent/libnanorag_cuda.so");
    expect(refused.stdout).toBe("");
    // the CPU build stands in for the CUDA one (it reports one device): the answer is the CPU's
    const standIn = cli(args, { env: { NANORAG_CUDA_LIB: join(ROOT, "native/build/libnanorag.so") } });
    expect(standIn.code).toBe(0);
    expect(standIn.stderr).toContain("device: cuda:0 of 1");
    expect(JSON.parse(standIn.stdout).answer).toBe(JSON.parse(cli([...args, "--device", "cpu"]).stdout).answer);
  });

  test("bad input: missing model or KB, unknown retriever, a KB without the index: exit 2 with the reason", () => {
    const cases: [string[], RegExp][] = [
      [["--model", join(f.dir, "nope"), "--kb", f.exampleKb], /--model .*nope: no such file or folder/],
      [["--model", f.dir, "--kb", f.exampleKb], /not a checkpoint/],
      [["--model", f.refrag, "--kb", join(f.dir, "nope.db")], /nope\.db: no such knowledge base/],
      [["--model", f.refrag, "--kb", f.exampleKb, "-r", "bm52"], /Unknown retriever "bm52".*Did you mean "bm25"/],
      [["--model", f.refrag, "--kb", f.kb, "-r", "dense"], /keeps no "dense" index/],
      [["--model", f.refrag, "--kb", f.kb, "--top-k", "0"], /--top-k must be an integer >= 1/],
    ];
    for (const [args, msg] of cases) {
      const r = cli(["chat", ...args, "-p", "hello"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe("");
    }
  });
});
