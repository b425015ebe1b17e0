/**
 * A tiny trained model and knowledge bases for the answering tests (answer, chat, ask, eval qa):
 * `nanorag pipeline` on a 60-entity world with cpu_tiny and a few steps (seconds), plus the seed's
 * example KB. Built once per test process and shared by the files that ask for it; the fixtures of
 * finished test processes are removed when the next one builds its own.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "./helpers.ts";

export interface AnswerFixture {
  dir: string;
  /** REFRAG run folder (rl/ and sft/ checkpoints inside) */
  refrag: string;
  /** RAG run folder (checkpoints/final) */
  rag: string;
  /** the synthetic world's KB and questions */
  kb: string;
  questions: string;
  /** the seed's example: 10 documents, bm25 */
  exampleKb: string;
}

const PREFIX = "nanorag-answer-fixture-";
const dir = join(tmpdir(), `${PREFIX}${process.pid}`);

/** Fixtures of test processes that have ended (bun test runs no exit hook to remove them). */
function removeStale(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length));
    let alive = pid === process.pid;
    try {
      if (!alive) alive = process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive || pid === process.pid) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function must(args: string[]): void {
  const r = cli(args);
  if (r.code !== 0) throw new Error(`nanorag ${args.join(" ")} failed (${r.code}):\n${r.stderr}`);
}

export function answerFixture(): AnswerFixture {
  const p = join(dir, "p");
  const f: AnswerFixture = { dir, refrag: join(p, "refrag"), rag: join(p, "rag"), kb: join(p, "kb.db"), questions: join(p, "data", "test.jsonl"), exampleKb: join(dir, "example.db") };
  if (existsSync(join(dir, "done"))) return f;
  removeStale();
  must(["pipeline", "--out", p, "--entities", "60", "--world-seed", "7", "--vocab-size", "400", "--test-n", "2", "--config", "cpu_tiny", "--seq-len", "512", "--threads", "1", "--steps", "4", "--pretrain-steps", "3", "--refrag-steps", "3", "--rl-steps", "1", "--use-rewards"]);
  must(["prepare", "--mode", "example", "--out", join(dir, "example")]);
  must(["kb", "build", "--input", join(dir, "example", "documents.jsonl"), "--kb", f.exampleKb]);
  writeFileSync(join(dir, "done"), "");
  return f;
}
