/**
 * Pre-split patterns. Text is first cut into pieces by one of these regular expressions, and BPE
 * merges never cross a piece boundary. Patterns are stored in the tokenizer file in tiktoken's
 * (Rust/PCRE) syntax, so files move between nanorag, nanochat and tiktoken unchanged;
 * `toJsRegExp` rewrites the two constructs JavaScript lacks.
 */

/** nanochat's pattern: GPT-4's, except numbers split into groups of at most two digits. */
export const NANOCHAT_PATTERN =
  "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,2}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

/** GPT-4's cl100k_base pattern (groups of up to three digits). */
export const GPT4_PATTERN =
  "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

export const NAMED_PATTERNS: Record<string, string> = { nanochat: NANOCHAT_PATTERN, gpt4: GPT4_PATTERN, cl100k: GPT4_PATTERN };

/**
 * Translates a tiktoken-style pattern into a JavaScript RegExp (flags `gu`):
 * - possessive quantifiers (`?+`, `++`, `*+`) become greedy ones; in the GPT-4 family this never
 *   changes a match, because what follows cannot match what the quantifier gave up;
 * - the scoped case-insensitive group `(?i:...)` is expanded into explicit case alternatives.
 */
export function toJsRegExp(pattern: string): RegExp {
  let src = pattern.replace(/(?<!\\)([?+*]|\{\d+(?:,\d*)?\})\+/g, "$1");
  src = src.replace(/\(\?i:([^()]*)\)/g, (_, body: string) => `(?:${caseFold(body)})`);
  return new RegExp(src, "gu");
}

function caseFold(body: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === "\\") {
      out += ch + (body[i + 1] ?? "");
      i++;
      continue;
    }
    if (ch === "[") inClass = true;
    else if (ch === "]") inClass = false;
    const lo = ch.toLowerCase(), up = ch.toUpperCase();
    if (lo === up) out += ch;
    else out += inClass ? lo + up : `[${lo}${up}]`;
  }
  return out;
}
