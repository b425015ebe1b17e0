/**
 * Streaming an answer as it is generated: each pushed token yields the new text since the last call,
 * so that the pieces concatenate to exactly `decode(ids).trim()`, the final answer. Leading
 * whitespace is dropped, trailing whitespace and the bytes of an unfinished character (U+FFFD at
 * the end) are held back until more text follows or `end()` is called.
 */
export class TextStream {
  #ids: number[] = [];
  #sent = "";

  constructor(private readonly decode: (ids: ArrayLike<number>) => string) {}

  /** The ids pushed so far. */
  get ids(): readonly number[] {
    return this.#ids;
  }

  /** The text a token adds ("" while it is held back). */
  push(id: number): string {
    this.#ids.push(id);
    return this.#advance(this.decode(this.#ids).trimStart().replace(/[\s\uFFFD]+$/u, ""));
  }

  /** Whatever was held back, now that no token follows. */
  end(): string {
    return this.#advance(this.text());
  }

  /** The whole text, trimmed: what the pieces add up to after `end()`. */
  text(): string {
    return this.decode(this.#ids).trim();
  }

  #advance(stable: string): string {
    // Decoding a longer prefix never changes earlier text except a held-back partial character.
    if (!stable.startsWith(this.#sent)) return "";
    const delta = stable.slice(this.#sent.length);
    this.#sent = stable;
    return delta;
  }
}
