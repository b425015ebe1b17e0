import { defineCommand } from "citty";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { InputError, UserError } from "../errors.ts";
import { formatRate, log } from "../log.ts";
import { Tokenizer } from "../tokenizer/bpe.ts";
import { NAMED_PATTERNS } from "../tokenizer/pattern.ts";
import { PieceCounter, trainFromCounts } from "../tokenizer/train.ts";

const json = { json: { type: "boolean", description: "Print the result as JSON on stdout" } } as const;
const tokArg = { tokenizer: { type: "string", description: "Tokenizer file (nanorag-bpe JSON, or a tiktoken ranks file)", required: true, valueHint: "FILE" } } as const;

function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

function positiveInt(name: string, v: string | undefined, fallback?: number): number {
  if (v === undefined || v === "") {
    if (fallback === undefined) throw new UserError(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

function patternFlag(v: string | undefined): string | undefined {
  if (!v) return undefined;
  return NAMED_PATTERNS[v] ?? v;
}

const TEXT_EXT = new Set([".txt", ".md", ".markdown", ".jsonl", ".text"]);

function listInputs(spec: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const f of readdirSync(p).sort()) {
        const q = join(p, f);
        if (statSync(q).isDirectory() || TEXT_EXT.has(extname(f).toLowerCase())) walk(q);
      }
    } else out.push(p);
  };
  for (const p of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!existsSync(p)) throw new UserError(`Input ${p} does not exist`);
    walk(p);
  }
  return out;
}

/** Feeds a file's training text to the counter: a JSONL file gives each row's title and content (or text). */
function feedFile(path: string, counter: PieceCounter): void {
  const text = readFileSync(path, "utf8");
  if (extname(path).toLowerCase() !== ".jsonl") {
    // Large files go in slices cut after a newline that precedes a non-space character: the
    // pre-split pattern never joins across such a point, so slicing does not change the pieces.
    const SLICE = 8 << 20;
    let start = 0;
    while (start < text.length) {
      let end = Math.min(text.length, start + SLICE);
      if (end < text.length) {
        const re = /\n(?=\S)/g;
        re.lastIndex = end;
        const m = re.exec(text);
        end = m ? m.index + 1 : text.length;
      }
      counter.add(text.slice(start, end));
      start = end;
    }
    return;
  }
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new InputError(path, i + 1, null, `not valid JSON: ${(e as Error).message}`);
    }
    const parts = [row.title, row.content ?? row.text ?? row.question, row.answer].filter((x) => typeof x === "string" && x) as string[];
    if (parts.length === 0) throw new InputError(path, i + 1, "content", "no text field (title, content, text, question)");
    counter.add(parts.join("\n"));
  }
}

const train = defineCommand({
  meta: { name: "train", description: "Train a byte-level BPE tokenizer on your text" },
  args: {
    input: { type: "string", description: "Files or folders (comma-separated): .txt/.md as text, .jsonl rows' title + content", required: true, valueHint: "PATHS" },
    "vocab-size": { type: "string", description: "Vocabulary size including the 13 special tokens", required: true, valueHint: "N" },
    out: { type: "string", description: "Where to write the tokenizer", required: true, valueHint: "FILE" },
    pattern: { type: "string", description: "Pre-split pattern: nanochat (default), gpt4, or a regex in tiktoken syntax" },
    threads: { type: "string", description: "Threads for the pre-split count: 1 or 2 (default: 2 when there are 2 cores)" },
    ...json,
  },
  run({ args }) {
    const threads = args.threads === undefined ? undefined : positiveInt("threads", args.threads);
    const vocabSize = positiveInt("vocab-size", args["vocab-size"]);
    const files = listInputs(args.input);
    if (files.length === 0) throw new UserError(`No input files found in ${args.input}`);
    const pattern = patternFlag(args.pattern);
    const counter = new PieceCounter(pattern, { threads });
    const t0 = performance.now();
    for (const f of files) feedFile(f, counter);
    const countSeconds = (performance.now() - t0) / 1000;
    log.info(`read ${files.length} file(s), ${(counter.bytes / 1e6).toFixed(1)} MB, ${counter.unique} unique pieces in ${countSeconds.toFixed(1)}s`);
    const { tokenizer, stats } = trainFromCounts(counter, { vocabSize, pattern, countSeconds });
    tokenizer.save(args.out);
    const total = stats.countSeconds + stats.mergeSeconds;
    log.success(`wrote ${args.out}: ${tokenizer.vocabSize} tokens (${stats.merges} merges) in ${total.toFixed(1)}s (${formatRate(stats.inputBytes / 1e6 / total)} MB/s)`);
    if (args.json) printJson({ out: args.out, vocabSize: tokenizer.vocabSize, files: files.length, ...stats });
  },
});

