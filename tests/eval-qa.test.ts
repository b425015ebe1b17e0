import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AnswerRecord, qaSummary, unsupportedWords } from "../src/rag/metrics.ts";
import { cli, tempDir } from "./helpers.ts";
import { type AnswerFixture, answerFixture } from "./answer-fixture.ts";

const KEYS = ["em", "f1", "citation_precision", "citation_recall", "citation_validity", "hallucination_rate", "abstention_accuracy", "mean_hops", "questions"];

describe("eval qa metrics on hand-made answers", () => {
  const rec = (o: Partial<AnswerRecord>): AnswerRecord => ({ id: "q", type: "single", question: "?", gold: "Paris", answerable: true, relevant_docs: ["d1"], prediction: "Paris [1].", citedIds: ["d1"], invalidCitations: 0, contextIds: ["d1", "d2"], hops: 0, contextText: "Paris is the capital of France.", ...o });
  test("each definition (docs/answering.md) on a small set", () => {
    const rs = [
      rec({}), // right, cites gold
      rec({ prediction: "Lyon city [2] [9].", citedIds: ["d2"], invalidCitations: 1, hops: 2 }), // wrong, cites a distractor and a number that names nothing
      rec({ gold: "Rome, Milan", relevant_docs: ["d1", "d3"], prediction: "Rome [1]", contextText: "Rome." }), // half the gold cited
      rec({ answerable: false, gold: "The documents do not say.", relevant_docs: [], prediction: "The documents do not say.", citedIds: [] }),
      rec({ answerable: false, gold: "The documents do not say.", relevant_docs: [], prediction: "Berlin [1].", citedIds: ["d1"] }),
    ];
    const s = qaSummary(rs);
    expect(s.questions).toBe(5);
    expect(s.em).toBeCloseTo(1 / 3, 4);
    expect(s.f1).toBeCloseTo((1 + 0 + 2 / 3) / 3, 4); // "rome" vs "rome milan": P 1, R 1/2
    expect(s.citation_precision).toBeCloseTo(2 / 4, 4); // answerable: 4 citations, 2 name a gold document
    expect(s.citation_recall).toBeCloseTo((1 + 0 + 0.5) / 3, 4);
    expect(s.citation_validity).toBeCloseTo(4 / 5, 4); // all answers: 5 citations, one names nothing
    // words not in the shown text: "lyon", "city" (of 2); "berlin" (of 1); the abstention claims nothing
    expect(s.hallucination_rate).toBeCloseTo(3 / 5, 4);
    expect(s.abstention_accuracy).toBeCloseTo(4 / 5, 4);
    expect(s.mean_hops).toBeCloseTo(0.4, 4);
    expect(unsupportedWords("The capital [1]", "Paris is the capital")).toEqual({ unsupported: 0, words: 1 });
  });
  test("nothing measured is null, not 0", () => {
    const s = qaSummary([rec({ answerable: false, gold: "x", relevant_docs: [], prediction: "The documents do not say.", citedIds: [] })]);
    expect([s.em, s.f1, s.citation_precision, s.citation_recall, s.citation_validity, s.hallucination_rate, s.ttft_ms]).toEqual([null, null, null, null, null, null, null]);
    expect(s.abstention_accuracy).toBe(1);
  });
});

