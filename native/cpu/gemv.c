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

/* out[j][i] = r[i][j]: eight rows of eight k become eight k-vectors across the rows (gathers would do
 * the same but are microcoded and far slower on CPUs with the gather-data-sampling mitigation) */
static inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* the chain of rows w[0..7] (stride ldb) over k in [k0, ke), from zero */
static inline __m256 chain8(const float *w, long ldb, const float *a, int k0, int ke) {
  __m256 s = _mm256_setzero_ps();
  int k = k0;
  for (; k + 8 <= ke; k += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(w + i * ldb + k);
    transpose8(r);
    for (int j = 0; j < 8; j++) s = _mm256_fmadd_ps(_mm256_set1_ps(a[k + j]), r[j], s);
  }
  for (; k < ke; k++) {
    __m256 col = _mm256_setr_ps(w[k], w[ldb + k], w[2 * ldb + k], w[3 * ldb + k], w[4 * ldb + k], w[5 * ldb + k],
                                w[6 * ldb + k], w[7 * ldb + k]);
    s = _mm256_fmadd_ps(_mm256_set1_ps(a[k]), col, s);
  }
  return s;
}

static void gemv_bt(int n0, int n1, int K, const float *a, const float *B, long ldb, float *c, int acc) {
  int n = n0;
  for (; n + 16 <= n1; n += 16) { /* two row groups: their FMA chains overlap with the other's shuffles */
    const float *w = B + (size_t)n * ldb;
    __m256 c0 = _mm256_loadu_ps(c + n), c1 = _mm256_loadu_ps(c + n + 8);
    for (int k0 = 0; k0 < K; k0 += GEMV_KC) {
      int ke = K - k0 < GEMV_KC ? K : k0 + GEMV_KC, st = k0 == 0 && !acc;
      c0 = merge(c0, chain8(w, ldb, a, k0, ke), st);
      c1 = merge(c1, chain8(w + 8 * ldb, ldb, a, k0, ke), st);
    }
    _mm256_storeu_ps(c + n, c0);
    _mm256_storeu_ps(c + n + 8, c1);
  }
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
