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

/* ---------------------------------------------------------------------------------------------
 * Encoding. Unicode classes as JavaScript's RegExp sees them (generated with Bun 1.4.5 by testing
 * /^\p{L}$/u, /^\p{N}$/u and /^\s$/u on every code point above 0x7f), so this pre-split gives the
 * same pieces as src/tokenizer/pattern.ts's toJsRegExp on the GPT-4 pattern family.
 * ------------------------------------------------------------------------------------------- */
static const uint32_t UNI_L[][2] = {
{0xaa,0xaa},{0xb5,0xb5},{0xba,0xba},{0xc0,0xd6},{0xd8,0xf6},{0xf8,0x2c1},
{0x2c6,0x2d1},{0x2e0,0x2e4},{0x2ec,0x2ec},{0x2ee,0x2ee},{0x370,0x374},{0x376,0x377},
{0x37a,0x37d},{0x37f,0x37f},{0x386,0x386},{0x388,0x38a},{0x38c,0x38c},{0x38e,0x3a1},
{0x3a3,0x3f5},{0x3f7,0x481},{0x48a,0x52f},{0x531,0x556},{0x559,0x559},{0x560,0x588},
{0x5d0,0x5ea},{0x5ef,0x5f2},{0x620,0x64a},{0x66e,0x66f},{0x671,0x6d3},{0x6d5,0x6d5},
{0x6e5,0x6e6},{0x6ee,0x6ef},{0x6fa,0x6fc},{0x6ff,0x6ff},{0x710,0x710},{0x712,0x72f},
{0x74d,0x7a5},{0x7b1,0x7b1},{0x7ca,0x7ea},{0x7f4,0x7f5},{0x7fa,0x7fa},{0x800,0x815},
{0x81a,0x81a},{0x824,0x824},{0x828,0x828},{0x840,0x858},{0x860,0x86a},{0x870,0x887},
{0x889,0x88f},{0x8a0,0x8c9},{0x904,0x939},{0x93d,0x93d},{0x950,0x950},{0x958,0x961},
{0x971,0x980},{0x985,0x98c},{0x98f,0x990},{0x993,0x9a8},{0x9aa,0x9b0},{0x9b2,0x9b2},
{0x9b6,0x9b9},{0x9bd,0x9bd},{0x9ce,0x9ce},{0x9dc,0x9dd},{0x9df,0x9e1},{0x9f0,0x9f1},
{0x9fc,0x9fc},{0xa05,0xa0a},{0xa0f,0xa10},{0xa13,0xa28},{0xa2a,0xa30},{0xa32,0xa33},
{0xa35,0xa36},{0xa38,0xa39},{0xa59,0xa5c},{0xa5e,0xa5e},{0xa72,0xa74},{0xa85,0xa8d},
{0xa8f,0xa91},{0xa93,0xaa8},{0xaaa,0xab0},{0xab2,0xab3},{0xab5,0xab9},{0xabd,0xabd},
{0xad0,0xad0},{0xae0,0xae1},{0xaf9,0xaf9},{0xb05,0xb0c},{0xb0f,0xb10},{0xb13,0xb28},
{0xb2a,0xb30},{0xb32,0xb33},{0xb35,0xb39},{0xb3d,0xb3d},{0xb5c,0xb5d},{0xb5f,0xb61},
{0xb71,0xb71},{0xb83,0xb83},{0xb85,0xb8a},{0xb8e,0xb90},{0xb92,0xb95},{0xb99,0xb9a},
{0xb9c,0xb9c},{0xb9e,0xb9f},{0xba3,0xba4},{0xba8,0xbaa},{0xbae,0xbb9},{0xbd0,0xbd0},
{0xc05,0xc0c},{0xc0e,0xc10},{0xc12,0xc28},{0xc2a,0xc39},{0xc3d,0xc3d},{0xc58,0xc5a},
{0xc5c,0xc5d},{0xc60,0xc61},{0xc80,0xc80},{0xc85,0xc8c},{0xc8e,0xc90},{0xc92,0xca8},
{0xcaa,0xcb3},{0xcb5,0xcb9},{0xcbd,0xcbd},{0xcdc,0xcde},{0xce0,0xce1},{0xcf1,0xcf2},
{0xd04,0xd0c},{0xd0e,0xd10},{0xd12,0xd3a},{0xd3d,0xd3d},{0xd4e,0xd4e},{0xd54,0xd56},
{0xd5f,0xd61},{0xd7a,0xd7f},{0xd85,0xd96},{0xd9a,0xdb1},{0xdb3,0xdbb},{0xdbd,0xdbd},
{0xdc0,0xdc6},{0xe01,0xe30},{0xe32,0xe33},{0xe40,0xe46},{0xe81,0xe82},{0xe84,0xe84},
{0xe86,0xe8a},{0xe8c,0xea3},{0xea5,0xea5},{0xea7,0xeb0},{0xeb2,0xeb3},{0xebd,0xebd},
{0xec0,0xec4},{0xec6,0xec6},{0xedc,0xedf},{0xf00,0xf00},{0xf40,0xf47},{0xf49,0xf6c},
{0xf88,0xf8c},{0x1000,0x102a},{0x103f,0x103f},{0x1050,0x1055},{0x105a,0x105d},{0x1061,0x1061},
{0x1065,0x1066},{0x106e,0x1070},{0x1075,0x1081},{0x108e,0x108e},{0x10a0,0x10c5},{0x10c7,0x10c7},
{0x10cd,0x10cd},{0x10d0,0x10fa},{0x10fc,0x1248},{0x124a,0x124d},{0x1250,0x1256},{0x1258,0x1258},
{0x125a,0x125d},{0x1260,0x1288},{0x128a,0x128d},{0x1290,0x12b0},{0x12b2,0x12b5},{0x12b8,0x12be},
{0x12c0,0x12c0},{0x12c2,0x12c5},{0x12c8,0x12d6},{0x12d8,0x1310},{0x1312,0x1315},{0x1318,0x135a},
{0x1380,0x138f},{0x13a0,0x13f5},{0x13f8,0x13fd},{0x1401,0x166c},{0x166f,0x167f},{0x1681,0x169a},
{0x16a0,0x16ea},{0x16f1,0x16f8},{0x1700,0x1711},{0x171f,0x1731},{0x1740,0x1751},{0x1760,0x176c},
{0x176e,0x1770},{0x1780,0x17b3},{0x17d7,0x17d7},{0x17dc,0x17dc},{0x1820,0x1878},{0x1880,0x1884},
{0x1887,0x18a8},{0x18aa,0x18aa},{0x18b0,0x18f5},{0x1900,0x191e},{0x1950,0x196d},{0x1970,0x1974},
{0x1980,0x19ab},{0x19b0,0x19c9},{0x1a00,0x1a16},{0x1a20,0x1a54},{0x1aa7,0x1aa7},{0x1b05,0x1b33},
{0x1b45,0x1b4c},{0x1b83,0x1ba0},{0x1bae,0x1baf},{0x1bba,0x1be5},{0x1c00,0x1c23},{0x1c4d,0x1c4f},
{0x1c5a,0x1c7d},{0x1c80,0x1c8a},{0x1c90,0x1cba},{0x1cbd,0x1cbf},{0x1ce9,0x1cec},{0x1cee,0x1cf3},
{0x1cf5,0x1cf6},{0x1cfa,0x1cfa},{0x1d00,0x1dbf},{0x1e00,0x1f15},{0x1f18,0x1f1d},{0x1f20,0x1f45},
{0x1f48,0x1f4d},{0x1f50,0x1f57},{0x1f59,0x1f59},{0x1f5b,0x1f5b},{0x1f5d,0x1f5d},{0x1f5f,0x1f7d},
{0x1f80,0x1fb4},{0x1fb6,0x1fbc},{0x1fbe,0x1fbe},{0x1fc2,0x1fc4},{0x1fc6,0x1fcc},{0x1fd0,0x1fd3},
{0x1fd6,0x1fdb},{0x1fe0,0x1fec},{0x1ff2,0x1ff4},{0x1ff6,0x1ffc},{0x2071,0x2071},{0x207f,0x207f},
{0x2090,0x209c},{0x2102,0x2102},{0x2107,0x2107},{0x210a,0x2113},{0x2115,0x2115},{0x2119,0x211d},
{0x2124,0x2124},{0x2126,0x2126},{0x2128,0x2128},{0x212a,0x212d},{0x212f,0x2139},{0x213c,0x213f},
{0x2145,0x2149},{0x214e,0x214e},{0x2183,0x2184},{0x2c00,0x2ce4},{0x2ceb,0x2cee},{0x2cf2,0x2cf3},
{0x2d00,0x2d25},{0x2d27,0x2d27},{0x2d2d,0x2d2d},{0x2d30,0x2d67},{0x2d6f,0x2d6f},{0x2d80,0x2d96},
{0x2da0,0x2da6},{0x2da8,0x2dae},{0x2db0,0x2db6},{0x2db8,0x2dbe},{0x2dc0,0x2dc6},{0x2dc8,0x2dce},
{0x2dd0,0x2dd6},{0x2dd8,0x2dde},{0x2e2f,0x2e2f},{0x3005,0x3006},{0x3031,0x3035},{0x303b,0x303c},
{0x3041,0x3096},{0x309d,0x309f},{0x30a1,0x30fa},{0x30fc,0x30ff},{0x3105,0x312f},{0x3131,0x318e},
{0x31a0,0x31bf},{0x31f0,0x31ff},{0x3400,0x4dbf},{0x4e00,0xa48c},{0xa4d0,0xa4fd},{0xa500,0xa60c},
{0xa610,0xa61f},{0xa62a,0xa62b},{0xa640,0xa66e},{0xa67f,0xa69d},{0xa6a0,0xa6e5},{0xa717,0xa71f},
{0xa722,0xa788},{0xa78b,0xa7dc},{0xa7f1,0xa801},{0xa803,0xa805},{0xa807,0xa80a},{0xa80c,0xa822},
{0xa840,0xa873},{0xa882,0xa8b3},{0xa8f2,0xa8f7},{0xa8fb,0xa8fb},{0xa8fd,0xa8fe},{0xa90a,0xa925},
{0xa930,0xa946},{0xa960,0xa97c},{0xa984,0xa9b2},{0xa9cf,0xa9cf},{0xa9e0,0xa9e4},{0xa9e6,0xa9ef},
{0xa9fa,0xa9fe},{0xaa00,0xaa28},{0xaa40,0xaa42},{0xaa44,0xaa4b},{0xaa60,0xaa76},{0xaa7a,0xaa7a},
{0xaa7e,0xaaaf},{0xaab1,0xaab1},{0xaab5,0xaab6},{0xaab9,0xaabd},{0xaac0,0xaac0},{0xaac2,0xaac2},
{0xaadb,0xaadd},{0xaae0,0xaaea},{0xaaf2,0xaaf4},{0xab01,0xab06},{0xab09,0xab0e},{0xab11,0xab16},
{0xab20,0xab26},{0xab28,0xab2e},{0xab30,0xab5a},{0xab5c,0xab69},{0xab70,0xabe2},{0xac00,0xd7a3},
{0xd7b0,0xd7c6},{0xd7cb,0xd7fb},{0xf900,0xfa6d},{0xfa70,0xfad9},{0xfb00,0xfb06},{0xfb13,0xfb17},
{0xfb1d,0xfb1d},{0xfb1f,0xfb28},{0xfb2a,0xfb36},{0xfb38,0xfb3c},{0xfb3e,0xfb3e},{0xfb40,0xfb41},
{0xfb43,0xfb44},{0xfb46,0xfbb1},{0xfbd3,0xfd3d},{0xfd50,0xfd8f},{0xfd92,0xfdc7},{0xfdf0,0xfdfb},
{0xfe70,0xfe74},{0xfe76,0xfefc},{0xff21,0xff3a},{0xff41,0xff5a},{0xff66,0xffbe},{0xffc2,0xffc7},
{0xffca,0xffcf},{0xffd2,0xffd7},{0xffda,0xffdc},{0x10000,0x1000b},{0x1000d,0x10026},{0x10028,0x1003a},
{0x1003c,0x1003d},{0x1003f,0x1004d},{0x10050,0x1005d},{0x10080,0x100fa},{0x10280,0x1029c},{0x102a0,0x102d0},
{0x10300,0x1031f},{0x1032d,0x10340},{0x10342,0x10349},{0x10350,0x10375},{0x10380,0x1039d},{0x103a0,0x103c3},
{0x103c8,0x103cf},{0x10400,0x1049d},{0x104b0,0x104d3},{0x104d8,0x104fb},{0x10500,0x10527},{0x10530,0x10563},
{0x10570,0x1057a},{0x1057c,0x1058a},{0x1058c,0x10592},{0x10594,0x10595},{0x10597,0x105a1},{0x105a3,0x105b1},
{0x105b3,0x105b9},{0x105bb,0x105bc},{0x105c0,0x105f3},{0x10600,0x10736},{0x10740,0x10755},{0x10760,0x10767},
{0x10780,0x10785},{0x10787,0x107b0},{0x107b2,0x107ba},{0x10800,0x10805},{0x10808,0x10808},{0x1080a,0x10835},
{0x10837,0x10838},{0x1083c,0x1083c},{0x1083f,0x10855},{0x10860,0x10876},{0x10880,0x1089e},{0x108e0,0x108f2},
{0x108f4,0x108f5},{0x10900,0x10915},{0x10920,0x10939},{0x10940,0x10959},{0x10980,0x109b7},{0x109be,0x109bf},
{0x10a00,0x10a00},{0x10a10,0x10a13},{0x10a15,0x10a17},{0x10a19,0x10a35},{0x10a60,0x10a7c},{0x10a80,0x10a9c},
{0x10ac0,0x10ac7},{0x10ac9,0x10ae4},{0x10b00,0x10b35},{0x10b40,0x10b55},{0x10b60,0x10b72},{0x10b80,0x10b91},
{0x10c00,0x10c48},{0x10c80,0x10cb2},{0x10cc0,0x10cf2},{0x10d00,0x10d23},{0x10d4a,0x10d65},{0x10d6f,0x10d85},
{0x10e80,0x10ea9},{0x10eb0,0x10eb1},{0x10ec2,0x10ec7},{0x10f00,0x10f1c},{0x10f27,0x10f27},{0x10f30,0x10f45},
{0x10f70,0x10f81},{0x10fb0,0x10fc4},{0x10fe0,0x10ff6},{0x11003,0x11037},{0x11071,0x11072},{0x11075,0x11075},
{0x11083,0x110af},{0x110d0,0x110e8},{0x11103,0x11126},{0x11144,0x11144},{0x11147,0x11147},{0x11150,0x11172},
{0x11176,0x11176},{0x11183,0x111b2},{0x111c1,0x111c4},{0x111da,0x111da},{0x111dc,0x111dc},{0x11200,0x11211},
{0x11213,0x1122b},{0x1123f,0x11240},{0x11280,0x11286},{0x11288,0x11288},{0x1128a,0x1128d},{0x1128f,0x1129d},
{0x1129f,0x112a8},{0x112b0,0x112de},{0x11305,0x1130c},{0x1130f,0x11310},{0x11313,0x11328},{0x1132a,0x11330},
{0x11332,0x11333},{0x11335,0x11339},{0x1133d,0x1133d},{0x11350,0x11350},{0x1135d,0x11361},{0x11380,0x11389},
{0x1138b,0x1138b},{0x1138e,0x1138e},{0x11390,0x113b5},{0x113b7,0x113b7},{0x113d1,0x113d1},{0x113d3,0x113d3},
{0x11400,0x11434},{0x11447,0x1144a},{0x1145f,0x11461},{0x11480,0x114af},{0x114c4,0x114c5},{0x114c7,0x114c7},
{0x11580,0x115ae},{0x115d8,0x115db},{0x11600,0x1162f},{0x11644,0x11644},{0x11680,0x116aa},{0x116b8,0x116b8},
{0x11700,0x1171a},{0x11740,0x11746},{0x11800,0x1182b},{0x118a0,0x118df},{0x118ff,0x11906},{0x11909,0x11909},
{0x1190c,0x11913},{0x11915,0x11916},{0x11918,0x1192f},{0x1193f,0x1193f},{0x11941,0x11941},{0x119a0,0x119a7},
{0x119aa,0x119d0},{0x119e1,0x119e1},{0x119e3,0x119e3},{0x11a00,0x11a00},{0x11a0b,0x11a32},{0x11a3a,0x11a3a},
{0x11a50,0x11a50},{0x11a5c,0x11a89},{0x11a9d,0x11a9d},{0x11ab0,0x11af8},{0x11bc0,0x11be0},{0x11c00,0x11c08},
{0x11c0a,0x11c2e},{0x11c40,0x11c40},{0x11c72,0x11c8f},{0x11d00,0x11d06},{0x11d08,0x11d09},{0x11d0b,0x11d30},
{0x11d46,0x11d46},{0x11d60,0x11d65},{0x11d67,0x11d68},{0x11d6a,0x11d89},{0x11d98,0x11d98},{0x11db0,0x11ddb},
{0x11ee0,0x11ef2},{0x11f02,0x11f02},{0x11f04,0x11f10},{0x11f12,0x11f33},{0x11fb0,0x11fb0},{0x12000,0x12399},
{0x12480,0x12543},{0x12f90,0x12ff0},{0x13000,0x1342f},{0x13441,0x13446},{0x13460,0x143fa},{0x14400,0x14646},
{0x16100,0x1611d},{0x16800,0x16a38},{0x16a40,0x16a5e},{0x16a70,0x16abe},{0x16ad0,0x16aed},{0x16b00,0x16b2f},
{0x16b40,0x16b43},{0x16b63,0x16b77},{0x16b7d,0x16b8f},{0x16d40,0x16d6c},{0x16e40,0x16e7f},{0x16ea0,0x16eb8},
{0x16ebb,0x16ed3},{0x16f00,0x16f4a},{0x16f50,0x16f50},{0x16f93,0x16f9f},{0x16fe0,0x16fe1},{0x16fe3,0x16fe3},
{0x16ff2,0x16ff3},{0x17000,0x18cd5},{0x18cff,0x18d1e},{0x18d80,0x18df2},{0x1aff0,0x1aff3},{0x1aff5,0x1affb},
{0x1affd,0x1affe},{0x1b000,0x1b122},{0x1b132,0x1b132},{0x1b150,0x1b152},{0x1b155,0x1b155},{0x1b164,0x1b167},
{0x1b170,0x1b2fb},{0x1bc00,0x1bc6a},{0x1bc70,0x1bc7c},{0x1bc80,0x1bc88},{0x1bc90,0x1bc99},{0x1d400,0x1d454},
{0x1d456,0x1d49c},{0x1d49e,0x1d49f},{0x1d4a2,0x1d4a2},{0x1d4a5,0x1d4a6},{0x1d4a9,0x1d4ac},{0x1d4ae,0x1d4b9},
{0x1d4bb,0x1d4bb},{0x1d4bd,0x1d4c3},{0x1d4c5,0x1d505},{0x1d507,0x1d50a},{0x1d50d,0x1d514},{0x1d516,0x1d51c},
{0x1d51e,0x1d539},{0x1d53b,0x1d53e},{0x1d540,0x1d544},{0x1d546,0x1d546},{0x1d54a,0x1d550},{0x1d552,0x1d6a5},
{0x1d6a8,0x1d6c0},{0x1d6c2,0x1d6da},{0x1d6dc,0x1d6fa},{0x1d6fc,0x1d714},{0x1d716,0x1d734},{0x1d736,0x1d74e},
{0x1d750,0x1d76e},{0x1d770,0x1d788},{0x1d78a,0x1d7a8},{0x1d7aa,0x1d7c2},{0x1d7c4,0x1d7cb},{0x1df00,0x1df1e},
{0x1df25,0x1df2a},{0x1e030,0x1e06d},{0x1e100,0x1e12c},{0x1e137,0x1e13d},{0x1e14e,0x1e14e},{0x1e290,0x1e2ad},
{0x1e2c0,0x1e2eb},{0x1e4d0,0x1e4eb},{0x1e5d0,0x1e5ed},{0x1e5f0,0x1e5f0},{0x1e6c0,0x1e6de},{0x1e6e0,0x1e6e2},
{0x1e6e4,0x1e6e5},{0x1e6e7,0x1e6ed},{0x1e6f0,0x1e6f4},{0x1e6fe,0x1e6ff},{0x1e7e0,0x1e7e6},{0x1e7e8,0x1e7eb},
{0x1e7ed,0x1e7ee},{0x1e7f0,0x1e7fe},{0x1e800,0x1e8c4},{0x1e900,0x1e943},{0x1e94b,0x1e94b},{0x1ee00,0x1ee03},
{0x1ee05,0x1ee1f},{0x1ee21,0x1ee22},{0x1ee24,0x1ee24},{0x1ee27,0x1ee27},{0x1ee29,0x1ee32},{0x1ee34,0x1ee37},
{0x1ee39,0x1ee39},{0x1ee3b,0x1ee3b},{0x1ee42,0x1ee42},{0x1ee47,0x1ee47},{0x1ee49,0x1ee49},{0x1ee4b,0x1ee4b},
{0x1ee4d,0x1ee4f},{0x1ee51,0x1ee52},{0x1ee54,0x1ee54},{0x1ee57,0x1ee57},{0x1ee59,0x1ee59},{0x1ee5b,0x1ee5b},
{0x1ee5d,0x1ee5d},{0x1ee5f,0x1ee5f},{0x1ee61,0x1ee62},{0x1ee64,0x1ee64},{0x1ee67,0x1ee6a},{0x1ee6c,0x1ee72},
{0x1ee74,0x1ee77},{0x1ee79,0x1ee7c},{0x1ee7e,0x1ee7e},{0x1ee80,0x1ee89},{0x1ee8b,0x1ee9b},{0x1eea1,0x1eea3},
{0x1eea5,0x1eea9},{0x1eeab,0x1eebb},{0x20000,0x2a6df},{0x2a700,0x2b81d},{0x2b820,0x2cead},{0x2ceb0,0x2ebe0},
{0x2ebf0,0x2ee5d},{0x2f800,0x2fa1d},{0x30000,0x3134a},{0x31350,0x33479},
};
static const uint32_t UNI_N[][2] = {
{0xb2,0xb3},{0xb9,0xb9},{0xbc,0xbe},{0x660,0x669},{0x6f0,0x6f9},{0x7c0,0x7c9},
{0x966,0x96f},{0x9e6,0x9ef},{0x9f4,0x9f9},{0xa66,0xa6f},{0xae6,0xaef},{0xb66,0xb6f},
{0xb72,0xb77},{0xbe6,0xbf2},{0xc66,0xc6f},{0xc78,0xc7e},{0xce6,0xcef},{0xd58,0xd5e},
{0xd66,0xd78},{0xde6,0xdef},{0xe50,0xe59},{0xed0,0xed9},{0xf20,0xf33},{0x1040,0x1049},
{0x1090,0x1099},{0x1369,0x137c},{0x16ee,0x16f0},{0x17e0,0x17e9},{0x17f0,0x17f9},{0x1810,0x1819},
{0x1946,0x194f},{0x19d0,0x19da},{0x1a80,0x1a89},{0x1a90,0x1a99},{0x1b50,0x1b59},{0x1bb0,0x1bb9},
{0x1c40,0x1c49},{0x1c50,0x1c59},{0x2070,0x2070},{0x2074,0x2079},{0x2080,0x2089},{0x2150,0x2182},
{0x2185,0x2189},{0x2460,0x249b},{0x24ea,0x24ff},{0x2776,0x2793},{0x2cfd,0x2cfd},{0x3007,0x3007},
{0x3021,0x3029},{0x3038,0x303a},{0x3192,0x3195},{0x3220,0x3229},{0x3248,0x324f},{0x3251,0x325f},
{0x3280,0x3289},{0x32b1,0x32bf},{0xa620,0xa629},{0xa6e6,0xa6ef},{0xa830,0xa835},{0xa8d0,0xa8d9},
{0xa900,0xa909},{0xa9d0,0xa9d9},{0xa9f0,0xa9f9},{0xaa50,0xaa59},{0xabf0,0xabf9},{0xff10,0xff19},
{0x10107,0x10133},{0x10140,0x10178},{0x1018a,0x1018b},{0x102e1,0x102fb},{0x10320,0x10323},{0x10341,0x10341},
{0x1034a,0x1034a},{0x103d1,0x103d5},{0x104a0,0x104a9},{0x10858,0x1085f},{0x10879,0x1087f},{0x108a7,0x108af},
{0x108fb,0x108ff},{0x10916,0x1091b},{0x109bc,0x109bd},{0x109c0,0x109cf},{0x109d2,0x109ff},{0x10a40,0x10a48},
{0x10a7d,0x10a7e},{0x10a9d,0x10a9f},{0x10aeb,0x10aef},{0x10b58,0x10b5f},{0x10b78,0x10b7f},{0x10ba9,0x10baf},
{0x10cfa,0x10cff},{0x10d30,0x10d39},{0x10d40,0x10d49},{0x10e60,0x10e7e},{0x10f1d,0x10f26},{0x10f51,0x10f54},
{0x10fc5,0x10fcb},{0x11052,0x1106f},{0x110f0,0x110f9},{0x11136,0x1113f},{0x111d0,0x111d9},{0x111e1,0x111f4},
{0x112f0,0x112f9},{0x11450,0x11459},{0x114d0,0x114d9},{0x11650,0x11659},{0x116c0,0x116c9},{0x116d0,0x116e3},
{0x11730,0x1173b},{0x118e0,0x118f2},{0x11950,0x11959},{0x11bf0,0x11bf9},{0x11c50,0x11c6c},{0x11d50,0x11d59},
{0x11da0,0x11da9},{0x11de0,0x11de9},{0x11f50,0x11f59},{0x11fc0,0x11fd4},{0x12400,0x1246e},{0x16130,0x16139},
{0x16a60,0x16a69},{0x16ac0,0x16ac9},{0x16b50,0x16b59},{0x16b5b,0x16b61},{0x16d70,0x16d79},{0x16e80,0x16e96},
{0x16ff4,0x16ff6},{0x1ccf0,0x1ccf9},{0x1d2c0,0x1d2d3},{0x1d2e0,0x1d2f3},{0x1d360,0x1d378},{0x1d7ce,0x1d7ff},
{0x1e140,0x1e149},{0x1e2f0,0x1e2f9},{0x1e4f0,0x1e4f9},{0x1e5f1,0x1e5fa},{0x1e8c7,0x1e8cf},{0x1e950,0x1e959},
{0x1ec71,0x1ecab},{0x1ecad,0x1ecaf},{0x1ecb1,0x1ecb4},{0x1ed01,0x1ed2d},{0x1ed2f,0x1ed3d},{0x1f100,0x1f10c},
{0x1fbf0,0x1fbf9},
};
static const uint32_t UNI_S[][2] = {
{0xa0,0xa0},{0x1680,0x1680},{0x2000,0x200a},{0x2028,0x2029},{0x202f,0x202f},{0x205f,0x205f},
{0x3000,0x3000},{0xfeff,0xfeff},
};

