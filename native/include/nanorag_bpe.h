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

#endif
