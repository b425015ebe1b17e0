import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SPECIAL_TOKENS, Tokenizer } from "../src/tokenizer/bpe.ts";
import { GPT4_PATTERN, NANOCHAT_PATTERN, toJsRegExp } from "../src/tokenizer/pattern.ts";
import { trainBpe } from "../src/tokenizer/train.ts";
import { rng } from "../src/data/random.ts";
import { tempDir } from "./helpers.ts";

const BUN = "./node_modules/.bin/bun";
const dir = tempDir("nanorag-tok-");


const CORPUS = [
  "The quick brown fox jumps over the lazy dog. The dog didn't care; it's a lazy dog.",
  "Retrieval-augmented generation answers from documents [1] and cites them [2].",
  "Numbers: 1 12 123 1234 12345 3.14159 2026-11-27.",
  "Unicode: naïve café, Straße, 日本語のテキスト, 中文文本, 한국어, emoji 🎉👩‍👩‍👧 done.",
  "    indented code();\n\tfn(x) { return x * 2; }\n\n\nTrailing spaces   \n",
].join("\n");
const { tokenizer: tok } = trainBpe(Array.from({ length: 20 }, () => CORPUS), { vocabSize: 450 });

describe("pattern", () => {
  test("tiktoken syntax becomes a JS RegExp that splits like GPT-4", () => {
    const re = toJsRegExp(GPT4_PATTERN);
    expect("Hello world's 12345  end\n\n x".match(re)).toEqual(["Hello", " world", "'s", " ", "123", "45", " ", " end", "\n\n", " x"]);
    expect("I'LL don'T".match(re)).toEqual(["I", "'LL", " don", "'T"]);
    expect("12345".match(toJsRegExp(NANOCHAT_PATTERN))).toEqual(["12", "34", "5"]);
  });
});