enum { C_L = 1, C_N = 2, C_S = 4 };
static uint8_t bmp_class[0x10000];
static int bmp_ready = 0;

static int in_ranges(const uint32_t (*r)[2], int n, uint32_t cp) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (cp < r[mid][0]) hi = mid - 1;
    else if (cp > r[mid][1]) lo = mid + 1;
    else return 1;
  }
  return 0;
}

static uint8_t class_slow(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return C_L;
    if (cp >= '0' && cp <= '9') return C_N;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d)) return C_S;
    return 0;
  }
  if (in_ranges(UNI_L, (int)(sizeof UNI_L / sizeof UNI_L[0]), cp)) return C_L;
  if (in_ranges(UNI_N, (int)(sizeof UNI_N / sizeof UNI_N[0]), cp)) return C_N;
  if (in_ranges(UNI_S, (int)(sizeof UNI_S / sizeof UNI_S[0]), cp)) return C_S;
  return 0;
}

static void init_classes(void) {
  if (bmp_ready) return;
  for (uint32_t cp = 0; cp < 0x10000; cp++) bmp_class[cp] = class_slow(cp);
  bmp_ready = 1;
}

static inline uint8_t cls(uint32_t cp) { return cp < 0x10000 ? bmp_class[cp] : class_slow(cp); }

