/**
 * Byte-level BPE tokenizer with tiktoken semantics: the text is pre-split by a regular expression,
 * each piece is UTF-8 encoded, and adjacent parts are merged lowest rank first (leftmost on ties)
 * while their concatenation is a token. Regular tokens have ids 0..n-1 (id = rank); special tokens
 * are appended after them. The file format is described in docs/tokenizer.md.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { InputError, UserError } from "../errors.ts";
import { ptr } from "bun:ffi";
import { bpeNative } from "./native.ts";
import { GPT4_PATTERN, NANOCHAT_PATTERN, toJsRegExp } from "./pattern.ts";

/** Patterns the native encoder implements, with their digit-group length. */
const NATIVE_PATTERNS = new Map([
  [NANOCHAT_PATTERN, 2],
  [GPT4_PATTERN, 3],
]);
const freeNative = new FinalizationRegistry<number>((h) => bpeNative().nr_bpe_free(h as never));

/** nanochat's nine special tokens, then the retrieval tokens of the RAG chat template. */
export const SPECIAL_TOKENS = [
  "<|bos|>",
  "<|user_start|>",
  "<|user_end|>",
  "<|assistant_start|>",
  "<|assistant_end|>",
  "<|python_start|>",
  "<|python_end|>",
  "<|output_start|>",
  "<|output_end|>",
  "<|docs_start|>",
  "<|docs_end|>",
  "<|query_start|>",
  "<|query_end|>",
] as const;
export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

export const FORMAT_NAME = "nanorag-bpe";
export const FORMAT_VERSION = 1;

/** The JSON file written by `save` (docs/tokenizer.md). */
export interface TokenizerFile {
  format: typeof FORMAT_NAME;
  version: number;
  /** Pre-split pattern in tiktoken (PCRE) syntax. */
  pattern: string;
  /** Regular tokens in rank order, as base64 of their bytes: id i is tokens[i]. */
  tokens: string[];
  /** Special token name -> id; ids follow the regular tokens. */
  special: Record<string, number>;
}

const PAIR = 0x200000; // pair key = left * PAIR + right; ids stay below 2^21
const CACHE_MAX = 200_000;
const utf8 = new TextEncoder();

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

export interface EncodeOptions {
  /** Recognise special-token strings in the text (default false: they are encoded as plain text). */
  allowSpecial?: boolean;
}

export class Tokenizer {
  readonly pattern: string;
  /** Bytes of each regular token, by id. */
  readonly tokens: Uint8Array[];
  readonly special: ReadonlyMap<string, number>;
  private readonly specialNames = new Map<number, string>();
  private readonly re: RegExp;
  private readonly byteId = new Int32Array(256).fill(-1);
  private pairMap: Map<number, number> | null = null;
  private readonly byBytes = new Map<string, number>();
  private cache = new Map<string, number[]>();
  private specialRe: RegExp | null = null;
  /** Handle of the native encoder (native/cpu/bpe.c), or null for the TypeScript path. */
  private native: number | null = null;

  constructor(
    tokens: Uint8Array[],
    special: Record<string, number> | readonly string[] = SPECIAL_TOKENS,
    pattern = NANOCHAT_PATTERN,
    opts: { native?: boolean } = {},
  ) {
    this.pattern = pattern;
    this.re = toJsRegExp(pattern);
    this.tokens = tokens;
    if (tokens.length >= PAIR) throw new UserError(`Vocabulary too large: ${tokens.length} regular tokens (at most ${PAIR - 1})`);
    for (let id = 0; id < tokens.length; id++) {
      const b = tokens[id]!;
      if (b.length === 0) throw new UserError(`Token ${id} is empty`);
      const key = latin1(b);
      if (this.byBytes.has(key)) throw new UserError(`Tokens ${this.byBytes.get(key)} and ${id} have the same bytes`);
      this.byBytes.set(key, id);
      if (b.length === 1) this.byteId[b[0]!] = id;
    }
    const missing = [...this.byteId].findIndex((id) => id < 0);
    if (missing >= 0) throw new UserError(`Not a byte-level vocabulary: no token for byte 0x${missing.toString(16).padStart(2, "0")}`);
    const map = new Map<string, number>();
    if (Array.isArray(special)) special.forEach((name, i) => map.set(name, tokens.length + i));
    else for (const [name, id] of Object.entries(special)) map.set(name, id);
    for (const [name, id] of map) {
      if (id < tokens.length || this.specialNames.has(id)) throw new UserError(`Special token ${name} has id ${id}, which is taken`);
      this.specialNames.set(id, name);
    }
    this.special = map;
    const digits = NATIVE_PATTERNS.get(pattern);
    if (digits !== undefined && opts.native !== false && process.env.NANORAG_NATIVE_TOKENIZER !== "0") {
      const offsets = new BigInt64Array(tokens.length + 1);
      let total = 0;
      tokens.forEach((t, i) => {
        total += t.length;
        offsets[i + 1] = BigInt(total);
      });
      const flat = new Uint8Array(Math.max(1, total));
      tokens.forEach((t, i) => flat.set(t, Number(offsets[i])));
      const h = bpeNative().nr_bpe_new(ptr(flat), ptr(offsets), tokens.length, digits) as number | null;
      if (h) {
        this.native = h;
        freeNative.register(this, h);
      }
    }
  }

