/**
 * `nanorag prepare`: writes a dataset folder (documents.jsonl for `kb build`, question files, and
 * manifest.json with counts, seed, options and a sha256 per file, so a run can be checked for
 * reproducibility).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { EXAMPLE_DOCUMENTS, EXAMPLE_QUERIES } from "./example.ts";
import { readHotpot } from "./hotpotqa.ts";
import { writeJsonl } from "./jsonl.ts";
import { prng, shuffle } from "./random.ts";
import { type DocumentRow, type QuestionRow, readDocuments, readQuestions } from "./schema.ts";
import { GENERATOR_VERSION, generateWorld } from "./synthetic.ts";

export const MODES = ["example", "synthetic", "build", "hotpotqa"] as const;
export type Mode = (typeof MODES)[number];

export interface PrepareOptions {
  mode: Mode;
  out: string;
  seed?: number;
  entities?: number;
  documents?: string;
  questions?: string;
  input?: string;
  valFraction?: number;
}

export interface Manifest {
  format: "nanorag-dataset";
  version: 1;
  mode: Mode;
  seed: number;
  options: Record<string, unknown>;
  counts: Record<string, unknown>;
  files: Record<string, { rows: number; sha256: string }>;
}

function countTypes(qs: QuestionRow[]): Record<string, number> {
  const c: Record<string, number> = { total: qs.length };
  for (const q of qs) c[q.type] = (c[q.type] ?? 0) + 1;
  return c;
}

/** Seeded train/val split of questions. */
function splitQuestions(qs: QuestionRow[], valFraction: number, seed: number): { train: QuestionRow[]; val: QuestionRow[] } {
  const idx = shuffle(qs.map((_, i) => i), prng(seed, 0x7a1));
  const nVal = Math.round(qs.length * valFraction);
  const val = new Set(idx.slice(0, nVal));
  return { train: qs.filter((_, i) => !val.has(i)), val: qs.filter((_, i) => val.has(i)) };
}

export function prepare(opts: PrepareOptions): Manifest {
  const seed = opts.seed ?? 0;
  const valFraction = opts.valFraction ?? 0.1;
  if (!(valFraction >= 0 && valFraction < 1)) throw new UserError(`--val-fraction must be in [0, 1), got ${valFraction}`);
  mkdirSync(opts.out, { recursive: true });
  const files: Manifest["files"] = {};
  const write = (name: string, rows: unknown[]) => {
    const path = join(opts.out, name);
    const n = writeJsonl(path, rows);
    files[name] = { rows: n, sha256: createHash("sha256").update(readFileSync(path)).digest("hex") };
  };
  let counts: Record<string, unknown> = {};
  const options: Record<string, unknown> = {};
  let documents: DocumentRow[];

  if (opts.mode === "example") {
    documents = EXAMPLE_DOCUMENTS;
    write("documents.jsonl", documents);
    write("queries.jsonl", EXAMPLE_QUERIES);
    counts = { documents: documents.length, queries: EXAMPLE_QUERIES.length };
  } else if (opts.mode === "synthetic") {
    const entities = opts.entities ?? 1000;
    if (!Number.isInteger(entities) || entities < 4) throw new UserError(`--entities must be an integer >= 4, got ${opts.entities}`);
    Object.assign(options, { entities, generator: GENERATOR_VERSION });
    const w = generateWorld({ entities, seed });
    documents = w.documents;
    write("documents.jsonl", documents);
    for (const s of ["train", "val", "test"] as const) write(`${s}.jsonl`, w.questions[s]);
    counts = {
      documents: documents.length,
      entities: w.entities,
      entitiesBySplit: w.entitiesBySplit,
      questions: { train: countTypes(w.questions.train), val: countTypes(w.questions.val), test: countTypes(w.questions.test) },
    };
  } else if (opts.mode === "build") {
    if (!opts.documents || !opts.questions) throw new UserError("--mode build needs --documents FILE and --questions FILE");
    documents = readDocuments(opts.documents);
    const qs = readQuestions(opts.questions, new Set(documents.map((d) => d.id)));
    Object.assign(options, { documents: opts.documents, questions: opts.questions, valFraction });
    const { train, val } = splitQuestions(qs, valFraction, seed);
    write("documents.jsonl", documents);
    write("train.jsonl", train);
    write("val.jsonl", val);
    counts = { documents: documents.length, questions: { train: countTypes(train), val: countTypes(val) } };
  } else if (opts.mode === "hotpotqa") {
    if (!opts.input) throw new UserError("--mode hotpotqa needs --input FILE (HotpotQA JSON or JSONL)");
    const h = readHotpot(opts.input);
    documents = h.documents;
    Object.assign(options, { input: opts.input, valFraction });
    const { train, val } = splitQuestions(h.questions, valFraction, seed);
    write("documents.jsonl", documents);
    write("train.jsonl", train);
    write("val.jsonl", val);
    counts = { documents: documents.length, questions: { train: countTypes(train), val: countTypes(val) } };
  } else {
    throw new UserError(`Unknown mode ${opts.mode}`);
  }
  const manifest: Manifest = { format: "nanorag-dataset", version: 1, mode: opts.mode, seed, options, counts, files };
  writeFileSync(join(opts.out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