/* Decodes the code point at s[i]; *n gets its length. Invalid bytes count as one "other" character. */
static inline uint32_t dec(const uint8_t *s, int64_t len, int64_t i, int *n) {
  uint8_t c = s[i];
  if (c < 0x80) { *n = 1; return c; }
  if ((c >> 5) == 6 && i + 1 < len) { *n = 2; return ((uint32_t)(c & 0x1f) << 6) | (s[i + 1] & 0x3f); }
  if ((c >> 4) == 14 && i + 2 < len) { *n = 3; return ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f); }
  if ((c >> 3) == 30 && i + 3 < len) {
    *n = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3f) << 12) | ((uint32_t)(s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f);
  }
  *n = 1;
  return 0xfffd;
}

static inline int64_t skip_class(const uint8_t *s, int64_t len, int64_t j, uint8_t want) {
  while (j < len) {
    int n;
    uint32_t c = dec(s, len, j, &n);
    if (!(cls(c) & want)) break;
    j += n;
  }
  return j;
}

static inline int64_t skip_other(const uint8_t *s, int64_t len, int64_t j) {
  while (j < len) {
    int n;
    uint32_t c = dec(s, len, j, &n);
    if (cls(c) & (C_L | C_N | C_S)) break;
    j += n;
  }
  return j;
}

