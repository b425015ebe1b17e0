/**
 * BPE training: pre-split the text and count unique pieces here (regex, one pass), then learn the
 * merges in C (native/cpu/bpe.c), where the incremental pair-count algorithm runs.
 */
import { ptr } from "bun:ffi";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { SPECIAL_TOKENS, Tokenizer } from "./bpe.ts";
import { bpeNative } from "./native.ts";
import { availableParallelism } from "node:os";
import { GPT4_PATTERN, NANOCHAT_PATTERN, toJsRegExp } from "./pattern.ts";

const NATIVE_DIGITS = new Map([
  [NANOCHAT_PATTERN, 2],
  [GPT4_PATTERN, 3],
]);

export interface TrainOptions {
  /** Total vocabulary including the special tokens (nanochat's convention). */
  vocabSize: number;
  pattern?: string;
  special?: readonly string[];
}

/**
 * Counts of pre-split pieces; feed it text in any number of calls. For the GPT-4 pattern family the
 * split and the count run in native code on up to `threads` threads (default 2); other patterns
 * count here with the regex.
 */
export class PieceCounter {
  readonly counts = new Map<string, number>();
  bytes = 0;
  private readonly re: RegExp;
  /** Native counter handle, or null. */
  native: number | null = null;
  private readonly threads: number;
  constructor(pattern = NANOCHAT_PATTERN, opts: { native?: boolean; threads?: number } = {}) {
    this.re = toJsRegExp(pattern);
    this.threads = Math.max(1, Math.min(2, opts.threads ?? availableParallelism()));
    const digits = NATIVE_DIGITS.get(pattern);
    if (digits !== undefined && opts.native !== false && process.env.NANORAG_NATIVE_TOKENIZER !== "0") {
      this.native = (bpeNative().nr_bpe_counter_new(digits) as number | null) ?? null;
    }
  }
  get unique(): number {
    return this.native !== null ? Number(bpeNative().nr_bpe_counter_unique(this.native as never)) : this.counts.size;
  }
  add(text: string): void {
    if (this.native !== null) {
      const bytes = new TextEncoder().encode(text);
      this.bytes += bytes.length;
      if (bytes.length && bpeNative().nr_bpe_counter_add(this.native as never, ptr(bytes), bytes.length, this.threads) !== 0) throw new UserError("Counting pieces ran out of memory");
      return;
    }
    this.bytes += Buffer.byteLength(text);
    const re = this.re;
    const counts = this.counts;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const p = m[0];
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
  }
  free(): void {
    if (this.native !== null) bpeNative().nr_bpe_counter_free(this.native as never);
    this.native = null;
  }
}

export interface TrainStats {
  inputBytes: number;
  uniquePieces: number;
  merges: number;
  countSeconds: number;
  mergeSeconds: number;
}

/** Learns merges from counted pieces and returns the tokenizer (special tokens appended). */
export function trainFromCounts(counter: PieceCounter, opts: TrainOptions & { countSeconds?: number }): { tokenizer: Tokenizer; stats: TrainStats } {
  const special = opts.special ?? SPECIAL_TOKENS;
  const nMerges = opts.vocabSize - 256 - special.length;
  if (!Number.isInteger(opts.vocabSize) || nMerges < 0) {
    throw new UserError(`--vocab-size must be an integer of at least ${256 + special.length} (256 bytes + ${special.length} special tokens)`);
  }
  if (opts.vocabSize > 0x200000) throw new UserError(`--vocab-size ${opts.vocabSize} is too large (at most 2097152)`);
  const t0 = performance.now();
  const pairs = new Int32Array(Math.max(2, 2 * nMerges));
  let done: number;
  const n = counter.unique;
  if (counter.native !== null) {
    done = nMerges === 0 ? 0 : bpeNative().nr_bpe_counter_train(counter.native as never, nMerges, ptr(pairs));
    counter.free();
  } else {
    const enc = new TextEncoder();
    let data = new Uint8Array(Math.max(1024, n * 8));
    const offsets = new BigInt64Array(n + 1);
    const counts = new BigInt64Array(Math.max(1, n));
    let o = 0;
    let i = 0;
    for (const [piece, count] of counter.counts) {
      if (data.length - o < piece.length * 3) {
        const bigger = new Uint8Array(Math.max(data.length * 2, o + piece.length * 3));
        bigger.set(data.subarray(0, o));
        data = bigger;
      }
      o += enc.encodeInto(piece, data.subarray(o)).written;
      counts[i] = BigInt(count);
      offsets[++i] = BigInt(o);
    }
    done = nMerges === 0 ? 0 : bpeNative().nr_bpe_train(ptr(data), ptr(offsets), ptr(counts), n, nMerges, ptr(pairs));
  }
  if (done < 0) throw new UserError("BPE training ran out of memory");
  const tokens: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) tokens.push(Uint8Array.of(b));
  for (let k = 0; k < done; k++) {
    const a = tokens[pairs[2 * k]!]!, b = tokens[pairs[2 * k + 1]!]!;
    const t = new Uint8Array(a.length + b.length);
    t.set(a);
    t.set(b, a.length);
    tokens.push(t);
  }
  if (done < nMerges) log.warn(`Only ${done} merges were possible (asked for ${nMerges}): the text is too small for --vocab-size ${opts.vocabSize}`);
  const tokenizer = new Tokenizer(tokens, special, opts.pattern ?? NANOCHAT_PATTERN);
  return {
    tokenizer,
    stats: { inputBytes: counter.bytes, uniquePieces: n, merges: done, countSeconds: opts.countSeconds ?? 0, mergeSeconds: (performance.now() - t0) / 1000 },
  };
}

/** Trains on in-memory texts. */
export function trainBpe(texts: Iterable<string>, opts: TrainOptions & { native?: boolean; threads?: number }): { tokenizer: Tokenizer; stats: TrainStats } {
  const t0 = performance.now();
  const counter = new PieceCounter(opts.pattern, opts);
  for (const t of texts) counter.add(t);
  return trainFromCounts(counter, { ...opts, countSeconds: (performance.now() - t0) / 1000 });
}
