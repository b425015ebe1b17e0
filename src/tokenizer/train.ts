/**
 * BPE training: pre-split the text and count unique pieces here (regex, one pass), then learn the
 * merges in C (native/cpu/bpe.c), where the incremental pair-count algorithm runs.
 */
import { ptr } from "bun:ffi";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { SPECIAL_TOKENS, Tokenizer } from "./bpe.ts";
import { bpeNative } from "./native.ts";
import { NANOCHAT_PATTERN, toJsRegExp } from "./pattern.ts";

export interface TrainOptions {
  /** Total vocabulary including the special tokens (nanochat's convention). */
  vocabSize: number;
  pattern?: string;
  special?: readonly string[];
}

/** Counts of pre-split pieces; feed it text in any number of calls. */
export class PieceCounter {
  readonly counts = new Map<string, number>();
  bytes = 0;
  private readonly re: RegExp;
  constructor(pattern = NANOCHAT_PATTERN) {
    this.re = toJsRegExp(pattern);
  }
  add(text: string): void {
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
  const n = counter.counts.size;
  const enc = new TextEncoder();
  let data = new Uint8Array(Math.max(1024, counter.counts.size * 8));
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
  const pairs = new Int32Array(Math.max(2, 2 * nMerges));
  const done = nMerges === 0 ? 0 : bpeNative().nr_bpe_train(ptr(data), ptr(offsets), ptr(counts), n, nMerges, ptr(pairs));
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
export function trainBpe(texts: Iterable<string>, opts: TrainOptions): { tokenizer: Tokenizer; stats: TrainStats } {
  const t0 = performance.now();
  const counter = new PieceCounter(opts.pattern);
  for (const t of texts) counter.add(t);
  return trainFromCounts(counter, { ...opts, countSeconds: (performance.now() - t0) / 1000 });
}
