/** A slice of a document: its text and where it sits in the document (character offsets). */
export interface ChunkSpan {
  ordinal: number;
  start: number;
  end: number;
  text: string;
}

const WORD = /\S+/g;

/**
 * Splits text into windows of `size` words that overlap by `overlap` words, keeping character
 * offsets so every chunk can be traced back to its place in the document. Short texts are one chunk.
 */
export function chunkText(text: string, size: number, overlap: number): ChunkSpan[] {
  if (countWords(text) <= size) return [{ ordinal: 0, start: 0, end: text.length, text }];
  const starts: number[] = [];
  const ends: number[] = [];
  for (const m of text.matchAll(WORD)) {
    starts.push(m.index);
    ends.push(m.index + m[0].length);
  }
  const step = size - overlap;
  const spans: ChunkSpan[] = [];
  for (let w = 0; ; w += step) {
    const last = Math.min(w + size, starts.length) - 1;
    const start = w === 0 ? 0 : starts[w]!;
    const end = last === starts.length - 1 ? text.length : ends[last]!;
    spans.push({ ordinal: spans.length, start, end, text: text.slice(start, end) });
    if (last === starts.length - 1) break;
  }
  return spans;
}

/** Whitespace-separated word count, without allocating match objects (most documents fit one chunk). */
function countWords(text: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || c === 160 || c === 0x2028 || c === 0x2029 || c === 0x3000 || (c >= 0x2000 && c <= 0x200a);
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}
