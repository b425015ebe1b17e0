/**
 * Tokenizer bench: encode speed side by side with js-tiktoken on the same text, and training time
 * on ~100 MB.
 *
 *   ./node_modules/.bin/bun bench/tokenizer.bench.ts [--encode-mb 10] [--train-mb 100] [--vocab 32768] [--input FILE] [--json]
 *
 * The text is built locally and deterministically: the text files under node_modules (code, JSON,
 * markdown; sorted), synthetic-world documents (English sentences, seeds 1, 2, ...), and a block of
 * CJK, accented and emoji text. `--input` replaces it with your own file.
 */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { generateWorld } from "../src/data/synthetic.ts";
import { Tokenizer } from "../src/tokenizer/bpe.ts";
import { GPT4_PATTERN } from "../src/tokenizer/pattern.ts";

const argv = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : def;
};
const ENCODE_MB = Number(flag("encode-mb", "10"));
const TRAIN_MB = Number(flag("train-mb", "100"));
const VOCAB = Number(flag("vocab", "32768"));
const INPUT = flag("input", "");
const JSON_OUT = argv.includes("--json");
const mb = (s: string) => Buffer.byteLength(s) / 1e6;

function codeText(limitBytes: number): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if ([".ts", ".js", ".md", ".json", ".mjs", ".cjs"].includes(extname(f)) && st.size < 20e6) files.push(p);
    }
  };
  walk("node_modules");
  const parts: string[] = [];
  let n = 0;
  for (const f of files) {
    if (n >= limitBytes) break;
    const t = readFileSync(f, "utf8");
    parts.push(t);
    n += Buffer.byteLength(t);
  }
  return parts.join("\n");
}

function proseText(limitBytes: number): string {
  const parts: string[] = [];
  let n = 0;
  for (let seed = 1; n < limitBytes; seed++) {
    for (const d of generateWorld({ entities: 20000, seed }).documents) {
      const t = `${d.title}\n${d.content}\n\n`;
      parts.push(t);
      n += Buffer.byteLength(t);
      if (n >= limitBytes) break;
    }
  }
  return parts.join("");
}

const MULTI = "日本語の文章を読みます。中文的句子也在这里。한국어 문장입니다. Ünïcödé façade, naïve café — “quotes” 🎉👩‍👩‍👧🏳️‍🌈 emoji. Числа 12345 и слова.\n";

function corpus(limitMB: number): string {
  if (INPUT) return readFileSync(INPUT, "utf8");
  const bytes = limitMB * 1e6;
  return [codeText(bytes * 0.45), proseText(bytes * 0.5), MULTI.repeat(Math.ceil((bytes * 0.05) / Buffer.byteLength(MULTI)))].join("\n");
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

async function main() {
  const results: Record<string, unknown> = { cpu: (await Bun.file("/proc/cpuinfo").text().catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown", bun: Bun.version };

  // --- training on ~TRAIN_MB
  const trainText = corpus(TRAIN_MB);
  const trainFile = join(tmpdir(), `nanorag-bench-train-${process.pid}.txt`);
  writeFileSync(trainFile, trainText);
  const tokFile = join(tmpdir(), `nanorag-bench-tok-${process.pid}.json`);
  const [train, trainSecs] = time(() =>
    Bun.spawnSync(["./node_modules/.bin/bun", "src/cli/main.ts", "tokenizer", "train", "--input", trainFile, "--vocab-size", String(VOCAB), "--out", tokFile, "--json"], { env: { ...process.env, NO_COLOR: "1" } }),
  );
  if (train.exitCode !== 0) throw new Error(train.stderr.toString());
  rmSync(trainFile);
  const stats = JSON.parse(train.stdout.toString());
  results.train = { mb: Number(mb(trainText).toFixed(1)), vocab: VOCAB, wallSeconds: Number(trainSecs.toFixed(1)), countSeconds: Number(stats.countSeconds.toFixed(1)), mergeSeconds: Number(stats.mergeSeconds.toFixed(1)), uniquePieces: stats.uniquePieces };

  // --- encode, side by side on the same text
  const text = INPUT ? trainText : corpus(ENCODE_MB);
  const size = mb(text);
  const { Tiktoken } = await import("js-tiktoken/lite");
  const cl100k = (await import("js-tiktoken/ranks/cl100k_base")).default as { pat_str: string; bpe_ranks: string; special_tokens: Record<string, number> };
  const ranks: string[] = [];
  for (const row of cl100k.bpe_ranks.split("\n")) {
    if (!row) continue;
    const [, off, ...toks] = row.split(" ");
    toks.forEach((t, i) => ranks.push(`${t} ${Number(off) + i}`));
  }
  const rows: { name: string; mbps: number; warmMbps?: number; tokens: number; seconds: number }[] = [];
  const ours = (name: string, make: () => Tokenizer) => {
    const tok = make();
    const [ids, s] = time(() => tok.encode(text));
    const [, s2] = time(() => tok.encode(text));
    const [back, sd] = time(() => tok.decode(ids));
    if (back !== text) throw new Error(`${name}: decode(encode(text)) differs from the text`);
    rows.push({ name, mbps: size / s, warmMbps: size / s2, tokens: ids.length, seconds: s });
    return { ids, decodeMbps: size / sd };
  };
  const trained = ours(`nanorag, trained ${VOCAB}`, () => Tokenizer.load(tokFile));
  rmSync(tokFile);
  const ourCl = ours("nanorag, cl100k imported", () => Tokenizer.fromTiktoken(ranks.join("\n"), { pattern: GPT4_PATTERN, special: [] }));
  const ref = new Tiktoken(cl100k);
  const [refIds, rs] = time(() => ref.encode(text));
  const [, rs2] = time(() => ref.encode(text));
  rows.push({ name: "js-tiktoken 1.0.21, cl100k", mbps: size / rs, warmMbps: size / rs2, tokens: refIds.length, seconds: rs });
  const same = refIds.length === ourCl.ids.length && refIds.every((x, i) => x === ourCl.ids[i]);
  results.encode = { mb: Number(size.toFixed(1)), rows: rows.map((r) => ({ ...r, mbps: Number(r.mbps.toFixed(2)), warmMbps: Number(r.warmMbps!.toFixed(2)), seconds: Number(r.seconds.toFixed(2)) })), cl100kIdentical: same, decodeMbps: Number(trained.decodeMbps.toFixed(1)) };

  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  const t = results.train as Record<string, number>;
  console.log(`CPU: ${results.cpu}; Bun ${results.bun}`);
  console.log(`train: ${t.mb} MB, vocab ${t.vocab}: ${t.wallSeconds} s wall (count ${t.countSeconds} s, merges ${t.mergeSeconds} s), ${t.uniquePieces} unique pieces`);
  console.log(`encode: ${size.toFixed(1)} MB, one core (first pass = cold cache; second pass = warm)`);
  console.log("| tokenizer | MB/s first pass | MB/s second pass | tokens |");
  console.log("|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.name} | ${r.mbps.toFixed(2)} | ${r.warmMbps!.toFixed(2)} | ${r.tokens} |`);
  console.log(`cl100k ids identical to js-tiktoken: ${same}; decode ${trained.decodeMbps.toFixed(1)} MB/s`);
}

await main();
