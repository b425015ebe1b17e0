/**
 * The main job on the bundled example data, through the same CLI a user runs: prepare the seed's
 * 10 documents and 5 questions, build the KB (SQLite file, all indexing retrievers), compare the
 * retrievers, and answer one search. Output goes to runs/example/.
 */
import { join } from "node:path";
import { run } from "../cli/main.ts";

const out = join(import.meta.dir, "../../runs/example");
const steps: string[][] = [
  ["prepare", "--mode", "example", "--out", out],
  ["kb", "build", "--input", join(out, "documents.jsonl"), "--kb", join(out, "kb.db")],
  ["eval", "retrieval", "--kb", join(out, "kb.db"), "--queries", join(out, "queries.jsonl"), "-r", "simple,bm25,dense,hybrid-rrf,hybrid-cc"],
  ["kb", "search", "--kb", join(out, "kb.db"), "--retriever", "hybrid-rrf", "--top-k", "3", "How do state space models differ from transformers?"],
];
for (const argv of steps) {
  process.stderr.write(`\n$ nanorag ${argv.map((a) => (a.includes(" ") ? JSON.stringify(a) : a)).join(" ")}\n`);
  const code = await run(argv);
  if (code !== 0) process.exit(code);
}
