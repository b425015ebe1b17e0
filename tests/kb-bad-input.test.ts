import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, PETS, sha256, tempDir, writeJsonl } from "./helpers.ts";

/** A KB that must come through every failed write byte-for-byte unchanged. */
function guardedKb() {
  const dir = tempDir();
  const kb = join(dir, "kb.db");
  expect(cli(["kb", "build", "--input", writeJsonl(join(dir, "good.jsonl"), PETS), "--kb", kb]).code).toBe(0);
  return { dir, kb, hash: sha256(kb) };
}

const lines = (...rows: string[]) => rows.join("\n") + "\n";
const good = (id: string) => JSON.stringify({ id, title: id, content: `content of ${id}` });

const cases: Array<{ name: string; write: (p: string) => void; expect: RegExp }> = [
  { name: "a malformed line", write: (p) => writeFileSync(p, lines(good("n1"), "{not json", good("n3"))), expect: /bad\.jsonl:2: malformed JSON/ },
  { name: "a missing content field", write: (p) => writeFileSync(p, lines(good("n1"), good("n2"), JSON.stringify({ id: "n3", title: "t" }))), expect: /bad\.jsonl:3: field "content": missing required field/ },
  { name: "content of the wrong type", write: (p) => writeFileSync(p, lines(JSON.stringify({ id: "n1", content: 42.5 }), JSON.stringify({ id: "n2", content: ["x"] }))), expect: /bad\.jsonl:2: field "content": expected a string, got an array/ },
  { name: "a duplicate id within one input", write: (p) => writeFileSync(p, lines(good("n1"), good("n2"), good("n1"))), expect: /bad\.jsonl:3: field "id": duplicate id "n1" \(first on line 1\)/ },
  { name: "an empty file", write: (p) => writeFileSync(p, ""), expect: /bad\.jsonl: empty file/ },
  { name: "a non-UTF-8 file", write: (p) => writeFileSync(p, Buffer.concat([Buffer.from(lines(good("n1")) + '{"id":"n2","content":"caf'), Buffer.from([0xe9, 0x22, 0x7d, 0x0a])])), expect: /bad\.jsonl:2: not valid UTF-8/ },
];

describe("bad input is refused with file, line and field; exit 2; the KB is unchanged", () => {
  for (const c of cases) {
    test(`kb add: ${c.name}`, () => {
      const { dir, kb, hash } = guardedKb();
      const bad = join(dir, "bad.jsonl");
      c.write(bad);
      const r = cli(["kb", "add", "--input", bad, "--kb", kb]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(c.expect);
      expect(r.stdout).toBe("");
      expect(sha256(kb)).toBe(hash);
    });
  }

  test("kb build over an existing KB with bad input leaves it unchanged and no temp file behind", () => {
    const { dir, kb, hash } = guardedKb();
    const bad = join(dir, "bad.jsonl");
    cases[1]!.write(bad);
    const r = cli(["kb", "build", "--input", bad, "--kb", kb]);
    expect(r.code).toBe(2);
    expect(sha256(kb)).toBe(hash);
    expect([...new Bun.Glob("kb.db*").scanSync(dir)]).toEqual(["kb.db"]);
  });

  test("a KB made by another schema version is refused and untouched", () => {
    const { dir, kb } = guardedKb();
    const old = join(dir, "old.db");
    copyFileSync(kb, old);
    const db = new Database(old);
    db.run("UPDATE meta SET value = '0' WHERE key = 'schema_version'");
    db.close();
    const hash = sha256(old);
    for (const args of [["kb", "add", "--input", join(dir, "good.jsonl"), "--kb", old], ["kb", "search", "--kb", old, "cats"]]) {
      const r = cli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/old\.db: field "schema_version": knowledge base has schema version 0, this nanorag reads version 1/);
      expect(sha256(old)).toBe(hash);
    }
  });

  test("a file that is not a KB is refused", () => {
    const dir = tempDir();
    const notKb = join(dir, "x.db");
    new Database(notKb).close();
    const r = cli(["kb", "stats", "--kb", notKb]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('field "meta": not a nanorag knowledge base');
  });

  test("a failing plugin index hook rolls the whole write back", () => {
    const { dir, kb } = guardedKb();
    const plugins = join(dir, "plugins");
    mkdirSync(plugins);
    // Replaces bm25 with one whose index hook fails part-way through a write.
    writeFileSync(join(plugins, "broken.ts"), `import { definePlugin } from "nanorag";\nexport default definePlugin({ name: "bm25", index() { throw new Error("disk on fire"); }, search: () => [] });\n`);
    const hash = sha256(kb);
    const r = cli(["kb", "add", "--input", writeJsonl(join(dir, "new.jsonl"), [{ id: "new", content: "fresh text" }]), "--kb", kb, "--plugins", plugins]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("disk on fire");
    expect(sha256(kb)).toBe(hash);
  });

  test("bad flag values are refused before anything is written", () => {
    const { dir, kb, hash } = guardedKb();
    const r = cli(["kb", "build", "--input", join(dir, "good.jsonl"), "--kb", kb, "--chunk-size", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--chunk-size must be an integer >= 1");
    expect(sha256(kb)).toBe(hash);
  });
});
