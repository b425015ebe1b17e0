/* Byte-level BPE training (see native/include/nanorag_bpe.h).
 *
 * The classic incremental algorithm: count every adjacent pair over the unique words (weighted by
 * word count), keep for each pair the list of words it occurs in, and a max-heap of (count, pair)
 * with lazy invalidation. A merge rewrites only the words that contain the pair and adjusts the
 * counts of the pairs around it; counts of pairs without the new token can only fall, so a heap
 * entry whose stored count still equals the live count is the true maximum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nanorag_bpe.h"

typedef struct {
  uint64_t key; /* (left << 32) | right; 0 marks an empty slot (pair (0,0) is stored with key+1) */
  int64_t count;
  int32_t *where; /* word indices (may hold duplicates; checked at merge time) */
  int32_t n_where, cap_where;
} PairEntry;

typedef struct {
  PairEntry *slots;
  uint64_t cap; /* power of two */
  uint64_t size;
} PairMap;

typedef struct {
  int64_t count;
  uint64_t key;
} HeapItem;

typedef struct {
  HeapItem *items;
  int64_t n, cap;
} Heap;

static inline uint64_t pair_key(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }
static inline int32_t key_left(uint64_t k) { return (int32_t)((k - 1) >> 32); }
static inline int32_t key_right(uint64_t k) { return (int32_t)((k - 1) & 0xffffffffu); }

static inline uint64_t hash64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

static int map_init(PairMap *m, uint64_t cap) {
  m->cap = cap;
  m->size = 0;
  m->slots = calloc(cap, sizeof(PairEntry));
  return m->slots ? 0 : -1;
}

static int map_grow(PairMap *m) {
  PairMap n;
  if (map_init(&n, m->cap * 2)) return -1;
  for (uint64_t i = 0; i < m->cap; i++) {
    PairEntry *e = &m->slots[i];
    if (!e->key) continue;
    uint64_t j = hash64(e->key) & (n.cap - 1);
    while (n.slots[j].key) j = (j + 1) & (n.cap - 1);
    n.slots[j] = *e;
  }
  n.size = m->size;
  free(m->slots);
  *m = n;
  return 0;
}

/* Finds or inserts the entry for key; NULL on allocation failure. */
static PairEntry *map_get(PairMap *m, uint64_t key) {
  if ((m->size + 1) * 2 > m->cap && map_grow(m)) return NULL;
  uint64_t j = hash64(key) & (m->cap - 1);
  while (m->slots[j].key) {
    if (m->slots[j].key == key) return &m->slots[j];
    j = (j + 1) & (m->cap - 1);
  }
  m->slots[j].key = key;
  m->size++;
  return &m->slots[j];
}

static PairEntry *map_find(PairMap *m, uint64_t key) {
  uint64_t j = hash64(key) & (m->cap - 1);
  while (m->slots[j].key) {
    if (m->slots[j].key == key) return &m->slots[j];
    j = (j + 1) & (m->cap - 1);
  }
  return NULL;
}

static int where_push(PairEntry *e, int32_t w) {
  if (e->n_where && e->where[e->n_where - 1] == w) return 0;
  if (e->n_where == e->cap_where) {
    int32_t cap = e->cap_where ? e->cap_where * 2 : 4;
    int32_t *p = realloc(e->where, (size_t)cap * sizeof(int32_t));
    if (!p) return -1;
    e->where = p;
    e->cap_where = cap;
  }
  e->where[e->n_where++] = w;
  return 0;
}

/* Max-heap on count; equal counts put the smaller pair first. */
static inline int heap_better(const HeapItem *a, const HeapItem *b) {
  return a->count > b->count || (a->count == b->count && a->key < b->key);
}

static int heap_push(Heap *h, int64_t count, uint64_t key) {
  if (h->n == h->cap) {
    int64_t cap = h->cap ? h->cap * 2 : 1024;
    HeapItem *p = realloc(h->items, (size_t)cap * sizeof(HeapItem));
    if (!p) return -1;
    h->items = p;
    h->cap = cap;
  }
  int64_t i = h->n++;
  HeapItem it = {count, key};
  while (i > 0) {
    int64_t parent = (i - 1) / 2;
    if (!heap_better(&it, &h->items[parent])) break;
    h->items[i] = h->items[parent];
    i = parent;
  }
  h->items[i] = it;
  return 0;
}

static HeapItem heap_pop(Heap *h) {
  HeapItem top = h->items[0];
  HeapItem last = h->items[--h->n];
  int64_t i = 0;
  for (;;) {
    int64_t l = 2 * i + 1, r = l + 1, best = i;
    const HeapItem *bi = &last;
    if (l < h->n && heap_better(&h->items[l], bi)) best = l, bi = &h->items[l];
    if (r < h->n && heap_better(&h->items[r], bi)) best = r, bi = &h->items[r];
    if (best == i) break;
    h->items[i] = h->items[best];
    i = best;
  }
  if (h->n > 0) h->items[i] = last;
  return top;
}

