/* One-row products (M == 1: decode, one query row of attention): c[N] (+)= a[K] . op(B), streaming B
 * once with no packing. Each c[n] is the same FMA chain as the GEMM micro-kernel builds it: sequential
 * over k within blocks of GEMV_KC (== the GEMM's KC) from zero, the first block stored (or added to c
 * when acc), later blocks added; so a one-row product is bit-identical to that row of an M-row GEMM
 * and decode stays equal to the full forward. Vectors run across n: for op(B) = B^T (B stored N x K)
 * eight rows by eight k are loaded and transposed, for op(B) = B (K x N) eight consecutive columns
 * are loaded. */
#include <immintrin.h>
#include "common.h"

#define GEMV_KC 256

/* accumulate the block's chain into c (first block of a non-accumulating product: store) */
static inline __m256 merge(__m256 c, __m256 chain, int store) { return store ? chain : _mm256_add_ps(c, chain); }

/* Columns j of the 8 x 8 block w[i * ldb + k + j] (rows i, k-offsets j): col[j][i]. Each 256-bit row
 * pairs rows i and i + 4 (the insert runs on any port), so a 4 x 4 transpose per 128-bit lane finishes
 * it: 8 unpacks and 4 shuffles, with blends for the rest, keep the shuffle port at 12 (a plain 8 x 8
 * transpose needs 24) per 64 weights. Gathers would need none but are microcoded and far slower with the
 * gather-data-sampling mitigation. */
static inline void columns8(const float *w, long ldb, int k, __m256 col[8]) {
  for (int h = 0; h < 2; h++) { /* h = 0: k..k+3, h = 1: k+4..k+7 */
    __m256 r[4];
    for (int i = 0; i < 4; i++)
      r[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(w + i * ldb + k + 4 * h)),
                                  _mm_loadu_ps(w + (i + 4) * ldb + k + 4 * h), 1);
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 v0 = _mm256_shuffle_ps(t0, t2, 0x4E), v1 = _mm256_shuffle_ps(t1, t3, 0x4E);
    col[4 * h + 0] = _mm256_blend_ps(t0, v0, 0xCC);
    col[4 * h + 1] = _mm256_blend_ps(v0, t2, 0xCC);
    col[4 * h + 2] = _mm256_blend_ps(t1, v1, 0xCC);
    col[4 * h + 3] = _mm256_blend_ps(v1, t3, 0xCC);
  }
}

/* G groups of 8 rows from w (stride ldb), their chains over k in [k0, ke) from zero, kept independent
 * in one loop so that the FMA latency of one group hides behind the others' loads and shuffles */
static inline void chains(int G, const float *w, long ldb, const float *a, int k0, int ke, __m256 *s) {
  for (int g = 0; g < G; g++) s[g] = _mm256_setzero_ps();
  int k = k0;
  for (; k + 8 <= ke; k += 8) {
    if (!(k & 15)) /* the next tile's rows, one line each per 16 k: its loads then hit the cache */
      for (int i = 0; i < 8 * G; i++) _mm_prefetch((const char *)(w + (8 * G + i) * ldb + k), _MM_HINT_T0);
    for (int g = 0; g < G; g++) {
      __m256 col[8];
      columns8(w + 8 * g * ldb, ldb, k, col);
      for (int j = 0; j < 8; j++) s[g] = _mm256_fmadd_ps(_mm256_set1_ps(a[k + j]), col[j], s[g]);
    }
  }
  for (; k < ke; k++)
    for (int g = 0; g < G; g++) {
      const float *x = w + 8 * g * ldb + k;
      __m256 col = _mm256_setr_ps(x[0], x[ldb], x[2 * ldb], x[3 * ldb], x[4 * ldb], x[5 * ldb], x[6 * ldb], x[7 * ldb]);
      s[g] = _mm256_fmadd_ps(_mm256_set1_ps(a[k]), col, s[g]);
    }
}

