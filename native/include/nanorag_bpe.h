/* nanorag byte-level BPE: the hot loops of tokenizer training, called over bun:ffi from src/tokenizer/.
 * All symbols are prefixed nr_bpe_. Plain pointers and integer status, no global state. */
#ifndef NANORAG_BPE_H
#define NANORAG_BPE_H

#include <stdint.h>

/* Learns up to n_merges merges from unique pre-split chunks ("words") with counts.
 *   data:    the UTF-8 bytes of every word, concatenated
 *   offsets: n_words + 1 offsets into data (word i is data[offsets[i] .. offsets[i+1]))
 *   counts:  how often each word occurred in the training text
 * Token ids 0..255 are the single bytes; merge i creates id 256 + i from the pair written to
 * out_pairs[2*i], out_pairs[2*i+1]. Each step merges the most frequent adjacent pair; ties go to the
 * smaller (left, right) pair, so the result is deterministic. Returns the number of merges learned
 * (fewer than n_merges when no pair occurs any more), or -1 when memory runs out. */
int32_t nr_bpe_train(const uint8_t *data, const int64_t *offsets, const int64_t *counts, int64_t n_words,
                     int32_t n_merges, int32_t *out_pairs);

/* An encoder over a fixed vocabulary (tiktoken semantics: the adjacent pair whose concatenation is
 * the lowest-ranked token merges first, leftmost on ties). token_bytes/offsets hold the n_tokens
 * regular tokens in rank order (token i is token_bytes[offsets[i] .. offsets[i+1])). The pre-split
 * is the GPT-4 pattern family with numbers in groups of at most max_digits (2 = nanochat, 3 = GPT-4),
 * with JavaScript's Unicode classes (\p{L}, \p{N}, \s). NULL when memory runs out or a byte has no token. */
typedef struct NrBpe NrBpe;
NrBpe *nr_bpe_new(const uint8_t *token_bytes, const int64_t *offsets, int32_t n_tokens, int32_t max_digits);
void nr_bpe_free(NrBpe *bpe);

/* Encodes len bytes of UTF-8 text into out (room for cap ids; len + 1 always suffices).
 * Returns the number of ids written, or -1 when cap is too small. */
int64_t nr_bpe_encode(const NrBpe *bpe, const uint8_t *text, int64_t len, int32_t *out, int64_t cap);

/* Splits text into pieces: writes the end offset of each piece to ends (room for len entries) and
 * returns the count. Exposed for tests. */
int64_t nr_bpe_split(const NrBpe *bpe, const uint8_t *text, int64_t len, int64_t *ends);

/* Pre-split and count pieces in native code for training (GPT-4 pattern family, as nr_bpe_new).
 * nr_bpe_counter_add may be called many times; it splits the text at a safe point and counts each
 * part on its own thread (n_threads 1 or 2). nr_bpe_counter_train learns merges from the counts,
 * exactly as nr_bpe_train would from the same unique pieces. */
typedef struct NrBpeCounter NrBpeCounter;
NrBpeCounter *nr_bpe_counter_new(int32_t max_digits);
int32_t nr_bpe_counter_add(NrBpeCounter *c, const uint8_t *text, int64_t len, int32_t n_threads);
int64_t nr_bpe_counter_unique(const NrBpeCounter *c);
int32_t nr_bpe_counter_train(NrBpeCounter *c, int32_t n_merges, int32_t *out_pairs);
void nr_bpe_counter_free(NrBpeCounter *c);

#endif