int32_t nr_bpe_train(const uint8_t *data, const int64_t *offsets, const int64_t *counts, int64_t n_words,
                     int32_t n_merges, int32_t *out_pairs) {
  int32_t done = -1;
  int64_t total = offsets[n_words] - offsets[0];
  int32_t *ids = malloc((size_t)(total > 0 ? total : 1) * sizeof(int32_t));
  int32_t *len = malloc((size_t)(n_words > 0 ? n_words : 1) * sizeof(int32_t));
  int32_t *stamp = malloc((size_t)(n_words > 0 ? n_words : 1) * sizeof(int32_t));
  uint64_t *touched = NULL;
  int64_t n_touched = 0, cap_touched = 0;
  PairMap map = {0};
  Heap heap = {0};
  if (!ids || !len || !stamp || map_init(&map, 1 << 16)) goto out;

  for (int64_t w = 0; w < n_words; w++) {
    int64_t s = offsets[w], n = offsets[w + 1] - s;
    int32_t *p = ids + (s - offsets[0]);
    for (int64_t i = 0; i < n; i++) p[i] = data[s + i];
    len[w] = (int32_t)n;
    stamp[w] = -1;
    for (int64_t i = 0; i + 1 < n; i++) {
      PairEntry *e = map_get(&map, pair_key(p[i], p[i + 1]));
      if (!e) goto out;
      e->count += counts[w];
      if (where_push(e, (int32_t)w)) goto out;
    }
  }
  for (uint64_t i = 0; i < map.cap; i++)
    if (map.slots[i].key && map.slots[i].count > 0 && heap_push(&heap, map.slots[i].count, map.slots[i].key)) goto out;

  done = 0;
  while (done < n_merges && heap.n > 0) {
    HeapItem top = heap_pop(&heap);
    PairEntry *e = map_find(&map, top.key);
    if (!e || e->count <= 0) continue;
    if (e->count != top.count) {
      if (heap_push(&heap, e->count, top.key)) { done = -1; goto out; }
      continue;
    }
    int32_t a = key_left(top.key), b = key_right(top.key), c = 256 + done;
    out_pairs[2 * done] = a;
    out_pairs[2 * done + 1] = b;
    /* Take the word list out of the entry: the map may move while we insert new pairs. */
    int32_t *where = e->where, n_where = e->n_where;
    e->where = NULL;
    e->n_where = e->cap_where = 0;
    n_touched = 0;
    for (int32_t k = 0; k < n_where; k++) {
      int32_t w = where[k];
      if (stamp[w] == done) continue;
      stamp[w] = done;
      int32_t *p = ids + (offsets[w] - offsets[0]);
      int32_t n = len[w];
      int found = 0;
      for (int32_t i = 0; i + 1 < n; i++)
        if (p[i] == a && p[i + 1] == b) { found = 1; break; }
      if (!found) continue;
      int64_t cnt = counts[w];
      for (int32_t i = 0; i + 1 < n; i++) map_find(&map, pair_key(p[i], p[i + 1]))->count -= cnt;
      int32_t m = 0;
      for (int32_t i = 0; i < n; i++) {
        if (i + 1 < n && p[i] == a && p[i + 1] == b) {
          p[m++] = c;
          i++;
        } else {
          p[m++] = p[i];
        }
      }
      len[w] = m;
      for (int32_t i = 0; i + 1 < m; i++) {
        uint64_t key = pair_key(p[i], p[i + 1]);
        PairEntry *f = map_get(&map, key);
        if (!f) { free(where); done = -1; goto out; }
        f->count += cnt;
        if (p[i] == c || p[i + 1] == c) {
          if (where_push(f, w)) { free(where); done = -1; goto out; }
          if (n_touched == cap_touched) {
            cap_touched = cap_touched ? cap_touched * 2 : 256;
            uint64_t *t = realloc(touched, (size_t)cap_touched * sizeof(uint64_t));
            if (!t) { free(where); done = -1; goto out; }
            touched = t;
          }
          touched[n_touched++] = key;
        }
      }
    }
    free(where);
    /* Push every new pair once with its final count (duplicates in touched are harmless). */
    for (int64_t t = 0; t < n_touched; t++) {
      PairEntry *f = map_find(&map, touched[t]);
      if (f->count > 0 && f->n_where >= 0) {
        if (heap_push(&heap, f->count, touched[t])) { done = -1; goto out; }
        f->n_where = -f->n_where - 1; /* mark pushed: restored below */
      }
    }
    for (int64_t t = 0; t < n_touched; t++) {
      PairEntry *f = map_find(&map, touched[t]);
      if (f->n_where < 0) f->n_where = -f->n_where - 1;
    }
    done++;
  }

out:
  if (map.slots) {
    for (uint64_t i = 0; i < map.cap; i++) free(map.slots[i].where);
    free(map.slots);
  }
  free(heap.items);
  free(touched);
  free(ids);
  free(len);
  free(stamp);
  return done;
}