/* rows [n, n + 8G) */
static inline void rows_bt(int G, int n, int K, const float *a, const float *B, long ldb, float *c, int acc) {
  __m256 r[2], s[2];
  for (int g = 0; g < G; g++) r[g] = _mm256_loadu_ps(c + n + 8 * g);
  for (int k0 = 0; k0 < K; k0 += GEMV_KC) {
    int ke = K - k0 < GEMV_KC ? K : k0 + GEMV_KC, st = k0 == 0 && !acc;
    chains(G, B + (size_t)n * ldb, ldb, a, k0, ke, s);
    for (int g = 0; g < G; g++) r[g] = merge(r[g], s[g], st);
  }
  for (int g = 0; g < G; g++) _mm256_storeu_ps(c + n + 8 * g, r[g]);
}

static void gemv_bt(int n0, int n1, int K, const float *a, const float *B, long ldb, float *c, int acc) {
  int n = n0;
  for (; n + 16 <= n1; n += 16) rows_bt(2, n, K, a, B, ldb, c, acc);
  for (; n + 8 <= n1; n += 8) rows_bt(1, n, K, a, B, ldb, c, acc);
  for (; n < n1; n++) { /* leftover rows, one scalar chain each */
    const float *w = B + (size_t)n * ldb;
    float r = c[n];
    for (int k0 = 0; k0 < K; k0 += GEMV_KC) {
      int ke = K - k0 < GEMV_KC ? K : k0 + GEMV_KC;
      float s = 0.0f;
      for (int k = k0; k < ke; k++) s = __builtin_fmaf(a[k], w[k], s);
      r = k0 == 0 && !acc ? s : r + s;
    }
    c[n] = r;
  }
}

static void gemv_b(int n0, int n1, int K, const float *a, const float *B, long ldb, float *c, int acc) {
  int n = n0;
  for (; n + 32 <= n1; n += 32) {
    __m256 c0 = _mm256_loadu_ps(c + n), c1 = _mm256_loadu_ps(c + n + 8);
    __m256 c2 = _mm256_loadu_ps(c + n + 16), c3 = _mm256_loadu_ps(c + n + 24);
    for (int k0 = 0; k0 < K; k0 += GEMV_KC) {
      int ke = K - k0 < GEMV_KC ? K : k0 + GEMV_KC;
      __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      for (int k = k0; k < ke; k++) {
        const float *w = B + (size_t)k * ldb + n;
        __m256 av = _mm256_set1_ps(a[k]);
        s0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(w), s0);
        s1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(w + 8), s1);
        s2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(w + 16), s2);
        s3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(w + 24), s3);
      }
      int st = k0 == 0 && !acc;
      c0 = merge(c0, s0, st); c1 = merge(c1, s1, st); c2 = merge(c2, s2, st); c3 = merge(c3, s3, st);
    }
    _mm256_storeu_ps(c + n, c0); _mm256_storeu_ps(c + n + 8, c1);
    _mm256_storeu_ps(c + n + 16, c2); _mm256_storeu_ps(c + n + 24, c3);
  }
  for (; n < n1; n++) {
    float r = c[n];
    for (int k0 = 0; k0 < K; k0 += GEMV_KC) {
      int ke = K - k0 < GEMV_KC ? K : k0 + GEMV_KC;
      float s = 0.0f;
      for (int k = k0; k < ke; k++) s = __builtin_fmaf(a[k], B[(size_t)k * ldb + n], s);
      r = k0 == 0 && !acc ? s : r + s;
    }
    c[n] = r;
  }
}

/* columns [n0, n1) of c (+)= a . op(B) */
void gemv(int tb, int n0, int n1, int K, const float *a, const float *B, long ldb, float *c, int acc) {
  if (K <= 0) {
    if (!acc)
      for (int n = n0; n < n1; n++) c[n] = 0.0f;
    return;
  }
  if (!tb) gemv_b(n0, n1, K, a, B, ldb, c, acc);
  else gemv_bt(n0, n1, K, a, B, ldb, c, acc);
}
