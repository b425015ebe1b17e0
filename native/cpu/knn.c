/* Exact k-nearest-neighbour scan over float vectors held in memory (the dense retriever's exact mode).
 * Squared L2 distance per row (the order sqlite-vec's vec0 KNN gives), each thread keeping a bounded
 * max-heap of its best k over a contiguous slice of rows, then one merge. Ties are broken by the lower
 * row index, and the caller keeps rows sorted by id, so ties go to the lower id as in the SQL it
 * replaces. The scan reads every vector once: memory bandwidth, not arithmetic, is the limit, so AVX2
 * (8-wide) is enough and threads help only while they add bandwidth. Threads are short-lived pthreads
 * of its own, not the engine's pool, so a search never changes the training thread count. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

typedef struct {
  float d;
  int32_t row;
} Cand;

/* a is worse than b: farther, or as far with a higher row */
static inline int worse(Cand a, Cand b) { return a.d > b.d || (a.d == b.d && a.row > b.row); }

/* Bounded max-heap: h[0] is the worst kept candidate. */
static void heap_push(Cand *h, int *n, int k, Cand c) {
  if (*n == k) {
    if (!worse(h[0], c)) return;
    int i = 0; /* replace the root and sift down */
    for (;;) {
      int l = 2 * i + 1, r = l + 1, w = i;
      Cand cw = c;
      if (l < k && worse(h[l], cw)) w = l, cw = h[l];
      if (r < k && worse(h[r], cw)) w = r;
      if (w == i) break;
      h[i] = h[w];
      i = w;
    }
    h[i] = c;
    return;
  }
  int i = (*n)++;
  while (i > 0 && worse(c, h[(i - 1) / 2])) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = c;
}

static inline float dist2(const float *restrict x, const float *restrict q, int dim) {
  v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
  int j = 0;
  for (; j + 32 <= dim; j += 32) {
    v8 d0 = *(const v8 *)(x + j) - *(const v8 *)(q + j), d1 = *(const v8 *)(x + j + 8) - *(const v8 *)(q + j + 8);
    v8 d2 = *(const v8 *)(x + j + 16) - *(const v8 *)(q + j + 16), d3 = *(const v8 *)(x + j + 24) - *(const v8 *)(q + j + 24);
    a0 += d0 * d0, a1 += d1 * d1, a2 += d2 * d2, a3 += d3 * d3;
  }
  for (; j + 8 <= dim; j += 8) {
    v8 d0 = *(const v8 *)(x + j) - *(const v8 *)(q + j);
    a0 += d0 * d0;
  }
  float s = v8_sum((a0 + a1) + (a2 + a3));
  for (; j < dim; j++) s += (x[j] - q[j]) * (x[j] - q[j]);
  return s;
}

typedef struct {
  const float *vecs, *q;
  const int32_t *rows; /* NULL: every row */
  int64_t begin, end;
  int dim, k, n;
  Cand *heap;
} Slice;

static void *scan_slice(void *arg) {
  Slice *s = arg;
  for (int64_t i = s->begin; i < s->end; i++) {
    int32_t row = s->rows ? s->rows[i] : (int32_t)i;
    Cand c = {dist2(s->vecs + (size_t)row * s->dim, s->q, s->dim), row};
    heap_push(s->heap, &s->n, s->k, c);
  }
  return NULL;
}

static int cand_cmp(const void *a, const void *b) {
  Cand x = *(const Cand *)a, y = *(const Cand *)b;
  return worse(x, y) - worse(y, x);
}

#define KNN_MAX_THREADS 16
/* Rows per thread below which another thread costs more than it saves. */
#define KNN_MIN_ROWS 16384

int nr_knn(const float *vecs, int dim, const int32_t *rows, int64_t n, const float *q, int k, int threads,
           int32_t *out_rows, float *out_dist) {
  if (dim <= 0 || k <= 0 || n < 0) return nr_fail("nr_knn: bad sizes (dim %d, k %d, n %lld)", dim, k, (long long)n);
  if (n == 0) return 0;
  int nt = threads < 1 ? 1 : threads > KNN_MAX_THREADS ? KNN_MAX_THREADS : threads;
  if (n / nt < KNN_MIN_ROWS) nt = (int)(n / KNN_MIN_ROWS) > 1 ? (int)(n / KNN_MIN_ROWS) : 1;
  if (k > n) k = (int)n;
  Cand *heaps = malloc(sizeof(Cand) * (size_t)k * nt);
  if (!heaps) return nr_fail("nr_knn: out of memory for %d x %d candidates", nt, k);
  Slice sl[KNN_MAX_THREADS];
  pthread_t th[KNN_MAX_THREADS];
  int started[KNN_MAX_THREADS] = {0};
  for (int t = 0; t < nt; t++) {
    sl[t] = (Slice){vecs, q, rows, n * t / nt, n * (t + 1) / nt, dim, k, 0, heaps + (size_t)k * t};
    /* a thread that cannot start leaves its slice to the caller */
    if (t > 0) started[t] = pthread_create(&th[t], NULL, scan_slice, &sl[t]) == 0;
  }
  scan_slice(&sl[0]);
  int total = sl[0].n;
  for (int t = 1; t < nt; t++) {
    if (started[t]) pthread_join(th[t], NULL);
    else scan_slice(&sl[t]);
    memmove(heaps + total, sl[t].heap, sizeof(Cand) * sl[t].n);
    total += sl[t].n;
  }
  qsort(heaps, total, sizeof(Cand), cand_cmp);
  int m = total < k ? total : k;
  for (int i = 0; i < m; i++) {
    out_rows[i] = heaps[i].row;
    out_dist[i] = heaps[i].d;
  }
  free(heaps);
  return m;
}
