import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, cli, PETS, ROOT, tempDir, WORD_COUNT_PLUGIN, writeJsonl } from "./helpers.ts";

describe("the compiled binary", () => {
  test("runs kb build + kb search and a drop-in plugin from an empty folder, with no node_modules in reach", () => {
    const build = Bun.spawnSync([BUN, join(ROOT, "src/scripts/build.ts")], { cwd: ROOT, stderr: "pipe" });
    expect(build.exitCode).toBe(0);
    const dir = tempDir("nanorag-bin-");
    const bin = join(dir, "nanorag");
    copyFileSync(join(ROOT, "dist/nanorag"), bin);
    Bun.spawnSync(["chmod", "+x", bin]);
    writeJsonl(join(dir, "docs.jsonl"), PETS);
    const env = { NODE_PATH: "", BUN_INSTALL: dir };
    const built = cli(["kb", "build", "--input", "docs.jsonl", "--kb", "kb.db", "--json"], { bin, cwd: dir, env });
    expect(built.code).toBe(0);
    expect(JSON.parse(built.stdout).documents).toBe(PETS.length);
    const hits = JSON.parse(cli(["kb", "search", "--kb", "kb.db", "--json", "garbage collection"], { bin, cwd: dir, env }).stdout).hits;
    expect(hits[0].docId).toBe("rust");
    mkdirSync(join(dir, "plugins"));
    writeFileSync(join(dir, "plugins/wordcount.ts"), WORD_COUNT_PLUGIN);
    const plugin = cli(["kb", "search", "--kb", "kb.db", "-r", "wordcount", "--json", "loyal wolves"], { bin, cwd: dir, env });
    expect(plugin.code).toBe(0);
    expect(JSON.parse(plugin.stdout).hits[0]).toMatchObject({ docId: "dogs", score: 2 });
    // The embedded native library: prepare data and train a tokenizer with it.
    expect(cli(["prepare", "--mode", "example", "--out", "ex"], { bin, cwd: dir, env }).code).toBe(0);
    const tok = cli(["tokenizer", "train", "--input", "ex/documents.jsonl", "--vocab-size", "300", "--out", "tok.json", "--json"], { bin, cwd: dir, env });
    expect(tok.code).toBe(0);
    expect(JSON.parse(tok.stdout)).toMatchObject({ vocabSize: 300 });
  });

  test("serves the chat page embedded in it (after the build above)", async () => {
    const dir = tempDir("nanorag-bin-serve-");
    const bin = join(dir, "nanorag");
    copyFileSync(join(ROOT, "dist/nanorag"), bin);
    Bun.spawnSync(["chmod", "+x", bin]);
    const env = { NODE_PATH: "", BUN_INSTALL: dir };
    expect(cli(["prepare", "--mode", "example", "--out", "ex"], { bin, cwd: dir, env }).code).toBe(0);
    expect(cli(["kb", "build", "--input", "ex/documents.jsonl", "--kb", "kb.db"], { bin, cwd: dir, env }).code).toBe(0);
    expect(cli(["pretrain", "--kb", "kb.db", "--config", "cpu_tiny", "--steps", "1", "--vocab-size", "300", "--out", "m"], { bin, cwd: dir, env }).code).toBe(0);
    const proc = Bun.spawn([bin, "serve", "--model", "m", "--kb", "kb.db", "--port", "0"], { cwd: dir, env: { ...process.env, ...env }, stdout: "pipe", stderr: "ignore" });
    try {
      const { value } = await proc.stdout.getReader().read();
      const url = new TextDecoder().decode(value).trim();
      expect(await (await fetch(`${url}/`)).text()).toContain('<script src="/app.js">');
      expect(await (await fetch(`${url}/app.js`)).text()).toContain("/v1/chat/completions");
      expect((await fetch(`${url}/style.css`)).headers.get("content-type")).toContain("text/css");
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  });
});

describe("the compiled binary's training processes", () => {
  test("starts its own workers for --nproc-per-node and finds a CUDA library beside itself (after the build above)", () => {
    const dir = tempDir("nanorag-bin-dist-");
    const bin = join(dir, "nanorag");
    copyFileSync(join(ROOT, "dist/nanorag"), bin);
    Bun.spawnSync(["chmod", "+x", bin]);
    writeFileSync(join(dir, "libnanorag_cuda.so"), "not a library"); // auto must try it, fail, and say so
    const env = { NODE_PATH: "", BUN_INSTALL: dir, NANORAG_CUDA_LIB: "" };
    expect(cli(["prepare", "--mode", "example", "--out", "ex"], { bin, cwd: dir, env }).code).toBe(0);
    const r = cli(["pretrain", "--corpus", "ex/documents.jsonl", "--vocab-size", "300", "--config", "cpu_tiny", "--steps", "2", "--device-batch", "1", "--threads", "2", "--nproc-per-node", "2", "--out", "run"], { bin, cwd: dir, env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("launching ranks 0..1 of 2");
    expect(r.stderr).toContain(`--device auto: running on the CPU because cannot load the native engine (${join(dir, "libnanorag_cuda.so")})`);
    expect(existsSync(join(dir, "run/checkpoints/final/config.json"))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });
});