function readIds(text: string): number[] {
  const t = text.trim();
  const ids = t.startsWith("[") ? JSON.parse(t) : t.split(/[\s,]+/).filter(Boolean).map(Number);
  if (!Array.isArray(ids) || ids.some((x) => !Number.isInteger(x) || x < 0)) throw new UserError("Token ids must be non-negative integers (a JSON array or comma/space separated)");
  return ids;
}

const encode = defineCommand({
  meta: { name: "encode", description: "Text to token ids (JSON array on stdout)" },
  args: {
    ...tokArg,
    text: { type: "string", description: "Text to encode (default: stdin, or --file)" },
    file: { type: "string", description: "Read the text from a file", valueHint: "FILE" },
    "allow-special": { type: "boolean", description: "Recognise special-token strings such as <|bos|> in the text" },
  },
  async run({ args }) {
    const tok = Tokenizer.load(args.tokenizer);
    const text = args.text ?? (args.file ? readFileSync(args.file, "utf8") : await Bun.stdin.text());
    process.stdout.write(`${JSON.stringify(tok.encode(text, { allowSpecial: Boolean(args["allow-special"]) }))}\n`);
  },
});

const decode = defineCommand({
  meta: { name: "decode", description: "Token ids to text" },
  args: { ...tokArg, ids: { type: "string", description: "Ids: JSON array or comma-separated (default: stdin)" } },
  async run({ args }) {
    const tok = Tokenizer.load(args.tokenizer);
    const ids = readIds(args.ids ?? (await Bun.stdin.text()));
    process.stdout.write(tok.decode(ids));
  },
});

const importCmd = defineCommand({
  meta: { name: "import", description: "Import a tiktoken ranks file (base64 token, rank per line), e.g. a nanochat tokenizer" },
  args: {
    ranks: { type: "string", description: "tiktoken ranks file", required: true, valueHint: "FILE" },
    out: { type: "string", description: "Where to write the nanorag tokenizer", required: true, valueHint: "FILE" },
    pattern: { type: "string", description: "Pre-split pattern: nanochat (default), gpt4, or a regex in tiktoken syntax" },
    ...json,
  },
  run({ args }) {
    if (!existsSync(args.ranks)) throw new UserError(`Ranks file ${args.ranks} does not exist`);
    const tok = Tokenizer.fromTiktoken(readFileSync(args.ranks, "utf8"), { pattern: patternFlag(args.pattern), file: args.ranks });
    tok.save(args.out);
    log.success(`wrote ${args.out}: ${tok.tokens.length} ranks + ${tok.special.size} special tokens`);
    if (args.json) printJson({ out: args.out, ranks: tok.tokens.length, vocabSize: tok.vocabSize });
  },
});

const info = defineCommand({
  meta: { name: "info", description: "Describe a tokenizer file" },
  args: { ...tokArg, ...json },
  run({ args }) {
    const tok = Tokenizer.load(args.tokenizer);
    const lens = tok.tokens.map((t) => t.length);
    const result = {
      vocabSize: tok.vocabSize,
      regular: tok.tokens.length,
      special: Object.fromEntries(tok.special),
      pattern: tok.pattern,
      longestToken: Math.max(...lens),
      meanTokenBytes: Number((lens.reduce((a, b) => a + b, 0) / lens.length).toFixed(2)),
    };
    if (args.json) printJson(result);
    else process.stdout.write(`${Object.entries(result).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("\n")}\n`);
  },
});

export default defineCommand({
  meta: { name: "tokenizer", description: "Train, import and use byte-level BPE tokenizers" },
  subCommands: { train, encode, decode, import: importCmd, info },
});
