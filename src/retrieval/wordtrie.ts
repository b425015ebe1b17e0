/**
 * Maps lowercase `[a-z0-9]+` words to small integers without allocating a string per token: the
 * scan walks a 36-way trie over the characters, and only a word never seen before is sliced out and
 * resolved (stemmed, interned). Indexing spends most of its time on exactly this lookup.
 */
const FANOUT = 36;
/** A node no word has ended at yet; resolvers use -1 for words to skip (stop words). */
const UNSET = -2;
/** Past this many nodes (~72 MB) new words are resolved without being remembered. */
const MAX_NODES = 500_000;

function symbol(c: number): number {
  if (c >= 97 && c <= 122) return c - 97;
  if (c >= 48 && c <= 57) return 26 + c - 48;
  return -1;
}

export class WordTrie {
  private children = new Int32Array(FANOUT * 4096);
  private values = new Int32Array(4096).fill(UNSET);
  private size = 1;

  /**
   * Calls `emit(value)` for each maximal `[a-z0-9]+` run of `lower` (already lowercased), where a
   * word's value comes from `resolve(word)` (>= -1) the first time it is seen. -1 is not emitted
   * (use it for stop words).
   */
  scan(lower: string, resolve: (word: string) => number, emit: (value: number) => void): void {
    let node = 0;
    let start = -1;
    let full = false;
    const n = lower.length;
    for (let i = 0; i <= n; i++) {
      const s = i < n ? symbol(lower.charCodeAt(i)) : -1;
      if (s >= 0) {
        if (start < 0) {
          start = i;
          node = 0;
          full = false;
        }
        if (!full) {
          let next = this.children[node * FANOUT + s]!;
          if (next === 0) {
            next = this.grow();
            if (next < 0) full = true;
            else this.children[node * FANOUT + s] = next;
          }
          node = next;
        }
        continue;
      }
      if (start < 0) continue;
      let v: number;
      if (full) v = resolve(lower.slice(start, i));
      else {
        v = this.values[node]!;
        if (v === UNSET) v = this.values[node] = resolve(lower.slice(start, i));
      }
      if (v >= 0) emit(v);
      start = -1;
    }
  }

  private grow(): number {
    if (this.size >= MAX_NODES) return -1;
    if (this.size === this.values.length) {
      const values = new Int32Array(this.values.length * 2).fill(UNSET);
      values.set(this.values);
      this.values = values;
      const children = new Int32Array(this.children.length * 2);
      children.set(this.children);
      this.children = children;
    }
    return this.size++;
  }
}