describe("BPE", () => {
  test("special tokens are appended after the regular vocabulary", () => {
    expect(tok.vocabSize).toBe(450);
    expect(tok.tokens.length).toBe(450 - SPECIAL_TOKENS.length);
    SPECIAL_TOKENS.forEach((name, i) => expect(tok.specialId(name)).toBe(tok.tokens.length + i));
    expect(SPECIAL_TOKENS).toContain("<|docs_start|>");
    expect(SPECIAL_TOKENS).toContain("<|query_end|>");
  });

  test("round-trips emoji, CJK, combining marks, control characters", () => {
    const samples = [
      "",
      "a",
      CORPUS,
      "👩‍👩‍👧‍👦🏳️‍🌈🇯🇵 ZWJ sequences",
      "日本語の文章、中文句子。한국어 문장.",
      "e\u0301 combining, \u0000 nul, \u007f del, \r\n crlf",
      "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral plane 𓀀",
      " ".repeat(100) + "x" + "\n".repeat(50),
    ];
    for (const s of samples) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  test("round-trips 300 random strings over the whole Unicode range (seeded)", () => {
    const r = rng(7);
    for (let k = 0; k < 300; k++) {
      let s = "";
      const n = Math.floor(r() * 40);
      for (let i = 0; i < n; i++) {
        const band = r();
        let cp = band < 0.4 ? 32 + Math.floor(r() * 95) : band < 0.7 ? 0x80 + Math.floor(r() * 0x2000) : band < 0.9 ? 0x4e00 + Math.floor(r() * 0x5000) : 0x10000 + Math.floor(r() * 0xfffff);
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
        s += String.fromCodePoint(cp);
      }
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  test("any byte sequence, valid UTF-8 or not, round-trips through encodeBytes/decodeBytes", () => {
    const r = rng(3);
    const ts = new Tokenizer(tok.tokens, SPECIAL_TOKENS, tok.pattern, { native: false });
    for (let k = 0; k < 300; k++) {
      const b = Uint8Array.from({ length: Math.floor(r() * 50) }, () => Math.floor(r() * 256));
      expect([...tok.decodeBytes(tok.encodeBytes(b))]).toEqual([...b]);
      expect([...ts.decodeBytes(ts.encodeBytes(b))]).toEqual([...b]);
    }
    const valid = new TextEncoder().encode(CORPUS);
    expect(tok.encodeBytes(valid)).toEqual(tok.encode(CORPUS));
    expect(tok.encodeBytes(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41))).toEqual(tok.encode("\ufeffA"));
  });

  test("lone surrogates (invalid UTF-16) become U+FFFD, like TextEncoder", () => {
    const s = "a\ud800b\udfffc\ud83d";
    expect(tok.decode(tok.encode(s))).toBe("a\ufffdb\ufffdc\ufffd");
    // and the result is then stable
    const once = tok.decode(tok.encode(s));
    expect(tok.decode(tok.encode(once))).toBe(once);
  });

  test("decodeBytes gives the exact bytes; a stream decoder holds back split characters", () => {
    const ids = tok.encode("🎉 é");
    expect(Buffer.from(tok.decodeBytes(ids)).toString("utf8")).toBe("🎉 é");
    const byteIds = [...Buffer.from("🎉")].map((b) => tok.encodePiece(Uint8Array.of(b))[0]!);
    const dec = tok.streamDecoder();
    const parts = byteIds.map((id) => dec.push(id));
    expect(parts.slice(0, 3).join("")).toBe("");
    expect(parts.join("") + dec.flush()).toBe("🎉");
  });

  test("special-token text is plain text unless allowed", () => {
    const plain = tok.encode("<|bos|>hi");
    expect(plain).not.toContain(tok.specialId("<|bos|>"));
    expect(tok.decode(plain)).toBe("<|bos|>hi");
    const sp = tok.encode("<|bos|>hi<|user_end|>", { allowSpecial: true });
    expect(sp[0]).toBe(tok.specialId("<|bos|>"));
    expect(sp.at(-1)).toBe(tok.specialId("<|user_end|>"));
    expect(tok.decode(sp)).toBe("<|bos|>hi<|user_end|>");
  });

  test("training learns frequent words and compresses", () => {
    const ids = tok.encode(CORPUS);
    expect(Buffer.byteLength(CORPUS) / ids.length).toBeGreaterThan(2.5);
    expect(tok.encode(" lazy dog").length).toBeLessThanOrEqual(2);
  });

  test("native training matches a naive reference trainer, ties included", () => {
    const text = "aaab aab ab abab ba baba aaaa cd cd dc abcd abcd xyz xy yz " + "the then there these them ".repeat(3);
    const { tokenizer } = trainBpe([text], { vocabSize: 256 + 40 + SPECIAL_TOKENS.length });
    // reference: words with counts, merge the most frequent pair, ties to the smaller pair
    const re = toJsRegExp(NANOCHAT_PATTERN);
    const words = new Map<string, number>();
    for (const p of text.match(re)!) words.set(p, (words.get(p) ?? 0) + 1);
    const ws = [...words].map(([w, c]) => ({ ids: [...Buffer.from(w)], c }));
    const merges: [number, number][] = [];
    for (let m = 0; m < 40; m++) {
      const counts = new Map<string, number>();
      for (const w of ws) for (let i = 0; i + 1 < w.ids.length; i++) {
        const k = `${w.ids[i]},${w.ids[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + w.c);
      }
      let best: [number, number] | null = null;
      let bc = 0;
      for (const [k, c] of counts) {
        const [a, b] = k.split(",").map(Number) as [number, number];
        if (c > bc || (c === bc && best && (a < best[0] || (a === best[0] && b < best[1])))) {
          bc = c;
          best = [a, b];
        }
      }
      if (!best) break;
      merges.push(best);
      const id = 256 + m;
      for (const w of ws) {
        const out: number[] = [];
        for (let i = 0; i < w.ids.length; i++) {
          if (i + 1 < w.ids.length && w.ids[i] === best[0] && w.ids[i + 1] === best[1]) {
            out.push(id);
            i++;
          } else out.push(w.ids[i]!);
        }
        w.ids = out;
      }
    }
    const bytesOf = (id: number): number[] => (id < 256 ? [id] : [...bytesOf(merges[id - 256]![0]), ...bytesOf(merges[id - 256]![1])]);
    expect(tokenizer.tokens.length).toBe(256 + merges.length);
    merges.forEach((_, k) => expect([...tokenizer.tokens[256 + k]!]).toEqual(bytesOf(256 + k)));
  });

  test("the native encoder matches the TypeScript one (pre-split and merges, long pieces too)", () => {
    expect(tok.isNative).toBe(true);
    const ts = new Tokenizer(tok.tokens, SPECIAL_TOKENS, tok.pattern, { native: false });
    expect(ts.isNative).toBe(false);
    const r = rng(99);
    const alphabet = ["a", "b", "the", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "'re", "1", "23", "456", ".", ",", "!?", "(", "—", "é", "ß", "日本", "中文", "한", "🎉", "👩‍👩‍👧", "\u00a0", "\u3000", "\u2028", "²", "Ⅻ", "x\u0301", "\u0085", "\u000b", "𝔘", "ſ", "_", "'"];
    for (let k = 0; k < 500; k++) {
      let s = "";
      const n = Math.floor(r() * 30);
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
      expect(tok.encode(s)).toEqual(ts.encode(s));
    }
    const long = ["日本語".repeat(400), " ".repeat(1000) + "x", "!?".repeat(500), "ab".repeat(2000), CORPUS.repeat(3)];
    for (const s of long) {
      expect(tok.encode(s)).toEqual(ts.encode(s));
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  test("native counting (1 or 2 threads) trains the same merges as the TypeScript count", () => {
    const big = Array.from({ length: 40 }, (_, i) => `${CORPUS}\nline ${i} ${"word".repeat(i % 7)}\n`).join("").repeat(80);
    expect(Buffer.byteLength(big)).toBeGreaterThan(1 << 20);
    const ts = trainBpe([big], { vocabSize: 600, native: false }).tokenizer.toFile();
    const one = trainBpe([big], { vocabSize: 600, threads: 1 }).tokenizer.toFile();
    const two = trainBpe([big, "extra text 123"], { vocabSize: 600, threads: 2 });
    const tsTwo = trainBpe([big, "extra text 123"], { vocabSize: 600, native: false });
    expect(one).toEqual(ts);
    expect(two.tokenizer.toFile()).toEqual(tsTwo.tokenizer.toFile());
    expect(two.stats.uniquePieces).toBe(tsTwo.stats.uniquePieces);
  });

  test("training is deterministic", () => {
    const a = trainBpe([CORPUS, CORPUS], { vocabSize: 400 }).tokenizer.toFile();
    const b = trainBpe([CORPUS, CORPUS], { vocabSize: 400 }).tokenizer.toFile();
    expect(a).toEqual(b);
  });
});

describe("file format", () => {
  test("save/load keeps every encoding; tiktoken ranks export/import too", () => {
    const p = join(dir, "tok.json");
    tok.save(p);
    const back = Tokenizer.load(p);
    expect(back.vocabSize).toBe(tok.vocabSize);
    expect(back.encode(CORPUS)).toEqual(tok.encode(CORPUS));
    const parsed = JSON.parse(readFileSync(p, "utf8"));
    expect(parsed.format).toBe("nanorag-bpe");
    expect(parsed.version).toBe(1);
    const ranks = join(dir, "tok.tiktoken");
    writeFileSync(ranks, tok.toTiktoken());
    const imported = Tokenizer.load(ranks);
    expect(imported.encode(CORPUS)).toEqual(tok.encode(CORPUS));
    expect(imported.specialId("<|bos|>")).toBe(tok.specialId("<|bos|>"));
  });

  test("bad files give a named error", () => {
    const p = join(dir, "bad.tiktoken");
    writeFileSync(p, "QQ== 0\nnot a line\n");
    expect(() => Tokenizer.load(p)).toThrow(/bad\.tiktoken:2/);
    const q = join(dir, "gap.tiktoken");
    writeFileSync(q, Array.from({ length: 256 }, (_, i) => `${Buffer.from([i]).toString("base64")} ${i === 255 ? 300 : i}`).join("\n"));
    expect(() => Tokenizer.load(q)).toThrow(/rank 255 is missing/);
    const j = join(dir, "bad.json");
    writeFileSync(j, JSON.stringify({ format: "other" }));
    expect(() => Tokenizer.load(j)).toThrow(/field "format"/);
  });

  test("a tiktoken vocabulary (cl100k via js-tiktoken) imports and encodes identically", async () => {
    const { Tiktoken } = await import("js-tiktoken/lite");
    const cl100k = (await import("js-tiktoken/ranks/cl100k_base")).default as { pat_str: string; bpe_ranks: string; special_tokens: Record<string, number> };
    const lines: string[] = [];
    for (const row of cl100k.bpe_ranks.split("\n")) {
      if (!row) continue;
      const [, off, ...toks] = row.split(" ");
      toks.forEach((t, i) => lines.push(`${t} ${Number(off) + i}`));
    }
    const ours = Tokenizer.fromTiktoken(lines.join("\n"), { pattern: GPT4_PATTERN, special: [] });
    const ref = new Tiktoken(cl100k);
    const texts = [CORPUS, "Hello world!! 1234567 I'm here\n\n\n  spaced   out", "日本語のテキストと中文 🎉👩‍👩‍👧", "x".repeat(200)];
    for (const t of texts) expect(ours.encode(t)).toEqual(ref.encode(t));
  });
});

describe("CLI", () => {
  test("tokenizer train / encode / decode / info / import", async () => {
    const input = join(dir, "in.txt");
    writeFileSync(input, CORPUS.repeat(5));
    const run = (...args: string[]) => Bun.spawnSync([BUN, "src/cli/main.ts", "tokenizer", ...args], { env: { ...process.env, NO_COLOR: "1" } });
    const out = join(dir, "cli.json");
    const t = run("train", "--input", input, "--vocab-size", "400", "--out", out, "--json");
    expect(t.exitCode).toBe(0);
    expect(JSON.parse(t.stdout.toString()).vocabSize).toBe(400);
    const e = run("encode", "--tokenizer", out, "--text", "naïve 🎉 café");
    expect(e.exitCode).toBe(0);
    const ids = JSON.parse(e.stdout.toString());
    const d = run("decode", "--tokenizer", out, "--ids", JSON.stringify(ids));
    expect(d.stdout.toString()).toBe("naïve 🎉 café");
    const i = run("info", "--tokenizer", out, "--json");
    expect(JSON.parse(i.stdout.toString()).special["<|query_end|>"]).toBe(399);
    const bad = run("train", "--input", input, "--vocab-size", "10", "--out", out);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("--vocab-size must be an integer of at least 269");
    const ranks = join(dir, "cli.tiktoken");
    writeFileSync(ranks, Tokenizer.load(out).toTiktoken());
    const im = run("import", "--ranks", ranks, "--out", join(dir, "imported.json"), "--json");
    expect(im.exitCode).toBe(0);
    expect(JSON.parse(im.stdout.toString()).vocabSize).toBe(400);
  });
});