  /**
   * A pair (a, b) merges into t when bytes(a) + bytes(b) = bytes(t): exactly tiktoken's rule of
   * looking up the rank of the concatenation, precomputed over every split of every token.
   */
  private get pairs(): Map<number, number> {
    if (this.pairMap) return this.pairMap;
    const pairs = new Map<number, number>();
    for (let id = 0; id < this.tokens.length; id++) {
      const s = latin1(this.tokens[id]!);
      for (let k = 1; k < s.length; k++) {
        const a = this.byBytes.get(s.slice(0, k));
        const c = a === undefined ? undefined : this.byBytes.get(s.slice(k));
        if (c !== undefined && !pairs.has(a! * PAIR + c)) pairs.set(a! * PAIR + c, id);
      }
    }
    this.pairMap = pairs;
    return pairs;
  }

  /** Whether encoding runs in native code. */
  get isNative(): boolean {
    return this.native !== null;
  }

  /** Regular plus special tokens: the size of the model's embedding table. */
  get vocabSize(): number {
    let max = this.tokens.length - 1;
    for (const id of this.special.values()) max = Math.max(max, id);
    return max + 1;
  }

  /** The id of a special token; throws when the tokenizer lacks it. */
  specialId(name: string): number {
    const id = this.special.get(name);
    if (id === undefined) throw new UserError(`The tokenizer has no special token ${name}`);
    return id;
  }

  isSpecial(id: number): boolean {
    return this.specialNames.has(id);
  }

  /**
   * Text to token ids. Lone surrogates (not valid Unicode) are encoded as U+FFFD, as TextEncoder
   * does, so decode(encode(s)) === s for every well-formed string.
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.allowSpecial && this.special.size > 0) {
      this.specialRe ??= new RegExp([...this.special.keys()].map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
      let last = 0;
      for (const m of text.matchAll(this.specialRe)) {
        this.encodeOrdinaryInto(text.slice(last, m.index), out);
        out.push(this.special.get(m[0])!);
        last = m.index + m[0].length;
      }
      this.encodeOrdinaryInto(text.slice(last), out);
      return out;
    }
    this.encodeOrdinaryInto(text, out);
    return out;
  }

  /**
   * Raw bytes to token ids, for data that need not be valid UTF-8: decodeBytes(encodeBytes(b))
   * equals b for every byte sequence. Invalid bytes pre-split as single "other" characters.
   * (Without the native encoder, invalid input falls back to one token per byte.)
   */
  encodeBytes(bytes: Uint8Array): number[] {
    const out: number[] = [];
    if (bytes.length === 0) return out;
    if (this.native !== null) {
      const ids = new Int32Array(bytes.length + 1);
      const n = Number(bpeNative().nr_bpe_encode(this.native as never, ptr(bytes), bytes.length, ptr(ids), ids.length));
      for (let i = 0; i < n; i++) out.push(ids[i]!);
      return out;
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      for (const b of bytes) out.push(this.byteId[b]!);
      return out;
    }
    this.encodeOrdinaryInto(text, out);
    return out;
  }

