/** Seeded randomness for data generation and tasks: the same seeds give the same data on every machine. */

/** mulberry32: uniform floats in [0, 1) from a 32-bit state, the same sequence on every machine. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** mulberry32 seeded from any number of integers (e.g. seed, epoch, index). */
export function prng(...seeds: number[]): () => number {
  let s = 0x9e3779b9;
  for (const x of seeds) s = Math.imul(s ^ (x >>> 0), 0x85ebca6b) + 0x6b43a9b5;
  return rng(s);
}

export function shuffle<T>(a: T[], rand: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export function pick<T>(a: readonly T[], rand: () => number): T {
  return a[Math.floor(rand() * a.length)]!;
}

export function randInt(lo: number, hi: number, rand: () => number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}