describe("nanorag eval qa", () => {
  let f: AnswerFixture;
  let dir: string;
  beforeAll(() => {
    f = answerFixture();
    dir = tempDir("nanorag-evalqa-");
  });

  test("two models x three modes: one table, --json keys per model and mode, an HTML report, records", () => {
    const html = join(dir, "report.html");
    const records = join(dir, "records.jsonl");
    const args = ["eval", "qa", "--model", f.refrag, "--model", f.rag, "--kb", f.kb, "--questions", f.questions, "--modes", "none,rag,refrag"];
    const r = cli([...args, "--json", "--html", html, "--records", records]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j.models)).toEqual([f.refrag, f.rag]);
    const n = readFileSync(f.questions, "utf8").trim().split("\n").length;
    for (const byMode of Object.values(j.models) as Record<string, Record<string, number | null>>[]) {
      expect(Object.keys(byMode)).toEqual(["none", "rag", "refrag"]);
      for (const m of Object.values(byMode)) {
        expect(Object.keys(m)).toEqual(expect.arrayContaining(KEYS));
        expect(m.questions).toBe(n);
      }
      expect(byMode.none!.hallucination_rate === null || byMode.none!.hallucination_rate === 1).toBe(true); // closed-book: nothing shown supports any word
    }
    expect(readFileSync(records, "utf8").trim().split("\n")).toHaveLength(2 * 3 * n);
    const page = readFileSync(html, "utf8");
    expect(page).toContain("<svg");
    expect(page).toContain("Hallucination rate");
    expect(page).not.toMatch(/<script|<link|src=|href=/); // self-contained
    const table = cli(args);
    expect(table.stdout.split("\n")[0]).toMatch(/^model +mode +questions +em +f1 +citation_precision/);
    expect(table.stdout.trim().split("\n")).toHaveLength(2 + 6);
  });

  test("one model: --json also has modes at the top", () => {
    const r = cli(["eval", "qa", "--model", f.refrag, "--kb", f.kb, "--questions", f.questions, "--modes", "rag", "--json"]);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j.modes)).toEqual(["rag"]);
    expect(j.modes.rag).toEqual(j.models[f.refrag].rag);
  });

  test("--by-type: a row per question type beside all, and by_type in --json, each over its own questions", () => {
    const types = new Map<string, number>();
    for (const l of readFileSync(f.questions, "utf8").trim().split("\n")) {
      const t = JSON.parse(l).type as string;
      types.set(t, (types.get(t) ?? 0) + 1);
    }
    expect(types.size).toBeGreaterThan(1);
    const args = ["eval", "qa", "--model", f.refrag, "--kb", f.kb, "--questions", f.questions, "--modes", "rag,refrag", "--by-type"];
    const j = JSON.parse(cli([...args, "--json"]).stdout);
    const plain = JSON.parse(cli(["eval", "qa", "--model", f.refrag, "--kb", f.kb, "--questions", f.questions, "--modes", "rag", "--json"]).stdout);
    for (const mode of ["rag", "refrag"]) {
      const m = j.modes[mode];
      expect(Object.keys(m.by_type).sort()).toEqual([...types.keys()].sort());
      for (const [t, n] of types) expect(m.by_type[t].questions).toBe(n);
      expect(m.questions).toBe([...types.values()].reduce((a, b) => a + b, 0));
    }
    const { by_type: _, ...ragAll } = j.modes.rag;
    expect(ragAll).toMatchObject({ ...plain.modes.rag, ttft_ms: expect.any(Number), tokens_per_s: expect.any(Number) }); // the all row is the plain summary
    const table = cli(args).stdout.trim().split("\n");
    expect(table[0]).toMatch(/^model +mode +type +questions +em/);
    expect(table).toHaveLength(2 + 2 * (types.size + 1));
  });

  test("bad input: unknown mode, malformed questions, missing model: exit 2 with the reason", () => {
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, '{"id":"1","question":"q","answer":"a","relevant_docs":["x"]}\n{"id":"2","question":"q","answer":"a","relevant_docs":"x"}\n');
    const cases: [string[], RegExp][] = [
      [["--model", f.refrag, "--questions", f.questions, "--modes", "rag,refarg"], /unknown mode "refarg".*Did you mean "refrag"/],
      [["--model", f.refrag, "--questions", bad], /bad\.jsonl:2: field "relevant_docs": must be an array/],
      [["--model", join(dir, "nope"), "--questions", f.questions], /nope: no such file or folder/],
    ];
    for (const [args, msg] of cases) {
      const r = cli(["eval", "qa", "--kb", f.kb, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});