  private encodeOrdinaryInto(text: string, out: number[]): void {
    if (!text) return;
    if (this.native !== null) {
      const bytes = utf8.encode(text);
      const ids = new Int32Array(bytes.length + 1);
      const n = Number(bpeNative().nr_bpe_encode(this.native as never, ptr(bytes), bytes.length, ptr(ids), ids.length));
      for (let i = 0; i < n; i++) out.push(ids[i]!);
      return;
    }
    const pieces = text.match(this.re);
    if (!pieces) return;
    const cache = this.cache;
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      let ids = cache.get(piece);
      if (ids === undefined) {
        ids = this.encodePiece(utf8.encode(piece));
        if (cache.size >= CACHE_MAX) cache.clear();
        cache.set(piece, ids);
      }
      if (ids.length === 1) out.push(ids[0]!);
      else for (let j = 0; j < ids.length; j++) out.push(ids[j]!);
    }
  }

  /** BPE over the bytes of one piece. */
  encodePiece(bytes: Uint8Array): number[] {
    const n = bytes.length;
    if (n === 1) return [this.byteId[bytes[0]!]!];
    const whole = n <= 64 ? this.byBytes.get(latin1(bytes)) : undefined;
    if (whole !== undefined) return [whole];
    const parts: number[] = new Array(n);
    for (let i = 0; i < n; i++) parts[i] = this.byteId[bytes[i]!]!;
    const pairs = this.pairs;
    // ranks[i]: the token that parts[i] and parts[i+1] merge into, or Infinity.
    const ranks: number[] = new Array(n - 1);
    for (let i = 0; i < n - 1; i++) ranks[i] = pairs.get(parts[i]! * PAIR + parts[i + 1]!) ?? Infinity;
    while (parts.length > 1) {
      let best = Infinity;
      let at = -1;
      for (let i = 0; i < ranks.length; i++) {
        if (ranks[i]! < best) {
          best = ranks[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      parts[at] = best;
      parts.splice(at + 1, 1);
      ranks.splice(at, 1);
      if (at > 0) ranks[at - 1] = pairs.get(parts[at - 1]! * PAIR + best) ?? Infinity;
      if (at < parts.length - 1) ranks[at] = pairs.get(best * PAIR + parts[at + 1]!) ?? Infinity;
    }
    return parts;
  }

  /** Token ids to bytes; special tokens become their names' UTF-8. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let n = 0;
    const parts: Uint8Array[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      let b = this.tokens[id];
      if (b === undefined) {
        const name = this.specialNames.get(id);
        if (name === undefined) throw new UserError(`Token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
        b = utf8.encode(name);
      }
      parts[i] = b;
      n += b.length;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const b of parts) {
      out.set(b, o);
      o += b.length;
    }
    return out;
  }

  /** Token ids to text. Byte sequences that are not valid UTF-8 (a cut mid-character) give U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    return new TextDecoder().decode(this.decodeBytes(ids));
  }

  /** A decoder for streamed tokens that holds back the bytes of an incomplete character. */
  streamDecoder(): { push(id: number): string; flush(): string } {
    const dec = new TextDecoder();
    return {
      push: (id) => dec.decode(this.decodeBytes([id]), { stream: true }),
      flush: () => dec.decode(),
    };
  }

  toFile(): TokenizerFile {
    return {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      pattern: this.pattern,
      tokens: this.tokens.map((b) => Buffer.from(b).toString("base64")),
      special: Object.fromEntries(this.special),
    };
  }

  save(path: string): void {
    const f = this.toFile();
    // One token per line keeps the file diffable.
    const body = [
      "{",
      `  "format": ${JSON.stringify(f.format)},`,
      `  "version": ${f.version},`,
      `  "pattern": ${JSON.stringify(f.pattern)},`,
      `  "special": ${JSON.stringify(f.special)},`,
      `  "tokens": [`,
      f.tokens.map((t) => `    "${t}"`).join(",\n"),
      "  ]",
      "}",
      "",
    ].join("\n");
    writeFileSync(path, body);
  }

  static fromFile(f: TokenizerFile, file = "<tokenizer>"): Tokenizer {
    if (f?.format !== FORMAT_NAME) throw new InputError(file, null, "format", `expected "${FORMAT_NAME}", got ${JSON.stringify(f?.format)}`);
    if (f.version !== FORMAT_VERSION) throw new InputError(file, null, "version", `unsupported version ${f.version} (this build reads ${FORMAT_VERSION})`);
    if (typeof f.pattern !== "string") throw new InputError(file, null, "pattern", "must be a string");
    if (!Array.isArray(f.tokens)) throw new InputError(file, null, "tokens", "must be an array of base64 strings");
    const tokens = f.tokens.map((t) => new Uint8Array(Buffer.from(t, "base64")));
    try {
      return new Tokenizer(tokens, f.special ?? {}, f.pattern);
    } catch (e) {
      if (e instanceof UserError && !(e instanceof InputError)) throw new InputError(file, null, null, e.message);
      throw e;
    }
  }

  static load(path: string): Tokenizer {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      throw new UserError(`Cannot read tokenizer file ${path}`);
    }
    if (!text.trimStart().startsWith("{")) return Tokenizer.fromTiktoken(text, { file: path });
    let json: TokenizerFile;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new InputError(path, null, null, `not valid JSON: ${(e as Error).message}`);
    }
    return Tokenizer.fromFile(json, path);
  }

  /**
   * Reads a tiktoken ranks file (`<base64 token> <rank>` per line, as tiktoken's load_tiktoken_bpe
   * and nanochat export them). Ranks must cover 0..n-1. Special tokens are appended after them.
   */
  static fromTiktoken(text: string, opts: { pattern?: string; special?: readonly string[]; file?: string } = {}): Tokenizer {
    const file = opts.file ?? "<ranks>";
    const byRank: Uint8Array[] = [];
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line) continue;
      const m = /^(\S+)\s+(\d+)$/.exec(line);
      if (!m) throw new InputError(file, i + 1, null, "expected `<base64 token> <rank>`");
      const rank = Number(m[2]);
      if (byRank[rank] !== undefined) throw new InputError(file, i + 1, "rank", `rank ${rank} appears twice`);
      byRank[rank] = new Uint8Array(Buffer.from(m[1]!, "base64"));
    }
    for (let r = 0; r < byRank.length; r++) if (!byRank[r]) throw new InputError(file, null, "rank", `rank ${r} is missing (ranks must be 0..${byRank.length - 1})`);
    try {
      return new Tokenizer(byRank, opts.special ?? SPECIAL_TOKENS, opts.pattern ?? NANOCHAT_PATTERN);
    } catch (e) {
      if (e instanceof UserError && !(e instanceof InputError)) throw new InputError(file, null, null, e.message);
      throw e;
    }
  }

  /** The regular tokens as a tiktoken ranks file. */
  toTiktoken(): string {
    return this.tokens.map((b, i) => `${Buffer.from(b).toString("base64")} ${i}\n`).join("");
  }
}
