import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, cli, PETS, ROOT, tempDir, WORD_COUNT_PLUGIN, writeJsonl } from "./helpers.ts";

function kbWithPets() {
  const dir = tempDir();
  const kb = join(dir, "kb.db");
  expect(cli(["kb", "build", "--input", writeJsonl(join(dir, "d.jsonl"), PETS), "--kb", kb, "--retrievers", "bm25"]).code).toBe(0);
  return { dir, kb };
}

describe("drop-in retriever plugins", () => {
  test("a plugin in --plugins DIR is loaded and searched, importing from \"nanorag\"", () => {
    const { dir, kb } = kbWithPets();
    mkdirSync(join(dir, "mine"));
    writeFileSync(join(dir, "mine/wordcount.ts"), WORD_COUNT_PLUGIN);
    const r = cli(["kb", "search", "--kb", kb, "--plugins", join(dir, "mine"), "-r", "wordcount", "--json", "memory safety garbage"]);
    expect(r.stderr).toBe("");
    const hits = JSON.parse(r.stdout).hits;
    expect(hits[0]).toMatchObject({ docId: "rust", score: 3 });
  });

  test("plugins are found in ./plugins and ~/.config/nanorag/plugins; a .js factory works too", () => {
    const { dir, kb } = kbWithPets();
    mkdirSync(join(dir, "plugins"));
    writeFileSync(join(dir, "plugins/wordcount.ts"), WORD_COUNT_PLUGIN);
    expect(cli(["kb", "search", "--kb", kb, "-r", "wordcount", "wolves"], { cwd: dir }).stdout).toContain("Dogs");
    const home = tempDir();
    mkdirSync(join(home, ".config/nanorag/plugins"), { recursive: true });
    writeFileSync(join(home, ".config/nanorag/plugins/first.js"), `export default (api) => api.definePlugin({ name: "first", search: (ctx, q, o) => api.rankHits(ctx.chunksById([1]).map((c) => ({ chunkId: c.id, docId: c.docId, title: c.title, text: c.text, score: 1 }))) });\n`);
    const r = cli(["kb", "search", "--kb", kb, "-r", "first", "--json", "anything"], { env: { HOME: home } });
    expect(JSON.parse(r.stdout).hits.map((h: { docId: string }) => h.docId)).toEqual(["cats"]);
  });

  test("a plugin without a search function is refused by name", () => {
    const { dir, kb } = kbWithPets();
    mkdirSync(join(dir, "bad"));
    writeFileSync(join(dir, "bad/oops.ts"), `export default { name: "oops" };\n`);
    const r = cli(["kb", "search", "--kb", kb, "--plugins", join(dir, "bad"), "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("oops.ts: the default export must be a retriever");
  });

  test("plugins/nanorag.d.ts is current and type-checks a user's plugin", () => {
    expect(Bun.spawnSync([BUN, join(ROOT, "src/scripts/plugin-types.ts"), "--check"]).exitCode).toBe(0);
    const dir = tempDir();
    writeFileSync(join(dir, "wordcount.ts"), WORD_COUNT_PLUGIN.replace('import Fuse from "fuse.js";\n', "").replace(/ {4}if \(typeof Fuse.*\n/, ""));
    copyFileSync(join(ROOT, "plugins/nanorag.d.ts"), join(dir, "nanorag.d.ts"));
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: "Preserve", moduleResolution: "bundler", target: "ESNext", typeRoots: [join(ROOT, "node_modules/@types")], types: ["bun"] }, files: ["nanorag.d.ts", "wordcount.ts"] }));
    const tsc = Bun.spawnSync([join(ROOT, "node_modules/.bin/tsc"), "-p", dir]);
    expect(tsc.stdout.toString()).toBe("");
    expect(tsc.exitCode).toBe(0);
  });
});
