/** String helpers shared by the CLI and the library: "did you mean" hints, key=value lists. */
import Fuse from "fuse.js";
import { UserError } from "./errors.ts";

/**
 * The nearest valid name by fuse.js, phrased for an error message. Fuse scores a swapped pair of
 * letters like a distant partial match ("prot": "port" and "retriever" both 0.5), so equal scores go
 * to the name closest in length.
 */
export function suggest(word: string, candidates: string[]): string {
  const lengthGap = (s: string) => Math.abs(s.length - word.length);
  const hit = new Fuse(candidates, { threshold: 0.5, includeScore: true })
    .search(word)
    .sort((a, b) => a.score! - b.score! || lengthGap(a.item) - lengthGap(b.item))[0];
  return hit ? ` Did you mean "${hit.item}"?` : "";
}

/** Parses `key=value[,key=value...]` lists (for --filter and --opt). */
export function keyValues(name: string, value: string | undefined): Record<string, string> | undefined {
  if (!value) return undefined;
  const out: Record<string, string> = {};
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UserError(`--${name} expects key=value pairs separated by commas, got "${part}"`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
