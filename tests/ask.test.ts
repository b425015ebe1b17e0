import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempDir, writeJsonl } from "./helpers.ts";
import { type AnswerFixture, answerFixture } from "./answer-fixture.ts";

let f: AnswerFixture;
let dir: string;
beforeAll(() => {
  f = answerFixture();
  dir = tempDir("nanorag-ask-");
});

const lines = (path: string) => readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
/** The rows without their timings, which differ from run to run. */
const untimed = (path: string) => lines(path).map(({ timings, ...rest }) => rest);
const questions = () =>
  writeJsonl(join(dir, "q.jsonl"), [
    { id: "a", question: "Who founded Felmor Corporation?" },
    { id: 7, question: "Where is Felmor Corporation?" },
    { query: "When did Felmor Corporation open?" },
  ]);

describe("nanorag ask", () => {
  test("answers every question into --out as JSONL, with progress (rate, ETA) on stderr", () => {
    const out = join(dir, "out.jsonl");
    const r = cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", questions(), "--out", out, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ questions: 3, answered: 3, skipped: 0 });
    expect(r.stderr).toMatch(/ask 3\/3 \(100%\) [\d.,]+ questions\/s, ETA/);
    const rows = lines(out);
    expect(rows.map((x) => x.id)).toEqual(["a", "7", "q3"]);
    expect(Object.keys(rows[0]).sort()).toEqual(["answer", "citations", "finished", "hops", "id", "invalid_citations", "queries", "question", "sources", "timings"]);
    // the same answer chat gives for the question
    expect(JSON.parse(cli(["chat", "--model", f.refrag, "--kb", f.kb, "-p", "Who founded Felmor Corporation?", "--json"]).stdout).answer).toBe(rows[0].answer);
  });

  test("resumes: answered ids are skipped, a partially written last line is answered again", () => {
    const out = join(dir, "resume.jsonl");
    const q = questions();
    expect(cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", q, "--out", out]).code).toBe(0);
    const full = untimed(out);
    const rows = readFileSync(out, "utf8").trim().split("\n");
    writeFileSync(out, `${rows[0]}\n${rows[1]!.slice(0, 40)}`); // a crash mid-line
    const r = cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", q, "--out", out, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ answered: 2, skipped: 1 });
    expect(r.stderr).toContain("dropping a partially written last line");
    expect(untimed(out)).toEqual(full);
    const again = cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", q, "--out", out, "--json"]);
    expect(JSON.parse(again.stdout)).toMatchObject({ answered: 0, skipped: 3 });
    expect(untimed(out)).toEqual(full);
  });

  test("a question longer than the model's context gets an error line; the others are answered", () => {
    const out = join(dir, "long.jsonl");
    const q = writeJsonl(join(dir, "q-long.jsonl"), [
      { id: "long", question: "Felmor ".repeat(2000) },
      { id: "ok", question: "Where is Felmor Corporation?" },
    ]);
    const r = cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", q, "--out", out, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ answered: 1, failed: 1 });
    const rows = lines(out);
    expect(rows[0]).toMatchObject({ id: "long", error: expect.stringMatching(/Conversation needs \d+ tokens/) });
    expect(typeof rows[1].answer).toBe("string");
  });

  test("bad input: file:line:field errors, exit 2, --out untouched", () => {
    const out = join(dir, "bad-out.jsonl");
    const cases: [string, RegExp][] = [
      ['{"id": "a", "question": "ok"}\n{"id": "b"}\n', /q-bad\.jsonl:2: field "question": is missing/],
      ['{"id": "a", "question": "ok"}\n{"question": "x",\n', /q-bad\.jsonl:2: malformed JSON/],
      ['{"id": "a", "question": "ok"}\n{"id": "a", "question": "again"}\n', /q-bad\.jsonl:2: field "id": duplicate id "a"/],
      ['{"id": ["x"], "question": "ok"}\n', /q-bad\.jsonl:1: field "id": must be a string or a number/],
      ['{"id": "a", "question": "  "}\n', /q-bad\.jsonl:1: field "question": is empty/],
    ];
    for (const [text, msg] of cases) {
      writeFileSync(join(dir, "q-bad.jsonl"), text);
      const r = cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", join(dir, "q-bad.jsonl"), "--out", out]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(existsSync(out)).toBe(false);
    }
    const missing = cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", join(dir, "nope.jsonl"), "--out", out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.jsonl does not exist");
    // an --out that is not ask's output is refused rather than appended to
    writeFileSync(out, '{"x": 1}\n');
    const foreign = cli(["ask", "--model", f.refrag, "--kb", f.kb, "--questions", questions(), "--out", out]);
    expect(foreign.code).toBe(2);
    expect(foreign.stderr).toMatch(/bad-out\.jsonl:1: field "id": missing/);
    expect(readFileSync(out, "utf8")).toBe('{"x": 1}\n');
  });
});