/* End of the piece starting at i, following
 * '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+ */
static int64_t next_piece(const uint8_t *s, int64_t len, int64_t i, int max_digits) {
  int n0;
  uint32_t c0 = dec(s, len, i, &n0);
  uint8_t k0 = cls(c0);
  if (c0 == '\'' && i + 1 < len) {
    uint8_t a = s[i + 1] | 0x20;
    if (a == 's' || a == 'd' || a == 'm' || a == 't') return i + 2;
    if (i + 2 < len) {
      uint8_t b = s[i + 2] | 0x20;
      if ((a == 'l' && b == 'l') || (a == 'v' && b == 'e') || (a == 'r' && b == 'e')) return i + 3;
    }
  }
  if (k0 & C_L) return skip_class(s, len, i + n0, C_L);
  if (c0 != '\r' && c0 != '\n' && !(k0 & (C_L | C_N)) && i + n0 < len) {
    int n1;
    uint32_t c1 = dec(s, len, i + n0, &n1);
    if (cls(c1) & C_L) return skip_class(s, len, i + n0 + n1, C_L);
  }
  if (k0 & C_N) {
    int64_t j = i + n0;
    for (int d = 1; d < max_digits && j < len; d++) {
      int n;
      uint32_t c = dec(s, len, j, &n);
      if (!(cls(c) & C_N)) break;
      j += n;
    }
    return j;
  }
  {
    int64_t j = c0 == ' ' ? i + 1 : i;
    if (j < len) {
      int n;
      uint32_t c = dec(s, len, j, &n);
      if (!(cls(c) & (C_L | C_N | C_S))) {
        j = skip_other(s, len, j + n);
        while (j < len && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
      }
    }
  }
  /* whitespace */
  int64_t j = i, last_nl = -1, last_start = i;
  while (j < len) {
    int n;
    uint32_t c = dec(s, len, j, &n);
    if (!(cls(c) & C_S)) break;
    if (c == '\r' || c == '\n') last_nl = j;
    last_start = j;
    j += n;
  }
  if (last_nl >= 0) return last_nl + 1;
  if (j == len) return j;
  if (last_start > i) return last_start;
  return j > i ? j : i + n0;
}

/* Byte-string -> id map and pair -> merged-id map. */
typedef struct {
  uint64_t hash;
  int32_t id; /* -1 = empty */
} BytesSlot;

/* A direct-mapped cache of short pieces' encodings: most text repeats its words. */
#define CACHE_BITS 16
#define CACHE_BYTES 22
#define CACHE_IDS 6
typedef struct {
  uint64_t hash;
  uint8_t len, n_ids;
  uint8_t bytes[CACHE_BYTES];
  int32_t ids[CACHE_IDS];
} CacheSlot;

struct NrBpe {
  CacheSlot *cache;
  uint8_t *bytes;
  int64_t *offsets;
  int32_t n_tokens;
  int32_t max_digits;
  int32_t byte_id[256];
  BytesSlot *tok;
  uint64_t tok_cap;
  uint64_t *pair_key; /* 0 = empty */
  int32_t *pair_val;
  uint64_t pair_cap;
};

static inline uint64_t fnv(const uint8_t *p, int64_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (int64_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h | 1;
}

static int32_t tok_find(const NrBpe *b, const uint8_t *p, int64_t n) {
  uint64_t h = fnv(p, n);
  uint64_t j = h & (b->tok_cap - 1);
  while (b->tok[j].id >= 0) {
    if (b->tok[j].hash == h) {
      int32_t id = b->tok[j].id;
      int64_t o = b->offsets[id], m = b->offsets[id + 1] - o;
      if (m == n && memcmp(b->bytes + o, p, (size_t)n) == 0) return id;
    }
    j = (j + 1) & (b->tok_cap - 1);
  }
  return -1;
}

static inline int32_t pair_find(const NrBpe *b, int32_t x, int32_t y) {
  uint64_t k = pair_key(x, y);
  uint64_t j = hash64(k) & (b->pair_cap - 1);
  while (b->pair_key[j]) {
    if (b->pair_key[j] == k) return b->pair_val[j];
    j = (j + 1) & (b->pair_cap - 1);
  }
  return -1;
}

void nr_bpe_free(NrBpe *b) {
  if (!b) return;
  free(b->cache);
  free(b->bytes);
  free(b->offsets);
  free(b->tok);
  free(b->pair_key);
  free(b->pair_val);
  free(b);
}

NrBpe *nr_bpe_new(const uint8_t *token_bytes, const int64_t *offsets, int32_t n_tokens, int32_t max_digits) {
  init_classes();
  NrBpe *b = calloc(1, sizeof(NrBpe));
  if (!b) return NULL;
  int64_t total = offsets[n_tokens] - offsets[0];
  b->n_tokens = n_tokens;
  b->max_digits = max_digits > 0 ? max_digits : 3;
  b->bytes = malloc((size_t)(total > 0 ? total : 1));
  b->offsets = malloc((size_t)(n_tokens + 1) * sizeof(int64_t));
  uint64_t cap = 1024;
  while (cap < (uint64_t)n_tokens * 2) cap *= 2;
  b->tok_cap = cap;
  b->tok = malloc(cap * sizeof(BytesSlot));
  uint64_t pcap = 1024;
  while (pcap < (uint64_t)n_tokens * 8) pcap *= 2;
  b->pair_cap = pcap;
  b->pair_key = calloc(pcap, sizeof(uint64_t));
  b->pair_val = malloc(pcap * sizeof(int32_t));
  b->cache = calloc((size_t)1 << CACHE_BITS, sizeof(CacheSlot));
  if (!b->cache || !b->bytes || !b->offsets || !b->tok || !b->pair_key || !b->pair_val) { nr_bpe_free(b); return NULL; }
  memcpy(b->bytes, token_bytes + offsets[0], (size_t)total);
  for (int32_t i = 0; i <= n_tokens; i++) b->offsets[i] = offsets[i] - offsets[0];
  for (uint64_t j = 0; j < cap; j++) b->tok[j].id = -1;
  for (int i = 0; i < 256; i++) b->byte_id[i] = -1;
  for (int32_t id = 0; id < n_tokens; id++) {
    const uint8_t *p = b->bytes + b->offsets[id];
    int64_t n = b->offsets[id + 1] - b->offsets[id];
    if (n == 1) b->byte_id[p[0]] = id;
    uint64_t h = fnv(p, n), j = h & (cap - 1);
    while (b->tok[j].id >= 0) j = (j + 1) & (cap - 1);
    b->tok[j].hash = h;
    b->tok[j].id = id;
  }
  for (int i = 0; i < 256; i++) if (b->byte_id[i] < 0) { nr_bpe_free(b); return NULL; }
  uint64_t used = 0;
  for (int32_t id = 0; id < n_tokens; id++) {
    const uint8_t *p = b->bytes + b->offsets[id];
    int64_t n = b->offsets[id + 1] - b->offsets[id];
    for (int64_t k = 1; k < n; k++) {
      int32_t x = tok_find(b, p, k);
      if (x < 0) continue;
      int32_t y = tok_find(b, p + k, n - k);
      if (y < 0) continue;
      if ((used + 1) * 2 > b->pair_cap) {
        uint64_t ncap = b->pair_cap * 2;
        uint64_t *nk = calloc(ncap, sizeof(uint64_t));
        int32_t *nv = malloc(ncap * sizeof(int32_t));
        if (!nk || !nv) { free(nk); free(nv); nr_bpe_free(b); return NULL; }
        for (uint64_t j = 0; j < b->pair_cap; j++) {
          if (!b->pair_key[j]) continue;
          uint64_t q = hash64(b->pair_key[j]) & (ncap - 1);
          while (nk[q]) q = (q + 1) & (ncap - 1);
          nk[q] = b->pair_key[j];
          nv[q] = b->pair_val[j];
        }
        free(b->pair_key);
        free(b->pair_val);
        b->pair_key = nk;
        b->pair_val = nv;
        b->pair_cap = ncap;
      }
      uint64_t key = pair_key(x, y), q = hash64(key) & (b->pair_cap - 1);
      while (b->pair_key[q] && b->pair_key[q] != key) q = (q + 1) & (b->pair_cap - 1);
      if (!b->pair_key[q]) {
        b->pair_key[q] = key;
        b->pair_val[q] = id;
        used++;
      } else if (id < b->pair_val[q]) {
        b->pair_val[q] = id;
      }
    }
  }
  return b;
}

#define NO_RANK INT32_MAX

/* BPE over one piece; writes ids to out, returns how many. Short pieces: scan for the minimum;
 * long ones: a linked list with a lazy min-heap on (rank, position), O(n log n). */
static int64_t encode_piece_uncached(const NrBpe *b, const uint8_t *p, int64_t n, int32_t *out);

static int64_t encode_piece(NrBpe *b, const uint8_t *p, int64_t n, int32_t *out) {
  if (n == 1) { out[0] = b->byte_id[p[0]]; return 1; }
  if (n > CACHE_BYTES) return encode_piece_uncached(b, p, n, out);
  uint64_t h = fnv(p, n);
  CacheSlot *c = &b->cache[(h >> 7) & (((uint64_t)1 << CACHE_BITS) - 1)];
  if (c->hash == h && c->len == n && memcmp(c->bytes, p, (size_t)n) == 0) {
    memcpy(out, c->ids, (size_t)c->n_ids * sizeof(int32_t));
    return c->n_ids;
  }
  int64_t m = encode_piece_uncached(b, p, n, out);
  if (m <= CACHE_IDS) {
    c->hash = h;
    c->len = (uint8_t)n;
    c->n_ids = (uint8_t)m;
    memcpy(c->bytes, p, (size_t)n);
    memcpy(c->ids, out, (size_t)m * sizeof(int32_t));
  }
  return m;
}

static int64_t encode_piece_uncached(const NrBpe *b, const uint8_t *p, int64_t n, int32_t *out) {
  if (n <= 64) {
    int32_t whole = tok_find(b, p, n);
    if (whole >= 0) { out[0] = whole; return 1; }
  }
  if (n <= 256) {
    int32_t parts[256], ranks[256];
    int64_t m = n;
    for (int64_t i = 0; i < n; i++) parts[i] = b->byte_id[p[i]];
    for (int64_t i = 0; i + 1 < m; i++) { int32_t r = pair_find(b, parts[i], parts[i + 1]); ranks[i] = r < 0 ? NO_RANK : r; }
    while (m > 1) {
      int32_t best = NO_RANK;
      int64_t at = -1;
      for (int64_t i = 0; i + 1 < m; i++) if (ranks[i] < best) { best = ranks[i]; at = i; }
      if (at < 0) break;
      parts[at] = best;
      memmove(parts + at + 1, parts + at + 2, (size_t)(m - at - 2) * sizeof(int32_t));
      memmove(ranks + at, ranks + at + 1, (size_t)(m - at - 2) * sizeof(int32_t));
      m--;
      if (at > 0) { int32_t r = pair_find(b, parts[at - 1], best); ranks[at - 1] = r < 0 ? NO_RANK : r; }
      if (at + 1 < m) { int32_t r = pair_find(b, best, parts[at + 1]); ranks[at] = r < 0 ? NO_RANK : r; }
    }
    memcpy(out, parts, (size_t)m * sizeof(int32_t));
    return m;
  }
  /* long piece */
  int32_t *tokv = malloc((size_t)n * sizeof(int32_t));
  int64_t *next = malloc((size_t)n * sizeof(int64_t));
  int64_t *prev = malloc((size_t)n * sizeof(int64_t));
  int32_t *rank = malloc((size_t)n * sizeof(int32_t)); /* rank of the pair starting at i */
  Heap h = {0};
  int64_t m = 0;
  if (!tokv || !next || !prev || !rank) goto fallback;
  for (int64_t i = 0; i < n; i++) { tokv[i] = b->byte_id[p[i]]; next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
  for (int64_t i = 0; i + 1 < n; i++) {
    int32_t r = pair_find(b, tokv[i], tokv[i + 1]);
    rank[i] = r < 0 ? NO_RANK : r;
    if (r >= 0 && heap_push(&h, -(((int64_t)r << 32) | i), (uint64_t)i)) goto fallback;
  }
  rank[n - 1] = NO_RANK;
  while (h.n > 0) {
    HeapItem it = heap_pop(&h);
    int64_t i = (int64_t)it.key;
    int32_t r = (int32_t)((-it.count) >> 32);
    if (tokv[i] < 0 || rank[i] != r || next[i] < 0) continue; /* stale */
    int64_t j = next[i];
    tokv[i] = r;
    tokv[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (prev[i] >= 0) {
      int64_t q = prev[i];
      int32_t rr = pair_find(b, tokv[q], r);
      rank[q] = rr < 0 ? NO_RANK : rr;
      if (rr >= 0 && heap_push(&h, -(((int64_t)rr << 32) | q), (uint64_t)q)) goto fallback;
    }
    if (next[i] >= 0) {
      int32_t rr = pair_find(b, r, tokv[next[i]]);
      rank[i] = rr < 0 ? NO_RANK : rr;
      if (rr >= 0 && heap_push(&h, -(((int64_t)rr << 32) | i), (uint64_t)i)) goto fallback;
    } else rank[i] = NO_RANK;
  }
  for (int64_t i = 0; i >= 0; i = next[i]) out[m++] = tokv[i];
  free(tokv); free(next); free(prev); free(rank); free(h.items);
  return m;
fallback: /* out of memory: emit bytes (still decodes exactly) */
  free(tokv); free(next); free(prev); free(rank); free(h.items);
  for (int64_t i = 0; i < n; i++) out[i] = b->byte_id[p[i]];
  return n;
}

int64_t nr_bpe_split(const NrBpe *b, const uint8_t *text, int64_t len, int64_t *ends) {
  int64_t k = 0;
  for (int64_t i = 0; i < len;) {
    i = next_piece(text, len, i, b->max_digits);
    ends[k++] = i;
  }
  return k;
}

int64_t nr_bpe_encode(const NrBpe *b, const uint8_t *text, int64_t len, int32_t *out, int64_t cap) {
  if (cap < len) return -1;
  int64_t k = 0;
  for (int64_t i = 0; i < len;) {
    int64_t e = next_piece(text, len, i, b->max_digits);
    k += encode_piece((NrBpe *)b, text + i, e - i, out + k);
    i = e;
  }
  return k;
}

/* ---------------------------------------------------------------------------------------------
 * Counting pieces for training.
 * ------------------------------------------------------------------------------------------- */
#include <pthread.h>

typedef struct {
  uint64_t hash; /* 0 = empty */
  int64_t off;   /* into the arena */
  int64_t count;
  int32_t len;
} CountSlot;

typedef struct {
  CountSlot *slots;
  uint64_t cap, size;
  uint8_t *arena;
  int64_t arena_len, arena_cap;
  int failed;
} CountMap;

struct NrBpeCounter {
  CountMap map;
  int32_t max_digits;
};

static int cmap_init(CountMap *m) {
  memset(m, 0, sizeof *m);
  m->cap = 1 << 16;
  m->slots = calloc(m->cap, sizeof(CountSlot));
  m->arena_cap = 1 << 20;
  m->arena = malloc((size_t)m->arena_cap);
  return m->slots && m->arena ? 0 : -1;
}

static void cmap_free(CountMap *m) {
  free(m->slots);
  free(m->arena);
}

static int cmap_add(CountMap *m, const uint8_t *p, int64_t n, uint64_t h, int64_t count) {
  if ((m->size + 1) * 2 > m->cap) {
    uint64_t ncap = m->cap * 2;
    CountSlot *ns = calloc(ncap, sizeof(CountSlot));
    if (!ns) return -1;
    for (uint64_t i = 0; i < m->cap; i++) {
      if (!m->slots[i].hash) continue;
      uint64_t j = m->slots[i].hash & (ncap - 1);
      while (ns[j].hash) j = (j + 1) & (ncap - 1);
      ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
  }
  uint64_t j = h & (m->cap - 1);
  while (m->slots[j].hash) {
    CountSlot *s = &m->slots[j];
    if (s->hash == h && s->len == n && memcmp(m->arena + s->off, p, (size_t)n) == 0) {
      s->count += count;
      return 0;
    }
    j = (j + 1) & (m->cap - 1);
  }
  if (m->arena_len + n > m->arena_cap) {
    int64_t ncap = m->arena_cap * 2;
    while (ncap < m->arena_len + n) ncap *= 2;
    uint8_t *na = realloc(m->arena, (size_t)ncap);
    if (!na) return -1;
    m->arena = na;
    m->arena_cap = ncap;
  }
  memcpy(m->arena + m->arena_len, p, (size_t)n);
  m->slots[j] = (CountSlot){h, m->arena_len, count, (int32_t)n};
  m->arena_len += n;
  m->size++;
  return 0;
}

typedef struct {
  CountMap *map;
  const uint8_t *text;
  int64_t len;
  int32_t max_digits;
} CountJob;

static void *count_job(void *arg) {
  CountJob *job = arg;
  for (int64_t i = 0; i < job->len && !job->map->failed;) {
    int64_t e = next_piece(job->text, job->len, i, job->max_digits);
    if (cmap_add(job->map, job->text + i, e - i, fnv(job->text + i, e - i), 1)) job->map->failed = 1;
    i = e;
  }
  return NULL;
}

NrBpeCounter *nr_bpe_counter_new(int32_t max_digits) {
  init_classes();
  NrBpeCounter *c = calloc(1, sizeof(NrBpeCounter));
  if (!c) return NULL;
  c->max_digits = max_digits > 0 ? max_digits : 3;
  if (cmap_init(&c->map)) {
    nr_bpe_counter_free(c);
    return NULL;
  }
  return c;
}

void nr_bpe_counter_free(NrBpeCounter *c) {
  if (!c) return;
  cmap_free(&c->map);
  free(c);
}

int64_t nr_bpe_counter_unique(const NrBpeCounter *c) { return (int64_t)c->map.size; }

/* A point where no piece of the pattern can continue across: after '\n' and before a byte that is
 * not ASCII whitespace. -1 when there is none near the middle. */
static int64_t safe_cut(const uint8_t *t, int64_t len) {
  for (int64_t i = len / 2; i + 1 < len; i++) {
    uint8_t b = t[i + 1];
    if (t[i] == '\n' && b != ' ' && !(b >= 0x09 && b <= 0x0d) && b < 0x80) return i + 1;
  }
  return -1;
}

int32_t nr_bpe_counter_add(NrBpeCounter *c, const uint8_t *text, int64_t len, int32_t n_threads) {
  int64_t cut = n_threads >= 2 && len > (1 << 20) ? safe_cut(text, len) : -1;
  if (cut < 0) {
    CountJob job = {&c->map, text, len, c->max_digits};
    count_job(&job);
    return c->map.failed ? -1 : 0;
  }
  CountMap side;
  if (cmap_init(&side)) return -1;
  CountJob a = {&c->map, text, cut, c->max_digits}, b = {&side, text + cut, len - cut, c->max_digits};
  pthread_t th;
  int threaded = pthread_create(&th, NULL, count_job, &b) == 0;
  count_job(&a);
  if (threaded) pthread_join(th, NULL);
  else count_job(&b);
  int rc = c->map.failed || side.failed ? -1 : 0;
  for (uint64_t i = 0; rc == 0 && i < side.cap; i++) {
    CountSlot *s = &side.slots[i];
    if (s->hash && cmap_add(&c->map, side.arena + s->off, s->len, s->hash, s->count)) rc = -1;
  }
  cmap_free(&side);
  return rc;
}

int32_t nr_bpe_counter_train(NrBpeCounter *c, int32_t n_merges, int32_t *out_pairs) {
  int64_t n = (int64_t)c->map.size;
  int64_t *offsets = malloc((size_t)(n + 1) * sizeof(int64_t));
  int64_t *counts = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
  uint8_t *data = malloc((size_t)(c->map.arena_len > 0 ? c->map.arena_len : 1));
  int32_t rc = -1;
  if (offsets && counts && data) {
    /* The merges do not depend on the order of the pieces (counts are summed, ties go to the
     * smaller pair), so the hash table's order is fine. */
    int64_t k = 0, o = 0;
    offsets[0] = 0;
    {
      for (uint64_t i = 0; i < c->map.cap; i++) {
        CountSlot *s = &c->map.slots[i];
        if (!s->hash) continue;
        memcpy(data + o, c->map.arena + s->off, (size_t)s->len);
        o += s->len;
        offsets[k + 1] = o;
        counts[k++] = s->count;
      }
      rc = nr_bpe_train(data, offsets, counts, k, n_merges, out_pairs);
    }
  }
  free(offsets);
  free(counts);
  free(data);
  return rc;
}
