/**
 * Batching: examples (token ids + per-token weights from the chat template) become rows of T+1
 * tokens; inputs are row[0..T), targets row[1..T], and the weight of target j is the weight of
 * producing row[j+1]. A target whose weight is 0 is set to -1 (ignored), so documents, questions and
 * padding never receive weight. With packing, consecutive examples share a row until the next one
 * does not fit; the rest of the row is padding.
 */
export interface Example {
  ids: ArrayLike<number>;
  weights: ArrayLike<number>;
}

export interface MicroBatch {
  tokens: Int32Array;
  targets: Int32Array;
  weights: Float32Array;
  B: number;
  T: number;
  /** sum of the weights of valid targets */
  weightSum: number;
  /** non-padding tokens */
  tokensUsed: number;
  /** non-padding tokens of each row */
  rowTokens: Int32Array;
}

/** Examples indexed by a global position (deterministic: the same position always gives the same example). */
export type ExampleSource = (position: number) => Promise<Example | null>;

/** Fills B rows of T+1 from `source` starting at `cursor`; returns the batch and the next cursor. */
export async function nextMicroBatch(source: ExampleSource, cursor: number, B: number, T: number, padId: number, pack: boolean): Promise<{ batch: MicroBatch; cursor: number }> {
  const rows: Example[][] = [];
  let pos = cursor;
  let pending: Example | null = null;
  let guard = 0;
  const fetch = async (): Promise<Example> => {
    for (;;) {
      const ex = await source(pos++);
      if (ex && ex.ids.length >= 2) return ex.ids.length > T + 1 ? { ids: Array.from(ex.ids).slice(0, T + 1), weights: Array.from(ex.weights).slice(0, T + 1) } : ex;
      if (++guard > 100000) throw new Error("example source yields nothing usable");
    }
  };
  for (let r = 0; r < B; r++) {
    const row: Example[] = [];
    let used = 0;
    for (;;) {
      const ex: Example = pending ?? (await fetch());
      pending = null;
      if (used + ex.ids.length > T + 1 && row.length > 0) {
        pending = ex;
        break;
      }
      row.push(ex);
      used += ex.ids.length;
      if (!pack) break;
    }
    rows.push(row);
  }
  // An example fetched but not placed is the first of the next batch.
  const next = pending ? pos - 1 : pos;
  return { batch: assemble(rows, B, T, padId), cursor: next };
}

/** Lays rows of examples out as (B, T) inputs, targets and weights. */
export function assemble(rows: Example[][], B: number, T: number, padId: number): MicroBatch {
  const tokens = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(-1);
  const weights = new Float32Array(B * T);
  let weightSum = 0;
  let tokensUsed = 0;
  const rowTokens = new Int32Array(B);
  rows.forEach((row, r) => {
    const ids: number[] = [];
    const ws: number[] = [];
    for (const ex of row) {
      for (let i = 0; i < ex.ids.length; i++) {
        ids.push(ex.ids[i]!);
        ws.push(ex.weights[i]!);
      }
    }
    rowTokens[r] = Math.min(ids.length, T + 1);
    tokensUsed += rowTokens[r]!;
    for (let j = 0; j < T; j++) {
      if (j < ids.length) tokens[r * T + j] = ids[j]!;
      if (j + 1 < ids.length) {
        const w = ws[j + 1]!;
        if (w !== 0) {
          targets[r * T + j] = ids[j + 1]!;
          weights[r * T + j] = w;
          weightSum += w;
        }
      }
    }
  });
  return { tokens, targets, weights, B, T, weightSum, tokensUsed, rowTokens };
}

/**
 * One rank's share of a global micro-batch: rows [rank * B / world, (rank + 1) * B / world). Every rank
 * builds the same global batch and trains on its own rows, so together they train on exactly the
 * batch one process would.
 */
export function shardRows(m: MicroBatch, rank: number, world: number): MicroBatch {
  if (world === 1) return m;
  if (m.B % world !== 0) throw new Error(`a batch of ${m.B} rows cannot be split between ${world} ranks`);
  const B = m.B / world;
  const [a, b] = [rank * B * m.T, (rank + 1) * B * m.T];
  const targets = m.targets.subarray(a, b);
  const weights = m.weights.subarray(a, b);
  let weightSum = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i]! >= 0) weightSum += weights[i]!;
  const rowTokens = m.rowTokens.subarray(rank * B, (rank + 1) * B);
  return { tokens: m.tokens.subarray(a, b), targets, weights, B, T: m.T, weightSum, tokensUsed: rowTokens.reduce((x, y) => x + y, 0), rowTokens };
}
